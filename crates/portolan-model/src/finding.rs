//! Findings: what is wrong, how bad, the evidence, the fix, and a stable identity.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use portolan_registry::Proto;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::net::canonical;
use crate::process::Process;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Worst first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// One step worse (critical stays critical).
    pub fn raise(self) -> Severity {
        match self {
            Severity::Info => Severity::Low,
            Severity::Low => Severity::Medium,
            Severity::Medium => Severity::High,
            Severity::High | Severity::Critical => Severity::Critical,
        }
    }

    /// One step milder, never below low (info stays info).
    pub fn lower(self) -> Severity {
        match self {
            Severity::Critical => Severity::High,
            Severity::High => Severity::Medium,
            Severity::Medium | Severity::Low => Severity::Low,
            Severity::Info => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown severity '{s}' (expected critical, high, medium, low or info)")
            })
    }
}

/// The rules, with stable ids. Documented in docs/rules.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    CleartextExposed,
    LocalServiceExposed,
    UnknownServiceExposed,
    WritableExecutable,
    EphemeralPort,
    NotAllowed,
    BindMismatch,
    CleartextForbidden,
    RequiredMissing,
    RequiredUnreachable,
    SourceNotEnforced,
    ReachableWithoutListener,
    ExceptionExpired,
    UnknownOwnerExposed,
    /// A listener that is not in the accepted baseline (`audit --since baseline`).
    NewSinceBaseline,
}

impl Rule {
    pub const ALL: [Rule; 15] = [
        Rule::CleartextExposed,
        Rule::LocalServiceExposed,
        Rule::UnknownServiceExposed,
        Rule::WritableExecutable,
        Rule::EphemeralPort,
        Rule::NotAllowed,
        Rule::BindMismatch,
        Rule::CleartextForbidden,
        Rule::RequiredMissing,
        Rule::RequiredUnreachable,
        Rule::SourceNotEnforced,
        Rule::ReachableWithoutListener,
        Rule::ExceptionExpired,
        Rule::UnknownOwnerExposed,
        Rule::NewSinceBaseline,
    ];

    /// The stable id used in every output.
    pub fn id(self) -> &'static str {
        match self {
            Rule::CleartextExposed => "cleartext-exposed",
            Rule::LocalServiceExposed => "local-service-exposed",
            Rule::UnknownServiceExposed => "unknown-service-exposed",
            Rule::WritableExecutable => "writable-executable",
            Rule::EphemeralPort => "ephemeral-port",
            Rule::NotAllowed => "not-allowed",
            Rule::BindMismatch => "bind-mismatch",
            Rule::CleartextForbidden => "cleartext-forbidden",
            Rule::RequiredMissing => "required-missing",
            Rule::RequiredUnreachable => "required-unreachable",
            Rule::SourceNotEnforced => "source-not-enforced",
            Rule::ReachableWithoutListener => "reachable-without-listener",
            Rule::ExceptionExpired => "exception-expired",
            Rule::UnknownOwnerExposed => "unknown-owner-exposed",
            Rule::NewSinceBaseline => "new-since-baseline",
        }
    }

    /// One line saying what the rule checks.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::CleartextExposed => {
                "A cleartext or legacy remote-access service is reachable from the network"
            }
            Rule::LocalServiceExposed => {
                "A service that normally stays on the host (database, cache, admin API) listens on the network"
            }
            Rule::UnknownServiceExposed => {
                "A listener on the network uses a port that no registry knows"
            }
            Rule::WritableExecutable => {
                "A listener is owned by a process running from a writable or temporary path"
            }
            Rule::EphemeralPort => "A service listens inside the kernel's ephemeral port range",
            Rule::NotAllowed => "A service listens or is reachable that the policy does not allow",
            Rule::BindMismatch => {
                "An allowed service listens on more addresses than the policy allows"
            }
            Rule::CleartextForbidden => "A cleartext protocol the policy forbids is in use",
            Rule::RequiredMissing => "A service the policy requires is not running",
            Rule::RequiredUnreachable => "A required service listens but cannot be reached",
            Rule::SourceNotEnforced => {
                "A service was reached from a source the policy does not allow"
            }
            Rule::ReachableWithoutListener => {
                "A port is reachable from outside but nothing on this host listens on it"
            }
            Rule::ExceptionExpired => "A policy exception has passed its expiry date",
            Rule::UnknownOwnerExposed => {
                "A listener on the network has no owner the inventory could see"
            }
            Rule::NewSinceBaseline => "A listener is not in the accepted baseline",
        }
    }

    /// The severity the rule starts from, before exposure and reachability adjust it.
    pub fn default_severity(self) -> Severity {
        match self {
            Rule::CleartextExposed | Rule::NotAllowed | Rule::BindMismatch => Severity::High,
            Rule::CleartextForbidden | Rule::LocalServiceExposed => Severity::High,
            Rule::WritableExecutable | Rule::RequiredMissing | Rule::SourceNotEnforced => {
                Severity::High
            }
            Rule::UnknownServiceExposed | Rule::RequiredUnreachable => Severity::Medium,
            Rule::UnknownOwnerExposed => Severity::Medium,
            Rule::ReachableWithoutListener => Severity::Medium,
            Rule::EphemeralPort | Rule::ExceptionExpired | Rule::NewSinceBaseline => Severity::Low,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::ALL
            .into_iter()
            .find(|r| r.id() == s)
            .ok_or_else(|| format!("unknown rule '{s}'"))
    }
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What was measured about reaching a finding's port from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reach {
    /// A scan reached it.
    Reachable,
    /// A scan probed this address, protocol and port, and got no answer that means open.
    Unreachable,
    /// A scan ran, but did not probe this address, family, protocol or port.
    NotChecked,
}

impl Reach {
    pub fn as_str(self) -> &'static str {
        match self {
            Reach::Reachable => "reachable",
            Reach::Unreachable => "unreachable",
            Reach::NotChecked => "not-checked",
        }
    }

    /// The older boolean view: `Some(true)` reachable, `Some(false)` probed and not
    /// reachable, `None` otherwise.
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Reach::Reachable => Some(true),
            Reach::Unreachable => Some(false),
            Reach::NotChecked => None,
        }
    }
}

/// How to fix a finding: sentences, and the commands in them, so a renderer can show the
/// commands as code. `text` holds the commands in backticks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Remediation {
    pub text: String,
    pub commands: Vec<String>,
}

impl Remediation {
    /// From a text whose commands are in backticks (`systemctl disable --now x`).
    pub fn new(text: impl Into<String>) -> Remediation {
        let text = text.into();
        let commands = text
            .split('`')
            .enumerate()
            .filter(|(i, s)| i % 2 == 1 && !s.trim().is_empty())
            .map(|(_, s)| s.to_string())
            .collect();
        Remediation { text, commands }
    }
}

impl fmt::Display for Remediation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One owner of the socket a finding is about, and the package its executable is from.
/// The process is shared: every finding about the sockets of one owner points at the one
/// record (serialized as if owned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    #[serde(flatten)]
    pub process: Arc<Process>,
    /// The Debian package that owns the executable.
    pub package: Option<String>,
}

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable identity: the rule, the endpoint (namespace, protocol, normalised
    /// addresses, port) and the service. No pid, inode or wording goes into it, so the
    /// same problem seen tomorrow has the same fingerprint.
    pub fingerprint: String,
    pub severity: Severity,
    pub rule: Rule,
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    /// The addresses, for display: `0.0.0.0, ::`, or the scanned host.
    pub address: Option<String>,
    /// The same addresses as data.
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// The network namespace of the listener, when it is not the current one.
    #[serde(default)]
    pub netns: Option<String>,
    pub service: Option<String>,
    /// The owning process names, comma-separated, for display (see `evidence`).
    pub process: Option<String>,
    /// `true` reachable from the scan, `false` scanned and not reachable, `null` when not
    /// probed (see `reach`).
    pub reachable: Option<bool>,
    /// What the outside view measured; `null` when the audit had no scan.
    #[serde(default)]
    pub reach: Option<Reach>,
    /// The product a detection found (`Postfix smtpd`).
    pub product: Option<String>,
    pub message: String,
    pub remediation: Remediation,
    pub evidence: Vec<Evidence>,
}

impl Finding {
    /// A finding with no socket; fill the rest with struct update syntax, then [`seal`].
    ///
    /// [`seal`]: Finding::seal
    pub fn new(rule: Rule, message: impl Into<String>, remediation: Remediation) -> Finding {
        Finding {
            fingerprint: String::new(),
            severity: rule.default_severity(),
            rule,
            protocol: None,
            port: None,
            address: None,
            addresses: Vec::new(),
            netns: None,
            service: None,
            process: None,
            reachable: None,
            reach: None,
            product: None,
            message: message.into(),
            remediation,
            evidence: Vec::new(),
        }
    }

    /// Sets what the outside view measured (and the older `reachable`).
    pub fn set_reach(&mut self, reach: Option<Reach>) {
        self.reach = reach;
        self.reachable = reach.and_then(Reach::as_bool);
    }

    /// Computes the fingerprint from the identity fields.
    pub fn seal(mut self) -> Finding {
        self.fingerprint = self.compute_fingerprint();
        self
    }

    /// The identity as text: `rule|netns|protocol|addresses|port|service`. Addresses are
    /// normalised (IPv4-mapped as IPv4), sorted and deduplicated.
    pub fn identity(&self) -> String {
        let mut addrs: Vec<IpAddr> = self.addresses.iter().map(|&a| canonical(a)).collect();
        addrs.sort();
        addrs.dedup();
        let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        let addrs = if addrs.is_empty() {
            self.address.clone().unwrap_or_default()
        } else {
            addrs.join(",")
        };
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.rule.id(),
            self.netns.as_deref().unwrap_or(""),
            self.protocol.map(Proto::as_str).unwrap_or(""),
            addrs,
            self.port.map(|p| p.to_string()).unwrap_or_default(),
            self.service.as_deref().unwrap_or(""),
        )
    }

    /// The first 16 hex digits of the SHA-256 of [`Finding::identity`].
    pub fn compute_fingerprint(&self) -> String {
        let digest = Sha256::digest(self.identity().as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `25/tcp`, or empty for findings about no port.
    pub fn port_label(&self) -> String {
        match (self.port, self.protocol) {
            (Some(p), Some(proto)) => format!("{p}/{proto}"),
            _ => String::new(),
        }
    }
}

/// A finding an exception of the policy holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppressed {
    pub rule: Rule,
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    pub reason: String,
    /// The finding it holds back, when the audit kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<Finding>>,
}

/// Counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl Counts {
    pub fn add(&mut self, s: Severity) {
        *self.slot(s) += 1;
    }

    fn slot(&mut self, s: Severity) -> &mut usize {
        match s {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }

    pub fn get(&self, s: Severity) -> usize {
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

/// The short summary an audit ends with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditSummary {
    /// The policy's name (`baseline` for the built-in one).
    pub policy: String,
    /// Listening sockets examined (none without an inside view).
    pub listeners: Option<usize>,
    /// Of those, how many listen beyond loopback.
    pub exposed: Option<usize>,
    /// Ports the scan found reachable (none without a scan).
    pub reachable: Option<usize>,
    /// Listeners beyond loopback the scan probed on every address they serve, and found
    /// closed or filtered (none without a scan that met the inside view).
    #[serde(default)]
    pub unreachable: Option<usize>,
    /// Listeners beyond loopback the scan did not probe on some address, protocol or port
    /// they serve, or whose probe got no answer (UDP open|filtered): nothing was measured.
    #[serde(default)]
    pub not_checked: Option<usize>,
    pub findings: usize,
    pub severities: Counts,
    pub suppressed: usize,
    /// What to do next, as one sentence with a command.
    pub next_step: String,
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Sorted: worst first, then by port.
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    pub summary: AuditSummary,
}

impl AuditReport {
    /// The worst severity found, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// True when a finding is at least as bad as `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.worst().is_some_and(|w| w >= threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn telnet() -> Finding {
        let mut f = Finding::new(
            Rule::CleartextExposed,
            "telnet 23/tcp on 0.0.0.0 (inetd pid 812) is remote access without encryption",
            Remediation::new("Stop it: `systemctl disable --now inetd.service`."),
        );
        f.protocol = Some(Proto::Tcp);
        f.port = Some(23);
        f.addresses = vec!["0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
        f.address = Some("0.0.0.0, ::".into());
        f.service = Some("telnet".into());
        f.evidence.push(Evidence {
            process: Arc::new(Process::new(812, "inetd")),
            package: Some("openbsd-inetd".into()),
        });
        f.set_reach(Some(Reach::Reachable));
        f.seal()
    }

    #[test]
    fn remediation_keeps_commands_as_data() {
        let r = Remediation::new("Stop it: `systemctl stop x`, then `ss -tlnp`.");
        assert_eq!(r.commands, vec!["systemctl stop x", "ss -tlnp"]);
        assert_eq!(r.to_string(), r.text);
    }

    #[test]
    fn fingerprint_ignores_pid_wording_and_address_order() {
        let a = telnet();
        let mut b = telnet();
        b.message = "other words".into();
        Arc::make_mut(&mut b.evidence[0].process).pid = 9999;
        b.addresses.reverse();
        b.severity = Severity::Low;
        assert_eq!(a.fingerprint, b.seal().fingerprint);
        let mut c = telnet();
        c.port = Some(2323);
        assert_ne!(a.fingerprint, c.seal().fingerprint);
        let mut d = telnet();
        d.addresses = vec!["::ffff:0.0.0.0".parse().unwrap(), "::".parse().unwrap()];
        assert_eq!(a.fingerprint, d.seal().fingerprint);
        assert_eq!(a.fingerprint.len(), 16);
    }

    #[test]
    fn finding_round_trips() {
        let f = telnet();
        let j = serde_json::to_string(&f).unwrap();
        assert!(j.contains(r#""reachable":true"#) && j.contains(r#""reach":"reachable""#));
        assert!(j.contains(r#""package":"openbsd-inetd""#) && j.contains(r#""pid":812"#));
        assert_eq!(serde_json::from_str::<Finding>(&j).unwrap(), f);
        let report = AuditReport {
            findings: vec![f],
            suppressed: vec![],
            summary: AuditSummary {
                policy: "baseline".into(),
                listeners: Some(3),
                exposed: Some(1),
                reachable: None,
                unreachable: None,
                not_checked: None,
                findings: 1,
                severities: Counts::default(),
                suppressed: 0,
                next_step: String::new(),
            },
        };
        let j = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<AuditReport>(&j).unwrap(), report);
    }

    #[test]
    fn rules_and_severities_read_back() {
        for r in Rule::ALL {
            assert_eq!(r.id().parse::<Rule>().unwrap(), r);
        }
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>().unwrap(), s);
        }
        assert!(serde_json::from_str::<Rule>("\"nope\"").is_err());
    }
}
