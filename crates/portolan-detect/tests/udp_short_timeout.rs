//! A detection timeout under 100 ms: the NTP probe's wait for a mode-6 answer was
//! clamped between 100 ms and the timeout, and `clamp` panics when those cross. Seen as
//! `ntp_with_a_timeout_under_100_ms_does_not_panic`.

use std::net::UdpSocket;
use std::thread;
use std::time::{Duration, Instant};

use portolan_detect::{Detector, Options};

/// An NTP server that answers each client-mode request with a server-mode reply
/// (version 4, stratum 2) and nothing else. Runs for at most 10 s.
fn ntp_server() -> std::net::SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = s.local_addr().unwrap();
    thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        while Instant::now() < deadline {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                continue;
            };
            if n >= 48 && buf[0] & 0x07 == 3 {
                let mut r = [0u8; 48];
                r[0] = (4 << 3) | 4;
                r[1] = 2;
                r[12..16].copy_from_slice(&[198, 18, 0, 1]);
                r[24..32].copy_from_slice(&buf[40..48]);
                let _ = s.send_to(&r, peer);
            }
        }
    });
    addr
}

#[test]
fn ntp_with_a_timeout_under_100_ms_does_not_panic() {
    let addr = ntp_server();
    let opts = Options {
        timeout: Duration::from_millis(50),
        total: Duration::from_secs(5),
        read_cap: 64 * 1024,
        server_name: None,
    };
    let d = Detector::default().detect_udp_blocking(addr, &opts);
    assert_eq!(d.protocol.as_deref(), Some("ntp"), "{addr}: {d:?}");
}
