//! What the audit judges, as plain data: the inside view (listening sockets and their
//! owners) and the outside view (what a scan could reach). The binary maps the inventory
//! and the scanner into these types.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use portolan_registry::{PortRange, Proto};
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::date::Date;

/// Who can reach a listening socket, judged from its local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exposure {
    /// 127.0.0.0/8 or ::1: only this host.
    Loopback,
    /// One specific non-loopback address.
    Address,
    /// The wildcard address (0.0.0.0 or ::): every interface.
    All,
}

impl Exposure {
    /// The exposure of a socket bound to `addr`.
    pub fn of(addr: IpAddr) -> Exposure {
        if addr.is_loopback() || addr.to_canonical().is_loopback() {
            Exposure::Loopback
        } else if addr.is_unspecified() {
            Exposure::All
        } else {
            Exposure::Address
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::Address => "address",
            Exposure::All => "all",
        }
    }
}

/// A process that holds a listening socket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// The command name (`comm`).
    pub name: String,
    /// The executable (`/proc/PID/exe`); `None` when it could not be read.
    pub exe: Option<PathBuf>,
    /// The command line, arguments joined by spaces, when it could be read.
    #[serde(default)]
    pub command: Option<String>,
    pub user: Option<String>,
    /// The systemd unit the process belongs to (`sshd.service`), or the socket unit
    /// (`telnet.socket`) when systemd holds the socket.
    pub unit: Option<String>,
    /// True when systemd (or inetd) opened the socket and hands it to the service.
    pub socket_activated: bool,
}

/// A listening socket (TCP in LISTEN, or a bound UDP socket).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: Proto,
    pub address: IpAddr,
    pub port: u16,
    /// For `::` sockets: false when the socket also serves IPv4.
    pub v6only: Option<bool>,
    pub exposure: Exposure,
    /// The service name from the registry, when the inventory knows one.
    pub service: Option<String>,
    /// The owners; empty when they could not be read (another user's process, no root).
    pub processes: Vec<Process>,
    /// The network namespace, when not the audit's own.
    pub netns: Option<String>,
}

impl Listener {
    /// A listener on `address:port` with no known owner; exposure follows the address.
    pub fn new(protocol: Proto, address: IpAddr, port: u16) -> Listener {
        Listener {
            protocol,
            address,
            port,
            v6only: None,
            exposure: Exposure::of(address),
            service: None,
            processes: Vec::new(),
            netns: None,
        }
    }

    pub fn with_process(mut self, p: Process) -> Listener {
        self.processes.push(p);
        self
    }
}

/// The state a scan saw a port in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortState {
    Open,
    Closed,
    Filtered,
    /// UDP with no answer: open or filtered, the scan cannot tell.
    OpenFiltered,
}

/// What service detection learned about an open port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Detected {
    /// The protocol it speaks (`smtp`, `http`).
    pub protocol: Option<String>,
    pub product: Option<String>,
    pub version: Option<String>,
    /// True when it speaks in cleartext and offers no upgrade.
    pub cleartext: bool,
    /// True when it offers STARTTLS (or AUTH TLS, STLS).
    pub starttls: bool,
    /// True when it speaks TLS from the first byte.
    pub tls: bool,
}

/// One port as a scan saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachable {
    pub host: String,
    pub protocol: Proto,
    pub port: u16,
    pub state: PortState,
    pub detected: Option<Detected>,
}

/// The outside view: a scan of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    /// The target as given (`mail.example.org`, `198.18.0.2`).
    pub target: String,
    /// True when the target is this host, so the scan and the inventory are put together.
    pub local: bool,
    /// The address the scan came from, to check the policy's allowed sources.
    pub source: Option<IpAddr>,
    /// The ports the scan covered; a port outside them is "not scanned", not "closed".
    pub scanned: Vec<(Proto, PortRange)>,
    /// The ports it saw (open ones at least; closed and filtered ones may be left out).
    pub results: Vec<Reachable>,
    /// True when the scan ran on the target itself: its probes came in through the
    /// loopback interface, which firewalls accept, so what it reached says nothing about
    /// the firewall. Only what detection learned is used then.
    #[serde(default)]
    pub from_itself: bool,
}

impl Scan {
    pub fn covers(&self, proto: Proto, port: u16) -> bool {
        self.scanned
            .iter()
            .any(|(p, r)| *p == proto && r.contains(port))
    }
}

/// Everything one audit looks at. Either view may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    /// The inside view; `None` when the host was not inventoried (a remote scan).
    pub listeners: Option<Vec<Listener>>,
    pub scan: Option<Scan>,
}

/// What the host can tell about an executable, behind a seam so the evaluation is tested
/// with plain data.
pub trait Host {
    /// Why an executable is risky to trust (a world-writable file or directory on its
    /// path), or `None`.
    fn exe_risk(&self, exe: &Path) -> Option<String>;
    /// The package that owns a file (`dpkg -S`).
    fn package_of(&self, exe: &Path) -> Option<String>;
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

impl Context<'_> {
    /// Linux's default ephemeral range, 32768-60999.
    pub const DEFAULT_EPHEMERAL: PortRange = PortRange {
        first: 32768,
        last: 60999,
    };
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
    fn exposure() {
        assert_eq!(
            Exposure::of("127.0.0.53".parse().unwrap()),
            Exposure::Loopback
        );
        assert_eq!(Exposure::of("::1".parse().unwrap()), Exposure::Loopback);
        assert_eq!(
            Exposure::of("::ffff:127.0.0.1".parse().unwrap()),
            Exposure::Loopback
        );
        assert_eq!(Exposure::of("0.0.0.0".parse().unwrap()), Exposure::All);
        assert_eq!(Exposure::of("::".parse().unwrap()), Exposure::All);
        assert_eq!(
            Exposure::of("192.0.2.1".parse().unwrap()),
            Exposure::Address
        );
    }

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
