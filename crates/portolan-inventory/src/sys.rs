//! Every system call the inventory makes that Rust's standard library does not wrap: the
//! netlink socket, `setns`, `statfs`, interface names, the `/proc/PID/fd` walk and the
//! options of another process's socket. The only `unsafe` code of the crate is here; each
//! function is safe to call.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

/// A `NETLINK_SOCK_DIAG` socket in the calling thread's network namespace, with a 1 MiB
/// receive buffer when the kernel allows it.
pub fn sock_diag_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let size: libc::c_int = 1 << 20;
    // SAFETY: setsockopt with a valid int pointer; failure only leaves the default.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&raw const size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    Ok(fd)
}

/// Sends `msg` to the kernel (netlink port 0), retrying on `EINTR`.
pub fn send_to_kernel(fd: BorrowedFd<'_>, msg: &[u8]) -> io::Result<()> {
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    loop {
        // SAFETY: msg and sa are valid for the lengths passed.
        let n = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&raw const sa).cast(),
                size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        if n >= 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Receives one datagram into `buf`, retrying on `EINTR`; its length.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Moves the calling thread into the network namespace `ns` refers to.
pub fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns on a descriptor the caller holds open; it affects only this thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `path` is on nsfs (a mounted namespace), not a leftover plain file.
pub fn is_nsfs(path: &Path) -> bool {
    const NSFS_MAGIC: libc::c_long = 0x6e73_6673;
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; zeroed is a valid value.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string and st is writable.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    rc == 0 && st.f_type as libc::c_long == NSFS_MAGIC
}

/// The name of interface `ifindex` in the calling thread's namespace.
pub fn if_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// Calls `f(name, target)` for every symbolic link in directory `dir` (a `/proc/PID/fd`):
/// its file name and the first 64 bytes of its target. Entries that vanish while the
/// directory is read are skipped.
///
/// Since Linux 6.2 the size of a `/proc/PID/fd` directory is the number of open
/// descriptors, and descriptors are numbered from 0 with few holes. So the links are
/// read by number first (`readlinkat` of `0`, `1`, ...) until that many were found or
/// [`MAX_MISSES`] numbers in a row were free; then the directory is read from the next
/// number on (`getdents64` at offset number + 2, as procfs numbers its entries), which
/// finds whatever the count missed (none on a dense table, everything on a kernel that
/// reports no size). Reading by number skips building a directory listing the kernel
/// would throw away: a third less system time over 100,000 descriptors (see
/// docs/development.md). (rustix: `getdents64` and `readlinkat` into one buffer.)
pub fn read_links(dir: &str, f: &mut dyn FnMut(&[u8], &[u8])) -> io::Result<()> {
    use rustix::fs::{CWD, Dir, Mode, OFlags};
    let fd = rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let open = rustix::fs::fstat(&fd).map_or(0, |st| u64::try_from(st.st_size).unwrap_or(0));
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 64];
    let mut number = 0u64;
    let mut found = 0u64;
    let mut misses = 0u32;
    let mut name = FdName::default();
    while found < open && misses < MAX_MISSES {
        // An error: no such descriptor (a hole, or closed meanwhile).
        match rustix::fs::readlinkat_raw(&fd, name.set(number), &mut buf) {
            Ok((link, _)) => {
                found += 1;
                misses = 0;
                if !link.is_empty() {
                    f(name.digits(), link);
                }
            }
            Err(_) => misses += 1,
        }
        number += 1;
    }
    let mut entries = Dir::new(fd)?;
    if number > 0 {
        entries.seek(i64::try_from(number).unwrap_or(i64::MAX).saturating_add(2))?;
    }
    while let Some(entry) = entries.read() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        // An error: the fd was closed meanwhile.
        if let Ok((link, _)) = rustix::fs::readlinkat_raw(entries.fd()?, name, &mut buf) {
            if !link.is_empty() {
                f(name.to_bytes(), link);
            }
        }
    }
    Ok(())
}

/// Free descriptor numbers in a row after which [`read_links`] reads the directory.
pub const MAX_MISSES: u32 = 32;

/// A descriptor number as a NUL-terminated file name, without allocating.
#[derive(Default)]
struct FdName {
    buf: [u8; 24],
    start: usize,
}

impl FdName {
    fn set(&mut self, mut n: u64) -> &CStr {
        let end = self.buf.len() - 1;
        self.buf[end] = 0;
        let mut i = end;
        loop {
            i -= 1;
            self.buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.start = i;
        // The digits and the NUL written just above.
        CStr::from_bytes_with_nul(&self.buf[i..]).unwrap_or_default()
    }

    fn digits(&self) -> &[u8] {
        &self.buf[self.start..self.buf.len() - 1]
    }
}

/// Reads `IPV6_V6ONLY` and `SO_BINDTODEVICE` from a socket another process holds, by
/// duplicating its descriptor with `pidfd_getfd` (root, or ptrace rights over `pid`).
pub fn socket_options(pid: u32, fd: i32) -> Option<(Option<bool>, Option<Arc<str>>)> {
    // SAFETY: raw syscall with integer arguments; the result is checked.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if pidfd < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor we own.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as libc::c_int) };
    // SAFETY: as above.
    let sock = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    drop(pidfd);
    if sock < 0 {
        return None;
    }
    // SAFETY: our duplicate, closed on drop.
    let sock = unsafe { OwnedFd::from_raw_fd(sock as libc::c_int) };
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are valid for getsockopt to write.
    let v6only = (unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            libc::IPV6_V6ONLY,
            (&raw mut v).cast(),
            &mut len,
        )
    } == 0)
        .then_some(v != 0);
    let mut name = [0u8; libc::IFNAMSIZ];
    let mut len = name.len() as libc::socklen_t;
    // SAFETY: name and len are valid for getsockopt to write.
    let iface = (unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            name.as_mut_ptr().cast(),
            &mut len,
        )
    } == 0)
        .then(|| {
            let n = name.iter().position(|&b| b == 0).unwrap_or(len as usize);
            Arc::<str>::from(String::from_utf8_lossy(&name[..n.min(name.len())]))
        })
        .filter(|s| !s.is_empty());
    Some((v6only, iface))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::fd::AsRawFd;

    /// The links of `/proc/self/fd`: name -> target; panics on a name seen twice.
    fn links() -> HashMap<i32, Vec<u8>> {
        let mut out = HashMap::new();
        read_links("/proc/self/fd", &mut |name, link| {
            let fd: i32 = std::str::from_utf8(name).unwrap().parse().unwrap();
            assert!(out.insert(fd, link.to_vec()).is_none(), "fd {fd} twice");
        })
        .unwrap();
        out
    }

    #[test]
    fn read_links_finds_every_descriptor_across_holes() {
        let dir = tempfile_dir();
        let files: Vec<std::fs::File> = (0..120)
            .map(|i| std::fs::File::create(dir.join(format!("f{i}"))).unwrap())
            .collect();
        // Holes wider than MAX_MISSES, so the directory read takes over for the rest.
        let kept: Vec<(usize, std::fs::File)> = files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !(10..10 + 2 * MAX_MISSES as usize).contains(i) && i % 7 != 3)
            .collect();
        let got = links();
        for (i, f) in &kept {
            let want = dir.join(format!("f{i}"));
            let link = got
                .get(&f.as_raw_fd())
                .unwrap_or_else(|| panic!("fd {} (f{i}) not read", f.as_raw_fd()));
            assert!(
                want.as_os_str().as_encoded_bytes().starts_with(link)
                    || link.starts_with(want.as_os_str().as_encoded_bytes()),
                "{:?} vs {want:?}",
                String::from_utf8_lossy(link)
            );
        }
        drop(kept);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fd_names_are_decimal() {
        let mut n = FdName::default();
        for v in [0u64, 7, 10, 1234, u64::MAX] {
            assert_eq!(n.set(v).to_bytes(), v.to_string().as_bytes());
            assert_eq!(n.digits(), v.to_string().as_bytes());
        }
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "portolan-read-links-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
