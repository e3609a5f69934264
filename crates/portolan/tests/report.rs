//! `portolan report` end to end: the real binary on namespace hosts with listeners these
//! tests start, read back with `html::read_back` and compared with `portolan audit
//! --json`; `--from` files written by the real `ls`, `scan` and `audit`; bad input; and
//! the page in headless Chromium, with a hostile peer.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use portolan_browser_test::Browser;
use portolan_report::html::{self, ReportInput};
use portolan_testkit::{Netns, Pair, require_root, require_tool};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_portolan");
const TODAY: &str = "2026-11-27";

/// The payloads a hostile peer sends.
const SCRIPT: &str = "<script>alert(1)</script>";
const IMG: &str = "\"><img src=x onerror=alert(1)>";

/// TCP listeners: `A:PORT` on every address (dual-stack), `L:PORT` on loopback only,
/// `H:PORT` on every address, greeting each client with the hostile banner.
const SERVER: &str = r#"
import socket, sys, select
socks, hostile = [], set()
for a in sys.argv[1:]:
    kind, port = a.split(":")
    if kind == "L":
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", int(port)))
    else:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", int(port)))
    s.listen(64); socks.append(s)
    if kind == "H":
        hostile.add(s)
banner = b"220 <script>alert(1)</script> \"><img src=x onerror=alert(1)>\r\n"
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        c, _ = s.accept()
        try:
            if s in hostile:
                c.sendall(banner)
                c.settimeout(2)
                try:
                    c.recv(1024)
                except OSError:
                    pass
        finally:
            c.close()
"#;

fn ready(test: &str) -> bool {
    require_root(test) && require_tool(test, "ip") && require_tool(test, "python3")
}

/// Starts the listeners in `ns` and waits until `ss` shows them all.
fn serve(ns: &mut Netns, specs: &[&str]) {
    let mut args = vec!["-c", SERVER];
    args.extend_from_slice(specs);
    ns.spawn("/usr/bin/python3", &args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ns.exec("ss", &["-Hltn"]).unwrap_or_default();
        if out.lines().count() >= specs.len() {
            return;
        }
        assert!(Instant::now() < deadline, "listeners did not start: {out}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn out_dir() -> PathBuf {
    portolan_browser_test::screenshot_dir(env!("CARGO_TARGET_TMPDIR"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("report-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn portolan(args: &[&str]) -> Output {
    run(Command::new(BIN).args(args))
}

fn read_report(path: &Path) -> ReportInput {
    let text = std::fs::read_to_string(path).unwrap();
    html::read_back(&text).unwrap().input
}

fn audit_json(netns: &str) -> Value {
    let out = portolan(&[
        "audit",
        "--netns",
        netns,
        "--json",
        "--fail-on",
        "never",
        "--today",
        TODAY,
    ]);
    assert_eq!(out.status.code(), Some(0));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn fingerprints(findings: &Value) -> BTreeSet<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fingerprint"].as_str().unwrap().to_string())
        .collect()
}

fn report_fingerprints(input: &ReportInput) -> BTreeSet<String> {
    input
        .audit
        .as_ref()
        .unwrap()
        .findings
        .iter()
        .map(|f| f.fingerprint.clone())
        .collect()
}

#[test]
fn report_of_this_host_reads_back() {
    let dir = scratch("host");
    let file = dir.join("host.html");
    let out = portolan(&["report", "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "with -o nothing goes to stdout");
    let input = read_report(&file);
    assert_eq!(input.policy.name, "baseline");
    assert_eq!(input.run.version, env!("CARGO_PKG_VERSION"));
    assert!(
        input
            .run
            .command
            .ends_with(&format!("report -o {}", file.display()))
    );
    let t = &input.run.started;
    assert!(
        t.len() == 20 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
        "{t}"
    );
    assert!(!input.run.host.is_empty());
    assert!(input.ephemeral.is_some());
    let audit = input.audit.as_ref().unwrap();
    assert_eq!(
        audit.summary.listeners,
        input.listeners.as_ref().map(Vec::len)
    );
    // No temporary file is left beside it.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    // Without -o, the same page on stdout.
    let out = portolan(&["report"]);
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..40.min(page.len())]
    );
    html::read_back(&page).unwrap();
}

#[test]
fn report_of_a_namespace_matches_audit_json() {
    if !ready("report_of_a_namespace_matches_audit_json") {
        return;
    }
    let mut ns = Netns::new("prep").unwrap();
    serve(&mut ns, &["A:23", "A:6379", "A:8080", "L:5432"]);
    let dir = scratch("netns");
    let file = dir.join("ns.html");
    let f = file.to_str().unwrap();
    let out = portolan(&["report", "--netns", ns.name(), "--today", TODAY, "-o", f]);
    assert_eq!(out.status.code(), Some(0), "--fail-on is never by default");
    let audit = audit_json(ns.name());
    let input = read_report(&file);

    let report = input.audit.as_ref().unwrap();
    assert_eq!(
        report_fingerprints(&input),
        fingerprints(&audit["findings"])
    );
    assert!(!report.findings.is_empty());
    let listeners = input.listeners.as_ref().unwrap();
    assert_eq!(
        Some(listeners.len() as u64),
        audit["summary"]["listeners"].as_u64()
    );
    let ports: BTreeSet<u16> = listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, BTreeSet::from([23, 5432, 6379, 8080]));
    assert!(listeners.iter().all(|l| &*l.netns == ns.name()));
    assert_eq!(input.policy.name, "baseline");
    assert!(input.scans.is_empty() && input.diff.is_none());

    // --fail-on: telnet on every address is critical.
    let out = portolan(&["report", "--netns", ns.name(), "--fail-on", "high", "-o", f]);
    assert_eq!(out.status.code(), Some(1));
    html::read_back(&std::fs::read_to_string(&file).unwrap()).unwrap();

    // A profile: its text and the ruleset it generates are in the report.
    let out = portolan(&[
        "report",
        "--netns",
        ns.name(),
        "--profile",
        "web",
        "--today",
        TODAY,
        "-o",
        f,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    assert_eq!(input.policy.name, "web-server");
    assert!(input.policy.text.as_deref().unwrap().contains("[[allow]]"));
    let ruleset = input.ruleset.as_deref().unwrap();
    assert!(ruleset.contains("table inet portolan"), "{ruleset}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn report_from_ls_audit_and_scan_files() {
    if !ready("report_from_ls_audit_and_scan_files") {
        return;
    }
    let mut ns = Netns::new("prfr").unwrap();
    serve(&mut ns, &["A:23", "A:8080", "L:5432"]);
    let dir = scratch("from");
    let ls = dir.join("ls.json");
    let audit = dir.join("audit.json");
    let scan = dir.join("scan.jsonl");
    let out = run(ns.command(BIN).args(["ls", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&ls, &out.stdout).unwrap();
    let out =
        run(ns
            .command(BIN)
            .args(["audit", "--json", "--fail-on", "never", "--today", TODAY]));
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&audit, &out.stdout).unwrap();
    let out = run(ns
        .command(BIN)
        .args(["scan", "-p", "1-1024,5432,8080", "--json", "127.0.0.1"]));
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&scan, &out.stdout).unwrap();

    let file = dir.join("from.html");
    let out = portolan(&[
        "report",
        "--from",
        ls.to_str().unwrap(),
        "--from",
        audit.to_str().unwrap(),
        "--from",
        scan.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    let want_ls: Vec<portolan_model::Listener> =
        serde_json::from_slice(&std::fs::read(&ls).unwrap()).unwrap();
    assert_eq!(input.listeners.as_ref().unwrap(), &want_ls);
    let want_audit: portolan_model::AuditReport =
        serde_json::from_slice(&std::fs::read(&audit).unwrap()).unwrap();
    assert_eq!(input.audit.as_ref().unwrap(), &want_audit);
    assert_eq!(input.policy.name, "baseline");
    assert!(input.ephemeral.is_none(), "nothing was measured now");
    let [s] = &input.scans[..] else {
        panic!("{} scans", input.scans.len())
    };
    let open: BTreeSet<u16> = s
        .hosts
        .iter()
        .flat_map(|h| &h.ports)
        .filter(|p| p.result.state == portolan_model::PortState::Open)
        .map(|p| p.result.port)
        .collect();
    assert_eq!(open, BTreeSet::from([23, 5432, 8080]));
    assert_eq!(s.summary.ports_scanned, 1026);
    assert_eq!(s.summary.open, 3);
    // The scan listed its open ports only: the warning says so, and it is in the page.
    assert!(
        input
            .warnings
            .iter()
            .any(|w| w.contains("only the listed ports count as scanned")),
        "{:?}",
        input.warnings
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("only the listed ports"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_from_input_exits_2_naming_the_file_and_line() {
    let dir = scratch("bad");
    let bad = dir.join("scan.jsonl");
    std::fs::write(
        &bad,
        "{\"type\":\"host\",\"host\":\"127.0.0.1\",\"state\":\"up\",\"reason\":\"user-set\",\"rtt_ms\":null}\n\n{\"type\":\"port\",\"host\":\"127.0.0.1\",\"port\":\"x\"}\n",
    )
    .unwrap();
    let file = dir.join("out.html");
    let out = portolan(&[
        "report",
        "--from",
        bad.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "portolan: error: {}:3: invalid type: string \"x\", expected u16",
            bad.display()
        )),
        "{err}"
    );
    assert!(!file.exists(), "no report is written from bad input");
    // Not portolan's JSON at all.
    let other = dir.join("other.json");
    std::fs::write(&other, "\n{\"name\": \"x\"}\n").unwrap();
    let out = portolan(&["report", "--from", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2: not portolan's JSON", other.display())),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // --from does not mix with an audit taken now.
    let out = portolan(&[
        "report",
        "--from",
        other.to_str().unwrap(),
        "--profile",
        "web",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

fn browser(test: &str) -> Option<Browser> {
    if !ready(test) {
        return None;
    }
    Browser::for_test(test)
}

#[test]
fn browser_shows_a_namespace_report_made_by_the_cli() {
    let Some(mut b) = browser("browser_shows_a_namespace_report_made_by_the_cli") else {
        return;
    };
    let mut ns = Netns::new("prbr").unwrap();
    serve(&mut ns, &["A:21", "A:23", "A:6379", "L:8080"]);
    let file = out_dir().join("cli-netns.html");
    let out = portolan(&[
        "report",
        "--netns",
        ns.name(),
        "--today",
        TODAY,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let audit = audit_json(ns.name());
    let url = b.open(&file).unwrap();
    assert_eq!(b.eval("document.documentElement.dataset.js").unwrap(), "on");
    for s in ["critical", "high", "medium", "low", "info"] {
        let want = audit["summary"]["severities"][s].as_u64().unwrap();
        let q = format!(
            "document.querySelectorAll('#finding-list .finding[data-severity={s}]').length"
        );
        assert_eq!(b.count(&q), want, "{s} findings");
        let q = format!("document.querySelector('.sev-count[data-severity={s}] .n').textContent");
        assert_eq!(b.eval(&q).unwrap(), want.to_string(), "{s} in the summary");
    }
    let listeners = audit["summary"]["listeners"].as_u64().unwrap();
    assert_eq!(
        b.count("document.querySelectorAll('#listener-table tbody tr').length"),
        listeners
    );
    assert_eq!(
        b.eval("document.getElementById('beyond-loopback').textContent")
            .unwrap(),
        audit["summary"]["exposed"].as_u64().unwrap().to_string()
    );
    let marks = b.chart_marks("listener");
    assert_eq!(marks, listeners);
    b.screenshot(&out_dir().join("cli-netns.png"), 1280, 3000)
        .unwrap();
    b.assert_clean(&url);
}

#[test]
fn browser_hostile_peer_scanned_by_the_cli_shows_as_text_and_runs_nothing() {
    let test = "browser_hostile_peer_scanned_by_the_cli_shows_as_text_and_runs_nothing";
    let Some(mut b) = browser(test) else {
        return;
    };
    let mut pair = Pair::new("prh").unwrap();
    serve(&mut pair.target, &["H:4444"]);
    let file = out_dir().join("cli-hostile.html");
    // The inside view of the target, the outside view (with detection) from the scanner.
    let out = run(pair.scanner.command(BIN).args([
        "report",
        "--netns",
        pair.target.name(),
        "--scan",
        Pair::TARGET_V4,
        "--detect",
        "--today",
        TODAY,
        "-o",
        file.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    let port = input.scans[0]
        .port(
            Pair::TARGET_V4.parse().unwrap(),
            portolan_model::Proto::Tcp,
            4444,
        )
        .expect("the scan kept port 4444");
    let evidence = &port.detected.as_ref().expect("detection ran").evidence;
    assert!(
        evidence.contains(SCRIPT) && evidence.contains(IMG),
        "{evidence}"
    );

    let url = b.open(&file).unwrap();
    assert_eq!(b.eval("document.documentElement.dataset.js").unwrap(), "on");
    assert_eq!(
        b.count("document.querySelectorAll('img, iframe, object, embed').length"),
        0
    );
    assert_eq!(b.count("document.scripts.length"), 2);
    assert_eq!(
        b.eval("[...document.querySelectorAll('*')].some(e => [...e.attributes].some(a => a.name.startsWith('on')))").unwrap(),
        false
    );
    let banner = b
        .eval("[...document.querySelectorAll('#scans td.banner')].map(e => e.textContent).join('\\n')")
        .unwrap();
    let banner = banner.as_str().unwrap();
    assert!(banner.contains(SCRIPT) && banner.contains(IMG), "{banner}");
    b.screenshot(&out_dir().join("cli-hostile.png"), 1280, 2400)
        .unwrap();
    b.assert_clean(&url);
    // The dialog check can fail: a real alert is seen.
    b.eval("setTimeout(() => alert('control'), 0); 1").unwrap();
    let d = b.wait_event("Page.javascriptDialogOpening").unwrap();
    assert_eq!(d["params"]["message"], "control");
    b.call("Page.handleJavaScriptDialog", json!({"accept": true}))
        .unwrap();
}
