//! The live operating system.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use portolan_registry::Proto;

use crate::diag::{self, DiagSocket};
use crate::{
    Error, Family, InodeSet, NetnsChoice, NetnsInfo, Os, OwnerScan, RawSocket, SocketQuery,
    SocketSource, SocketTable, SocketUnitListen, netns, owners, procnet,
};

/// The real system: netlink, `/proc`, `/run/netns`, `/etc/passwd`, systemd unit files.
#[derive(Debug, Default)]
pub struct LiveOs {
    users: OnceLock<HashMap<u32, String>>,
}

impl LiveOs {
    pub fn new() -> LiveOs {
        LiveOs::default()
    }

    fn users(&self) -> &HashMap<u32, String> {
        self.users.get_or_init(|| {
            std::fs::read_to_string("/etc/passwd")
                .map(|t| owners::parse_passwd(&t))
                .unwrap_or_default()
        })
    }
}

fn proc_path(proto: Proto, family: Family) -> PathBuf {
    let name = match (proto, family) {
        (Proto::Udp, Family::V4) => "udp",
        (Proto::Udp, Family::V6) => "udp6",
        (_, Family::V4) => "tcp",
        (_, Family::V6) => "tcp6",
    };
    // thread-self: the namespace of this thread, which may have entered another one.
    PathBuf::from(format!("/proc/thread-self/net/{name}"))
}

fn read_proc(proto: Proto, family: Family, out: &mut Vec<RawSocket>) -> Result<(), Error> {
    let path = proc_path(proto, family);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        // No IPv6 in this kernel or namespace: no IPv6 sockets.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && family == Family::V6 => {
            return Ok(());
        }
        Err(source) => return Err(Error::Read { path, source }),
    };
    procnet::read(
        BufReader::with_capacity(64 * 1024, file),
        &path,
        proto,
        family,
        out,
    )
}

/// Reads the sockets of the calling thread's namespace.
pub fn read_sockets(q: &SocketQuery) -> Result<SocketTable, Error> {
    let mut table = SocketTable::default();
    let mut wanted = Vec::new();
    for (on, proto) in [(q.tcp, Proto::Tcp), (q.udp, Proto::Udp)] {
        for (fon, family) in [(q.ipv4, Family::V4), (q.ipv6, Family::V6)] {
            if on && fon {
                wanted.push((proto, family));
            }
        }
    }
    let mut sock = match q.source {
        SocketSource::Proc => None,
        SocketSource::Netlink => Some(DiagSocket::open().map_err(|source| Error::Netlink {
            op: "socket",
            source,
        })?),
        SocketSource::Auto => DiagSocket::open().ok(),
    };
    for (proto, family) in wanted {
        let Some(s) = sock.as_mut() else {
            read_proc(proto, family, &mut table.sockets)?;
            table.used_proc = true;
            continue;
        };
        let before = table.sockets.len();
        match s.dump(
            proto,
            family,
            diag::states_for(proto, q.all),
            &mut table.sockets,
        ) {
            Ok(()) => {}
            // IPv6 disabled: nothing to list.
            Err(Error::Netlink { source, .. })
                if family == Family::V6 && source.raw_os_error() == Some(libc::EAFNOSUPPORT) => {}
            Err(e) if q.source == SocketSource::Auto => {
                // This table cannot be dumped (udp_diag not loaded, say): use /proc.
                let _ = e;
                table.sockets.truncate(before);
                read_proc(proto, family, &mut table.sockets)?;
                table.used_proc = true;
            }
            Err(e) => return Err(e),
        }
    }
    let mut names: HashMap<u32, Option<Arc<str>>> = HashMap::new();
    for s in table.sockets.iter_mut().filter(|s| s.ifindex != 0) {
        s.interface = names
            .entry(s.ifindex)
            .or_insert_with(|| netns::ifname(s.ifindex).map(Into::into))
            .clone();
    }
    Ok(table)
}

impl Os for LiveOs {
    fn namespaces(&self, choice: &NetnsChoice) -> Result<Vec<NetnsInfo>, Error> {
        netns::resolve(choice)
    }

    fn sockets(&self, ns: &NetnsInfo, query: &SocketQuery) -> Result<SocketTable, Error> {
        netns::run_in(ns.path.as_deref(), ns.inode, || read_sockets(query))
    }

    fn owners(&self, inodes: &InodeSet, handles: bool) -> OwnerScan {
        owners::scan(inodes, handles, &|uid| self.user_name(uid))
    }

    fn socket_units(&self) -> Vec<SocketUnitListen> {
        owners::read_socket_units()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.users().get(&uid).cloned()
    }

    fn socket_options(&self, pid: u32, fd: i32) -> Option<(Option<bool>, Option<Arc<str>>)> {
        owners::socket_options(pid, fd)
    }
}
