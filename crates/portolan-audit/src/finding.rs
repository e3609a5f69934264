//! Findings: what is wrong, how bad, the evidence, and the concrete fix.

use std::fmt;
use std::str::FromStr;

use portolan_registry::Proto;
use serde::Serialize;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
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

    /// One step milder, never below low.
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
}

impl Rule {
    pub const ALL: [Rule; 13] = [
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
            Rule::ReachableWithoutListener => Severity::Medium,
            Rule::EphemeralPort | Rule::ExceptionExpired => Severity::Low,
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

/// One owner of the socket a finding is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub pid: u32,
    pub name: String,
    pub exe: Option<String>,
    /// The command line.
    pub command: Option<String>,
    pub user: Option<String>,
    pub unit: Option<String>,
    pub package: Option<String>,
}

/// One thing that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    /// The local addresses, comma-separated (`0.0.0.0, ::`), or the scanned host.
    pub address: Option<String>,
    pub service: Option<String>,
    /// The owning process names, comma-separated.
    pub process: Option<String>,
    /// `true` reachable from the scan, `false` scanned and not reachable, absent when the
    /// port was not scanned.
    pub reachable: Option<bool>,
    /// The product a detection found (`Postfix smtpd`).
    pub product: Option<String>,
    pub message: String,
    pub remediation: String,
    pub evidence: Vec<Evidence>,
}

impl Finding {
    /// `25/tcp`, or empty for findings about no port.
    pub fn port_label(&self) -> String {
        match (self.port, self.protocol) {
            (Some(p), Some(proto)) => format!("{p}/{proto}"),
            _ => String::new(),
        }
    }
}

/// A finding an exception of the policy holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppressed {
    pub rule: Rule,
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    pub reason: String,
}

/// Counts by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
}

impl Counts {
    pub fn add(&mut self, s: Severity) {
        match s {
            Severity::Critical => self.critical += 1,
            Severity::High => self.high += 1,
            Severity::Medium => self.medium += 1,
            Severity::Low => self.low += 1,
            Severity::Info => self.info += 1,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The policy's name (`baseline` for the built-in one).
    pub policy: String,
    /// Listening sockets examined (none without an inside view).
    pub listeners: Option<usize>,
    /// Of those, how many listen beyond loopback.
    pub exposed: Option<usize>,
    /// Ports the scan found reachable (none without a scan).
    pub reachable: Option<usize>,
    pub findings: usize,
    pub severities: Counts,
    pub suppressed: usize,
    /// What to do next, as one sentence with a command.
    pub next_step: String,
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Sorted: worst first, then by port.
    pub findings: Vec<Finding>,
    pub suppressed: Vec<Suppressed>,
    pub summary: Summary,
}

impl Report {
    /// The worst severity found, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// True when a finding is at least as bad as `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.worst().is_some_and(|w| w >= threshold)
    }
}
