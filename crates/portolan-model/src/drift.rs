//! Change over time: what differs between two points of a host's history, and the
//! snapshot a point is made of.

use std::fmt;
use std::net::IpAddr;

use portolan_registry::Proto;
use serde::{Deserialize, Serialize};

use crate::finding::{AuditReport, Rule};
use crate::listener::{Listener, ListenerKey};
use crate::run::RunInfo;
use crate::scan::ScanReport;

/// The class of a change between two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Not there before, there now (and never seen before).
    Added,
    /// There before, gone now.
    Removed,
    /// Still there, with other attributes (`fields` says which). For a listener:
    /// another executable or user took the port (`owner-changed` in words).
    Changed,
    /// A listener whose process was restarted: same executable and unit, new pid.
    Restarted,
    /// Closed before, back now.
    Reopened,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Added,
        ChangeKind::Removed,
        ChangeKind::Changed,
        ChangeKind::Restarted,
        ChangeKind::Reopened,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
            ChangeKind::Restarted => "restarted",
            ChangeKind::Reopened => "reopened",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a change is about: a listener's identity, a scanned port, or a finding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Subject {
    Listener(ListenerKey),
    /// A scan result's identity: (target address, protocol, port).
    Port {
        host: IpAddr,
        protocol: Proto,
        port: u16,
    },
    /// A finding's identity is its fingerprint.
    Finding {
        fingerprint: String,
        rule: Rule,
    },
}

/// One attribute that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    /// `pid`, `exe`, `user`, `unit`, `state`, `product`, `severity`...
    pub field: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

/// One change between two points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The change class: `added`, `removed`, `changed`, `restarted`, `reopened`.
    pub change: ChangeKind,
    pub subject: Subject,
    pub protocol: Option<Proto>,
    pub port: Option<u16>,
    /// The attributes that differ (empty for `added` and `removed`).
    #[serde(default)]
    pub fields: Vec<FieldChange>,
    /// The subject's state at the later point (for `removed`: the last state seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<Listener>,
    /// When the change was seen, RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// A listener in the kernel's ephemeral port range, or a connected UDP client
    /// socket: usually noise, hidden by default where a command says so.
    #[serde(default)]
    pub noise: bool,
}

/// Everything one point of history holds about a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub run: RunInfo,
    /// The inside view; empty when the run had none.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanReport>,
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// The changes between two points.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// The points as the user named them, resolved (`run 12 (2026-11-30T12:00:00Z)`).
    pub from: String,
    pub to: String,
    pub changes: Vec<Change>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Family;

    #[test]
    fn change_round_trips() {
        let c = Change {
            change: ChangeKind::Restarted,
            subject: Subject::Listener(ListenerKey {
                netns: "host".into(),
                protocol: Proto::Tcp,
                family: Family::V4,
                address: "0.0.0.0".parse().unwrap(),
                port: 22,
                interface: None,
            }),
            protocol: Some(Proto::Tcp),
            port: Some(22),
            fields: vec![FieldChange {
                field: "pid".into(),
                before: Some("812".into()),
                after: Some("9001".into()),
            }],
            listener: None,
            at: Some("2026-12-01T19:40:00Z".into()),
            noise: false,
        };
        let j = serde_json::to_string(&c).unwrap();
        assert!(j.starts_with(r#"{"change":"restarted","subject":{"kind":"listener","#));
        assert_eq!(serde_json::from_str::<Change>(&j).unwrap(), c);
    }
}
