//! The connect engine's syscalls through the hand-written `libc` wrappers, `socket2` and
//! `rustix`: a nonblocking socket, connect and `SO_ERROR` to a closed loopback port (as
//! most ports of a full-range scan are), and `epoll_wait` on a ready socket. Traffic
//! stays on 127.0.0.1. Figures: docs/development.md, "Syscalls: hand-written or rustix".

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use criterion::{Criterion, criterion_group, criterion_main};

/// A loopback port bound and not listening: connecting to it is refused.
fn closed_port() -> (std::net::TcpStream, u16) {
    // A bound socket that never listens keeps the port taken, and closed.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s.into(), port)
}

fn libc_connect(port: u16) -> i32 {
    // SAFETY: plain syscalls on a socket this function owns; the address is live.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        assert!(fd >= 0);
        let fd = OwnedFd::from_raw_fd(fd);
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let r = libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let e = if r == 0 { 0 } else { *libc::__errno_location() };
        let mut v: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        );
        e + v
    }
}

fn socket2_connect(port: u16) -> i32 {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM.nonblocking().cloexec(),
        None,
    )
    .unwrap();
    let to: socket2::SockAddr = SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into();
    let e = match s.connect(&to) {
        Ok(()) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    };
    e + s
        .take_error()
        .ok()
        .flatten()
        .and_then(|e| e.raw_os_error())
        .unwrap_or(0)
}

fn rustix_connect(port: u16) -> i32 {
    use rustix::net::{AddressFamily, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();
    let e = match rustix::net::connect(&fd, &SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)) {
        Ok(()) => 0,
        Err(e) => e.raw_os_error(),
    };
    e + match rustix::net::sockopt::socket_error(&fd) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => e.raw_os_error(),
        Err(e) => e.raw_os_error(),
    }
}

fn connect(c: &mut Criterion) {
    let (_keep, port) = closed_port();
    // Refused at once, or in progress and refused by the time SO_ERROR is read.
    let refused = [libc::ECONNREFUSED, libc::EINPROGRESS + libc::ECONNREFUSED];
    assert!(refused.contains(&libc_connect(port)));
    assert!(refused.contains(&socket2_connect(port)));
    assert!(refused.contains(&rustix_connect(port)));
    let mut g = c.benchmark_group("socket_connect_refused");
    g.bench_function("libc", |b| {
        b.iter(|| black_box(libc_connect(black_box(port))))
    });
    g.bench_function("socket2", |b| {
        b.iter(|| black_box(socket2_connect(black_box(port))))
    });
    g.bench_function("rustix", |b| {
        b.iter(|| black_box(rustix_connect(black_box(port))))
    });
    g.finish();
}

fn epoll(c: &mut Criterion) {
    // A UDP socket is always writable: every wait returns one event at once.
    let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut g = c.benchmark_group("epoll_wait_ready");
    {
        // SAFETY: plain syscalls; the event buffer is live and its length is passed.
        let ep = unsafe { OwnedFd::from_raw_fd(libc::epoll_create1(libc::EPOLL_CLOEXEC)) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLOUT as u32,
            u64: 7,
        };
        // SAFETY: as above.
        let r = unsafe {
            libc::epoll_ctl(
                ep.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                udp.as_raw_fd(),
                &mut ev,
            )
        };
        assert_eq!(r, 0);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        g.bench_function("libc", |b| {
            b.iter(|| {
                // SAFETY: as above.
                let n = unsafe {
                    libc::epoll_wait(ep.as_raw_fd(), events.as_mut_ptr(), events.len() as i32, 0)
                };
                black_box(n)
            })
        });
    }
    {
        use rustix::event::epoll;
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        epoll::add(
            &ep,
            &udp,
            epoll::EventData::new_u64(7),
            epoll::EventFlags::OUT,
        )
        .unwrap();
        let mut events: Vec<epoll::Event> = Vec::with_capacity(1024);
        let zero = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        g.bench_function("rustix", |b| {
            b.iter(|| {
                events.clear();
                let n = epoll::wait(
                    &ep,
                    rustix::buffer::spare_capacity(&mut events),
                    Some(&zero),
                )
                .unwrap();
                black_box(n)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, connect, epoll);
criterion_main!(benches);
