#![allow(dead_code)]

use portolan_model::{Listener, Process, Proto, Snapshot};
use portolan_store::Store;

/// A new history database in a temporary directory (removed when the directory is
/// dropped).
pub fn new_store() -> (tempfile::TempDir, Store) {
    let t = tempfile::tempdir().unwrap();
    let store = Store::open(t.path().join("h.db")).unwrap();
    (t, store)
}

pub fn proc_(pid: u32, name: &str) -> Process {
    let mut p = Process::new(pid, name);
    p.exe = Some(format!("/usr/sbin/{name}"));
    p.unit = Some(format!("{name}.service"));
    p.user = Some("root".into());
    p.cmdline = format!("/usr/sbin/{name} -D");
    p
}

pub fn listener(port: u16, pid: u32, name: &str) -> Listener {
    let mut l =
        Listener::new(Proto::Tcp, "0.0.0.0".parse().unwrap(), port).with_process(proc_(pid, name));
    l.inode = u64::from(port) * 10 + u64::from(pid);
    l.user = Some("root".into());
    l
}

pub fn snap(minute: u32, ls: Vec<Listener>) -> Snapshot {
    let mut s = Snapshot::default();
    s.run.started = format!("2026-12-01T{:02}:{:02}:00Z", minute / 60 % 24, minute % 60);
    s.run.host = "web1".into();
    s.run.command = "portolan record".into();
    s.run.version = "0.1.0".into();
    s.listeners = ls;
    s
}

/// `n` listeners on ports 1000.. owned by one daemon each.
pub fn many(n: u16) -> Vec<Listener> {
    (0..n)
        .map(|i| listener(1000 + i, 5000 + u32::from(i), "daemon"))
        .collect()
}
