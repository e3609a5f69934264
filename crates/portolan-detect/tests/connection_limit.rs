//! Servers that serve only so many clients at once (Unbound's `incoming-num-tcp` is 10
//! by default) and leave the rest unread: detection on a port that suggests nothing
//! must not open so many connections at once that the one probe such a server answers
//! waits behind the others. Seen as `dns_on_a_moved_port_behind_a_connection_limit`:
//! bed 2's Unbound on 5353/tcp was "open, but no probe got an answer" in some runs
//! under load.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use portolan_detect::{Detector, Options};

/// How the peer counts its clients.
struct Counts {
    /// Served now, by the server's own count (which lags a client's close by as long as
    /// the serving thread takes to read it).
    open: AtomicUsize,
    /// The most connections the clients held open at once, by the kernel's count at
    /// each accept.
    most: AtomicUsize,
}

/// Connections to `port` that the kernel holds established: the client has not closed
/// them (a closed one is in CLOSE-WAIT), accepted or still in the backlog. From `ss`,
/// so that a serving thread slow to see a close under load does not count it.
fn established(port: u16) -> usize {
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .expect("run ss (iproute2)");
    assert!(out.status.success(), "ss: {out:?}");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A DNS-over-TCP server like Unbound: it accepts at most `limit` clients at once (the
/// rest wait in the backlog), reads a two-byte length and then that many bytes, and
/// answers a query for version.bind; anything else it waits on until the client
/// closes (`answer` false: it answers nothing). Stops when the flag is set or after 30 s.
fn dns_server(limit: usize, answer: bool) -> (SocketAddr, Arc<Counts>, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    let counts = Arc::new(Counts {
        open: AtomicUsize::new(0),
        most: AtomicUsize::new(0),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (c, s) = (counts.clone(), stop.clone());
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
            if c.open.load(Ordering::SeqCst) >= limit {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            match l.accept() {
                Ok((conn, _)) => {
                    c.open.fetch_add(1, Ordering::SeqCst);
                    c.most.fetch_max(established(addr.port()), Ordering::SeqCst);
                    let c = c.clone();
                    thread::spawn(move || {
                        serve(conn, answer);
                        c.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (addr, counts, stop)
}

fn serve(mut c: TcpStream, answer: bool) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut len = [0u8; 2];
    if c.read_exact(&mut len).is_err() {
        return;
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    if c.read_exact(&mut msg).is_err() {
        return;
    }
    if let Some(reply) = version_reply(&msg).filter(|_| answer) {
        let _ = c.write_all(&(reply.len() as u16).to_be_bytes());
        let _ = c.write_all(&reply);
    }
    // Like Unbound, keep the connection until the client closes it.
    let mut rest = [0u8; 512];
    while matches!(c.read(&mut rest), Ok(n) if n > 0) {}
}

/// The answer to a one-question query: a CHAOS TXT record naming the server.
fn version_reply(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 || q[2] & 0x80 != 0 || q[4..6] != [0, 1] {
        return None;
    }
    let mut end = 12;
    while *q.get(end)? != 0 {
        end += 1 + q[end] as usize;
    }
    let question = q.get(12..end + 5)?;
    let mut r = Vec::new();
    r.extend_from_slice(&q[0..2]);
    r.extend_from_slice(&[0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0]);
    r.extend_from_slice(question);
    let txt = b"unbound 1.17.1";
    r.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 3, 0, 0, 0, 0]);
    r.extend_from_slice(&((txt.len() + 1) as u16).to_be_bytes());
    r.push(txt.len() as u8);
    r.extend_from_slice(txt);
    Some(r)
}

fn options(timeout: Duration) -> Options {
    Options {
        timeout,
        total: Duration::from_secs(20),
        read_cap: 64 * 1024,
        server_name: None,
    }
}

#[test]
fn dns_on_a_moved_port_behind_a_connection_limit() {
    // Unbound's default: ten clients at a time.
    let (addr, counts, stop) = dns_server(10, true);
    for run in 0..3 {
        let d = Detector::default().detect_tcp_blocking(addr, &options(Duration::from_secs(2)));
        assert_eq!(
            d.protocol.as_deref(),
            Some("dns"),
            "run {run}: a DNS server serving ten clients at once on {addr}: {d:?}"
        );
        assert_eq!(d.version.as_deref(), Some("1.17.1"), "run {run}: {d:?}");
    }
    stop.store(true, Ordering::Relaxed);
    assert!((1..=10).contains(&counts.most.load(Ordering::SeqCst)));
}

#[test]
fn probes_of_one_port_hold_at_most_eight_connections_at_once() {
    // A peer that takes every client and answers none of them: every probe waits for
    // its timeout, so all the probes that run at once are open at once. Regression
    // (probes_of_one_port_hold_at_most_eight_connections_at_once under load): the
    // server counted a closed connection until its thread read the close, and saw 9.
    let (addr, counts, stop) = dns_server(usize::MAX, false);
    let d = Detector::default().detect_tcp_blocking(addr, &options(Duration::from_millis(500)));
    stop.store(true, Ordering::Relaxed);
    assert_eq!(d.protocol, None, "a silent peer is named: {d:?}");
    let most = counts.most.load(Ordering::SeqCst);
    assert!(
        (1..=8).contains(&most),
        "{most} connections to {addr} at once"
    );
}
