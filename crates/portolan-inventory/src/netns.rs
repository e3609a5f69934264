//! Network namespaces: finding them, naming them, and running code inside one.
//!
//! Labels: the `ip netns` name (a file in `/run/netns`); `host` for the namespace of PID 1
//! (or, when PID 1 cannot be inspected, the namespace portolan started in);
//! `pid:N` for another process's namespace (N is the lowest pid in it); `net:[INODE]` for
//! a namespace with neither.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::{Error, NetnsChoice, NetnsInfo};

/// Where `ip netns` keeps its namespaces.
pub const NETNS_DIR: &str = "/run/netns";

/// The inode of a namespace file (`/run/netns/NAME`, `/proc/PID/ns/net`).
pub fn inode(path: &Path) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| m.ino())
}

/// The named namespaces: name -> inode. A missing `/run/netns` means none.
pub fn named() -> Result<BTreeMap<String, u64>, Error> {
    let mut out = BTreeMap::new();
    let rd = match std::fs::read_dir(NETNS_DIR) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(Error::ListNetns {
                path: NETNS_DIR.into(),
                source,
            });
        }
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(name) = e.file_name().into_string() else {
            continue;
        };
        // A file that is not (or no longer) a mounted namespace is skipped.
        if let Ok(ino) = inode(&e.path()) {
            if is_netns(&e.path()) {
                out.insert(name, ino);
            }
        }
    }
    Ok(out)
}

/// Whether `path` is an nsfs file (a mounted namespace), not a leftover plain file.
fn is_netns(path: &Path) -> bool {
    crate::sys::is_nsfs(path)
}

/// The namespace inode of every process: inode -> lowest pid.
fn process_namespaces() -> HashMap<u64, u32> {
    let mut out: HashMap<u64, u32> = HashMap::new();
    for pid in crate::owners::pids().unwrap_or_default() {
        let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/net")) else {
            continue; // vanished, a kernel thread, or not ours to read
        };
        let Some(ino) = link
            .to_str()
            .and_then(|l| l.strip_prefix("net:["))
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|l| l.parse::<u64>().ok())
        else {
            continue;
        };
        out.entry(ino).or_insert(pid); // pids come sorted, so the first is the lowest
    }
    out
}

/// The namespace of PID 1; when that cannot be read (a restricted container), the one
/// this process started in.
fn host_inode() -> Option<u64> {
    inode(Path::new("/proc/1/ns/net"))
        .or_else(|_| inode(Path::new("/proc/self/ns/net")))
        .ok()
}

fn label(ino: u64, named: &BTreeMap<String, u64>, host: Option<u64>) -> Option<String> {
    named
        .iter()
        .find(|(_, i)| **i == ino)
        .map(|(n, _)| n.clone())
        .or_else(|| (host == Some(ino)).then(|| "host".to_string()))
}

/// The namespaces that `choice` selects, in a stable order (host, named, then by pid).
pub fn resolve(choice: &NetnsChoice) -> Result<Vec<NetnsInfo>, Error> {
    match choice {
        NetnsChoice::Current => {
            let ino = inode(Path::new("/proc/thread-self/ns/net")).unwrap_or(0);
            let named = named().unwrap_or_default();
            let label = label(ino, &named, host_inode()).unwrap_or_else(|| format!("net:[{ino}]"));
            Ok(vec![NetnsInfo {
                label,
                inode: ino,
                path: None,
            }])
        }
        NetnsChoice::Named(name) => {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(Error::BadNetnsName { name: name.clone() });
            }
            let path = Path::new(NETNS_DIR).join(name);
            let ino = match inode(&path) {
                Ok(i) => i,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NoSuchNetns { name: name.clone() });
                }
                Err(source) => return Err(Error::OpenNetns { path, source }),
            };
            Ok(vec![NetnsInfo {
                label: name.clone(),
                inode: ino,
                path: Some(path),
            }])
        }
        NetnsChoice::All => {
            let named = named()?;
            let host = host_inode();
            let procs = process_namespaces();
            let mut out = Vec::new();
            if let Some(h) = host {
                if !named.values().any(|&i| i == h) {
                    let path = match procs.get(&h) {
                        Some(pid) => format!("/proc/{pid}/ns/net"),
                        None => "/proc/self/ns/net".to_string(),
                    };
                    out.push(NetnsInfo {
                        label: "host".into(),
                        inode: h,
                        path: Some(path.into()),
                    });
                }
            }
            for (name, &ino) in &named {
                out.push(NetnsInfo {
                    label: name.clone(),
                    inode: ino,
                    path: Some(Path::new(NETNS_DIR).join(name)),
                });
            }
            // The namespace this thread is in is read without entering it (which needs
            // privileges even when it is the same one).
            let current = inode(Path::new("/proc/thread-self/ns/net")).ok();
            for ns in &mut out {
                if Some(ns.inode) == current {
                    ns.path = None;
                }
            }
            let mut rest: Vec<(u32, u64)> = procs
                .into_iter()
                .filter(|(ino, _)| Some(*ino) != host && !named.values().any(|i| i == ino))
                .map(|(ino, pid)| (pid, ino))
                .collect();
            rest.sort_unstable();
            for (pid, ino) in rest {
                out.push(NetnsInfo {
                    label: format!("pid:{pid}"),
                    inode: ino,
                    path: (Some(ino) != current).then(|| format!("/proc/{pid}/ns/net").into()),
                });
            }
            Ok(out)
        }
    }
}

/// Runs `f` inside the namespace at `path` (on a thread of its own, which enters the
/// namespace and then ends), or right here when `path` is `None`. When `inode` is not 0
/// the namespace must still be that one: a `/proc/PID/ns/net` whose process exited and
/// whose pid was reused is reported as gone (`NotFound`).
pub fn run_in<T: Send>(
    path: Option<&Path>,
    inode: u64,
    f: impl FnOnce() -> Result<T, Error> + Send,
) -> Result<T, Error> {
    let Some(path) = path else {
        return f();
    };
    let open_err = |source| Error::OpenNetns {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(open_err)?;
    let ino = file.metadata().map_err(open_err)?.ino();
    if inode != 0 && ino != inode {
        return Err(open_err(io::Error::new(
            io::ErrorKind::NotFound,
            "the namespace is gone (its pid now belongs to another process)",
        )));
    }
    std::thread::scope(|s| {
        let handle = s.spawn(move || {
            crate::sys::enter_netns(file.as_fd()).map_err(|source| Error::EnterNetns {
                path: PathBuf::from(path),
                source,
            })?;
            f()
        });
        match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The name of interface `ifindex` in the calling thread's namespace.
pub fn ifname(ifindex: u32) -> Option<String> {
    crate::sys::if_name(ifindex)
}
