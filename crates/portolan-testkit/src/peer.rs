//! Peers on loopback for detection tests: a TCP server and a UDP responder, each run by a
//! thread, stopped by a flag or on drop, and for [`LIMIT`] at most.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a peer serves at the most.
pub const LIMIT: Duration = Duration::from_secs(20);

/// A peer on an address, served by a thread until stopped.
pub struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Peer {
    /// A TCP server on `bind` (`127.0.0.1:0`, `[::1]:0`) that runs `serve` for each
    /// connection (blocking), in a thread of its own. `serve` gets the stop flag, to end a
    /// connection it would hold open.
    pub fn tcp(
        bind: &str,
        serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> io::Result<Peer> {
        let l = TcpListener::bind(bind)?;
        l.set_nonblocking(true)?;
        let addr = l.local_addr()?;
        let serve = Arc::new(serve);
        Ok(Peer::run(addr, move |stop| match l.accept() {
            Ok((c, _)) => {
                if c.set_nonblocking(false).is_ok() {
                    let (serve, stop) = (serve.clone(), stop.clone());
                    thread::spawn(move || serve(c, &stop));
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }))
    }

    /// A UDP socket on `bind` that sends `answer(datagram)` back to each datagram's
    /// sender (nothing for `None`).
    pub fn udp(
        bind: &str,
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> io::Result<Peer> {
        let sock = UdpSocket::bind(bind)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = sock.local_addr()?;
        let mut buf = [0u8; 2048];
        Ok(Peer::run(addr, move |_| {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = sock.send_to(&reply, from);
                }
            }
        }))
    }

    /// Runs `step` over and over in a thread, until stopped or for [`LIMIT`]. Each step
    /// must return within a few milliseconds, so that stopping is prompt.
    fn run(addr: SocketAddr, mut step: impl FnMut(&Arc<AtomicBool>) + Send + 'static) -> Peer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                step(&s);
            }
        });
        Peer {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the stop flag (which a TCP server's connections see), and waits for the
    /// serving thread to end: then the socket is closed.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn tcp_server_serves_each_connection_until_stopped() {
        let mut srv = Peer::tcp("127.0.0.1:0", |mut c, _| {
            let _ = c.write_all(b"hello");
        })
        .unwrap();
        for _ in 0..2 {
            let mut c = TcpStream::connect(srv.addr()).unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hello");
        }
        srv.stop();
        // The listener is closed once the accepting thread has ended.
        assert!(TcpStream::connect(srv.addr()).is_err());
    }

    #[test]
    fn udp_responder_answers_what_it_is_asked() {
        let srv = Peer::udp("127.0.0.1:0", |q| (q == b"ping").then(|| b"pong".to_vec())).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"other", srv.addr()).unwrap();
        c.send_to(b"ping", srv.addr()).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }
}
