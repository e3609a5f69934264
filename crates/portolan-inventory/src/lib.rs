//! Every listening socket of a host, who owns it and how exposed it is.
//!
//! Sockets come from the kernel's netlink `sock_diag` interface (one dump per protocol
//! and family), or from `/proc/net/{tcp,tcp6,udp,udp6}` when netlink is unavailable or
//! [`SocketSource::Proc`] asks for it. Owners come from one walk of `/proc/*/fd`. Network
//! namespaces are read by entering them on a short-lived thread.
//!
//! The operating system sits behind the [`Os`] trait: [`Inventory::collect`] uses the live
//! system, [`Inventory::collect_with`] any other (tests use plain data). Service names
//! come from the registry the caller passes in. The rows are `portolan_model::Listener`s.
//!
//! ```no_run
//! use portolan_inventory::{Inventory, Options};
//! use portolan_registry::Registry;
//! let inv = Inventory::collect(&Options::default(), Registry::embedded()).unwrap();
//! for l in &inv.listeners {
//!     println!("{} {}:{} {:?}", l.protocol, l.address, l.port, l.exposure);
//! }
//! ```

#![deny(unsafe_code)]

pub mod cgroup;
mod collect;
pub mod diag;
pub mod fake;
mod live;
pub mod netns;
pub mod owners;
pub mod procnet;
#[allow(unsafe_code)]
mod sys;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use portolan_model::{
    Exposure, Family, Listener, Owners, PortSpec, Process, SocketState, canonical, fmt_endpoint,
    owner_set,
};
use portolan_registry::{Proto, Registry};
use serde::Serialize;

pub use live::LiveOs;

/// Why an inventory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open network namespace {path}: {source}")]
    OpenNetns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot enter network namespace {path}: {source}")]
    EnterNetns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no network namespace named '{name}' (see `ip netns list`)")]
    NoSuchNetns { name: String },
    #[error("invalid network namespace name '{name}'")]
    BadNetnsName { name: String },
    #[error("cannot list network namespaces in {path}: {source}")]
    ListNetns {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("netlink sock_diag {op} failed: {source}")]
    Netlink {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("netlink sock_diag returned a malformed message: {0}")]
    NetlinkParse(#[from] diag::ParseError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    ProcParse {
        path: PathBuf,
        source: procnet::ParseError,
    },
}

/// The inventory's view of a kernel TCP state number (UDP sockets use the same numbers):
/// `None` for states it does not list.
pub fn socket_state(proto: Proto, st: u8) -> Option<SocketState> {
    match (proto, st) {
        (Proto::Tcp, TCP_LISTEN) => Some(SocketState::Listen),
        (Proto::Udp, TCP_CLOSE) => Some(SocketState::Unconnected),
        (Proto::Udp, TCP_ESTABLISHED) => Some(SocketState::Connected),
        _ => None,
    }
}

pub(crate) const TCP_ESTABLISHED: u8 = 1;
pub(crate) const TCP_CLOSE: u8 = 7;
pub(crate) const TCP_LISTEN: u8 = 10;

/// One socket as the kernel reports it, before owners and enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSocket {
    pub protocol: Proto,
    pub family: Family,
    pub state: SocketState,
    pub address: IpAddr,
    pub port: u16,
    /// The peer, for connected sockets.
    pub remote: Option<(IpAddr, u16)>,
    /// `IPV6_V6ONLY`; `None` when the source cannot tell (the `/proc` fallback).
    pub v6only: Option<bool>,
    /// The interface index the socket is bound to (`SO_BINDTODEVICE`), 0 for none.
    pub ifindex: u32,
    /// The interface name, resolved inside the socket's namespace.
    pub interface: Option<Arc<str>>,
    pub uid: u32,
    pub inode: u64,
    /// Read from `/proc/net`, which tells neither `v6only` nor the interface.
    pub from_proc: bool,
}

/// Where socket lists come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketSource {
    /// Netlink `sock_diag`, falling back to `/proc/net` for a table netlink cannot dump.
    #[default]
    Auto,
    /// Netlink only; an error when it is unavailable.
    Netlink,
    /// `/proc/net/{tcp,tcp6,udp,udp6}` only.
    Proc,
}

/// Which network namespaces to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetnsChoice {
    /// The namespace this process runs in.
    #[default]
    Current,
    /// A namespace named by `ip netns` (a file in `/run/netns`).
    Named(String),
    /// Every named namespace plus the namespace of every process.
    All,
}

/// A network namespace to read, with the label its rows carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsInfo {
    /// The `ip netns` name, `host` for the namespace of PID 1, `pid:N` for a process's
    /// namespace otherwise (N is its lowest pid), or `net:[INODE]`.
    pub label: String,
    /// The namespace's inode number (as in `/proc/PID/ns/net`), 0 when unknown.
    pub inode: u64,
    /// The file to `setns` into; `None` for the current namespace.
    pub path: Option<PathBuf>,
}

/// What to read from one namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketQuery {
    pub tcp: bool,
    pub udp: bool,
    pub ipv4: bool,
    pub ipv6: bool,
    /// Include connected UDP sockets.
    pub all: bool,
    pub source: SocketSource,
}

/// The sockets of one namespace and where they came from.
#[derive(Debug, Clone, Default)]
pub struct SocketTable {
    pub sockets: Vec<RawSocket>,
    /// True when any table was read from `/proc/net`.
    pub used_proc: bool,
}

/// The owners of a set of socket inodes, from one walk of `/proc/*/fd`.
#[derive(Debug, Clone, Default)]
pub struct OwnerScan {
    /// Each inode's owners, daemons before systemd (see [`owner_set`]); sockets with the
    /// same owners share one list.
    pub owners: InodeMap<Owners>,
    /// One `(pid, fd)` that holds each inode (only when asked for).
    pub handles: InodeMap<(u32, i32)>,
    /// Processes whose file descriptors could not be read, and why.
    pub unreadable: Vec<(u32, std::io::ErrorKind)>,
}

/// A `Listen*=` line of a systemd `.socket` unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketUnitListen {
    pub unit: String,
    pub protocol: Proto,
    pub address: Option<IpAddr>,
    pub port: u16,
}

/// The operating system as the inventory sees it; [`LiveOs`] is the real one.
pub trait Os {
    /// The namespaces to read.
    fn namespaces(&self, choice: &NetnsChoice) -> Result<Vec<NetnsInfo>, Error>;
    /// The sockets of one namespace.
    fn sockets(&self, ns: &NetnsInfo, query: &SocketQuery) -> Result<SocketTable, Error>;
    /// The processes holding each of `inodes`, and a `(pid, fd)` handle for each when
    /// `handles` is set.
    fn owners(&self, inodes: &InodeSet, handles: bool) -> OwnerScan;
    /// The listening addresses of systemd's `.socket` units.
    fn socket_units(&self) -> Vec<SocketUnitListen>;
    /// The name of user `uid`.
    fn user_name(&self, uid: u32) -> Option<String>;
    /// `IPV6_V6ONLY` and the bound interface of the socket that `pid` holds as `fd`
    /// (used when `/proc/net` could not tell them).
    fn socket_options(&self, pid: u32, fd: i32) -> Option<(Option<bool>, Option<Arc<str>>)>;
}

/// A fast hasher for inode numbers (a multiply, as in rustc's FxHash): the maps keyed by
/// inode see every socket of the host, and SipHash's resistance to flooding is not needed
/// for numbers the kernel hands out.
#[derive(Debug, Default, Clone, Copy)]
pub struct InodeHasher(u64);

impl std::hash::Hasher for InodeHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// A set of socket inodes.
pub type InodeSet = HashSet<u64, std::hash::BuildHasherDefault<InodeHasher>>;
/// A map keyed by socket inode.
pub type InodeMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<InodeHasher>>;

/// What to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// TCP listeners (when neither `tcp` nor `udp` is set, both are listed).
    pub tcp: bool,
    /// UDP sockets.
    pub udp: bool,
    /// IPv4 only / IPv6 only (when neither is set, both).
    pub ipv4: bool,
    pub ipv6: bool,
    /// Only these ports (`None`: every port). A port under a `T:`/`U:` prefix or with a
    /// `/tcp`/`/udp` suffix counts for that protocol only.
    pub ports: Option<PortSpec>,
    /// Only sockets with an owner of this name (process name, executable file name,
    /// systemd unit with or without its suffix) or this pid.
    pub process: Option<String>,
    /// Only sockets reachable from other hosts (not loopback).
    pub exposed: bool,
    /// Also connected UDP sockets.
    pub all: bool,
    pub source: SocketSource,
    pub netns: NetnsChoice,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tcp: false,
            udp: false,
            ipv4: false,
            ipv6: false,
            ports: None,
            process: None,
            exposed: false,
            all: false,
            source: SocketSource::Auto,
            netns: NetnsChoice::Current,
        }
    }
}

/// The result of one inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Sorted by exposure (most exposed first), then protocol, port, address, namespace.
    pub listeners: Vec<Listener>,
    /// Things the user should know (one line each), such as unreadable owners.
    pub warnings: Vec<String>,
    /// True when some table came from `/proc/net` rather than netlink.
    pub used_proc: bool,
}

impl Inventory {
    /// Takes the inventory of the live system, naming services from `registry`.
    pub fn collect(opts: &Options, registry: &Registry) -> Result<Inventory, Error> {
        Self::collect_with(&LiveOs::new(), opts, registry)
    }

    /// Takes the inventory through `os`, naming services from `registry`.
    pub fn collect_with(
        os: &dyn Os,
        opts: &Options,
        registry: &Registry,
    ) -> Result<Inventory, Error> {
        collect::run(os, opts, registry)
    }
}

pub(crate) fn unreadable_warning(
    unknown: usize,
    unreadable: &[(u32, std::io::ErrorKind)],
) -> String {
    let denied = unreadable
        .iter()
        .filter(|(_, k)| *k == std::io::ErrorKind::PermissionDenied)
        .count();
    let why = if denied == unreadable.len() {
        "permission denied; run as root to see them".to_string()
    } else {
        let kind = unreadable
            .iter()
            .find(|(_, k)| *k != std::io::ErrorKind::PermissionDenied)
            .map(|(_, k)| k.to_string())
            .unwrap_or_default();
        kind.to_string()
    };
    format!(
        "owner unknown for {unknown} socket{}: cannot read /proc/PID/fd of {} process{} ({why})",
        if unknown == 1 { "" } else { "s" },
        unreadable.len(),
        if unreadable.len() == 1 { "" } else { "es" },
    )
}

/// The `.socket` unit that declares `proto addr:port`: an exact address first, then a
/// unit that gives only a port or a wildcard address.
pub fn find_socket_unit(
    units: &[SocketUnitListen],
    proto: Proto,
    addr: IpAddr,
    port: u16,
) -> Option<String> {
    let same = |u: &&SocketUnitListen| u.protocol == proto && u.port == port;
    let canon = canonical;
    units
        .iter()
        .filter(same)
        .find(|u| u.address.map(canon) == Some(canon(addr)))
        .or_else(|| {
            units
                .iter()
                .filter(same)
                .find(|u| u.address.is_none_or(|a| a.is_unspecified()))
        })
        .map(|u| u.unit.clone())
}

#[cfg(test)]
mod tests;
