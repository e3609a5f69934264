//! Every listening socket of a host, who owns it and how exposed it is.
//!
//! Sockets come from the kernel's netlink `sock_diag` interface (one dump per protocol
//! and family), or from `/proc/net/{tcp,tcp6,udp,udp6}` when netlink is unavailable or
//! [`Source::Proc`] asks for it. Owners come from one walk of `/proc/*/fd`. Network
//! namespaces are read by entering them on a short-lived thread.
//!
//! The operating system sits behind the [`Os`] trait: [`Inventory::collect`] uses the live
//! system, [`Inventory::collect_with`] any other (tests use plain data).
//!
//! ```no_run
//! use portolan_inventory::{Inventory, Options};
//! let inv = Inventory::collect(&Options::default()).unwrap();
//! for l in &inv.listeners {
//!     println!("{} {}:{} {:?}", l.protocol, l.address, l.port, l.exposure);
//! }
//! ```

pub mod diag;
pub mod fake;
mod live;
pub mod netns;
pub mod owners;
pub mod procnet;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;

use portolan_registry::{Category, PortRange, Proto};
use serde::Serialize;

pub use live::LiveOs;
pub use owners::Owner;

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

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

/// The kernel state of a socket, as far as the inventory cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// A TCP socket accepting connections.
    Listen,
    /// A bound, unconnected UDP socket (it receives from anyone).
    Unconnected,
    /// A connected UDP socket (listed only with `all`).
    Connected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Listen => "listen",
            State::Unconnected => "unconnected",
            State::Connected => "connected",
        }
    }

    /// Maps a kernel TCP state number (shared by UDP sockets) to the inventory's view.
    pub fn from_kernel(proto: Proto, st: u8) -> Option<State> {
        match (proto, st) {
            (Proto::Tcp, TCP_LISTEN) => Some(State::Listen),
            (Proto::Udp, TCP_CLOSE) => Some(State::Unconnected),
            (Proto::Udp, TCP_ESTABLISHED) => Some(State::Connected),
            _ => None,
        }
    }
}

pub(crate) const TCP_ESTABLISHED: u8 = 1;
pub(crate) const TCP_CLOSE: u8 = 7;
pub(crate) const TCP_LISTEN: u8 = 10;

/// How far a listener can be reached, ordered by risk (`All` is the greatest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Exposure {
    /// Only from this host (127.0.0.0/8, ::1, or bound to `lo`).
    Loopback,
    /// On one address that is not loopback.
    Address,
    /// On every address: 0.0.0.0, ::, or a dual-stack `[::]`.
    All,
}

impl Exposure {
    pub fn as_str(self) -> &'static str {
        match self {
            Exposure::Loopback => "loopback",
            Exposure::Address => "address",
            Exposure::All => "all",
        }
    }

    /// The exposure of a socket bound to `addr` (and, if set, to `interface`).
    pub fn of(addr: IpAddr, interface: Option<&str>) -> Exposure {
        if interface == Some("lo") {
            return Exposure::Loopback;
        }
        let addr = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            v4 => v4,
        };
        if addr.is_unspecified() {
            Exposure::All
        } else if addr.is_loopback() {
            Exposure::Loopback
        } else {
            Exposure::Address
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One socket as the kernel reports it, before owners and enrichment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSocket {
    pub protocol: Proto,
    pub family: Family,
    pub state: State,
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
pub enum Source {
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
    pub source: Source,
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
    /// The service name for a port: the live system's comes from `/etc/services` merged
    /// with IANA's registry (as `portolan_registry::Registry::system`).
    fn service_name(&self, port: u16, proto: Proto) -> Option<&'static str>;
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

/// The owners of one socket, shared by every socket with the same owners.
pub type Owners = Arc<[Arc<Owner>]>;

/// An owner list in the inventory's order: daemons before the systemd that passed them
/// the socket, then by pid.
pub fn owner_set(mut owners: Vec<Arc<Owner>>) -> Owners {
    owners.sort_by_key(|o| (o.is_systemd(), o.pid));
    owners.dedup_by_key(|o| o.pid);
    owners.into()
}

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
    /// Only these ports (empty: every port).
    pub ports: Vec<PortRange>,
    /// Only sockets with an owner of this name (process name, executable file name,
    /// systemd unit with or without its suffix) or this pid.
    pub process: Option<String>,
    /// Only sockets reachable from other hosts (not loopback).
    pub exposed: bool,
    /// Also connected UDP sockets.
    pub all: bool,
    pub source: Source,
    pub netns: NetnsChoice,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tcp: false,
            udp: false,
            ipv4: false,
            ipv6: false,
            ports: Vec::new(),
            process: None,
            exposed: false,
            all: false,
            source: Source::Auto,
            netns: NetnsChoice::Current,
        }
    }
}

/// One listening socket, with its owners and enrichment. Field names are the JSON names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub protocol: Proto,
    pub family: Family,
    pub address: IpAddr,
    pub port: u16,
    /// `IPV6_V6ONLY`: false on IPv4 sockets; `None` when it could not be read.
    pub v6only: Option<bool>,
    pub exposure: Exposure,
    /// The service name for the port and protocol (`/etc/services`, then IANA).
    pub service: Option<&'static str>,
    pub category: Category,
    pub state: State,
    /// The peer of a connected UDP socket (only with `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The interface the socket is bound to (`SO_BINDTODEVICE`).
    pub interface: Option<Arc<str>>,
    /// The namespace label (see [`NetnsInfo::label`]).
    pub netns: Arc<str>,
    pub netns_inode: u64,
    pub inode: u64,
    /// The socket's owner uid as the kernel records it, and its name.
    pub uid: u32,
    pub user: Option<Arc<str>>,
    /// Held by systemd (PID 1 or a `systemd` user manager): socket activation.
    pub socket_activated: bool,
    /// The `.socket` unit that declares this listener, when it could be found.
    pub socket_unit: Option<Arc<str>>,
    /// True when no owner was found and some processes' descriptors were unreadable.
    pub owner_unknown: bool,
    pub processes: Owners,
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
    /// Takes the inventory of the live system.
    pub fn collect(opts: &Options) -> Result<Inventory, Error> {
        Self::collect_with(&LiveOs::new(), opts)
    }

    /// Takes the inventory through `os`.
    pub fn collect_with(os: &dyn Os, opts: &Options) -> Result<Inventory, Error> {
        let both_protos = !opts.tcp && !opts.udp;
        let both_families = !opts.ipv4 && !opts.ipv6;
        let query = SocketQuery {
            tcp: opts.tcp || both_protos,
            udp: opts.udp || both_protos,
            ipv4: opts.ipv4 || both_families,
            ipv6: opts.ipv6 || both_families,
            all: opts.all,
            source: opts.source,
        };
        let namespaces = os.namespaces(&opts.netns)?;
        let many = namespaces.len() > 1;
        let mut tables: Vec<Vec<RawSocket>> = Vec::with_capacity(namespaces.len());
        let mut warnings = Vec::new();
        let mut skipped: Vec<(String, Error)> = Vec::new();
        let mut used_proc = false;
        for ns in &namespaces {
            let mut sockets = match os.sockets(ns, &query) {
                Ok(t) => {
                    used_proc |= t.used_proc;
                    t.sockets
                }
                // With many namespaces, one that vanished (its last process exited) or
                // cannot be entered is skipped; a single one is an error.
                Err(e) if many && ns.path.is_some() => {
                    if !matches!(&e, Error::OpenNetns { source, .. }
                        if source.kind() == std::io::ErrorKind::NotFound)
                    {
                        skipped.push((ns.label.clone(), e));
                    }
                    Vec::new()
                }
                Err(e) => return Err(e),
            };
            sockets.retain(|s| keep_socket(s, &query, opts));
            tables.push(sockets);
        }
        // One line for all the namespaces that could not be read (without root, that is
        // every one but the current).
        if let Some((label, e)) = skipped.first() {
            warnings.push(if skipped.len() == 1 {
                format!("skipped namespace {label}: {e}")
            } else {
                format!(
                    "skipped {} namespaces ({label} and others): {e}",
                    skipped.len()
                )
            });
        }
        let inodes: InodeSet = tables
            .iter()
            .flatten()
            .map(|s| s.inode)
            .filter(|&i| i != 0)
            .collect();
        let handles = tables.iter().flatten().any(|s| s.from_proc);
        let scan = if inodes.is_empty() {
            OwnerScan::default()
        } else {
            os.owners(&inodes, handles)
        };
        drop(inodes);
        let mut units: Option<Vec<SocketUnitListen>> = None;
        let mut users: HashMap<u32, Option<Arc<str>>> = HashMap::new();
        let no_owners: Owners = Arc::new([]);
        let mut unknown = 0usize;
        let total = tables.iter().map(Vec::len).sum();
        let mut listeners = Vec::with_capacity(total);
        for (i, table) in tables.iter_mut().enumerate() {
            let label: Arc<str> = namespaces[i].label.as_str().into();
            let ns_inode = namespaces[i].inode;
            // Taken from the end, and the table shrunk as it empties, so the raw sockets
            // and the listeners are not both held whole (large hosts stay small).
            let mut taken = 0usize;
            while let Some(mut s) = table.pop() {
                taken += 1;
                if taken % 16384 == 0 {
                    table.shrink_to_fit();
                }
                if s.from_proc {
                    if let Some((v6only, iface)) = scan
                        .handles
                        .get(&s.inode)
                        .and_then(|&(pid, fd)| os.socket_options(pid, fd))
                    {
                        if s.family == Family::V6 {
                            s.v6only = v6only;
                        }
                        s.interface = iface;
                    }
                }
                let exposure = Exposure::of(s.address, s.interface.as_deref());
                if opts.exposed && exposure == Exposure::Loopback {
                    continue;
                }
                let processes = scan.owners.get(&s.inode).unwrap_or(&no_owners);
                if let Some(want) = &opts.process {
                    if !processes.iter().any(|o| o.matches(want)) {
                        continue;
                    }
                }
                let owner_unknown = processes.is_empty() && !scan.unreadable.is_empty();
                unknown += usize::from(owner_unknown);
                let socket_activated = processes.iter().any(|o| o.is_systemd());
                let socket_unit = if socket_activated {
                    let units = units.get_or_insert_with(|| os.socket_units());
                    find_socket_unit(units, s.protocol, s.address, s.port).map(Into::into)
                } else {
                    None
                };
                let user = users
                    .entry(s.uid)
                    .or_insert_with(|| os.user_name(s.uid).map(Into::into))
                    .clone();
                listeners.push(Listener {
                    protocol: s.protocol,
                    family: s.family,
                    address: s.address,
                    port: s.port,
                    v6only: match s.family {
                        Family::V4 => Some(false),
                        Family::V6 => s.v6only,
                    },
                    exposure,
                    service: os.service_name(s.port, s.protocol),
                    category: Category::of(s.port),
                    state: s.state,
                    remote: s.remote.map(|(a, p)| fmt_endpoint(a, p)),
                    interface: s.interface,
                    netns: Arc::clone(&label),
                    netns_inode: ns_inode,
                    inode: s.inode,
                    uid: s.uid,
                    user,
                    socket_activated,
                    socket_unit,
                    owner_unknown,
                    processes: Arc::clone(processes),
                });
            }
            *table = Vec::new();
        }
        if unknown > 0 {
            warnings.push(unreadable_warning(unknown, &scan.unreadable));
        }
        // Unstable sort: no extra buffer, and the keys end with the unique inode.
        listeners.sort_unstable_by(|a, b| {
            b.exposure
                .cmp(&a.exposure)
                .then(a.protocol.cmp(&b.protocol))
                .then(a.port.cmp(&b.port))
                .then(a.address.cmp(&b.address))
                .then(a.netns.cmp(&b.netns))
                .then(a.inode.cmp(&b.inode))
        });
        Ok(Inventory {
            listeners,
            warnings,
            used_proc,
        })
    }
}

/// The filters that need no owners, applied before the `/proc` walk.
fn keep_socket(s: &RawSocket, q: &SocketQuery, opts: &Options) -> bool {
    let proto = match s.protocol {
        Proto::Tcp => q.tcp,
        Proto::Udp => q.udp,
        _ => false,
    };
    let family = match s.family {
        Family::V4 => q.ipv4,
        Family::V6 => q.ipv6,
    };
    proto
        && family
        && (q.all || s.state != State::Connected)
        && (opts.ports.is_empty() || opts.ports.iter().any(|r| r.contains(s.port)))
        && (!opts.exposed || Exposure::of(s.address, s.interface.as_deref()) != Exposure::Loopback)
}

fn unreadable_warning(unknown: usize, unreadable: &[(u32, std::io::ErrorKind)]) -> String {
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

/// `addr:port`, with IPv6 addresses in brackets.
pub fn fmt_endpoint(addr: IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
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
    let canon = |a: IpAddr| match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    };
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

/// The unspecified address of a family.
pub fn any_addr(family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Family::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests;
