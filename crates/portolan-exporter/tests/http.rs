//! The exporter over real loopback sockets: routes, negotiation, the cache, partial
//! failure, authentication, TLS, and request limits.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use portolan_exporter::{CollectorStatus, WebConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn routes_methods_and_negotiation() {
    let srv = start(config(), Arc::new(Fake::new(3))).await;
    let index = get(srv.addr, "/").await;
    assert_eq!(index.status, 200);
    assert!(index.body.contains("href=\"metrics\""), "{}", index.body);
    assert_eq!(get(srv.addr, "/probe?target=198.18.0.1").await.status, 404);
    assert_eq!(get(srv.addr, "/metrics/x").await.status, 404);
    let post = request(srv.addr, "POST", "/metrics", &["Content-Length: 0"]).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let text = get(srv.addr, "/metrics").await;
    assert_eq!(text.status, 200);
    assert!(
        text.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(text.body.contains(r#"portolan_listener_info{netns="host",protocol="tcp",address="0.0.0.0",port="2222",exposure="all",service="ssh-alt",process="sshd",unit="ssh.service"} 1"#), "{}", text.body);
    assert!(!text.body.contains("# EOF"));
    assert!(!text.body.contains("812"), "no pid in the output");

    let om = request(
        srv.addr,
        "GET",
        "/metrics",
        &["Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"],
    )
    .await;
    assert!(
        om.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(om.body.ends_with("# EOF\n"));

    let head = request(srv.addr, "HEAD", "/metrics", &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    srv.stop().await;
}

#[tokio::test]
async fn concurrent_scrapes_share_one_collection() {
    let mut fake = Fake::new(10);
    fake.delay = Duration::from_millis(300);
    let fake = Arc::new(fake);
    let srv = start(config(), fake.clone()).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let addr = srv.addr;
        tasks.push(tokio::spawn(async move { get(addr, "/metrics").await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().status, 200);
    }
    assert_eq!(get(srv.addr, "/metrics").await.status, 200);
    assert_eq!(
        fake.calls(),
        1,
        "one collection for 51 scrapes within the interval"
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_new_collection_after_the_minimum_interval() {
    let fake = Arc::new(Fake::new(1));
    let mut cfg = config();
    cfg.min_interval = Duration::from_millis(200);
    let srv = start(cfg, fake.clone()).await;
    get(srv.addr, "/metrics").await;
    tokio::time::sleep(Duration::from_millis(250)).await;
    get(srv.addr, "/metrics").await;
    assert_eq!(fake.calls(), 2);
    srv.stop().await;
}

#[tokio::test]
async fn one_source_down_is_reported_and_the_rest_answer() {
    let mut fake = Fake::new(2);
    fake.collectors = vec![
        CollectorStatus::up("inventory"),
        CollectorStatus::down("audit", "policy unreadable"),
    ];
    let srv = start(config(), Arc::new(fake)).await;
    let r = get(srv.addr, "/metrics").await;
    assert_eq!(r.status, 200);
    assert!(
        r.body
            .contains("portolan_collector_up{collector=\"audit\"} 0")
    );
    assert!(
        r.body
            .contains("portolan_collector_up{collector=\"inventory\"} 1")
    );
    assert!(r.body.contains("portolan_listener_info{"));
    assert!(
        !r.body.contains("policy unreadable"),
        "errors are not exported"
    );
    srv.stop().await;
}

#[tokio::test]
async fn nothing_collected_is_a_503() {
    let mut fake = Fake::new(0);
    fake.collectors = vec![CollectorStatus::down("inventory", "netlink refused")];
    let srv = start(config(), Arc::new(fake)).await;
    let r = get(srv.addr, "/metrics").await;
    assert_eq!(r.status, 503);
    assert!(r.body.contains("inventory"));
    srv.stop().await;
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Authorization: Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

#[tokio::test]
async fn wrong_credentials_get_401_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let hash = bcrypt::hash("s3cr3t", 4).unwrap();
    std::fs::write(
        &path,
        format!(
            "basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        ),
    )
    .unwrap();
    let mut cfg = config();
    cfg.web = WebConfig::load(&path).unwrap();
    let srv = start(cfg, Arc::new(Fake::new(1))).await;
    for r in [
        get(srv.addr, "/metrics").await,
        request(
            srv.addr,
            "GET",
            "/metrics",
            &[&basic("prometheus", "wrong")],
        )
        .await,
        request(srv.addr, "GET", "/metrics", &[&basic("nobody", "s3cr3t")]).await,
        request(srv.addr, "GET", "/", &["Authorization: Basic %%%"]).await,
    ] {
        assert_eq!(r.status, 401, "{r:?}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        assert!(r.body.is_empty(), "{r:?}");
    }
    let ok = request(
        srv.addr,
        "GET",
        "/metrics",
        &[&basic("prometheus", "s3cr3t")],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("x-content-type-options"), Some("nosniff"));
    assert!(ok.body.contains("portolan_build_info"));
    srv.stop().await;
}

#[tokio::test]
async fn oversize_requests_get_431_or_413_and_close() {
    let srv = start(config(), Arc::new(Fake::new(1))).await;
    let big = format!("X-Big: {}", "a".repeat(64 * 1024));
    let r = request(srv.addr, "GET", "/metrics", &[&big]).await;
    assert_eq!(r.status, 431, "{}", r.head);
    let r = request(srv.addr, "GET", "/metrics", &["Content-Length: 1000000"]).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("connection"), Some("close"));
    // The connection is closed even though the client asked to keep it.
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("closed by the server")
        .unwrap();
    assert_eq!(parse_reply(&buf).status, 413);
    srv.stop().await;
}

#[tokio::test]
async fn silent_and_slow_clients_are_dropped_after_the_header_timeout() {
    let mut cfg = config();
    cfg.header_timeout = Duration::from_millis(500);
    let srv = start(cfg, Arc::new(Fake::new(1))).await;
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    for s in [&mut silent, &mut slow] {
        let mut buf = Vec::new();
        // Reading to the end only returns once the server has closed the connection.
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .expect("dropped well before 5 s");
        let reply = parse_reply(&buf);
        assert!(buf.is_empty() || reply.status == 408, "{reply:?}");
    }
    assert!(start.elapsed() < Duration::from_secs(3));
    srv.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let mut cfg = config();
    cfg.max_connections = 4;
    let srv = start(cfg, Arc::new(Fake::new(1))).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(srv.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut extra = TcpStream::connect(srv.addr).await.unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut buf))
        .await
        .expect("closed at once");
    assert!(r.is_err() || buf.is_empty(), "no answer over the cap");
    drop(held);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(get(srv.addr, "/").await.status, 200, "slots come back");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_is_graceful_and_prompt() {
    let srv = start(config(), Arc::new(Fake::new(1))).await;
    let addr = srv.addr;
    assert_eq!(get(addr, "/").await.status, 200);
    let t = Instant::now();
    srv.stop().await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[test]
fn exposure_warning_only_beyond_loopback_without_protection() {
    let mut cfg = config();
    assert!(cfg.exposure_warning().is_none());
    cfg.listen = "[::1]:10191".parse().unwrap();
    assert!(cfg.exposure_warning().is_none());
    cfg.listen = "0.0.0.0:10191".parse().unwrap();
    assert!(cfg.exposure_warning().unwrap().contains("0.0.0.0:10191"));
    let hash = bcrypt::hash("x", 4).unwrap();
    cfg.web = WebConfig::parse(
        &format!("basic_auth_users:\n  a: {hash}\n"),
        std::path::Path::new("w.yml"),
    )
    .unwrap();
    assert!(cfg.exposure_warning().is_none());
}
