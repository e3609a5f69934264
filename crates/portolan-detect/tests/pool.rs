//! `Pool` against real listeners on 127.0.0.1: the result of each probe comes back in
//! order, under its own server name, and the pool works inside a tokio runtime too.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use portolan_detect::{Detector, Options, Pool, Probe, detect_many};
use portolan_model::Proto;

fn opts() -> Options {
    Options {
        timeout: Duration::from_millis(500),
        total: Duration::from_secs(4),
        ..Options::default()
    }
}

/// A TCP server that answers `conns` connections (then stops) with `reply(request)`;
/// when `reply("")` is not empty it is a greeting, sent before reading.
fn tcp_server(conns: usize, reply: fn(&str) -> Vec<u8>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming().take(conns) {
            let Ok(mut c) = c else { continue };
            thread::spawn(move || {
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                // A server that speaks first answers the empty request at once.
                let first = reply("");
                if !first.is_empty() {
                    let _ = c.write_all(&first);
                    thread::sleep(Duration::from_millis(200));
                    return;
                }
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap_or(0);
                let _ = c.write_all(&reply(&String::from_utf8_lossy(&buf[..n])));
            });
        }
    });
    addr
}

/// Answers an HTTP request with the Host header it carried, so a test sees the name.
fn echo_host(req: &str) -> Vec<u8> {
    let host = req
        .lines()
        .find_map(|l| l.strip_prefix("Host: "))
        .unwrap_or("none");
    if !req.starts_with("GET ") {
        return Vec::new();
    }
    format!("HTTP/1.1 200 OK\r\nServer: seen-{host}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn ssh(_: &str) -> Vec<u8> {
    b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n".to_vec()
}

/// A UDP server that answers TFTP read requests with "file not found", for a while.
fn tftp_server() -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            if let Ok((n, from)) = s.recv_from(&mut buf)
                && n > 2
                && buf[..2] == [0, 1]
            {
                let _ = s.send_to(b"\x00\x05\x00\x01File not found\x00", from);
            }
        }
    });
    addr
}

fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[test]
fn detects_real_listeners_in_order() {
    let ssh_at = tcp_server(16, ssh);
    let tftp_at = tftp_server();
    let refused = closed_port(); // the listener is dropped at once
    let probes = [Probe::tcp(ssh_at), Probe::udp(tftp_at), Probe::tcp(refused)];
    let found = detect_many(Detector::default(), opts(), &probes).unwrap();
    assert_eq!(found.len(), 3);
    assert_eq!(found[0].protocol.as_deref(), Some("ssh"), "{:?}", found[0]);
    assert_eq!(found[0].product.as_deref(), Some("OpenSSH"));
    assert_eq!(found[1].protocol.as_deref(), Some("tftp"), "{:?}", found[1]);
    assert!(
        found[1].evidence.contains("File not found"),
        "{:?}",
        found[1]
    );
    assert_eq!(found[2].protocol, None);
    assert!(found[2].evidence.contains("refused"), "{:?}", found[2]);
}

#[test]
fn each_server_name_is_its_own_detection() {
    let at = tcp_server(64, echo_host);
    let mut pool = Pool::new(Detector::default(), opts()).unwrap();
    let a = Probe::tcp(at).with_server_name("a.test");
    let b = Probe::tcp(at).with_server_name("b.test");
    pool.start(&a);
    pool.start(&b);
    let da = pool.get_probe(&a).unwrap().clone();
    let db = pool.get_probe(&b).unwrap().clone();
    assert!(da.evidence.contains("seen-a.test"), "{da:?}");
    assert!(db.evidence.contains("seen-b.test"), "{db:?}");
    // `get` by address finds one of them; a port never started is `None`.
    assert!(pool.get(at, Proto::Tcp).is_some());
    assert!(pool.get(at, Proto::Udp).is_none());
}

/// Regression: `Pool::get` called `Runtime::block_on`, and dropping the pool dropped a
/// runtime; both panic when the caller is itself inside a tokio runtime.
#[test]
fn pool_inside_a_tokio_runtime_does_not_panic() {
    let at = tcp_server(16, ssh);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = rt.block_on(async move {
        let mut pool = Pool::new(Detector::default(), opts()).unwrap();
        let found = pool.detect_many(&[Probe::tcp(at)]);
        drop(pool);
        found
    });
    assert_eq!(found[0].protocol.as_deref(), Some("ssh"), "{:?}", found[0]);
}
