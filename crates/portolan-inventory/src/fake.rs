//! A fake [`Os`] made of plain data, for tests of code that uses the inventory (rendering,
//! audit) without root or a kernel.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::sync::Arc;

use portolan_registry::Proto;

use crate::{
    Error, Family, InodeSet, NetnsChoice, NetnsInfo, Os, OwnerScan, Process, RawSocket,
    SocketQuery, SocketState, SocketTable, SocketUnitListen, owner_set,
};

/// A system described by data: namespaces, their sockets, owners, units and users.
#[derive(Debug, Clone, Default)]
pub struct FakeOs {
    /// The first one is the current namespace.
    pub namespaces: Vec<NetnsInfo>,
    /// Sockets by namespace label.
    pub sockets: HashMap<String, Vec<RawSocket>>,
    pub owners: HashMap<u64, Vec<Arc<Process>>>,
    pub unreadable: Vec<(u32, ErrorKind)>,
    pub units: Vec<SocketUnitListen>,
    pub users: HashMap<u32, String>,
    /// `(v6only, interface)` by inode, for sockets marked `from_proc`.
    pub options: HashMap<u64, (Option<bool>, Option<Arc<str>>)>,
}

impl FakeOs {
    /// An empty system with one namespace, `host`.
    pub fn new() -> FakeOs {
        FakeOs {
            namespaces: vec![NetnsInfo {
                label: "host".into(),
                inode: 4026531840,
                path: None,
            }],
            users: HashMap::from([(0, "root".to_string())]),
            ..FakeOs::default()
        }
    }

    /// Adds a namespace that `--netns` and `--all-netns` find.
    pub fn add_namespace(&mut self, label: &str, inode: u64) {
        self.namespaces.push(NetnsInfo {
            label: label.into(),
            inode,
            path: Some(format!("/run/netns/{label}").into()),
        });
    }

    /// Adds a socket in namespace `ns`, held by `owners`; returns its inode.
    pub fn add(&mut self, ns: &str, socket: RawSocket, owners: &[&Arc<Process>]) -> u64 {
        let inode = socket.inode;
        self.sockets.entry(ns.to_string()).or_default().push(socket);
        if !owners.is_empty() {
            self.owners
                .insert(inode, owners.iter().map(|o| Arc::clone(o)).collect());
        }
        inode
    }

    /// A host with the usual mix: sshd dual-stack, nginx with workers, a stub resolver on
    /// loopback, a socket-activated service, a database on one address, a socket whose
    /// owner is unreadable and one held by the kernel.
    pub fn sample() -> FakeOs {
        let mut os = FakeOs::new();
        os.users.insert(33, "www-data".into());
        os.users.insert(101, "systemd-resolve".into());
        os.users.insert(112, "postgres".into());
        let sshd = owner(
            812,
            "sshd",
            "/usr/sbin/sshd",
            "sshd: /usr/sbin/sshd -D",
            0,
            "root",
            Some("ssh.service"),
        );
        let nginx0 = owner(
            900,
            "nginx",
            "/usr/sbin/nginx",
            "nginx: master process /usr/sbin/nginx",
            0,
            "root",
            Some("nginx.service"),
        );
        let nginx1 = owner(
            901,
            "nginx",
            "/usr/sbin/nginx",
            "nginx: worker process",
            33,
            "www-data",
            Some("nginx.service"),
        );
        let resolved = owner(
            540,
            "systemd-resolve",
            "/usr/lib/systemd/systemd-resolved",
            "/usr/lib/systemd/systemd-resolved",
            101,
            "systemd-resolve",
            Some("systemd-resolved.service"),
        );
        let systemd = owner(
            1,
            "systemd",
            "/usr/lib/systemd/systemd",
            "/sbin/init",
            0,
            "root",
            Some("init.scope"),
        );
        let postgres = owner(
            1200,
            "postgres",
            "/usr/lib/postgresql/16/bin/postgres",
            "/usr/lib/postgresql/16/bin/postgres -D /var/lib/postgresql/16/main",
            112,
            "postgres",
            Some("postgresql@16-main.service"),
        );
        let cups = owner(
            700,
            "cupsd",
            "/usr/sbin/cupsd",
            "/usr/sbin/cupsd -l",
            0,
            "root",
            Some("cups.service"),
        );
        os.add(
            "host",
            sock(Proto::Tcp, "::", 22, Some(false), 0, 1001),
            &[&sshd],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "0.0.0.0", 80, None, 0, 1002),
            &[&nginx0, &nginx1],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "0.0.0.0", 443, None, 0, 1003),
            &[&nginx0, &nginx1],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "::", 9090, Some(false), 0, 1004),
            &[&systemd],
        );
        os.add("host", sock(Proto::Udp, "0.0.0.0", 68, None, 0, 1005), &[]);
        os.add(
            "host",
            sock(Proto::Tcp, "198.18.0.2", 5432, None, 112, 1006),
            &[&postgres],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "127.0.0.53", 53, None, 101, 1007),
            &[&resolved],
        );
        os.add(
            "host",
            sock(Proto::Udp, "127.0.0.53", 53, None, 101, 1008),
            &[&resolved],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "127.0.0.1", 631, None, 0, 1009),
            &[&cups],
        );
        os.add(
            "host",
            sock(Proto::Tcp, "::1", 631, Some(true), 0, 1010),
            &[&cups],
        );
        os.add(
            "host",
            sock(Proto::Udp, "::", 5353, Some(true), 1000, 1011),
            &[],
        );
        os.unreadable.push((4242, ErrorKind::PermissionDenied));
        os.units.push(SocketUnitListen {
            unit: "cockpit.socket".into(),
            protocol: Proto::Tcp,
            address: None,
            port: 9090,
        });
        os
    }
}

/// An owner for fake data.
pub fn owner(
    pid: u32,
    name: &str,
    exe: &str,
    cmdline: &str,
    uid: u32,
    user: &str,
    unit: Option<&str>,
) -> Arc<Process> {
    Arc::new(Process {
        pid,
        name: name.into(),
        exe: Some(exe.into()),
        cmdline: cmdline.into(),
        uid: Some(uid),
        user: Some(user.into()),
        unit: unit.map(Into::into),
        cgroup: unit.map(|u| match u {
            "init.scope" => "/init.scope".to_string(),
            u => format!("/system.slice/{u}"),
        }),
        container: None,
    })
}

/// A listening socket (TCP) or unconnected socket (UDP) for fake data; `addr` must parse.
pub fn sock(
    protocol: Proto,
    addr: &str,
    port: u16,
    v6only: Option<bool>,
    uid: u32,
    inode: u64,
) -> RawSocket {
    let address: IpAddr = addr.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let family = if address.is_ipv4() {
        Family::V4
    } else {
        Family::V6
    };
    RawSocket {
        protocol,
        family,
        state: if protocol == Proto::Udp {
            SocketState::Unconnected
        } else {
            SocketState::Listen
        },
        address,
        port,
        remote: None,
        v6only: if family == Family::V4 {
            Some(false)
        } else {
            v6only
        },
        ifindex: 0,
        interface: None,
        uid,
        inode,
        from_proc: false,
    }
}

impl Os for FakeOs {
    fn namespaces(&self, choice: &NetnsChoice) -> Result<Vec<NetnsInfo>, Error> {
        match choice {
            NetnsChoice::Current => Ok(self.namespaces.iter().take(1).cloned().collect()),
            NetnsChoice::Named(name) => self
                .namespaces
                .iter()
                .find(|n| &n.label == name)
                .map(|n| vec![n.clone()])
                .ok_or_else(|| Error::NoSuchNetns { name: name.clone() }),
            NetnsChoice::All => Ok(self.namespaces.clone()),
        }
    }

    fn sockets(&self, ns: &NetnsInfo, _query: &SocketQuery) -> Result<SocketTable, Error> {
        Ok(SocketTable {
            sockets: self.sockets.get(&ns.label).cloned().unwrap_or_default(),
            used_proc: false,
        })
    }

    fn owners(&self, inodes: &InodeSet, handles: bool) -> OwnerScan {
        OwnerScan {
            owners: self
                .owners
                .iter()
                .filter(|(i, _)| inodes.contains(i))
                .map(|(i, o)| (*i, owner_set(o.clone())))
                .collect(),
            handles: self
                .owners
                .iter()
                .filter(|_| handles)
                .filter_map(|(i, o)| Some((*i, (o.first()?.pid, *i as i32))))
                .collect(),
            unreadable: self.unreadable.clone(),
        }
    }

    fn socket_units(&self) -> Vec<SocketUnitListen> {
        self.units.clone()
    }

    fn user_name(&self, uid: u32) -> Option<String> {
        self.users.get(&uid).cloned()
    }

    /// The fake's handles use the inode as the fd number.
    fn socket_options(&self, _pid: u32, fd: i32) -> Option<(Option<bool>, Option<Arc<str>>)> {
        self.options.get(&(fd as u64)).cloned()
    }
}
