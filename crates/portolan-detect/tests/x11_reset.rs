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

/// The emulated server's state.
#[derive(Default)]
struct State {
    /// Clients being served.
    clients: usize,
    /// When the reset that the last client's leaving started ends.
    reset_until: Option<Instant>,
    /// The first reset (after the test's own client) lasts until it has turned away an
    /// X11 setup as well, however slow the machine: so detection surely asks during a
    /// reset, and the test always tests the asking again.
    first: bool,
    /// X11 setups closed unanswered because they came during a reset.
    turned_away: usize,
}

impl State {
    fn resetting(&self) -> bool {
        self.clients == 0 && (self.first || self.reset_until.is_some_and(|t| Instant::now() < t))
    }
}

/// A server that speaks X11's connection setup like Xvfb with `-ac`, to any number of
/// clients at once, and resets for [`RESET`] after its last client leaves: a
/// connection that arrives meanwhile is closed without a word. Runs for at most 30 s.
fn x_server(l: TcpListener) -> Arc<Mutex<State>> {
    let state = Arc::new(Mutex::new(State::default()));
    let st = state.clone();
    l.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let Ok((mut c, _)) = l.accept() else {
                thread::sleep(Duration::from_millis(1));
                continue;
            };
            let resetting = {
                let mut k = st.lock().unwrap();
                let r = k.resetting();
                if !r {
                    k.clients += 1;
                }
                r
            };
            let st = st.clone();
            thread::spawn(move || {
                let hello = read_setup(&mut c);
                if resetting {
                    if hello {
                        let mut k = st.lock().unwrap();
                        k.turned_away += 1;
                        k.first = false;
                    }
                    return;
                }
                if hello {
                    serve(&mut c);
                }
                drop(c);
                let mut k = st.lock().unwrap();
                k.clients -= 1;
                if k.clients == 0 {
                    k.reset_until = Some(Instant::now() + RESET);
                }
            });
        }
    });
    state
}

/// Reads a client's first 12 bytes: whether they are an X11 setup request.
fn read_setup(c: &mut TcpStream) -> bool {
    c.set_nonblocking(false).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut head = [0u8; 12];
    c.read_exact(&mut head).is_ok() && head[0] == b'l' && head[2..4] == [11, 0]
}

/// Answers a setup with success, then waits for the client to leave.
fn serve(c: &mut TcpStream) {
    let _ = c.write_all(&setup_reply());
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

fn check(addr: SocketAddr, state: &Mutex<State>, what: &str) {
    leave_a_client(addr);
    // Its leaving starts the first reset.
    let t = Instant::now() + Duration::from_secs(5);
    while state.lock().unwrap().reset_until.is_none() && Instant::now() < t {
        thread::sleep(Duration::from_millis(1));
    }
    state.lock().unwrap().first = true;
    let d = Detector::default().detect_tcp_blocking(addr, &options());
    assert_eq!(d.protocol.as_deref(), Some("x11"), "{what} {addr}: {d:?}");
    assert_eq!(d.product.as_deref(), Some("X.Org X server"), "{d:?}");
    assert_eq!(d.version.as_deref(), Some("21.1.7"), "{d:?}");
    assert!(
        state.lock().unwrap().turned_away >= 1,
        "{what} {addr}: no probe came during a reset, so the test tested nothing"
    );
}

#[test]
fn x11_asked_during_a_server_reset_is_asked_again() {
    // A port that suggests nothing: X11 is one probe among the burst.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let state = x_server(l);
    check(addr, &state, "a moved port");
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
    let state = x_server(l);
    check(addr, &state, "an X11 port");
}
