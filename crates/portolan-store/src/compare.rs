//! The comparison of two points, as a pure function over what each point holds. The
//! database diff and the diff of two files both end here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

use portolan_model::{
    Change, ChangeKind, Diff, FieldChange, Finding, Listener, ListenerKey, Proto, ScannedPort,
    Snapshot, Subject, canonical,
};

use crate::noise::DiffOptions;

/// A scanned port's identity: (target address, protocol, port).
pub(crate) type PortKey = (IpAddr, Proto, u16);

pub(crate) fn port_key(p: &ScannedPort) -> PortKey {
    (canonical(p.result.host), p.result.proto, p.result.port)
}

/// What one point holds, by identity. Only the identities that matter need to be in
/// it: the database passes just the ones whose state differs between the two points.
#[derive(Debug, Default, Clone)]
pub(crate) struct Side {
    /// Every socket with one identity (several with `SO_REUSEPORT`).
    pub listeners: BTreeMap<ListenerKey, Vec<Listener>>,
    pub ports: BTreeMap<PortKey, ScannedPort>,
    pub findings: BTreeMap<String, Finding>,
}

impl Side {
    pub fn add_listener(&mut self, l: Listener) {
        self.listeners.entry(l.key()).or_default().push(l);
    }
}

/// What the history adds to a comparison.
#[derive(Debug, Default)]
pub(crate) struct Context {
    /// Subjects that existed before the earlier point (a new one is `reopened`).
    pub seen_before: HashSet<Subject>,
    /// When each change happened (RFC 3339); `default_at` for the others.
    pub at: HashMap<Subject, String>,
    pub default_at: Option<String>,
}

/// Which kinds of subject both points observed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed {
    pub listeners: bool,
    pub ports: bool,
    pub findings: bool,
}

/// Whether a snapshot has an inside view. An empty listener list counts as one unless
/// the snapshot is a scan (an import holds no inside view).
pub(crate) fn has_inside_view(s: &Snapshot) -> bool {
    !s.listeners.is_empty() || s.scan.is_none()
}

/// The changes from `a` to `b`. Both are whole snapshots, so nothing is `reopened` and
/// `min_age` does not apply. Ports that `b`'s scan did not probe are not removed.
///
/// ```
/// use portolan_model::{Listener, Proto, Snapshot};
/// use portolan_store::{DiffOptions, diff_snapshots};
/// let a = Snapshot::default();
/// let mut b = Snapshot::default();
/// b.listeners.push(Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 8080));
/// let d = diff_snapshots(&a, &b, &DiffOptions::default());
/// assert_eq!(d.changes[0].change.as_str(), "added");
/// assert!(diff_snapshots(&b, &b, &DiffOptions::default()).is_empty());
/// ```
pub fn diff_snapshots(a: &Snapshot, b: &Snapshot, opts: &DiffOptions) -> Diff {
    let obs = Observed {
        listeners: has_inside_view(a) && has_inside_view(b),
        ports: a.scan.is_some() && b.scan.is_some(),
        findings: a.audit.is_some() && b.audit.is_some(),
    };
    let (mut sa, mut sb) = (side_of(a, obs), side_of(b, obs));
    if let (Some(sa_scan), Some(sb_scan)) = (&a.scan, &b.scan) {
        let _ = sa_scan;
        // Not probed later: not checked, so not removed.
        sa.ports
            .retain(|k, _| sb.ports.contains_key(k) || sb_scan.coverage.covers(k.0, k.1, k.2));
        // Not probed earlier: not checked, so not added.
        sb.ports
            .retain(|k, _| sa.ports.contains_key(k) || sa_scan.coverage.covers(k.0, k.1, k.2));
    }
    let ctx = Context {
        default_at: Some(b.run.started.clone()).filter(|s| !s.is_empty()),
        ..Context::default()
    };
    Diff {
        from: label(a),
        to: label(b),
        changes: compare(&sa, &sb, opts, &ctx),
    }
}

fn label(s: &Snapshot) -> String {
    if s.run.started.is_empty() {
        "snapshot".into()
    } else {
        format!("snapshot ({})", s.run.started)
    }
}

fn side_of(s: &Snapshot, obs: Observed) -> Side {
    let mut side = Side::default();
    if obs.listeners {
        for l in &s.listeners {
            side.add_listener(l.clone());
        }
    }
    if obs.ports
        && let Some(scan) = &s.scan
    {
        for p in scan.hosts.iter().flat_map(|h| &h.ports) {
            side.ports.entry(port_key(p)).or_insert_with(|| p.clone());
        }
    }
    if obs.findings
        && let Some(audit) = &s.audit
    {
        for f in &audit.findings {
            side.findings
                .entry(f.fingerprint.clone())
                .or_insert_with(|| f.clone());
        }
    }
    side
}

/// The changes between two sides, sorted by port, protocol and subject.
pub(crate) fn compare(a: &Side, b: &Side, opts: &DiffOptions, ctx: &Context) -> Vec<Change> {
    let mut out = Vec::new();
    let keys: BTreeSet<&ListenerKey> = a.listeners.keys().chain(b.listeners.keys()).collect();
    for k in keys {
        let (before, after) = (a.listeners.get(k), b.listeners.get(k));
        let subject = Subject::Listener(k.clone());
        let (kind, fields) = match (before, after) {
            (Some(x), Some(y)) => match listener_change(x, y) {
                Some(c) => c,
                None => continue,
            },
            (Some(_), None) => (ChangeKind::Removed, Vec::new()),
            (None, Some(_)) => (appeared(&subject, ctx), Vec::new()),
            (None, None) => continue,
        };
        let shown = after.or(before).and_then(|v| v.first()).cloned();
        let noise = before
            .into_iter()
            .chain(after)
            .flatten()
            .any(|l| opts.is_noise(l));
        let names: Vec<&str> = before
            .into_iter()
            .chain(after)
            .flatten()
            .flat_map(owner_names)
            .collect();
        push(
            &mut out,
            opts,
            ctx,
            Change {
                change: kind,
                subject,
                protocol: Some(k.protocol),
                port: Some(k.port),
                fields,
                listener: shown,
                at: None,
                noise,
            },
            &names,
        );
    }
    let keys: BTreeSet<&PortKey> = a.ports.keys().chain(b.ports.keys()).collect();
    for k in keys {
        let subject = Subject::Port {
            host: k.0,
            protocol: k.1,
            port: k.2,
        };
        let (kind, fields) = match (a.ports.get(k), b.ports.get(k)) {
            (Some(x), Some(y)) => {
                let f = port_fields(x, y);
                if f.is_empty() {
                    continue;
                }
                (ChangeKind::Changed, f)
            }
            (Some(_), None) => (ChangeKind::Removed, Vec::new()),
            (None, Some(_)) => (appeared(&subject, ctx), Vec::new()),
            (None, None) => continue,
        };
        let change = Change {
            change: kind,
            subject,
            protocol: Some(k.1),
            port: Some(k.2),
            fields,
            listener: None,
            at: None,
            noise: false,
        };
        push(&mut out, opts, ctx, change, &[]);
    }
    let keys: BTreeSet<&String> = a.findings.keys().chain(b.findings.keys()).collect();
    for k in keys {
        let (before, after) = (a.findings.get(k), b.findings.get(k));
        let Some(f) = after.or(before) else { continue };
        let subject = Subject::Finding {
            fingerprint: k.clone(),
            rule: f.rule,
        };
        let (kind, fields) = match (before, after) {
            (Some(x), Some(y)) => {
                let fl = finding_fields(x, y);
                if fl.is_empty() {
                    continue;
                }
                (ChangeKind::Changed, fl)
            }
            (Some(_), None) => (ChangeKind::Removed, Vec::new()),
            _ => (appeared(&subject, ctx), Vec::new()),
        };
        let names: Vec<&str> = f.evidence.iter().map(|e| e.process.name.as_str()).collect();
        let change = Change {
            change: kind,
            subject,
            protocol: f.protocol,
            port: f.port,
            fields,
            listener: None,
            at: None,
            noise: false,
        };
        push(&mut out, opts, ctx, change, &names);
    }
    out.sort_by(|x, y| (x.port, x.protocol, &x.subject).cmp(&(y.port, y.protocol, &y.subject)));
    out
}

fn appeared(subject: &Subject, ctx: &Context) -> ChangeKind {
    if ctx.seen_before.contains(subject) {
        ChangeKind::Reopened
    } else {
        ChangeKind::Added
    }
}

fn push(out: &mut Vec<Change>, opts: &DiffOptions, ctx: &Context, mut c: Change, names: &[&str]) {
    if c.noise && !opts.show_noise {
        return;
    }
    if opts
        .ignore
        .iter()
        .any(|i| i.matches(c.protocol, c.port, names))
    {
        return;
    }
    c.at = ctx
        .at
        .get(&c.subject)
        .cloned()
        .or_else(|| ctx.default_at.clone());
    out.push(c);
}

fn owner_names(l: &Listener) -> impl Iterator<Item = &str> {
    l.processes.iter().flat_map(|p| {
        let exe = p
            .exe
            .as_deref()
            .and_then(|e| e.rsplit('/').next())
            .map(|b| b.strip_suffix(" (deleted)").unwrap_or(b));
        std::iter::once(p.name.as_str()).chain(exe)
    })
}

/// The sorted, distinct values of one attribute over a group of sockets, joined.
fn joined<'a>(v: impl Iterator<Item = Option<String>> + 'a) -> Option<String> {
    let set: BTreeSet<String> = v.flatten().filter(|s| !s.is_empty()).collect();
    (!set.is_empty()).then(|| set.into_iter().collect::<Vec<_>>().join(","))
}

fn procs(g: &[Listener]) -> impl Iterator<Item = &portolan_model::Process> {
    g.iter().flat_map(|l| l.processes.iter().map(|p| &**p))
}

/// The attributes compared, in the order they are reported.
fn listener_attrs(g: &[Listener]) -> Vec<(&'static str, Option<String>)> {
    let pids: BTreeSet<u32> = procs(g).map(|p| p.pid).collect();
    let pids = (!pids.is_empty()).then(|| {
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    });
    vec![
        ("pid", pids),
        ("name", joined(procs(g).map(|p| Some(p.name.clone())))),
        ("exe", joined(procs(g).map(|p| p.exe.clone()))),
        (
            "user",
            joined(
                g.iter()
                    .map(|l| l.user.as_deref().map(str::to_string))
                    .chain(procs(g).map(|p| p.user.clone())),
            ),
        ),
        ("unit", joined(procs(g).map(|p| p.unit.clone()))),
        ("cgroup", joined(procs(g).map(|p| p.cgroup.clone()))),
        ("container", joined(procs(g).map(|p| p.container.clone()))),
        ("cmdline", joined(procs(g).map(|p| Some(p.cmdline.clone())))),
        ("inode", joined(g.iter().map(|l| Some(l.inode.to_string())))),
        ("state", joined(g.iter().map(|l| Some(l.state.to_string())))),
        (
            "exposure",
            joined(g.iter().map(|l| Some(l.exposure.to_string()))),
        ),
        (
            "v6only",
            joined(g.iter().map(|l| l.v6only.map(|b| b.to_string()))),
        ),
        (
            "service",
            joined(g.iter().map(|l| l.service.as_deref().map(str::to_string))),
        ),
        (
            "socket_unit",
            joined(
                g.iter()
                    .map(|l| l.socket_unit.as_deref().map(str::to_string)),
            ),
        ),
        (
            "socket_activated",
            joined(g.iter().map(|l| Some(l.socket_activated.to_string()))),
        ),
        (
            "owner_unknown",
            joined(g.iter().map(|l| Some(l.owner_unknown.to_string()))),
        ),
        ("remote", joined(g.iter().map(|l| l.remote.clone()))),
        ("sockets", Some(g.len().to_string())),
    ]
}

fn diff_fields(
    a: Vec<(&'static str, Option<String>)>,
    b: Vec<(&'static str, Option<String>)>,
) -> Vec<FieldChange> {
    a.into_iter()
        .zip(b)
        .filter(|(x, y)| x.1 != y.1)
        .map(|(x, y)| FieldChange {
            field: x.0.to_string(),
            before: x.1,
            after: y.1,
        })
        .collect()
}

/// `restarted` (same program, unit and user, new pid), `changed`, or nothing.
fn listener_change(a: &[Listener], b: &[Listener]) -> Option<(ChangeKind, Vec<FieldChange>)> {
    let fields = diff_fields(listener_attrs(a), listener_attrs(b));
    if fields.is_empty() {
        return None;
    }
    let changed = |name: &str| fields.iter().any(|f| f.field == name);
    let program = |g: &[Listener]| {
        joined(procs(g).map(|p| Some(p.exe.clone().unwrap_or_else(|| p.name.clone()))))
    };
    let restarted = changed("pid")
        && program(a).is_some()
        && program(a) == program(b)
        && !changed("unit")
        && !changed("user");
    let kind = if restarted {
        ChangeKind::Restarted
    } else {
        ChangeKind::Changed
    };
    Some((kind, fields))
}

fn port_attrs(p: &ScannedPort) -> Vec<(&'static str, Option<String>)> {
    let d = p.detected.as_ref();
    vec![
        ("state", Some(p.result.state.to_string())),
        ("reason", Some(p.result.reason.to_string())),
        ("service", p.service.clone()),
        ("detected", d.and_then(|d| d.protocol.clone())),
        ("product", d.and_then(|d| d.product.clone())),
        ("version", d.and_then(|d| d.version.clone())),
        (
            "tls",
            d.and_then(|d| d.tls.as_ref())
                .map(|t| t.version.clone().unwrap_or_else(|| "yes".into())),
        ),
    ]
}

fn port_fields(a: &ScannedPort, b: &ScannedPort) -> Vec<FieldChange> {
    diff_fields(port_attrs(a), port_attrs(b))
}

fn finding_attrs(f: &Finding) -> Vec<(&'static str, Option<String>)> {
    vec![
        ("severity", Some(f.severity.to_string())),
        ("reach", f.reach.map(|r| r.as_str().to_string())),
        ("service", f.service.clone()),
        ("product", f.product.clone()),
        ("process", f.process.clone()),
    ]
}

fn finding_fields(a: &Finding, b: &Finding) -> Vec<FieldChange> {
    diff_fields(finding_attrs(a), finding_attrs(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use portolan_model::Process;

    fn proc_(pid: u32, name: &str, exe: &str) -> Process {
        let mut p = Process::new(pid, name);
        p.exe = Some(exe.into());
        p.unit = Some(format!("{name}.service"));
        p.user = Some("root".into());
        p
    }

    fn l(port: u16, p: Process) -> Listener {
        Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), port).with_process(p)
    }

    fn snap(ls: Vec<Listener>) -> Snapshot {
        Snapshot {
            listeners: ls,
            ..Snapshot::default()
        }
    }

    #[test]
    fn the_four_classes() {
        let a = snap(vec![
            l(22, proc_(10, "sshd", "/usr/sbin/sshd")),
            l(80, proc_(20, "nginx", "/usr/sbin/nginx")),
            l(25, proc_(30, "exim", "/usr/sbin/exim")),
        ]);
        let b = snap(vec![
            l(22, proc_(11, "sshd", "/usr/sbin/sshd")),
            l(80, proc_(40, "apache2", "/usr/sbin/apache2")),
            l(443, proc_(50, "nginx", "/usr/sbin/nginx")),
        ]);
        let d = diff_snapshots(&a, &b, &DiffOptions::default());
        let got: Vec<(u16, &str)> = d
            .changes
            .iter()
            .map(|c| (c.port.unwrap(), c.change.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (22, "restarted"),
                (25, "removed"),
                (80, "changed"),
                (443, "added")
            ]
        );
        let exe = d.changes[2]
            .fields
            .iter()
            .find(|f| f.field == "exe")
            .unwrap();
        assert_eq!(exe.before.as_deref(), Some("/usr/sbin/nginx"));
        assert_eq!(exe.after.as_deref(), Some("/usr/sbin/apache2"));
        assert!(d.changes[0].fields.iter().any(|f| f.field == "pid"));
    }

    #[test]
    fn noise_is_marked_and_hidden_by_default() {
        let a = snap(vec![]);
        let b = snap(vec![
            l(40000, proc_(1, "x", "/x")),
            l(8080, proc_(2, "y", "/y")),
        ]);
        let d = diff_snapshots(&a, &b, &DiffOptions::default());
        assert_eq!(d.changes.len(), 1);
        let all = DiffOptions {
            show_noise: true,
            ..DiffOptions::default()
        };
        let d = diff_snapshots(&a, &b, &all);
        assert_eq!(d.changes.len(), 2);
        assert!(
            d.changes
                .iter()
                .find(|c| c.port == Some(40000))
                .unwrap()
                .noise
        );
        let ign = DiffOptions {
            ignore: vec!["y".parse().unwrap()],
            ..DiffOptions::default()
        };
        assert!(diff_snapshots(&a, &b, &ign).is_empty());
    }

    #[test]
    fn restart_with_unknown_owner_is_changed() {
        let mut x = Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), 22);
        x.inode = 1;
        let mut y = x.clone();
        y.inode = 2;
        let d = diff_snapshots(&snap(vec![x]), &snap(vec![y]), &DiffOptions::default());
        assert_eq!(d.changes[0].change, ChangeKind::Changed);
        assert_eq!(d.changes[0].fields[0].field, "inode");
    }
}
