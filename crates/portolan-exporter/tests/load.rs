//! Load and hostile clients, on loopback, bounded in count and time. The two tests take
//! turns so one's load does not skew the other's timings.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_200_connections_do_not_stop_a_scrape() {
    let _turn = TURN.lock().await;
    let mut cfg = config();
    cfg.header_timeout = Duration::from_secs(2);
    let srv = start(cfg, Arc::new(Fake::new(100))).await;
    let addr = srv.addr;
    let mut loris = Vec::new();
    for _ in 0..200 {
        loris.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .await
                .unwrap();
            let start = Instant::now();
            // One header byte every 100 ms, for at most 6 s, until the server hangs up.
            while start.elapsed() < Duration::from_secs(6) {
                if s.write_all(b"X").await.is_err() {
                    break;
                }
                let mut b = [0u8; 256];
                match tokio::time::timeout(Duration::from_millis(100), s.read(&mut b)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => break,
                    _ => {}
                }
            }
            start.elapsed()
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t = Instant::now();
    let r = get(addr, "/metrics").await;
    let took = t.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        took < Duration::from_secs(1),
        "a scrape under slowloris took {took:?}"
    );
    for l in loris {
        let held = l.await.unwrap();
        assert!(
            held < Duration::from_secs(5),
            "a slowloris client was held {held:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_scrapes_a_second_for_ten_seconds() {
    let _turn = TURN.lock().await;
    let fake = Arc::new(Fake::new(1000));
    let srv = start(config(), fake.clone()).await;
    let addr = srv.addr;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let mut tasks = Vec::with_capacity(1000);
    let mut rss_early = 0;
    let begin = Instant::now();
    for i in 0..1000 {
        tick.tick().await;
        if i == 100 {
            rss_early = rss_kib();
        }
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = get(addr, "/metrics").await;
            (r.status, t.elapsed())
        }));
    }
    let mut lat = Vec::with_capacity(1000);
    for t in tasks {
        let (status, d) = t.await.unwrap();
        assert_eq!(status, 200);
        lat.push(d);
    }
    let rss_late = rss_kib();
    assert!(begin.elapsed() < Duration::from_secs(15));
    lat.sort();
    let p99 = lat[lat.len() * 99 / 100];
    eprintln!(
        "1000 scrapes: p50 {:?} p99 {:?} max {:?}; RSS {rss_early} -> {rss_late} KiB; {} collections",
        lat[500],
        p99,
        lat[999],
        fake.calls()
    );
    assert!(p99 < Duration::from_millis(50), "p99 {p99:?}");
    assert!(
        rss_late < rss_early + 8 * 1024,
        "RSS grew from {rss_early} to {rss_late} KiB"
    );
    assert!(
        fake.calls() <= 3,
        "{} collections in 10 s at a 5 s interval",
        fake.calls()
    );
    srv.stop().await;
}
