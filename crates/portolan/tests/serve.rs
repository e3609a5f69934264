//! `portolan serve` and `--format prometheus` through the real binary, with real parts as
//! oracles: a real Prometheus scrapes the exporter, node_exporter's textfile collector
//! reads what `ls -o` wrote, promtool checks the exposition. All on loopback; every wait
//! is bounded. Off CI a missing tool skips its test; on CI it fails it.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use portolan_testkit::prometheus::{
    Daemon, Prometheus, get, node_exporter, promtool_check, wait_for,
};
use portolan_testkit::require_tool;

const PORTOLAN: &str = env!("CARGO_BIN_EXE_portolan");

/// Starts `portolan serve --listen 127.0.0.1:0 ARGS` and returns it with the address it
/// says it listens on (its first line on stderr, within 20 s).
fn start_serve(args: &[&str]) -> (Daemon, SocketAddr) {
    let mut child = Command::new(PORTOLAN)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let daemon = Daemon(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stderr).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        // Keep reading so that the exporter never blocks on a full pipe.
        for _ in lines {}
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("portolan serve says where it listens within 20 s");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .parse()
        .unwrap();
    (daemon, addr)
}

fn portolan(args: &[&str]) -> Output {
    Command::new(PORTOLAN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The `portolan_listener_info` series of a TCP listener on 127.0.0.1:`port`, whatever
/// the order of its labels (node_exporter sorts them).
fn has_listener(body: &str, port: u16) -> bool {
    body.lines().any(|l| {
        l.starts_with("portolan_listener_info{")
            && l.contains("protocol=\"tcp\"")
            && l.contains("address=\"127.0.0.1\"")
            && l.contains(&format!("port=\"{port}\""))
            && l.ends_with(" 1")
    })
}

#[test]
fn serve_exports_a_listener_the_test_opened_and_stops_on_sigterm() {
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mine.local_addr().unwrap().port();
    let (mut serve, addr) = start_serve(&["--min-interval", "100ms"]);
    let body = wait_for(addr, "/metrics", Duration::from_secs(20), |b| {
        has_listener(b, port)
    });
    assert!(
        body.contains("portolan_collector_up{collector=\"inventory\"} 1"),
        "{body}"
    );
    assert!(
        !body.contains("portolan_unexpected_listeners"),
        "no policy, no count: {body}"
    );
    assert!(
        body.contains(&format!(
            "portolan_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        )),
        "{body}"
    );
    let (status, index) = get(addr, "/").unwrap();
    assert!(
        status == 200 && index.contains("href=\"metrics\""),
        "{index}"
    );
    // No probing endpoint: a request cannot make the exporter scan anything.
    assert_eq!(get(addr, "/probe?target=127.0.0.1").unwrap().0, 404);
    let st = serve.terminate(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{st:?}");
    drop(mine);
}

#[test]
fn serve_with_a_profile_exports_the_audit() {
    let (mut serve, addr) = start_serve(&["--profile", "ssh-only"]);
    let body = wait_for(addr, "/metrics", Duration::from_secs(30), |b| {
        b.contains("portolan_collector_up{collector=\"audit\"}")
    });
    assert!(
        body.contains("portolan_collector_up{collector=\"audit\"} 1"),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("portolan_unexpected_listeners ")),
        "{body}"
    );
    assert_eq!(serve.terminate(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn a_bad_web_config_exits_2_naming_the_file_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("web.yml");
    std::fs::write(&conf, "tls_server_config:\n  cert_file: server.pem\n").unwrap();
    let out = portolan(&["serve", "--web-config", conf.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(conf.to_str().unwrap()) && err.contains("tls_server_config.key_file"),
        "{err}"
    );
    std::fs::write(&conf, "basic_auth_user:\n  a: b\n").unwrap();
    let out = portolan(&["serve", "--web-config", conf.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(conf.to_str().unwrap()) && err.contains("basic_auth_user"),
        "{err}"
    );
    let missing = dir.path().join("missing.yml");
    let out = portolan(&["serve", "--web-config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(missing.to_str().unwrap()));
}

#[test]
fn output_without_prometheus_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    let out = portolan(&["ls", "-o", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format prometheus"));
    assert!(!f.exists());
    let out = portolan(&[
        "audit",
        "--format",
        "prometheus",
        "--scan",
        "127.0.0.1",
        "--fail-on",
        "never",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--scan"));
}

#[test]
fn ls_and_audit_write_the_same_metrics_to_stdout_and_to_a_textfile() {
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mine.local_addr().unwrap().port();
    let out = portolan(&["ls", "--format", "prometheus"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(has_listener(&text, port), "{text}");
    assert!(!text.contains("# EOF"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portolan.prom");
    std::fs::write(&file, "old\n").unwrap();
    let out = portolan(&[
        "audit",
        "--profile",
        "ssh-only",
        "--fail-on",
        "never",
        "--format",
        "prometheus",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(has_listener(&text, port), "{text}");
    assert!(
        text.contains("portolan_collector_up{collector=\"audit\"} 1")
            && text.contains("portolan_unexpected_listeners "),
        "{text}"
    );
    // Only the file: the temporary one was renamed over it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("portolan.prom")]);
    drop(mine);
}

#[test]
fn a_failed_inventory_still_writes_the_textfile_with_its_collector_down() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portolan.prom");
    let out = portolan(&[
        "ls",
        "--netns",
        "portolan-no-such-namespace",
        "--format",
        "prometheus",
        "-o",
        file.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("portolan-no-such-namespace"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("portolan_collector_up{collector=\"inventory\"} 0"),
        "{text}"
    );
    // Nothing was listed: no count of zero listeners.
    assert!(!text.contains("portolan_listeners"), "{text}");
}

#[test]
fn promtool_finds_no_problem_in_ls_format_prometheus() {
    if !require_tool(
        "promtool_finds_no_problem_in_ls_format_prometheus",
        "promtool",
    ) {
        return;
    }
    for args in [
        &["ls", "--format", "prometheus"][..],
        &["audit", "--format", "prometheus", "--fail-on", "never"][..],
    ] {
        let exposition = portolan(args);
        assert!(exposition.status.success(), "{args:?}");
        assert_eq!(promtool_check(&exposition.stdout), Ok(()), "{args:?}");
    }
}

#[test]
fn node_exporter_serves_the_textfile_of_ls() {
    if !require_tool(
        "node_exporter_serves_the_textfile_of_ls",
        "prometheus-node-exporter",
    ) {
        return;
    }
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mine.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("portolan.prom");
    let out = portolan(&["ls", "--format", "prometheus", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let (_node, addr) = node_exporter(dir.path()).unwrap();
    let body = wait_for(addr, "/metrics", Duration::from_secs(30), |b| {
        has_listener(b, port)
    });
    assert!(
        body.contains("portolan_collector_up{collector=\"inventory\"} 1"),
        "{body}"
    );
    assert!(body.contains("node_textfile_scrape_error 0"), "{body}");
    drop(mine);
}

#[test]
fn a_real_prometheus_scrapes_portolan_serve() {
    if !require_tool("a_real_prometheus_scrapes_portolan_serve", "prometheus") {
        return;
    }
    let mine = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mine.local_addr().unwrap().port();
    let (mut serve, addr) = start_serve(&["--min-interval", "1s"]);
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(dir.path(), addr).unwrap();
    let q = format!("portolan_listener_info%7Baddress%3D%22127.0.0.1%22%2Cport%3D%22{port}%22%7D");
    let body = prom.query_until(&q, Duration::from_secs(60), |b| {
        b.contains(&format!("\"port\":\"{port}\""))
    });
    assert!(
        body.contains("\"protocol\":\"tcp\"") && body.contains("\"exposure\":\"loopback\""),
        "{body}"
    );
    assert_eq!(serve.terminate(Duration::from_secs(10)).code(), Some(0));
    drop(mine);
}
