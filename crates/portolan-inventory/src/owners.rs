//! Who holds a socket: one walk of `/proc/*/fd`, the details of each owning process,
//! user names from `/etc/passwd`, systemd units from `/proc/PID/cgroup` and `.socket`
//! unit files.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use crate::{InodeMap, InodeSet, OwnerScan, Owners, Process, SocketUnitListen, owner_set};
use portolan_registry::Proto;

/// Parses `/etc/passwd` into uid -> name; the first entry for a uid wins, malformed lines
/// are skipped.
pub fn parse_passwd(text: &str) -> HashMap<u32, String> {
    let mut users = HashMap::new();
    for line in text.lines() {
        let mut f = line.split(':');
        let (Some(name), Some(_pw), Some(uid)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(['#', '+', '-']) {
            continue;
        }
        if let Ok(uid) = uid.parse::<u32>() {
            users.entry(uid).or_insert_with(|| name.to_string());
        }
    }
    users
}

const UNIT_SUFFIXES: [&str; 5] = [".service", ".scope", ".socket", ".mount", ".swap"];

/// The systemd unit in a `/proc/PID/cgroup` text: the innermost path component that
/// names a unit, from the unified (`0::`) line or the `name=systemd` line.
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    crate::cgroup::path(text)?
        .split('/')
        .rev()
        .find(|c| {
            UNIT_SUFFIXES
                .iter()
                .any(|s| c.len() > s.len() && c.ends_with(s))
        })
        .map(str::to_string)
}

/// The `ListenStream=` (TCP) and `ListenDatagram=` (UDP) addresses of a `.socket` unit.
/// Unix sockets and other families are skipped; an empty assignment resets the list, as
/// systemd does.
pub fn parse_socket_unit(unit: &str, text: &str) -> Vec<SocketUnitListen> {
    let mut out = Vec::new();
    let mut in_socket = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with(['#', ';']) || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_socket = line == "[Socket]";
            continue;
        }
        if !in_socket {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let protocol = match key.trim() {
            "ListenStream" => Proto::Tcp,
            "ListenDatagram" => Proto::Udp,
            _ => continue,
        };
        let value = value.trim();
        if value.is_empty() {
            out.retain(|l: &SocketUnitListen| l.protocol != protocol);
            continue;
        }
        if let Some((address, port)) = parse_listen_value(value) {
            out.push(SocketUnitListen {
                unit: unit.to_string(),
                protocol,
                address,
                port,
            });
        }
    }
    out
}

/// `53`, `127.0.0.1:53`, `[::1]:53`, `[fe80::1%eth0]:53`; `None` for paths and others.
fn parse_listen_value(v: &str) -> Option<(Option<IpAddr>, u16)> {
    if let Ok(port) = v.parse::<u16>() {
        return Some((None, port));
    }
    let (addr, port) = v.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let addr = addr.split('%').next()?;
    Some((Some(addr.parse().ok()?), port))
}

/// Where systemd looks for unit files, most specific first: the system manager's
/// directories, then the user managers'.
pub const UNIT_DIRS: [&str; 9] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/generator",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/lib/systemd/user",
];

/// The unit directories: `$SYSTEMD_UNIT_PATH` when set (colon-separated; an empty last
/// element appends the defaults, as systemd does), else [`UNIT_DIRS`].
pub fn unit_dirs() -> Vec<std::path::PathBuf> {
    let defaults = || UNIT_DIRS.iter().map(std::path::PathBuf::from);
    match std::env::var_os("SYSTEMD_UNIT_PATH") {
        Some(p) if !p.is_empty() => {
            let text = p.to_string_lossy().into_owned();
            let mut dirs: Vec<std::path::PathBuf> = text
                .split(':')
                .filter(|d| !d.is_empty())
                .map(Into::into)
                .collect();
            if text.ends_with(':') {
                dirs.extend(defaults());
            }
            dirs
        }
        _ => defaults().collect(),
    }
}

/// Reads every `.socket` unit in [`unit_dirs`] (the first file of a name wins).
pub fn read_socket_units() -> Vec<SocketUnitListen> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in unit_dirs() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut names: Vec<_> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".socket"))
            .collect();
        names.sort();
        for name in names {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(dir.join(&name)) {
                out.extend(parse_socket_unit(&name, &text));
            }
        }
    }
    out
}

/// Parses `socket:[12345]`.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let n = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    if n.is_empty() || n.len() > 20 || !n.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// The `(socket inode, 0, fd)` triples among `wanted` that process `pid` holds.
fn socket_fds(pid: u32, wanted: &InodeSet, out: &mut Vec<(u64, u32, i32)>) -> io::Result<()> {
    crate::sys::read_links(&format!("/proc/{pid}/fd"), &mut |name, link| {
        let Some(inode) = socket_inode(link) else {
            return;
        };
        if wanted.contains(&inode) {
            let fd = std::str::from_utf8(name)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            out.push((inode, 0, fd));
        }
    })
}

/// The pids under `/proc`.
pub fn pids() -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH)
}

/// The first `max` bytes of a file (a command line can be megabytes long).
fn read_prefix(path: &str, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Reads the details of process `pid`; `None` when it has vanished.
pub fn read_owner(pid: u32, users: &dyn Fn(u32) -> Option<String>) -> Option<Process> {
    let base = format!("/proc/{pid}");
    let name = match std::fs::read_to_string(format!("{base}/comm")) {
        Ok(s) => s.trim_end_matches('\n').to_string(),
        Err(_) => return None,
    };
    let uid = std::fs::metadata(&base).ok().map(|m| m.uid());
    let exe = std::fs::read_link(format!("{base}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let cmdline = read_prefix(&format!("{base}/cmdline"), 4096)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let cgroup = std::fs::read_to_string(format!("{base}/cgroup")).ok();
    let unit = cgroup.as_deref().and_then(unit_from_cgroup);
    let path = cgroup.as_deref().and_then(crate::cgroup::path);
    Some(Process {
        pid,
        name,
        exe,
        cmdline,
        uid,
        user: uid.and_then(users),
        unit,
        container: path.and_then(crate::cgroup::container),
        cgroup: path.map(str::to_string),
    })
}

/// The pids holding one socket; most sockets have exactly one.
enum Pids {
    One(u32),
    Many(Vec<u32>),
}

/// One walk of `/proc/*/fd`: the owners of every inode in `wanted`, a `(pid, fd)` handle
/// per inode when `handles` is set, and the processes that could not be read. Processes
/// that vanish are skipped.
pub fn scan(wanted: &InodeSet, handles: bool, users: &dyn Fn(u32) -> Option<String>) -> OwnerScan {
    let mut scan = OwnerScan::default();
    let Ok(pids) = pids() else {
        return scan;
    };
    // The walk is mostly system calls, so it is split over a few threads that take pids
    // from a shared counter; each returns what it found, in pid order per thread.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(pids.len().div_ceil(64).max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let walk = || {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(&pid) = pids.get(i) else {
                break;
            };
            let before = found.len();
            match socket_fds(pid, wanted, &mut found) {
                Ok(()) => {}
                Err(e) if gone(&e) => found.truncate(before),
                Err(e) => {
                    found.truncate(before);
                    unreadable.push((pid, e.kind()));
                }
            }
            for f in &mut found[before..] {
                f.1 = pid;
            }
        }
        (found, unreadable)
    };
    let mut results = Vec::with_capacity(threads);
    if threads == 1 {
        results.push(walk());
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(walk)).collect();
            for h in handles {
                match h.join() {
                    Ok(r) => results.push(r),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
        });
    }
    let mut by_inode: InodeMap<Pids> = InodeMap::default();
    by_inode.reserve(wanted.len());
    for (found, unreadable) in results {
        scan.unreadable.extend(unreadable);
        for (inode, pid, fd) in found {
            match by_inode.get_mut(&inode) {
                None => {
                    by_inode.insert(inode, Pids::One(pid));
                }
                Some(Pids::One(p)) if *p != pid => {
                    let first = *p;
                    by_inode.insert(inode, Pids::Many(vec![first, pid]));
                }
                Some(Pids::Many(v)) if !v.contains(&pid) => v.push(pid),
                Some(_) => {}
            }
            if handles {
                scan.handles.entry(inode).or_insert((pid, fd));
            }
        }
    }
    scan.unreadable.sort_unstable_by_key(|u| u.0);
    // Each process is read once, and sockets with the same owners share one list.
    let mut procs: HashMap<u32, Option<Arc<Process>>> = HashMap::new();
    let mut sets: HashMap<Vec<u32>, Option<Owners>> = HashMap::new();
    let mut read = |pid: u32| {
        procs
            .entry(pid)
            .or_insert_with(|| read_owner(pid, users).map(Arc::new))
            .clone()
    };
    scan.owners.reserve(by_inode.len());
    for (inode, pids) in by_inode {
        let key = match pids {
            Pids::One(p) => vec![p],
            Pids::Many(v) => v,
        };
        let set = match sets.get(&key) {
            Some(set) => set.clone(),
            None => {
                let owners: Vec<Arc<Process>> = key.iter().filter_map(|&p| read(p)).collect();
                let set = (!owners.is_empty()).then(|| owner_set(owners));
                sets.insert(key, set.clone());
                set
            }
        };
        if let Some(set) = set {
            scan.owners.insert(inode, set);
        }
    }
    scan
}

/// Reads `IPV6_V6ONLY` and `SO_BINDTODEVICE` from a socket another process holds, by
/// duplicating its descriptor with `pidfd_getfd` (root, or ptrace rights over `pid`).
pub fn socket_options(pid: u32, fd: i32) -> Option<(Option<bool>, Option<Arc<str>>)> {
    crate::sys::socket_options(pid, fd)
}
