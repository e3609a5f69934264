//! History end to end, with the real binary: listeners in a network namespace, `record`,
//! `diff`, `watch`, nmap XML files, and a corrupt database (root only).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portolan_testkit::{Daemon, Netns, require_root, require_tool, which};
use serde_json::Value;

const PORTOLAN: &str = env!("CARGO_BIN_EXE_portolan");
const PYTHON: &str = "/usr/bin/python3";

static N: AtomicU32 = AtomicU32::new(0);

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "portolan-history-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn portolan(args: &[&str]) -> Output {
    Command::new(PORTOLAN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A python3 TCP listener on 0.0.0.0:`port` in `ns`; returns once it listens, with the
/// Unix time (seconds) of its `listen()`.
fn python_listener(ns: &Netns, port: u16) -> (Daemon, f64) {
    let ready = tmp("ready");
    let code = format!(
        "import socket,time\n\
         s=socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('0.0.0.0',{port}))\n\
         s.listen()\n\
         t=time.time()\n\
         open('{r}.tmp','w').write(repr(t))\n\
         import os; os.rename('{r}.tmp','{r}')\n\
         time.sleep(600)\n",
        r = ready.display()
    );
    let p = Daemon::quiet(ns.command(PYTHON).args(["-c", &code])).unwrap();
    let start = Instant::now();
    loop {
        if let Ok(t) = std::fs::read_to_string(&ready) {
            return (p, t.trim().parse().unwrap());
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "python did not listen"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Another program (socat, else perl) listening on 0.0.0.0:`port` in `ns`.
fn other_listener(ns: &Netns, port: u16) -> Daemon {
    let mut cmd = if which("socat").is_some() {
        let mut c = ns.command("socat");
        c.arg(format!("TCP4-LISTEN:{port},reuseaddr,fork"))
            .arg("SYSTEM:true");
        c
    } else {
        let mut c = ns.command("perl");
        c.args([
            "-MIO::Socket::INET",
            "-e",
            &format!(
                "my $s=IO::Socket::INET->new(LocalAddr=>'0.0.0.0',LocalPort=>{port},Listen=>5,ReuseAddr=>1) or die; sleep 600"
            ),
        ]);
        c
    };
    let p = Daemon::quiet(&mut cmd).unwrap();
    let start = Instant::now();
    while !listening(ns, port) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no listener on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

fn listening(ns: &Netns, port: u16) -> bool {
    ns.exec("ss", &["-Hltn"])
        .unwrap_or_default()
        .lines()
        .any(|l| l.contains(&format!(":{port} ")))
}

fn wait_closed(ns: &Netns, port: u16) {
    let start = Instant::now();
    while listening(ns, port) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{port} still open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn record(db: &Path, ns: &Netns) {
    let out = portolan(&["record", "--db", db.to_str().unwrap(), "--netns", ns.name()]);
    assert!(out.status.success(), "record: {}", text(&out.stderr));
    let id = text(&out.stdout);
    assert!(id.trim().parse::<u64>().is_ok(), "record printed {id}");
}

#[test]
fn diff_shows_added_restarted_owner_changed_and_removed() {
    if !require_root("history_diff") || !require_tool("history_diff", "ss") {
        return;
    }
    if !Path::new(PYTHON).exists() {
        eprintln!("skipping history_diff: no {PYTHON}");
        return;
    }
    let ns = Netns::new("ph").unwrap();
    let db = tmp("history.db");
    let (_kept, _) = python_listener(&ns, 8001);
    let (restart, _) = python_listener(&ns, 8002);
    let (takeover, _) = python_listener(&ns, 8003);
    let (stopped, _) = python_listener(&ns, 8004);
    record(&db, &ns);

    let (_new, _) = python_listener(&ns, 8005);
    let old_pid = restart.pid();
    drop(restart);
    wait_closed(&ns, 8002);
    let (restarted, _) = python_listener(&ns, 8002);
    assert_ne!(restarted.pid(), old_pid);
    drop(takeover);
    wait_closed(&ns, 8003);
    let _other = other_listener(&ns, 8003);
    drop(stopped);
    wait_closed(&ns, 8004);
    record(&db, &ns);

    let out = portolan(&["diff", "--db", db.to_str().unwrap(), "--jsonl"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let mut got: Vec<(String, u64)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["change"].as_str().unwrap().to_string(),
                v["port"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("added".to_string(), 8005),
            ("changed".to_string(), 8003),
            ("removed".to_string(), 8004),
            ("restarted".to_string(), 8002),
        ],
        "{}",
        text(&out.stdout)
    );
    // The changed one is the owner: another executable.
    let changed: Value = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["change"] == "changed")
        .unwrap();
    let fields: Vec<&str> = changed["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"exe"), "{changed}");

    // The same diff with no changes in between: exit 0.
    let out = portolan(&["diff", "last", "last", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A point that does not exist: exit 2, named.
    let out = portolan(&["diff", "77", "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("run 77"),
        "{}",
        text(&out.stderr)
    );

    // The timeline of the port that changed hands: two intervals.
    let out = portolan(&[
        "history",
        "--db",
        db.to_str().unwrap(),
        "--port",
        "8003",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spans: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spans.as_array().unwrap().len(), 2, "{spans}");

    // The baseline: run 1; audit --since baseline names 8005 only (8002, 8003 were there).
    let out = portolan(&["baseline", "accept", "1", "--db", db.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = portolan(&[
        "audit",
        "--netns",
        ns.name(),
        "--since",
        "baseline",
        "--db",
        db.to_str().unwrap(),
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new: Vec<u64> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "new-since-baseline")
        .map(|f| f["port"].as_u64().unwrap())
        .collect();
    assert_eq!(new, vec![8005], "{report}");
}

#[test]
fn watch_reports_a_new_listener_from_the_first_inventory_after_the_bind() {
    if !require_root("history_watch") || !Path::new(PYTHON).exists() {
        return;
    }
    let ns = Netns::new("pw").unwrap();
    let db = tmp("watch.db");
    let (_first, _) = python_listener(&ns, 8101);
    let child = Command::new(PORTOLAN)
        .args([
            "watch",
            "--interval",
            "1s",
            "--netns",
            ns.name(),
            "--record",
            "--db",
        ])
        .arg(&db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watch = Daemon(child);
    let stderr = watch.0.stderr.take().unwrap();
    let mut err_lines = BufReader::new(stderr).lines();
    let started = err_lines.next().unwrap().unwrap();
    assert!(started.contains("watching"), "{started}");
    let stdout = watch.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            if tx.send((at, line)).is_err() {
                break;
            }
        }
    });
    let (_second, bound) = python_listener(&ns, 8102);
    let (arrived, line) = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["change"], "added", "{line}");
    assert_eq!(v["port"], 8102, "{line}");
    let seen = epoch(v["at"].as_str().unwrap());
    eprintln!(
        "watch: inventory began {:.0} ms after the bind, event printed {:.0} ms after it",
        (seen - bound) * 1000.0,
        (arrived - bound) * 1000.0
    );

    // SIGTERM: a clean stop, exit 0.
    Command::new("kill")
        .args(["-TERM", &watch.pid().to_string()])
        .status()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = watch.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "watch did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));

    // The change is dated by the inventory that saw it, and that is the first one begun
    // after the bind: every recorded inventory that began later began no earlier. Timing
    // under load only moves the inventories; it cannot make this fail.
    let out = Command::new(PORTOLAN)
        .args(["history", "--json", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let begun: Vec<f64> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| epoch(r["started"].as_str().unwrap()))
        .collect();
    assert!(
        begun.iter().any(|b| (b - seen).abs() < 0.0005),
        "the change's time {seen} is no recorded inventory's: {begun:?}"
    );
    let first_after = begun
        .iter()
        .copied()
        .filter(|b| *b > bound + 0.001)
        .fold(f64::INFINITY, f64::min);
    assert!(
        seen <= first_after + 0.0005,
        "an inventory began {first_after} after the bind at {bound}, but the change was only seen by the one begun at {seen}"
    );
}

/// Seconds since the epoch of an RFC 3339 time.
fn epoch(text: &str) -> f64 {
    let t: jiff::Timestamp = text.parse().unwrap();
    t.as_millisecond() as f64 / 1000.0
}

#[test]
fn diff_of_an_nmap_file_with_itself_is_no_difference() {
    if !require_root("history_nmap") || !require_tool("history_nmap", "nmap") {
        return;
    }
    if !Path::new(PYTHON).exists() {
        return;
    }
    let ns = Netns::new("pn").unwrap();
    let (_l, _) = python_listener(&ns, 8201);
    let xml = tmp("scan.xml");
    ns.exec(
        "nmap",
        &[
            "-sT",
            "-Pn",
            "-p",
            "8200-8202",
            "-oX",
            xml.to_str().unwrap(),
            "127.0.0.1",
        ],
    )
    .unwrap();
    let x = xml.to_str().unwrap();
    let out = portolan(&["diff", x, x]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("No difference."));

    // A truncated copy: exit 2, naming the file.
    let body = std::fs::read(&xml).unwrap();
    let cut = tmp("cut.xml");
    std::fs::write(&cut, &body[..body.len() / 2]).unwrap();
    let out = portolan(&["diff", x, cut.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cut.xml"),
        "{}",
        text(&out.stderr)
    );

    // Imported, it diffs the same way against the file.
    let db = tmp("h.db");
    let out = portolan(&["record", "--db", db.to_str().unwrap(), "--import", x]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = portolan(&["diff", "last", x, "--db", db.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn a_corrupt_database_exits_2_and_is_left_untouched() {
    let db = tmp("corrupt.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&db, &junk).unwrap();
    for args in [
        vec!["diff", "--db"],
        vec!["history", "--db"],
        vec!["record", "--db"],
        vec!["baseline", "show", "--db"],
    ] {
        let mut a = args.clone();
        a.push(db.to_str().unwrap());
        let out = portolan(&a);
        assert_eq!(out.status.code(), Some(2), "{a:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("corrupt.db") && err.contains("untouched"),
            "{err}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), junk, "{a:?} changed the file");
    }
    for ext in ["-wal", "-shm"] {
        let side = format!("{}{ext}", db.display());
        assert!(!Path::new(&side).exists(), "{side} was created");
    }
}
