//! The collection behind the metrics (`portolan serve`, `ls`/`audit --format
//! prometheus`): the inventory and, when a policy or profile is given, the audit of the
//! inside view, into one model [`Snapshot`] with the status of each source and the time
//! it took.
//!
//! It never scans: the outside view would mean sending traffic, and the exporter must not
//! be usable to scan anything. Scanning from the exporter is off; if it is ever added, its
//! targets must come from the exporter's own command line, never from a request.
//!
//! ```no_run
//! use portolan_app::collect::{CollectOptions, collect};
//! let done = collect(&CollectOptions::default());
//! let metrics = done.metrics();
//! print!("{}", portolan_report::metrics::encode_text(&metrics));
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portolan_audit::{Date, Inputs};
use portolan_inventory::{LiveOs, Os};
use portolan_model::{RunInfo, Snapshot};
use portolan_registry::Registry;
use portolan_report::metrics::{self, CollectorStatus, Metrics};

use crate::inventory::{NetnsChoice, Request};
use crate::policy::LoadedPolicy;

/// The `collector` label of the inventory.
pub const INVENTORY: &str = "inventory";
/// The `collector` label of the audit.
pub const AUDIT: &str = "audit";

/// What to collect. The default: the inventory of the current namespace, no audit.
#[derive(Debug, Clone, Default)]
pub struct CollectOptions {
    /// What to list (the default: every listener of the current namespace); its
    /// `netns` says which namespaces.
    pub request: Request,
    /// Judge the listeners against this policy or profile (loaded once, by the caller:
    /// see [`crate::policy::load`]).
    pub policy: Option<LoadedPolicy>,
    /// Audit even without a policy (against the built-in baseline). With a policy the
    /// audit always runs.
    pub audit: bool,
    /// Judge exceptions' expiry as of this day (default: today, UTC).
    pub today: Option<Date>,
    /// The command line, for the snapshot's run information.
    pub command: String,
}

/// What one collection gave.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The listeners and, when an audit ran, its report.
    pub snapshot: Snapshot,
    /// One entry per source: `inventory`, and `audit` when an audit was asked for.
    pub collectors: Vec<CollectorStatus>,
    /// Listeners the policy does not allow; `None` when no policy was given or the
    /// audit could not run (unknown, not zero).
    pub unexpected: Option<usize>,
    /// When the collection finished.
    pub collected_at: SystemTime,
    pub duration: Duration,
}

impl Collected {
    /// True when no source answered.
    pub fn nothing_collected(&self) -> bool {
        self.collectors.iter().all(|c| !c.up)
    }

    /// The metrics of this collection.
    pub fn metrics(&self) -> Metrics {
        let mut m = Metrics::new(
            self.snapshot.clone(),
            self.collectors.clone(),
            self.collected_at,
            self.duration,
        );
        m.unexpected = self.unexpected;
        m
    }
}

/// Collects from the live system.
pub fn collect(opts: &CollectOptions) -> Collected {
    collect_with(&LiveOs::new(), opts)
}

/// Collects through `os` (a fake in tests). A source that fails is marked down, with
/// its reason, and the others still answer; the audit needs the inventory, so it is
/// down when the inventory is.
pub fn collect_with(os: &dyn Os, opts: &CollectOptions) -> Collected {
    let start = Instant::now();
    let started = SystemTime::now();
    let mut snapshot = Snapshot {
        run: RunInfo {
            started: portolan_registry::date::rfc3339(unix_secs(started)),
            host: crate::policy::host_name(),
            command: opts.command.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        ..Snapshot::default()
    };
    let mut collectors = Vec::new();
    let inventory = crate::inventory::run_with(os, &opts.request, Registry::embedded());
    let listed = match inventory {
        Ok(inv) => {
            collectors.push(CollectorStatus::up(INVENTORY));
            snapshot.warnings.extend(inv.warnings);
            snapshot.listeners = inv.listeners;
            true
        }
        Err(e) => {
            collectors.push(CollectorStatus::down(INVENTORY, crate::error_text(&e)));
            false
        }
    };
    let mut unexpected = None;
    if opts.audit || opts.policy.is_some() {
        if listed {
            let today = opts.today.unwrap_or_else(Date::today_utc);
            let netns = match &opts.request.netns {
                NetnsChoice::Named(n) => Some(n.clone()),
                _ => None,
            };
            // Lent to the audit and taken back: no second copy of every listener.
            let mut inputs = Inputs {
                listeners: Some(std::mem::take(&mut snapshot.listeners)),
                scan: None,
                netns,
            };
            let report = crate::audit::judge(&inputs, opts.policy.as_ref(), today);
            snapshot.listeners = inputs.listeners.take().unwrap_or_default();
            // The baseline alone does not say what is allowed.
            if opts.policy.is_some() {
                unexpected = Some(metrics::not_allowed_listeners(&report));
            }
            snapshot.audit = Some(report);
            collectors.push(CollectorStatus::up(AUDIT));
        } else {
            collectors.push(CollectorStatus::down(
                AUDIT,
                "no inventory to judge (the inventory is down)",
            ));
        }
    }
    Collected {
        snapshot,
        collectors,
        unexpected,
        collected_at: SystemTime::now(),
        duration: start.elapsed(),
    }
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_inventory::fake::FakeOs;
    use portolan_report::metrics::encode_text;

    fn profile(name: &str) -> Option<LoadedPolicy> {
        crate::policy::load(&crate::policy::PolicySource::Profile(name.into())).unwrap()
    }

    #[test]
    fn the_inventory_alone_has_no_audit_and_no_unexpected() {
        let done = collect_with(&FakeOs::sample(), &CollectOptions::default());
        assert_eq!(done.collectors, vec![CollectorStatus::up(INVENTORY)]);
        assert!(!done.snapshot.listeners.is_empty());
        assert!(done.snapshot.audit.is_none() && done.unexpected.is_none());
        assert_eq!(done.snapshot.run.version, env!("CARGO_PKG_VERSION"));
        let text = encode_text(&done.metrics());
        assert!(text.contains("portolan_listener_info{"), "{text}");
        assert!(!text.contains("portolan_unexpected_listeners"), "{text}");
        assert!(!text.contains("portolan_audit_findings{"), "{text}");
    }

    #[test]
    fn a_profile_audits_and_counts_what_it_does_not_allow() {
        let opts = CollectOptions {
            policy: profile("ssh-only"),
            today: Date::new(2026, 12, 1),
            ..CollectOptions::default()
        };
        let done = collect_with(&FakeOs::sample(), &opts);
        assert_eq!(
            done.collectors,
            vec![CollectorStatus::up(INVENTORY), CollectorStatus::up(AUDIT)]
        );
        let audit = done.snapshot.audit.as_ref().expect("an audit");
        let n = metrics::not_allowed_listeners(audit);
        // The sample host runs nginx and a database beside sshd: not allowed on a bastion.
        assert!(n > 0, "{:?}", audit.findings);
        assert_eq!(done.unexpected, Some(n));
        let text = encode_text(&done.metrics());
        assert!(
            text.contains(&format!("portolan_unexpected_listeners {n}\n")),
            "{text}"
        );
        assert!(
            text.contains("portolan_audit_findings{severity=") && text.contains("not-allowed"),
            "{text}"
        );
    }

    #[test]
    fn the_baseline_audits_but_says_nothing_of_what_is_allowed() {
        let opts = CollectOptions {
            audit: true,
            ..CollectOptions::default()
        };
        let done = collect_with(&FakeOs::sample(), &opts);
        assert_eq!(done.collectors[1], CollectorStatus::up(AUDIT));
        assert!(done.snapshot.audit.is_some());
        assert_eq!(done.unexpected, None);
    }

    #[test]
    fn a_failing_inventory_is_down_and_takes_the_audit_with_it() {
        let opts = CollectOptions {
            request: Request {
                netns: NetnsChoice::Named("no-such-namespace".into()),
                ..Request::default()
            },
            policy: profile("ssh-only"),
            ..CollectOptions::default()
        };
        let done = collect_with(&FakeOs::sample(), &opts);
        assert!(!done.collectors[0].up && !done.collectors[1].up);
        assert_eq!(done.collectors[0].name, INVENTORY);
        assert!(
            done.collectors[0]
                .error
                .as_deref()
                .unwrap()
                .contains("no-such-namespace"),
            "{:?}",
            done.collectors
        );
        assert!(done.nothing_collected());
        // Unknown, not zero.
        assert_eq!(done.unexpected, None);
        let text = encode_text(&done.metrics());
        assert!(
            text.contains("portolan_collector_up{collector=\"inventory\"} 0"),
            "{text}"
        );
    }
}
