//! Hostile and fake peers on 127.0.0.1: detection must stay bounded in time and bytes,
//! and must still recognise services on ports that do not suggest them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use portolan_detect::{Detection, Detector, Options};
use portolan_testkit::peer::Peer;

fn opts() -> Options {
    Options {
        timeout: Duration::from_millis(400),
        total: Duration::from_secs(3),
        read_cap: 64 * 1024,
        server_name: None,
    }
}

/// A TCP server on 127.0.0.1 that runs `serve` for each connection, in its own thread.
fn server(serve: impl Fn(TcpStream, &AtomicBool) + Send + Sync + 'static) -> Peer {
    Peer::tcp("127.0.0.1:0", serve).unwrap()
}

fn detect(addr: SocketAddr) -> (Detection, Duration) {
    let start = Instant::now();
    let d = Detector::default().detect_tcp_blocking(addr, &opts());
    (d, start.elapsed())
}

#[test]
fn tarpit_that_never_speaks_is_bounded() {
    let mut srv = server(|c, stop| {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(20));
        }
        drop(c);
    });
    let (d, took) = detect(srv.addr());
    srv.stop();
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(
        d.evidence.contains("no probe got an answer"),
        "{}",
        d.evidence
    );
}

#[test]
fn endless_banner_is_read_up_to_the_cap() {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let mut srv = server(move |mut c, stop| {
        let chunk = vec![b'A'; 64 * 1024];
        // Up to 4 GiB, or until the client goes away.
        for _ in 0..65_536 {
            if stop.load(Ordering::Relaxed) || c.write_all(&chunk).is_err() {
                break;
            }
            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
    });
    let before = peak_rss_kib();
    let (d, took) = detect(srv.addr());
    srv.stop();
    let growth = peak_rss_kib().saturating_sub(before);
    assert!(growth < 32 * 1024, "peak RSS grew by {growth} KiB");
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    // Each connection reads at most 64 KiB; the rest of what the server managed to
    // send sits in socket buffers. Far from gigabytes.
    let total = sent.load(Ordering::Relaxed);
    assert!(total < 64 << 20, "server wrote {total} bytes");
    assert!(
        d.evidence.len() < 1024,
        "evidence is {} bytes",
        d.evidence.len()
    );
}

#[test]
fn binary_garbage_is_not_a_service() {
    let mut srv = server(|mut c, _| {
        let mut x: u32 = 0x1234_5678;
        let garbage: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x & 0xff) as u8
            })
            .collect();
        let _ = c.write_all(&garbage);
        thread::sleep(Duration::from_millis(500));
    });
    let (d, took) = detect(srv.addr());
    srv.stop();
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(!d.evidence.is_empty());
}

#[test]
fn reset_mid_handshake_is_survived() {
    let mut srv = server(|mut c, _| {
        let mut buf = [0u8; 16];
        let _ = c.read(&mut buf);
        // SO_LINGER 0: close sends RST.
        let _ = socket_linger0(&c);
        drop(c);
    });
    let (d, took) = detect(srv.addr());
    srv.stop();
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn slow_drip_is_bounded() {
    let mut srv = server(|mut c, stop| {
        for _ in 0..200 {
            if stop.load(Ordering::Relaxed) || c.write_all(b"x").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
    });
    let (d, took) = detect(srv.addr());
    srv.stop();
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

/// The process's peak resident set (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    portolan_testkit::peak_rss_kib(None).unwrap_or(0)
}

fn socket_linger0(c: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let r = unsafe {
        libc::setsockopt(
            c.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

// ---- fake services on ports that do not suggest them

/// Serves a line protocol: sends `greeting`, then answers each line with `answer(line)`.
fn line_server(greeting: &'static str, answer: fn(&str) -> Option<&'static str>) -> Peer {
    server(move |mut c, _| {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        if c.write_all(greeting.as_bytes()).is_err() {
            return;
        }
        let mut buf = Vec::new();
        let mut b = [0u8; 512];
        while let Ok(n) = c.read(&mut b) {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&b[..n]);
            while let Some(i) = buf.iter().position(|x| *x == b'\n') {
                let line: Vec<u8> = buf.drain(..=i).collect();
                let line = String::from_utf8_lossy(&line).trim().to_string();
                match answer(&line) {
                    Some(a) => {
                        if c.write_all(a.as_bytes()).is_err() {
                            return;
                        }
                    }
                    None => return,
                }
            }
        }
    })
}

#[test]
fn ssh_on_an_odd_port() {
    let mut srv = line_server("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3\r\n", |_| None);
    let (d, _) = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("ssh"));
    assert_eq!(d.product.as_deref(), Some("OpenSSH"));
    assert_eq!(d.version.as_deref(), Some("9.6p1"));
    assert!(!d.cleartext);
}

#[test]
fn smtp_with_starttls_and_ftp_behind_an_ambiguous_220() {
    let mut srv = line_server("220 mx.example ESMTP Postfix\r\n", |l| {
        Some(match l {
            l if l.starts_with("EHLO") => {
                "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
            }
            _ => "221 bye\r\n",
        })
    });
    let (d, _) = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("smtp"));
    assert_eq!(d.product.as_deref(), Some("Postfix smtpd"));
    assert!(d.starttls && d.cleartext);

    // "220 ready" says neither FTP nor SMTP: EHLO fails, FEAT answers.
    let mut srv = line_server("220 ready\r\n", |l| {
        Some(match l {
            "FEAT" => "211-Features:\r\n AUTH TLS\r\n UTF8\r\n211 End\r\n",
            l if l.starts_with("EHLO") => "500 Unknown command.\r\n",
            _ => "221 bye\r\n",
        })
    });
    let (d, _) = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("ftp"));
    assert!(d.starttls);
}

#[test]
fn http_on_an_odd_port_by_what_it_says() {
    let mut srv = server(|mut c, _| {
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let mut buf = [0u8; 2048];
        let Ok(n) = c.read(&mut buf) else { return };
        if buf[..n].starts_with(b"GET ") {
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nServer: Apache/2.4.62 (Debian)\r\nContent-Length: 0\r\n\r\n",
            );
        } else {
            let _ =
                c.write_all(b"HTTP/1.1 400 Bad Request\r\nServer: Apache/2.4.62 (Debian)\r\n\r\n");
        }
    });
    let (d, _) = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("http"));
    assert_eq!(d.product.as_deref(), Some("Apache httpd"));
    assert_eq!(d.version.as_deref(), Some("2.4.62"));
}

#[test]
fn user_signatures_come_first() {
    let mut srv = line_server("SSH-2.0-AcmeSSH_1.2.3\r\n", |_| None);
    let user = portolan_detect::Signatures::parse(
        r#"ssh "Acme Secure Shell" "$1" /^SSH-2\.0-AcmeSSH_([\d.]+)/"#,
        "user.sigs",
    )
    .unwrap();
    let d = Detector::with_user(user).detect_tcp_blocking(srv.addr(), &opts());
    srv.stop();
    assert_eq!(d.product.as_deref(), Some("Acme Secure Shell"));
    assert_eq!(d.version.as_deref(), Some("1.2.3"));
}

#[test]
fn closed_port_says_so_at_once() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    // A refused connect must not wait for the timeout: with a 60 s timeout, anything
    // under 30 s is "at once" however loaded the machine is.
    let start = Instant::now();
    let d = Detector::default()
        .detect_tcp_blocking(addr, &Options::with_timeout(Duration::from_secs(60)));
    let took = start.elapsed();
    assert!(d.protocol.is_none());
    assert_eq!(d.evidence, "connection refused");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

// ---- UDP

#[test]
fn udp_garbage_and_silence_are_not_services() {
    let mut srv = Peer::udp("127.0.0.1:0", |_| {
        Some(vec![0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0])
    })
    .unwrap();
    let start = Instant::now();
    let d = Detector::default().detect_udp_blocking(srv.addr(), &opts());
    srv.stop();
    assert!(d.protocol.is_none(), "{d:?}");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn udp_dns_on_an_odd_port() {
    let mut srv = Peer::udp("127.0.0.1:0", |q| {
        // Answer only what looks like our version.bind query.
        if q.len() < 12 || !q.windows(7).any(|w| w == b"version") {
            return None;
        }
        let mut r = q.to_vec();
        r[2] |= 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 16, 0, 3, 0, 0, 0, 0, 0, 7, 6]);
        r.extend_from_slice(b"9.18.2");
        Some(r)
    })
    .unwrap();
    let d = Detector::default().detect_udp_blocking(srv.addr(), &opts());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("dns"));
    assert_eq!(d.product.as_deref(), Some("ISC BIND"));
    assert_eq!(d.version.as_deref(), Some("9.18.2"));
}

#[test]
fn udp_closed_port_is_reported_closed() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    let d = Detector::default().detect_udp_blocking(addr, &opts());
    assert!(d.protocol.is_none());
    assert!(d.evidence.starts_with("closed"), "{}", d.evidence);
}

#[test]
fn ipv6_loopback_tcp_and_udp() {
    let Ok(mut srv) = Peer::tcp("[::1]:0", |mut c, _| {
        let _ = c.write_all(b"+OK POP3 ready <1.2@host>\r\n");
        let _ = c.set_read_timeout(Some(Duration::from_millis(500)));
        let mut b = [0u8; 256];
        if let Ok(n) = c.read(&mut b) {
            if b[..n].starts_with(b"CAPA") {
                let _ = c.write_all(b"+OK\r\nUSER\r\nSTLS\r\n.\r\n");
            }
        }
    }) else {
        eprintln!("skipping ipv6_loopback_tcp_and_udp: no ::1");
        return;
    };
    let (d, _) = detect(srv.addr());
    srv.stop();
    assert_eq!(d.protocol.as_deref(), Some("pop3"), "{d:?}");
    assert!(d.starttls && d.cleartext);

    let sock = UdpSocket::bind("[::1]:0").unwrap();
    let addr = sock.local_addr().unwrap();
    drop(sock);
    let d = Detector::default().detect_udp_blocking(addr, &opts());
    assert!(d.evidence.starts_with("closed"), "{}", d.evidence);
}
