//! One inventory, job by job: choose what to read, read each namespace's sockets, find
//! their owners, enrich them into listeners, sort.

use std::borrow::Cow;
use std::sync::Arc;

use portolan_registry::{Category, PortRange, Proto, Registry};

use crate::{
    Error, Exposure, Family, InodeMap, InodeSet, Inventory, Listener, NetnsInfo, Options, Os,
    OwnerScan, Owners, RawSocket, SocketQuery, SocketState, SocketUnitListen, find_socket_unit,
    fmt_endpoint, unreadable_warning,
};

pub(crate) fn run(os: &dyn Os, opts: &Options, registry: &Registry) -> Result<Inventory, Error> {
    let filter = Filter::new(opts);
    let namespaces = os.namespaces(&opts.netns)?;
    let read = read_sockets(os, &namespaces, &filter)?;
    let mut warnings = read.warnings;
    let scan = find_owners(os, &read.tables);
    let mut enrich = Enrich::new(os, registry, &scan);
    let mut listeners = enrich.listeners(read.tables, &namespaces, opts);
    if enrich.unknown > 0 {
        warnings.push(unreadable_warning(enrich.unknown, &scan.unreadable));
    }
    sort(&mut listeners);
    Ok(Inventory {
        listeners,
        warnings,
        used_proc: read.used_proc,
    })
}

/// The filters that need no owners, applied as sockets are read.
struct Filter {
    query: SocketQuery,
    /// The port ranges for TCP and UDP; `None` for every port.
    tcp_ports: Option<Vec<PortRange>>,
    udp_ports: Option<Vec<PortRange>>,
    exposed: bool,
}

impl Filter {
    fn new(opts: &Options) -> Filter {
        let both_protos = !opts.tcp && !opts.udp;
        let both_families = !opts.ipv4 && !opts.ipv6;
        let ranges = |p| opts.ports.as_ref().map(|s| s.ranges(p));
        let tcp_ports = ranges(Proto::Tcp);
        let udp_ports = ranges(Proto::Udp);
        // A spec that names no port of a protocol (`-p U:53`) reads none of its sockets.
        let wanted = |r: &Option<Vec<PortRange>>| r.as_ref().is_none_or(|r| !r.is_empty());
        Filter {
            query: SocketQuery {
                tcp: (opts.tcp || both_protos) && wanted(&tcp_ports),
                udp: (opts.udp || both_protos) && wanted(&udp_ports),
                ipv4: opts.ipv4 || both_families,
                ipv6: opts.ipv6 || both_families,
                all: opts.all,
                source: opts.source,
            },
            tcp_ports,
            udp_ports,
            exposed: opts.exposed,
        }
    }

    fn keep(&self, s: &RawSocket) -> bool {
        let q = &self.query;
        let (proto, ports) = match s.protocol {
            Proto::Tcp => (q.tcp, &self.tcp_ports),
            Proto::Udp => (q.udp, &self.udp_ports),
            _ => (false, &None),
        };
        let family = match s.family {
            Family::V4 => q.ipv4,
            Family::V6 => q.ipv6,
        };
        proto
            && family
            && (q.all || s.state != SocketState::Connected)
            && ports
                .as_ref()
                .is_none_or(|r| r.iter().any(|r| r.contains(s.port)))
            && (!self.exposed
                || Exposure::of(s.address, s.interface.as_deref()) != Exposure::Loopback)
    }
}

/// The sockets of every namespace, filtered, one table per namespace.
struct Read {
    tables: Vec<Vec<RawSocket>>,
    warnings: Vec<String>,
    used_proc: bool,
}

fn read_sockets(os: &dyn Os, namespaces: &[NetnsInfo], filter: &Filter) -> Result<Read, Error> {
    let many = namespaces.len() > 1;
    let mut tables = Vec::with_capacity(namespaces.len());
    let mut skipped: Vec<(&str, Error)> = Vec::new();
    let mut used_proc = false;
    for ns in namespaces {
        let mut sockets = match os.sockets(ns, &filter.query) {
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
                    skipped.push((&ns.label, e));
                }
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        sockets.retain(|s| filter.keep(s));
        tables.push(sockets);
    }
    // One line for all the namespaces that could not be read (without root, that is
    // every one but the current).
    let mut warnings = Vec::new();
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
    Ok(Read {
        tables,
        warnings,
        used_proc,
    })
}

/// One walk of the processes for the owners of every socket read.
fn find_owners(os: &dyn Os, tables: &[Vec<RawSocket>]) -> OwnerScan {
    let inodes: InodeSet = tables
        .iter()
        .flatten()
        .map(|s| s.inode)
        .filter(|&i| i != 0)
        .collect();
    if inodes.is_empty() {
        return OwnerScan::default();
    }
    let handles = tables.iter().flatten().any(|s| s.from_proc);
    os.owners(&inodes, handles)
}

/// Turns raw sockets into listeners: options the `/proc` tables lack, exposure, owners,
/// socket units, user and service names.
struct Enrich<'a> {
    os: &'a dyn Os,
    registry: &'a Registry,
    scan: &'a OwnerScan,
    /// Read on the first socket-activated listener.
    units: Option<Vec<SocketUnitListen>>,
    /// User names by uid (keyed as u64 for the fast hasher).
    users: InodeMap<Option<Arc<str>>>,
    no_owners: Owners,
    /// Sockets whose owner is unknown because some process could not be read.
    unknown: usize,
}

impl<'a> Enrich<'a> {
    fn new(os: &'a dyn Os, registry: &'a Registry, scan: &'a OwnerScan) -> Enrich<'a> {
        Enrich {
            os,
            registry,
            scan,
            units: None,
            users: InodeMap::default(),
            no_owners: Arc::new([]),
            unknown: 0,
        }
    }

    fn listeners(
        &mut self,
        mut tables: Vec<Vec<RawSocket>>,
        namespaces: &[NetnsInfo],
        opts: &Options,
    ) -> Vec<Listener> {
        let total = tables.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(total);
        // Service names by protocol and port: the registry is asked once per port.
        let mut names: InodeMap<Option<Cow<'static, str>>> = InodeMap::default();
        for (table, ns) in tables.iter_mut().zip(namespaces) {
            let label: Arc<str> = ns.label.as_str().into();
            // Taken from the end, and the table shrunk as it empties, so the raw sockets
            // and the listeners are not both held whole (large hosts stay small).
            let mut taken = 0usize;
            while let Some(s) = table.pop() {
                taken += 1;
                if taken % 16384 == 0 {
                    table.shrink_to_fit();
                }
                let Some(mut l) = self.listener(s, &label, ns.inode, opts) else {
                    continue;
                };
                l.service = names
                    .entry((proto_key(l.protocol) << 16) | u64::from(l.port))
                    .or_insert_with(|| service_name(self.registry, l.port, l.protocol))
                    .clone();
                out.push(l);
            }
            *table = Vec::new();
        }
        out
    }

    /// One listener, or `None` when a filter that needs owners or options drops it.
    fn listener(
        &mut self,
        mut s: RawSocket,
        netns: &Arc<str>,
        netns_inode: u64,
        opts: &Options,
    ) -> Option<Listener> {
        if s.from_proc {
            if let Some((v6only, iface)) = self
                .scan
                .handles
                .get(&s.inode)
                .and_then(|&(pid, fd)| self.os.socket_options(pid, fd))
            {
                if s.family == Family::V6 {
                    s.v6only = v6only;
                }
                s.interface = iface;
            }
        }
        let exposure = Exposure::of(s.address, s.interface.as_deref());
        if opts.exposed && exposure == Exposure::Loopback {
            return None;
        }
        let processes = self.scan.owners.get(&s.inode).unwrap_or(&self.no_owners);
        if let Some(want) = &opts.process {
            if !processes.iter().any(|o| o.matches(want)) {
                return None;
            }
        }
        let owner_unknown = processes.is_empty() && !self.scan.unreadable.is_empty();
        self.unknown += usize::from(owner_unknown);
        let socket_activated = processes.iter().any(|o| o.is_systemd());
        let socket_unit = if socket_activated {
            let os = self.os;
            let units = self.units.get_or_insert_with(|| os.socket_units());
            find_socket_unit(units, s.protocol, s.address, s.port).map(Into::into)
        } else {
            None
        };
        let os = self.os;
        let user = self
            .users
            .entry(u64::from(s.uid))
            .or_insert_with(|| os.user_name(s.uid).map(Into::into))
            .clone();
        Some(Listener {
            protocol: s.protocol,
            family: s.family,
            address: s.address,
            port: s.port,
            v6only: match s.family {
                Family::V4 => Some(false),
                Family::V6 => s.v6only,
            },
            exposure,
            service: None,
            category: Category::of(s.port),
            state: s.state,
            remote: s.remote.map(|(a, p)| fmt_endpoint(a, p)),
            interface: s.interface,
            netns: Arc::clone(netns),
            netns_inode,
            inode: s.inode,
            uid: s.uid,
            user,
            socket_activated,
            socket_unit,
            owner_unknown,
            processes: Arc::clone(processes),
        })
    }
}

fn proto_key(p: Proto) -> u64 {
    match p {
        Proto::Tcp => 0,
        Proto::Udp => 1,
        Proto::Sctp => 2,
        Proto::Dccp => 3,
    }
}

/// The registry's name for a port. Without a services file the names are IANA's, which
/// live as long as the program and are borrowed, not copied, into every row.
fn service_name(registry: &Registry, port: u16, proto: Proto) -> Option<Cow<'static, str>> {
    if registry.services_file().is_none() {
        return Registry::embedded()
            .name_for(port, proto)
            .map(Cow::Borrowed);
    }
    registry
        .name_for(port, proto)
        .map(|n| Cow::Owned(n.to_string()))
}

/// In [`Listener::list_order`]. Unstable: no extra buffer, and the keys end with the
/// unique inode.
fn sort(listeners: &mut [Listener]) {
    listeners.sort_unstable_by(Listener::list_order);
}
