//! An X server resets when its last client leaves, and a connection that arrives during
//! the reset is closed without a word. Seen as `x11_asked_during_a_server_reset_is_asked_again`:
//! on bed 4, `scan --detect` of Xvfb's 6000 on two addresses at once, or of 6100 among
//! the other probes of its port, was "open, but no probe got an answer" in 6 of 15 runs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use portolan_detect::{Detector, Options};

/// How long the emulated server takes to reset after its last client has gone.
const RESET: Duration = Duration::from_millis(80);

/// What the emulated server saw.
#[derive(Default)]
struct Seen {
    /// Connections closed unanswered because they came during a reset.
    dropped: usize,
}

/// A server that speaks X11's connection setup like Xvfb with `-ac`, to any number of
/// clients at once, and resets for [`RESET`] after its last client leaves. Runs for at
/// most 30 s.
fn x_server(l: TcpListener) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let clients = Arc::new(Mutex::new((0usize, Instant::now())));
        while Instant::now() < deadline {
            let Ok((mut c, _)) = l.accept() else {
                thread::sleep(Duration::from_millis(1));
                continue;
            };
            {
                let mut k = clients.lock().unwrap();
                if k.0 == 0 && Instant::now() < k.1 {
                    s.lock().unwrap().dropped += 1;
                    continue;
                }
                k.0 += 1;
            }
            let clients = clients.clone();
            thread::spawn(move || {
                serve(&mut c);
                drop(c);
                let mut k = clients.lock().unwrap();
                k.0 -= 1;
                if k.0 == 0 {
                    k.1 = Instant::now() + RESET;
                }
            });
        }
    });
    seen
}

fn serve(c: &mut TcpStream) {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut head = [0u8; 12];
    if c.read_exact(&mut head).is_err() || head[0] != b'l' || head[2..4] != [11, 0] {
        return;
    }
    let _ = c.write_all(&setup_reply());
    // Like a client that leaves: wait for the close.
    let mut rest = [0u8; 64];
    while matches!(c.read(&mut rest), Ok(n) if n > 0) {}
}

/// A setup success from "The X.Org Foundation", release 12101007, with no screens.
fn setup_reply() -> Vec<u8> {
    let vendor = b"The X.Org Foundation";
    let mut r = vec![1, 0, 11, 0, 0, 0, 0, 0];
    r.extend_from_slice(&12101007u32.to_le_bytes());
    r.resize(24, 0);
    r.extend_from_slice(&(vendor.len() as u16).to_le_bytes());
    r.resize(40, 0);
    r.extend_from_slice(vendor);
    r.resize(r.len().div_ceil(4) * 4, 0);
    let words = ((r.len() - 8) / 4) as u16;
    r[6..8].copy_from_slice(&words.to_le_bytes());
    r
}

fn options() -> Options {
    Options {
        timeout: Duration::from_secs(2),
        total: Duration::from_secs(20),
        read_cap: 64 * 1024,
        server_name: None,
    }
}

/// Another client (a probe of the same server on its other address) comes and goes
/// just before detection asks.
fn leave_a_client(addr: SocketAddr) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&[b'l', 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 8];
    c.read_exact(&mut buf).unwrap();
}

fn check(addr: SocketAddr, seen: &Mutex<Seen>, what: &str) {
    leave_a_client(addr);
    let d = Detector::default().detect_tcp_blocking(addr, &options());
    assert_eq!(d.protocol.as_deref(), Some("x11"), "{what} {addr}: {d:?}");
    assert_eq!(d.product.as_deref(), Some("X.Org X server"), "{d:?}");
    assert_eq!(d.version.as_deref(), Some("21.1.7"), "{d:?}");
    assert!(
        seen.lock().unwrap().dropped >= 1,
        "{what} {addr}: no probe came during a reset, so the test tested nothing"
    );
}

#[test]
fn x11_asked_during_a_server_reset_is_asked_again() {
    // A port that suggests nothing: X11 is one probe among the burst.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let seen = x_server(l);
    check(addr, &seen, "a moved port");
}

#[test]
fn x11_on_its_own_port_asked_during_a_server_reset_is_asked_again() {
    // A port X11's number suggests (6000-6063): the X11 probe goes first, alone. Any
    // free one, on an address of 127/8 of this test's own.
    let Some(l) = (6000..=6063).find_map(|p| TcpListener::bind(("127.61.0.11", p)).ok()) else {
        eprintln!("skipped: every port 6000-6063 of 127.61.0.11 is taken");
        return;
    };
    let addr = l.local_addr().unwrap();
    let seen = x_server(l);
    check(addr, &seen, "an X11 port");
}
