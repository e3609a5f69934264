//! A listening socket, its owners, and its identity over time.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use portolan_registry::{Category, Proto};
use serde::{Deserialize, Serialize};

use crate::net::{Endpoint, Exposure, Family, canonical};
use crate::process::Process;

/// The kernel state of a socket, as far as an inventory cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketState {
    /// A TCP socket accepting connections.
    Listen,
    /// A bound, unconnected UDP socket (it receives from anyone).
    Unconnected,
    /// A connected UDP socket (a client; listed only when asked).
    Connected,
}

impl SocketState {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketState::Listen => "listen",
            SocketState::Unconnected => "unconnected",
            SocketState::Connected => "connected",
        }
    }
}

impl fmt::Display for SocketState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The owners of one socket, shared by every socket with the same owners.
pub type Owners = Arc<[Arc<Process>]>;

/// An owner list in portolan's order: daemons before the systemd that passed them the
/// socket, then by pid; one entry per pid.
pub fn owner_set(mut owners: Vec<Arc<Process>>) -> Owners {
    owners.sort_by_key(|o| (o.is_systemd(), o.pid));
    owners.dedup_by_key(|o| o.pid);
    owners.into()
}

/// One listening socket (TCP in LISTEN, or a bound UDP socket), with its owners and
/// enrichment. Field names are the JSON names (docs/json.md, `portolan ls`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    pub protocol: Proto,
    pub family: Family,
    pub address: IpAddr,
    pub port: u16,
    /// `IPV6_V6ONLY`: false on IPv4 sockets; `None` when it could not be read.
    pub v6only: Option<bool>,
    pub exposure: Exposure,
    /// The service name for the port and protocol, from the registry in use.
    pub service: Option<Cow<'static, str>>,
    pub category: Category,
    pub state: SocketState,
    /// The peer of a connected UDP socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The interface the socket is bound to (`SO_BINDTODEVICE`).
    pub interface: Option<Arc<str>>,
    /// The namespace label (`host`, an `ip netns` name, `pid:N`, `net:[INODE]`).
    pub netns: Arc<str>,
    #[serde(default)]
    pub netns_inode: u64,
    #[serde(default)]
    pub inode: u64,
    /// The socket's owner uid as the kernel records it, and its name.
    #[serde(default)]
    pub uid: u32,
    pub user: Option<Arc<str>>,
    /// Held by systemd (PID 1 or a `systemd` user manager): socket activation.
    #[serde(default)]
    pub socket_activated: bool,
    /// The `.socket` unit that declares this listener, when it could be found.
    pub socket_unit: Option<Arc<str>>,
    /// True when no owner was found and some processes' descriptors were unreadable.
    #[serde(default)]
    pub owner_unknown: bool,
    pub processes: Owners,
}

impl Listener {
    /// A listener on `address:port` in namespace `host` with no known owner: exposure,
    /// family, category and state follow from the address, port and protocol.
    pub fn new(protocol: Proto, address: IpAddr, port: u16) -> Listener {
        let family = Family::of(address);
        Listener {
            protocol,
            family,
            address,
            port,
            v6only: if family == Family::V4 {
                Some(false)
            } else {
                None
            },
            exposure: Exposure::of(address, None),
            service: None,
            category: Category::of(port),
            state: if protocol == Proto::Tcp {
                SocketState::Listen
            } else {
                SocketState::Unconnected
            },
            remote: None,
            interface: None,
            netns: "host".into(),
            netns_inode: 0,
            inode: 0,
            uid: 0,
            user: None,
            socket_activated: false,
            socket_unit: None,
            owner_unknown: false,
            processes: Arc::new([]),
        }
    }

    /// The same listener with one more owner.
    pub fn with_process(mut self, p: Process) -> Listener {
        let mut v: Vec<Arc<Process>> = self.processes.iter().cloned().collect();
        v.push(Arc::new(p));
        self.processes = owner_set(v);
        self
    }

    /// Bound to an interface; exposure follows.
    pub fn with_interface(mut self, ifname: &str) -> Listener {
        self.interface = Some(ifname.into());
        self.exposure = Exposure::of(self.address, Some(ifname));
        self
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.address,
            port: self.port,
            protocol: self.protocol,
            netns: Some(Arc::clone(&self.netns)),
            interface: self.interface.clone(),
        }
    }

    /// True for a `::` socket that also serves IPv4 (`IPV6_V6ONLY` off).
    pub fn dual_stack(&self) -> bool {
        self.family == Family::V6 && self.address.is_unspecified() && self.v6only == Some(false)
    }

    /// The identity that stays the same across restarts (see [`ListenerKey`]).
    pub fn key(&self) -> ListenerKey {
        ListenerKey {
            netns: self.netns.to_string(),
            protocol: self.protocol,
            family: self.family,
            address: canonical(self.address),
            port: self.port,
            interface: self.interface.as_deref().map(str::to_string),
        }
    }

    /// The order `portolan ls` lists listeners in: most exposed first, then protocol,
    /// port, address, namespace, and the unique inode last.
    pub fn list_order(&self, other: &Listener) -> std::cmp::Ordering {
        other
            .exposure
            .cmp(&self.exposure)
            .then(self.protocol.cmp(&other.protocol))
            .then(self.port.cmp(&other.port))
            .then(self.address.cmp(&other.address))
            .then(self.netns.cmp(&other.netns))
            .then(self.inode.cmp(&other.inode))
    }

    /// The owners' names, for one-line summaries.
    pub fn process_names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.processes.iter().map(|p| p.name.as_str()).collect();
        v.dedup();
        v
    }
}

/// A listener's identity over time: (network namespace, protocol, family, normalised bind
/// address, port, bound interface). The pid, inode, user and executable are attributes:
/// a restart changes them, not the identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ListenerKey {
    pub netns: String,
    pub protocol: Proto,
    pub family: Family,
    /// IPv4-mapped addresses are written as IPv4.
    pub address: IpAddr,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
}

impl fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.netns,
            self.protocol,
            crate::net::fmt_endpoint(self.address, self.port)
        )?;
        if let Some(i) = &self.interface {
            write!(f, "%{i}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Listener {
        let mut p = Process::new(812, "sshd");
        p.exe = Some("/usr/sbin/sshd".into());
        let mut l = Listener::new(Proto::Tcp, "::".parse().unwrap(), 22).with_process(p);
        l.service = Some(Cow::Borrowed("ssh"));
        l.v6only = Some(false);
        l.inode = 4242;
        l.user = Some("root".into());
        l
    }

    #[test]
    fn round_trips_through_json() {
        let l = sample();
        let j = serde_json::to_string(&l).unwrap();
        assert_eq!(serde_json::from_str::<Listener>(&j).unwrap(), l);
        assert!(j.contains(r#""exposure":"all""#) && j.contains(r#""family":"ipv6""#));
    }

    #[test]
    fn identity_ignores_owner_and_inode() {
        let a = sample();
        let mut b = sample();
        b.inode = 1;
        b.processes = owner_set(vec![Arc::new(Process::new(999, "sshd"))]);
        assert_eq!(a.key(), b.key());
        let mapped = Listener::new(Proto::Tcp, "::ffff:198.18.0.2".parse().unwrap(), 22);
        assert_eq!(
            mapped.key().address,
            "198.18.0.2".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn systemd_sorts_last() {
        let s = owner_set(vec![
            Arc::new(Process::new(1, "systemd")),
            Arc::new(Process::new(50, "cupsd")),
            Arc::new(Process::new(50, "cupsd")),
        ]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].pid, 50);
    }
}
