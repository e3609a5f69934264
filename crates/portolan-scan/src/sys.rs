//! The thin layer over the kernel: sockets, epoll, socket options, the error queue and
//! resource limits. Everything unsafe in the crate lives here.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
pub fn raise_nofile() -> u64 {
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut r: libc::rlimit = zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 256;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

/// How many file descriptors this process has open now.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(16)
}

/// A new nonblocking, close-on-exec socket.
pub fn socket(domain: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket has no memory preconditions; the fd is owned from here on.
    let fd =
        cvt(unsafe { libc::socket(domain, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) })?;
    // SAFETY: fd was just returned by socket and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub fn domain_of(a: IpAddr) -> libc::c_int {
    if a.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

pub fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the size we pass.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

pub fn sock_error(fd: RawFd) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are live and sized as SO_ERROR expects.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(v)
}

/// A socket address in the kernel's layout.
#[derive(Clone, Copy)]
pub struct RawAddr {
    pub storage: libc::sockaddr_storage,
    pub len: libc::socklen_t,
}

impl RawAddr {
    pub fn new(a: SocketAddr) -> RawAddr {
        let a = crate::scope::with_scope(a);
        // SAFETY: an all-zero sockaddr_storage is valid.
        let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
        let len = match a {
            SocketAddr::V4(a) => {
                let sin = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
                size_of::<libc::sockaddr_in>()
            }
            SocketAddr::V6(a) => {
                let sin6 = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: 0,
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                // SAFETY: as above, for sockaddr_in6.
                unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
                size_of::<libc::sockaddr_in6>()
            }
        };
        RawAddr {
            storage,
            len: len as libc::socklen_t,
        }
    }

    pub fn ptr(&self) -> *const libc::sockaddr {
        (&self.storage as *const libc::sockaddr_storage).cast()
    }

    pub fn ptr_mut(&mut self) -> *mut libc::sockaddr {
        (&mut self.storage as *mut libc::sockaddr_storage).cast()
    }

    pub fn empty() -> RawAddr {
        RawAddr {
            // SAFETY: an all-zero sockaddr_storage is valid.
            storage: unsafe { zeroed() },
            len: size_of::<libc::sockaddr_storage>() as libc::socklen_t,
        }
    }

    pub fn get(&self) -> Option<SocketAddr> {
        match i32::from(self.storage.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let sin = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in) };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                    u16::from_be(sin.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let sin6 = unsafe { &*(&self.storage as *const _ as *const libc::sockaddr_in6) };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                    u16::from_be(sin6.sin6_port),
                    0,
                    sin6.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Binds a socket to an address.
pub fn bind(fd: RawFd, a: SocketAddr) -> io::Result<()> {
    let a = RawAddr::new(a);
    // SAFETY: the address is live and its length right.
    cvt(unsafe { libc::bind(fd, a.ptr(), a.len) }).map(drop)
}

/// Starts a nonblocking connect; `Ok(true)` when it completed at once, `Ok(false)` when it
/// is in progress.
pub fn connect(fd: RawFd, to: &RawAddr) -> io::Result<bool> {
    // SAFETY: the address is live and its length is right.
    let r = unsafe { libc::connect(fd, to.ptr(), to.len) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn name_of(
    fd: RawFd,
    f: unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int,
) -> Option<SocketAddr> {
    let mut a = RawAddr::empty();
    // SAFETY: storage and len are live; f writes at most len bytes.
    let r = unsafe { f(fd, a.ptr_mut(), &mut a.len) };
    if r != 0 {
        return None;
    }
    a.get()
}

pub fn local_name(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, libc::getsockname)
}

pub fn peer_name(fd: RawFd) -> Option<SocketAddr> {
    name_of(fd, libc::getpeername)
}

/// The source address the kernel would use to reach `dst`.
pub fn source_for(dst: IpAddr) -> io::Result<IpAddr> {
    let bind: SocketAddr = if dst.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind)?;
    s.connect(crate::scope::socket_addr(dst, 9))?;
    Ok(s.local_addr()?.ip())
}

/// [`source_for`] over many hosts: one UDP socket per family, connected to each host in
/// turn (and disconnected in between, so that the kernel picks the source anew).
#[derive(Default)]
pub struct Sources {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
}

impl Sources {
    pub fn source_for(&mut self, dst: IpAddr) -> io::Result<IpAddr> {
        use std::os::fd::AsRawFd;
        let slot = if dst.is_ipv4() {
            &mut self.v4
        } else {
            &mut self.v6
        };
        let s = match slot {
            Some(s) => {
                let unspec = libc::sockaddr {
                    sa_family: libc::AF_UNSPEC as libc::sa_family_t,
                    sa_data: [0; 14],
                };
                // SAFETY: a live sockaddr of the length given; AF_UNSPEC disconnects.
                let r = unsafe {
                    libc::connect(
                        s.as_raw_fd(),
                        &unspec,
                        size_of::<libc::sockaddr>() as libc::socklen_t,
                    )
                };
                if r != 0 {
                    return source_for(dst);
                }
                s
            }
            None => {
                let bind: SocketAddr = if dst.is_ipv4() {
                    (Ipv4Addr::UNSPECIFIED, 0).into()
                } else {
                    (Ipv6Addr::UNSPECIFIED, 0).into()
                };
                slot.insert(UdpSocket::bind(bind)?)
            }
        };
        s.connect(crate::scope::socket_addr(dst, 9))?;
        Ok(s.local_addr()?.ip())
    }
}

/// Sends one datagram; `Ok(false)` when the socket buffer is full (try again later).
pub fn send_to(fd: RawFd, buf: &[u8], to: &RawAddr) -> io::Result<bool> {
    // SAFETY: buf and the address are live for the call.
    let r = unsafe { libc::sendto(fd, buf.as_ptr().cast(), buf.len(), 0, to.ptr(), to.len) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS) => Ok(false),
            _ => Err(e),
        };
    }
    Ok(true)
}

/// One packet to send with [`send_batch`].
pub struct Outgoing<'a> {
    pub buf: &'a [u8],
    pub to: &'a RawAddr,
}

/// The header of one message for sendmmsg/recvmmsg: an address and one buffer.
fn mmsghdr(
    name: *mut libc::c_void,
    namelen: libc::socklen_t,
    iov: &mut libc::iovec,
) -> libc::mmsghdr {
    // SAFETY: all-zero msghdr is valid; we fill the fields we use.
    let mut h: libc::msghdr = unsafe { zeroed() };
    h.msg_name = name;
    h.msg_namelen = namelen;
    h.msg_iov = iov;
    h.msg_iovlen = 1;
    libc::mmsghdr {
        msg_hdr: h,
        msg_len: 0,
    }
}

/// Sends packets with one sendmmsg call; returns how many went out (0 when the socket
/// buffer is full).
pub fn send_batch(fd: RawFd, pkts: &[Outgoing<'_>]) -> io::Result<usize> {
    if pkts.is_empty() {
        return Ok(0);
    }
    let mut iov: Vec<libc::iovec> = pkts
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.buf.as_ptr() as *mut libc::c_void,
            iov_len: p.buf.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = pkts
        .iter()
        .zip(iov.iter_mut())
        .map(|(p, v)| {
            let name = (&p.to.storage as *const libc::sockaddr_storage) as *mut libc::c_void;
            mmsghdr(name, p.to.len, v)
        })
        .collect();
    // SAFETY: msgs, iov, buffers and addresses all outlive the call.
    let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), msgs.len() as libc::c_uint, 0) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN | libc::ENOBUFS) => Ok(0),
            // This packet cannot go out (no route, no neighbour, a local firewall, or an
            // earlier ICMP error reported now): it counts as sent and stays unanswered.
            Some(
                libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ECONNREFUSED
                | libc::EPERM
                | libc::EACCES
                | libc::EADDRNOTAVAIL,
            ) => Ok(1),
            _ => Err(e),
        };
    }
    Ok(r as usize)
}

/// Receives one datagram without blocking: its length and sender, or `None` when there
/// is nothing to read.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<Option<(usize, Option<SocketAddr>)>> {
    let mut a = RawAddr::empty();
    // SAFETY: buf and the address storage are live and sized as passed.
    let r = unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            a.ptr_mut(),
            &mut a.len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(None),
            // A queued ICMP error surfaces as an error on UDP sockets; the error queue
            // holds its details, so carry on.
            Some(libc::ECONNREFUSED | libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EACCES) => {
                Ok(Some((0, None)))
            }
            _ => Err(e),
        };
    }
    Ok(Some((r as usize, a.get())))
}

/// An ICMP error the kernel queued on a socket with IP_RECVERR: the original destination
/// and the ICMP type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    pub dest: Option<SocketAddr>,
    pub v6: bool,
    pub icmp_type: u8,
    pub icmp_code: u8,
}

/// Reads one entry of a socket's error queue, if there is one that came from ICMP.
pub fn recv_error(fd: RawFd) -> Option<QueuedError> {
    let mut data = [0u8; 64];
    let mut ctrl = [0u64; 64];
    let mut a = RawAddr::empty();
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // SAFETY: all-zero msghdr is valid; every pointer we set outlives the call.
    let mut h: libc::msghdr = unsafe { zeroed() };
    h.msg_name = (&mut a.storage as *mut libc::sockaddr_storage).cast();
    h.msg_namelen = a.len;
    h.msg_iov = &mut iov;
    h.msg_iovlen = 1;
    h.msg_control = ctrl.as_mut_ptr().cast();
    h.msg_controllen = size_of::<[u64; 64]>();
    // SAFETY: h describes live buffers.
    let r = unsafe { libc::recvmsg(fd, &mut h, libc::MSG_ERRQUEUE | libc::MSG_DONTWAIT) };
    if r < 0 {
        return None;
    }
    a.len = h.msg_namelen;
    // SAFETY: CMSG_* walk the control buffer the kernel filled, within msg_controllen.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&h);
        while !c.is_null() {
            let lvl = (*c).cmsg_level;
            let ty = (*c).cmsg_type;
            if (lvl == libc::SOL_IP && ty == libc::IP_RECVERR)
                || (lvl == libc::SOL_IPV6 && ty == libc::IPV6_RECVERR)
            {
                let e =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::sock_extended_err);
                let v6 = match e.ee_origin {
                    libc::SO_EE_ORIGIN_ICMP => false,
                    libc::SO_EE_ORIGIN_ICMP6 => true,
                    _ => return None,
                };
                return Some(QueuedError {
                    dest: a.get(),
                    v6,
                    icmp_type: e.ee_type,
                    icmp_code: e.ee_code,
                });
            }
            c = libc::CMSG_NXTHDR(&h, c);
        }
    }
    // An entry without ICMP details: still consumed.
    Some(QueuedError {
        dest: a.get(),
        v6: false,
        icmp_type: 0,
        icmp_code: 0,
    })
}

/// Asks for ICMP errors to be queued on the socket with their type and code.
pub fn enable_recverr(fd: RawFd, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    if v6 {
        setsockopt(fd, libc::SOL_IPV6, libc::IPV6_RECVERR, &on)
    } else {
        setsockopt(fd, libc::SOL_IP, libc::IP_RECVERR, &on)
    }
}

/// Makes a receive buffer large; as root beyond rmem_max.
pub fn big_rcvbuf(fd: RawFd, bytes: libc::c_int) {
    if setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes).is_err() {
        let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes);
    }
}

/// Attaches a classic BPF program to a socket.
pub fn attach_filter(fd: RawFd, prog: &[libc::sock_filter]) -> io::Result<()> {
    let p = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &p)
}

/// Waits until one of `fds` is readable or `timeout` passes.
pub fn poll_read(fds: &[RawFd], timeout: Duration) {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // ppoll, not poll: waits shorter than a millisecond are kept, not rounded to zero
    // (which spins).
    let t = timeout.min(Duration::from_secs(60));
    let ts = libc::timespec {
        tv_sec: t.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    };
    // SAFETY: p and ts are live for the call; a null mask keeps the signal mask.
    unsafe {
        libc::ppoll(
            p.as_mut_ptr(),
            p.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
}

/// Whether this process may open raw sockets (root or CAP_NET_RAW).
pub fn can_raw() -> bool {
    socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_TCP).is_ok()
}

/// Buffers for [`recv_batch`]: headers only, which is all the scanner reads.
pub struct RecvBatch {
    pub bufs: Vec<[u8; 256]>,
    pub addrs: Vec<RawAddr>,
    pub lens: Vec<usize>,
}

impl RecvBatch {
    pub fn new(n: usize) -> RecvBatch {
        RecvBatch {
            bufs: vec![[0; 256]; n],
            addrs: vec![RawAddr::empty(); n],
            lens: vec![0; n],
        }
    }
}

/// Receives up to `b.bufs.len()` datagrams with one recvmmsg call, without blocking;
/// returns how many (0 when there is nothing to read).
pub fn recv_batch(fd: RawFd, b: &mut RecvBatch) -> io::Result<usize> {
    let n = b.bufs.len();
    let mut iov: Vec<libc::iovec> = b
        .bufs
        .iter_mut()
        .map(|buf| libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .zip(b.addrs.iter_mut())
        .map(|(v, a)| {
            a.len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            let len = a.len;
            mmsghdr(a.ptr_mut().cast(), len, v)
        })
        .collect();
    // SAFETY: msgs, iov, buffers and addresses all outlive the call.
    let r = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(0),
            _ => Err(e),
        };
    }
    let r = r as usize;
    for (i, m) in msgs.iter().enumerate().take(r) {
        b.lens[i] = (m.msg_len as usize).min(256);
        b.addrs[i].len = m.msg_hdr.msg_namelen;
    }
    Ok(r)
}

/// Dumps a table of the kernel's routing configuration (`RTM_GETROUTE` or `RTM_GETRULE`
/// with `NLM_F_DUMP`) for `family`, handing each datagram of the answer to `f` until `f`
/// returns false (it has seen the end, or wants no more).
pub fn rtnl_dump(kind: u16, family: u8, f: &mut dyn FnMut(&[u8]) -> bool) -> io::Result<()> {
    // SAFETY: plain socket(2) call; the result is checked.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    })?;
    // SAFETY: fd was just returned by socket and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)?;
    // nlmsghdr (16 bytes) and a 12-byte rtmsg / fib_rule_hdr with only the family set.
    let mut req = [0u8; 28];
    req[0..4].copy_from_slice(&28u32.to_ne_bytes());
    req[4..6].copy_from_slice(&kind.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    req[6..8].copy_from_slice(&flags.to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = family;
    // SAFETY: sockaddr_nl is plain data; zeroed is a valid value.
    let mut sa: libc::sockaddr_nl = unsafe { zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: req and sa are valid for the lengths passed.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const sa).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 32 << 10];
    loop {
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 || !f(&buf[..n as usize]) {
            return Ok(());
        }
    }
}

/// Moves the calling thread into the named network namespace (`ip netns add NAME`).
#[cfg(test)]
pub fn enter_netns(name: &str) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/run/netns/{name}"))?;
    // SAFETY: setns with a namespace descriptor we hold open; affects this thread only.
    cvt(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
}
