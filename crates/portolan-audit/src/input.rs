//! What the audit judges, as plain data: the inside view (the model's listening sockets
//! and their owners) and the outside view (a model scan report, and where it ran from).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portolan_model::{Listener, Process, ScanReport, ScannedPort};
use portolan_registry::{PortRange, Proto};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::date::Date;

/// The outside view: a scan of one target, and what the audit needs to know about where
/// it ran from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scan {
    /// The target as given (`mail.example.org`, `198.18.0.2`).
    pub target: String,
    /// True when the target is this host, so the scan and the inventory are put together.
    pub local: bool,
    /// The address the scan came from, to check the policy's allowed sources.
    pub source: Option<IpAddr>,
    /// True when the scan ran on the target itself: its probes came in through the
    /// loopback interface, which firewalls accept, so what it reached says nothing about
    /// the firewall. Only what detection learned is used then.
    #[serde(default)]
    pub from_itself: bool,
    /// The audited host's own addresses beyond loopback (the namespace's, with
    /// `--netns`): the addresses a wildcard listener serves. Empty when unknown: a
    /// wildcard listener is then judged on the addresses the scan probed.
    #[serde(default)]
    pub host_addresses: Vec<IpAddr>,
    /// The scan: what it probed ([`ScanReport::coverage`]; a port outside it is "not
    /// scanned", not "closed") and the ports it saw (open ones at least).
    pub report: ScanReport,
}

impl Scan {
    /// True when the scan probed `port` of `proto` (on any address it scanned).
    pub fn covers(&self, proto: Proto, port: u16) -> bool {
        self.report
            .coverage
            .probed
            .iter()
            .any(|p| p.protocol == proto && p.ports.iter().any(|r| r.contains(port)))
    }

    /// Every port result the scan kept, over its hosts.
    pub fn results(&self) -> impl Iterator<Item = &ScannedPort> {
        self.report.hosts.iter().flat_map(|h| &h.ports)
    }
}

/// The systemd unit that stops an owner of a socket: the `.socket` unit when systemd holds
/// the socket for socket activation, none for systemd itself, else the owner's own unit.
pub fn owner_unit<'a>(l: &'a Listener, p: &'a Process) -> Option<&'a str> {
    match (&l.socket_unit, l.socket_activated) {
        (Some(u), true) => Some(u),
        _ if p.is_systemd() => None,
        _ => p.unit.as_deref(),
    }
}

/// Everything one audit looks at. Either view may be missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// The inside view; `None` when the host was not inventoried (a remote scan).
    pub listeners: Option<Vec<Listener>>,
    pub scan: Option<Scan>,
    /// The label of the namespace the audit is about (`host` when `None`): listeners in
    /// another one are named with theirs in the findings' messages.
    #[serde(default)]
    pub netns: Option<String>,
}

impl Inputs {
    /// The inside view alone: `listeners`, in the host's namespace, and no scan.
    pub fn inside(listeners: Vec<Listener>) -> Inputs {
        Inputs {
            listeners: Some(listeners),
            ..Inputs::default()
        }
    }

    /// The label of the namespace the audit is about.
    pub fn home_netns(&self) -> &str {
        self.netns.as_deref().unwrap_or("host")
    }
}

/// What the host can tell about an executable, behind a seam so the evaluation is tested
/// with plain data.
pub trait Host {
    /// Why an executable is risky to trust (a world-writable file or directory on its
    /// path), or `None`.
    fn exe_risk(&self, exe: &Path) -> Option<String>;
    /// The package that owns a file (`dpkg -S`).
    fn package_of(&self, exe: &Path) -> Option<String>;
    /// The arguments of a running process (`/proc/PID/cmdline`, split at its NUL bytes);
    /// `None` when unknown. The audit uses them only while they still match the command
    /// line the inventory saw; else it splits that at its spaces.
    fn argv(&self, _pid: u32) -> Option<Vec<String>> {
        None
    }
    /// The working directory of a running process (`/proc/PID/cwd`), to resolve the
    /// relative paths on its command line.
    fn cwd(&self, _pid: u32) -> Option<PathBuf> {
        None
    }
    /// True when a path exists (a command line's words are only judged as files when
    /// they are files).
    fn exists(&self, _path: &Path) -> bool {
        true
    }
    /// True when others than root and the owner can add files to a directory: it is
    /// world-writable, with or without the sticky bit (which only keeps others from
    /// deleting or renaming what is there, not from creating new files).
    fn others_can_create_in(&self, _dir: &Path) -> bool {
        false
    }
}

/// A host that knows nothing: no writable paths, no packages.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHost;

impl Host for NoHost {
    fn exe_risk(&self, _exe: &Path) -> Option<String> {
        None
    }
    fn package_of(&self, _exe: &Path) -> Option<String> {
        None
    }
}

/// The facts an evaluation depends on besides its inputs.
pub struct Context<'a> {
    pub today: Date,
    /// `net.ipv4.ip_local_port_range`.
    pub ephemeral: PortRange,
    pub catalog: &'a dyn Catalog,
    pub host: &'a dyn Host,
    /// Where the policy came from, for remediations (`--policy FILE`, `--profile NAME`).
    pub policy_arg: Option<String>,
}

impl<'a> Context<'a> {
    /// Linux's default ephemeral range, 32768-60999.
    pub const DEFAULT_EPHEMERAL: PortRange = PortRange {
        first: 32768,
        last: 60999,
    };

    /// Judging as of `today`, with `catalog`, on `host`: with Linux's default ephemeral
    /// range and no policy argument.
    pub fn new(today: Date, catalog: &'a dyn Catalog, host: &'a dyn Host) -> Context<'a> {
        Context {
            today,
            ephemeral: Self::DEFAULT_EPHEMERAL,
            catalog,
            host,
            policy_arg: None,
        }
    }
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("today", &self.today)
            .field("ephemeral", &self.ephemeral)
            .finish_non_exhaustive()
    }
}

/// Parses `/proc/sys/net/ipv4/ip_local_port_range` ("32768\t60999").
pub fn parse_port_range_sysctl(text: &str) -> Option<PortRange> {
    let mut it = text.split_whitespace().map(|t| t.parse::<u16>().ok());
    let (first, last) = (it.next()??, it.next()??);
    if it.next().is_some() {
        return None;
    }
    PortRange::new(first, last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_range() {
        assert_eq!(
            parse_port_range_sysctl("32768\t60999\n"),
            PortRange::new(32768, 60999)
        );
        assert_eq!(parse_port_range_sysctl("1024 1023"), None);
        assert_eq!(parse_port_range_sysctl("1024"), None);
        assert_eq!(parse_port_range_sysctl("1 2 3"), None);
        assert_eq!(parse_port_range_sysctl("x 2"), None);
    }
}
