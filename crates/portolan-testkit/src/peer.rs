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

/// The flag that stops a peer, and the thread that serves.
struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP server that runs a function for each connection, in a thread of its own.
pub struct TcpServer {
    addr: SocketAddr,
    running: Running,
}

impl TcpServer {
    /// Listens on `bind` (`127.0.0.1:0`, `[::1]:0`) and runs `serve` for each connection
    /// (blocking). `serve` gets the stop flag, to end a connection it would hold open.
    pub fn start(
        bind: &str,
        serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static,
    ) -> io::Result<TcpServer> {
        let l = TcpListener::bind(bind)?;
        l.set_nonblocking(true)?;
        let addr = l.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let serve = Arc::new(serve);
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match l.accept() {
                    Ok((c, _)) => {
                        if c.set_nonblocking(false).is_err() {
                            continue;
                        }
                        let (serve, s) = (serve.clone(), s.clone());
                        thread::spawn(move || serve(c, &s));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(TcpServer {
            addr,
            running: Running {
                stop,
                thread: Some(thread),
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, and sets the flag the connections see.
    pub fn stop(&mut self) {
        self.running.stop();
    }
}

impl Drop for TcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A UDP socket that answers each datagram with what a function makes of it.
pub struct UdpResponder {
    addr: SocketAddr,
    running: Running,
}

impl UdpResponder {
    /// Binds `bind` and sends back `answer(datagram)` to its sender (nothing for `None`).
    pub fn start(
        bind: &str,
        answer: impl Fn(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) -> io::Result<UdpResponder> {
        let sock = UdpSocket::bind(bind)?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let addr = sock.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = answer(&buf[..n]) {
                    let _ = sock.send_to(&reply, from);
                }
            }
        });
        Ok(UdpResponder {
            addr,
            running: Running {
                stop,
                thread: Some(thread),
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(&mut self) {
        self.running.stop();
    }
}

impl Drop for UdpResponder {
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
        let mut srv = TcpServer::start("127.0.0.1:0", |mut c, _| {
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
        let srv = UdpResponder::start("127.0.0.1:0", |q| (q == b"ping").then(|| b"pong".to_vec()))
            .unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.send_to(b"other", srv.addr()).unwrap();
        c.send_to(b"ping", srv.addr()).unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = c.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }
}
