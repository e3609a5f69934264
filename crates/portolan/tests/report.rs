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
use portolan_testkit::{Daemon, Netns, Pair, require_root, require_tool};
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

/// Runs portolan with `args`, asserts that it failed with exit 2, and returns its stderr.
fn error_of(args: &[&str]) -> String {
    let out = portolan(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

/// The ports of a report's listeners.
fn listener_ports(input: &ReportInput) -> BTreeSet<u16> {
    input.listeners.iter().flatten().map(|l| l.port).collect()
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
    let err = error_of(&[
        "report",
        "--from",
        bad.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
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
    error_of(&[
        "report",
        "--from",
        other.to_str().unwrap(),
        "--profile",
        "web",
    ]);
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
        b.assert_severity_count(s, want);
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
    b.assert_inert();
    let banner = b.texts("#scans td.banner");
    assert!(banner.contains(SCRIPT) && banner.contains(IMG), "{banner}");
    b.screenshot(&out_dir().join("cli-hostile.png"), 1280, 2400)
        .unwrap();
    b.assert_clean(&url);
    // The dialog check can fail: a real alert is seen.
    b.assert_dialogs_are_seen();
}

/// A python3 (or `python`, another copy of it) listener on 0.0.0.0:`port` in `ns`,
/// killed when dropped.
type Listening = Daemon;

fn listens(ns: &Netns, port: u16) -> bool {
    ns.exec("ss", &["-Hltn"])
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&format!(":{port} ")))
}

fn wait_for(ns: &Netns, port: u16, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while listens(ns, port) != up {
        assert!(Instant::now() < deadline, "port {port} never went up={up}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn listen(ns: &Netns, python: &Path, port: u16) -> Listening {
    let code = format!(
        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',{port}))\ns.listen()\ntime.sleep(600)\n"
    );
    let l = Daemon::quiet(ns.command(python.to_str().unwrap()).args(["-c", &code])).unwrap();
    wait_for(ns, port, true);
    l
}

fn stop(ns: &Netns, l: Listening, port: u16) {
    drop(l);
    wait_for(ns, port, false);
}

/// Two runs of `ns` recorded in `db`: between them 8004 was added, 8002 removed and
/// 8003 taken over by another executable; 8001 held. Returns the listeners still up.
fn two_runs(ns: &Netns, dir: &Path, db: &Path) -> Vec<Listening> {
    let python = Path::new("/usr/bin/python3");
    let other = dir.join("python-other");
    std::fs::copy(python, &other).unwrap();
    let kept = listen(ns, python, 8001);
    let removed = listen(ns, python, 8002);
    let taken = listen(ns, python, 8003);
    let record = |ns: &Netns| {
        let out = portolan(&["record", "--db", db.to_str().unwrap(), "--netns", ns.name()]);
        assert_eq!(out.status.code(), Some(0));
    };
    record(ns);
    let added = listen(ns, python, 8004);
    stop(ns, removed, 8002);
    stop(ns, taken, 8003);
    let taker = listen(ns, &other, 8003);
    record(ns);
    vec![kept, added, taker]
}

/// (change, port) of the listener changes in a diff.
fn listener_changes(d: &portolan_model::Diff) -> BTreeSet<(String, u16)> {
    d.changes
        .iter()
        .filter(|c| matches!(c.subject, portolan_model::Subject::Listener(_)))
        .map(|c| (c.change.to_string(), c.port.unwrap()))
        .collect()
}

fn want_listener_changes() -> BTreeSet<(String, u16)> {
    BTreeSet::from([
        ("added".into(), 8004),
        ("changed".into(), 8003),
        ("removed".into(), 8002),
    ])
}

/// `portolan diff FROM TO --json`: the oracle for the report's drift.
fn diff_json(db: &Path, from: &str, to: &str) -> portolan_model::Diff {
    let out = portolan(&["diff", from, to, "--db", db.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "the runs differ");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How many changes of each class, as the report counts them.
fn by_class(d: &portolan_model::Diff) -> Vec<(String, usize)> {
    portolan_model::ChangeKind::ALL
        .iter()
        .map(|k| {
            (
                k.to_string(),
                d.changes.iter().filter(|c| c.change == *k).count(),
            )
        })
        .collect()
}

/// The `<b class="n">` of each class in the drift section, read from the HTML text.
fn html_counts(page: &str) -> Vec<(String, usize)> {
    let sec = &page[page.find("id=\"drift-counts\"").expect("drift counts")..];
    let sec = &sec[..sec.find("</ul>").unwrap()];
    portolan_model::ChangeKind::ALL
        .iter()
        .map(|k| {
            let at = sec.find(&format!("data-change=\"{k}\"")).unwrap();
            let rest = &sec[at..];
            let n = &rest[rest.find("<b class=\"n\">").unwrap() + 13..];
            (k.to_string(), n[..n.find('<').unwrap()].parse().unwrap())
        })
        .collect()
}

#[test]
fn report_run_and_since_show_the_drift_of_the_history() {
    if !ready("report_run_and_since_show_the_drift_of_the_history") {
        return;
    }
    let ns = Netns::new("prdr").unwrap();
    let dir = scratch("drift");
    let db = dir.join("history.db");
    let d = db.to_str().unwrap();
    let _up = two_runs(&ns, &dir, &db);
    let oracle = diff_json(&db, "1", "2");
    assert_eq!(listener_changes(&oracle), want_listener_changes());

    // --run 2: run 2 as recorded, with the drift from run 1.
    let file = dir.join("run2.html");
    let out = portolan(&[
        "report",
        "--run",
        "2",
        "--db",
        d,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let page = std::fs::read_to_string(&file).unwrap();
    let input = html::read_back(&page).unwrap().input;
    assert_eq!(input.diff.as_ref(), Some(&oracle));
    assert_eq!(html_counts(&page), by_class(&oracle));
    assert!(
        input.run.command.contains(" record "),
        "{}",
        input.run.command
    );
    assert_eq!(listener_ports(&input), BTreeSet::from([8001, 8003, 8004]));
    assert!(input.audit.is_some());
    let h = input.history.as_ref().unwrap();
    assert_eq!(
        (h.kind, h.run, h.db.as_deref()),
        (html::HistoryKind::Run, Some(2), Some(d))
    );
    assert!(h.made.as_ref().unwrap().command.contains("report --run 2"));
    assert!(input.ephemeral.is_none() && input.ruleset.is_none());

    // --run 1: the first run has nothing to compare with; it says so.
    let out = portolan(&[
        "report",
        "--run",
        "1",
        "--db",
        d,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    assert!(input.diff.is_none());
    assert_eq!(listener_ports(&input), BTreeSet::from([8001, 8002, 8003]));
    assert!(
        input
            .warnings
            .iter()
            .any(|w| w.contains("run 1 is the first run")),
        "{:?}",
        input.warnings
    );

    // --since 1: the audit now, and what changed since run 1 (what diff 1 2 says, as
    // nothing moved after run 2).
    for point in ["1", "#1"] {
        let out = portolan(&[
            "report",
            "--netns",
            ns.name(),
            "--since",
            point,
            "--db",
            d,
            "--today",
            TODAY,
            "-o",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0));
        let page = std::fs::read_to_string(&file).unwrap();
        let input = html::read_back(&page).unwrap().input;
        let diff = input.diff.as_ref().unwrap();
        assert_eq!(listener_changes(diff), want_listener_changes());
        assert_eq!(html_counts(&page), by_class(diff));
        assert!(diff.from.starts_with("run 1 ("), "{}", diff.from);
        assert!(diff.to.starts_with("now ("), "{}", diff.to);
        assert_eq!(listener_ports(&input), BTreeSet::from([8001, 8003, 8004]));
        let h = input.history.as_ref().unwrap();
        assert_eq!((h.kind, h.run), (html::HistoryKind::Since, Some(1)));
        assert!(input.ephemeral.is_some(), "measured now");
    }
    // --since last: nothing changed since run 2.
    let out = portolan(&[
        "report",
        "--netns",
        ns.name(),
        "--since",
        "last",
        "--db",
        d,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    assert_eq!(
        listener_changes(input.diff.as_ref().unwrap()),
        BTreeSet::new()
    );
    // Without --run or --since nothing of the history is in the report.
    let out = portolan(&["report", "--netns", ns.name(), "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let input = read_report(&file);
    assert!(input.diff.is_none() && input.history.is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

fn no_side_files(db: &Path) {
    for ext in ["-wal", "-shm", "-journal"] {
        let side = format!("{}{ext}", db.display());
        assert!(!Path::new(&side).exists(), "{side} was created");
    }
}

#[test]
fn report_history_errors_exit_2_naming_the_file_and_run() {
    let dir = scratch("history-errors");
    let out_file = dir.join("out.html");
    let o = out_file.to_str().unwrap();

    // A missing database is not created.
    let missing = dir.join("missing.db");
    let m = missing.to_str().unwrap();
    for args in [["--run", "1"], ["--since", "last"]] {
        let err = error_of(&["report", args[0], args[1], "--db", m, "-o", o]);
        assert!(
            err.contains(&format!("no history database at {m}")),
            "{err}"
        );
        assert!(!missing.exists(), "{args:?} created the database");
        no_side_files(&missing);
    }
    // A corrupt one is left as it was.
    let corrupt = dir.join("corrupt.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&corrupt, &junk).unwrap();
    let c = corrupt.to_str().unwrap();
    for args in [["--run", "1"], ["--since", "last"]] {
        let err = error_of(&["report", args[0], args[1], "--db", c, "-o", o]);
        assert!(err.contains(c) && err.contains("untouched"), "{err}");
        assert_eq!(std::fs::read(&corrupt).unwrap(), junk);
        no_side_files(&corrupt);
    }
    // An empty file: not made a database of by a command that only reads.
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = empty.to_str().unwrap();
    for args in [["--run", "1"], ["--since", "last"]] {
        let err = error_of(&["report", args[0], args[1], "--db", e, "-o", o]);
        assert!(
            err.contains(&format!("{e} is empty: nothing was recorded in it")),
            "{err}"
        );
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
        no_side_files(&empty);
    }
    // A run that is not there, in a database that has one.
    let db = dir.join("one.db");
    let d = db.to_str().unwrap();
    let out = portolan(&["record", "--db", d]);
    assert_eq!(out.status.code(), Some(0));
    let err = error_of(&["report", "--run", "77", "--db", d, "-o", o]);
    assert!(err.contains(&format!("run 77 is not in {d}")), "{err}");
    let err = error_of(&["report", "--since", "1999-01-01T00:00", "--db", d, "-o", o]);
    assert!(err.contains("no run at or before"), "{err}");
    // A point that does not parse, and flags that do not go together.
    let err = error_of(&["report", "--since", "soon", "--db", d, "-o", o]);
    assert!(err.contains("invalid point 'soon'"), "{err}");
    for args in [
        vec!["--db", d],
        vec!["--run", "1", "--since", "1"],
        vec!["--run", "1", "--profile", "web"],
        vec!["--run", "1", "--netns", "x"],
    ] {
        let mut a = vec!["report"];
        a.extend(&args);
        a.extend(["-o", o]);
        error_of(&a);
    }
    assert!(!out_file.exists(), "no report is written on an error");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn browser_shows_the_drift_of_a_recorded_run() {
    let Some(mut b) = browser("browser_shows_the_drift_of_a_recorded_run") else {
        return;
    };
    let ns = Netns::new("prbd").unwrap();
    let dir = scratch("drift-browser");
    let db = dir.join("history.db");
    let _up = two_runs(&ns, &dir, &db);
    let oracle = diff_json(&db, "1", "2");
    let file = out_dir().join("cli-drift.html");
    let out = portolan(&[
        "report",
        "--run",
        "2",
        "--db",
        db.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    b.call("Performance.enable", json!({})).unwrap();
    let url = b.open(&file).unwrap();
    assert_eq!(b.eval("document.documentElement.dataset.js").unwrap(), "on");
    for (k, want) in by_class(&oracle) {
        b.assert_drift_count(&k, want as u64);
        if want > 0 {
            let q =
                format!("document.querySelector('.summary .ch[data-change={k}] .n').textContent");
            assert_eq!(b.eval(&q).unwrap(), want.to_string(), "{k} in the summary");
        }
    }
    let on_ports = oracle.changes.iter().filter(|c| c.port.is_some()).count();
    assert_eq!(b.chart_marks("drift"), on_ports as u64);
    // Focusing the removed listener's mark says what it was.
    b.eval("document.querySelector('#chart .mark.d-removed').focus()")
        .unwrap();
    let info = b
        .eval("document.getElementById('mark-info').textContent")
        .unwrap();
    assert!(
        info.as_str().unwrap().contains("REMOVED 8002/tcp listener"),
        "{info}"
    );
    let cpu = b.main_thread_cpu();
    eprintln!(
        "report --run 2 with {} changes: {} bytes; main thread CPU {:.0} ms",
        oracle.changes.len(),
        std::fs::metadata(&file).unwrap().len(),
        cpu * 1e3
    );
    b.screenshot(&out_dir().join("cli-drift.png"), 1280, 3000)
        .unwrap();
    b.assert_clean(&url);
    let _ = std::fs::remove_dir_all(&dir);
}
