//! Real parts: Debian's Prometheus scrapes the exporter, promtool checks its output, and
//! node_exporter's textfile collector reads what the textfile writer wrote. Off CI a
//! missing binary skips the test; on CI it fails it.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use portolan_report::metrics::{self, CollectorStatus, Metrics};
use portolan_testkit::prometheus::{Prometheus, node_exporter, promtool_check, wait_for};
use portolan_testkit::require_tool;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_exporter() {
    if !require_tool("a_real_prometheus_scrapes_the_exporter", "prometheus") {
        return;
    }
    let srv = start(config(), Arc::new(Fake::new(5))).await;
    let dir = tempfile::tempdir().unwrap();
    let addr = srv.addr;
    // The exporter answers on this runtime's other worker meanwhile.
    let (body, up) = tokio::task::block_in_place(|| {
        let prom = Prometheus::start(dir.path(), addr).unwrap();
        let body = prom.query_until(
            "portolan_listener_info%7Bport%3D%222222%22%7D",
            Duration::from_secs(60),
            |b| b.contains("\"port\":\"2222\""),
        );
        let up = prom.query_until(
            "up%7Bjob%3D%22portolan%22%7D",
            Duration::from_secs(10),
            |b| b.contains("\"result\":[{"),
        );
        (body, up)
    });
    assert!(
        body.contains("\"process\":\"sshd\"") && body.contains("\"exposure\":\"all\""),
        "{body}"
    );
    assert!(up.contains("\"1\"]"), "the target is up: {up}");
    srv.stop().await;
}

#[tokio::test]
async fn promtool_finds_no_problem_in_the_exposition() {
    if !require_tool("promtool_finds_no_problem_in_the_exposition", "promtool") {
        return;
    }
    let mut fake = Fake::new(50);
    fake.collectors.push(CollectorStatus::down("audit", "x"));
    let srv = start(config(), Arc::new(fake)).await;
    let body = get(srv.addr, "/metrics").await.body;
    srv.stop().await;
    assert_eq!(promtool_check(body.as_bytes()), Ok(()));
}

#[tokio::test]
async fn node_exporter_reads_the_textfile() {
    if !require_tool(
        "node_exporter_reads_the_textfile",
        "prometheus-node-exporter",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake::new(3);
    let m = Metrics::new(
        portolan_exporter::Collector::collect(&fake).snapshot,
        vec![CollectorStatus::up("inventory")],
        SystemTime::now(),
        Duration::from_millis(3),
    );
    metrics::write_textfile(&dir.path().join("portolan.prom"), &m).unwrap();
    let (_node, node) = node_exporter(dir.path()).unwrap();
    let body = wait_for(node, "/metrics", Duration::from_secs(30), |b| {
        b.contains("portolan_listener_info{")
    });
    assert!(
        body.contains("portolan_collector_up{collector=\"inventory\"} 1"),
        "{body}"
    );
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    assert!(Path::new(&dir.path().join("portolan.prom")).is_file());
}
