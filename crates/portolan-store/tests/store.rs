//! The history database, for real: SQLite files in a temporary directory.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use portolan_model::{ChangeKind, Listener, Proto, Snapshot};
use portolan_store::{DiffOptions, Error, Point, Store, TimelineQuery};

fn kinds(d: &portolan_model::Diff) -> Vec<(u16, &'static str)> {
    d.changes
        .iter()
        .map(|c| (c.port.unwrap(), c.change.as_str()))
        .collect()
}

#[test]
fn creates_file_0600_in_dir_0700() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("a/b/history.db");
    Store::open(&path).unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
}

#[test]
fn stored_run_reads_back_as_recorded() {
    let (_t, mut store) = new_store();
    let mut s = snap(0, many(50));
    let mut udp =
        Listener::new(Proto::Udp, "::".parse().unwrap(), 53).with_process(proc_(7, "named"));
    udp.v6only = Some(false);
    s.listeners.push(udp);
    // two sockets with one identity (SO_REUSEPORT)
    let mut twin = listener(1000, 9999, "daemon");
    twin.inode = 1;
    s.listeners.push(twin);
    s.warnings.push("some owners unreadable".into());
    let mut sorted = s.clone();
    sort(&mut sorted);
    let id = store.record(&s).unwrap();
    assert_eq!(store.snapshot(id).unwrap(), sorted);
    let again = store.record(&s).unwrap();
    assert_eq!(store.snapshot(again).unwrap(), sorted);
    assert_eq!(store.snapshot(id).unwrap(), sorted);
}

pub fn sort(s: &mut Snapshot) {
    s.listeners.sort_by(Listener::list_order);
}

#[test]
fn the_change_classes() {
    let (_t, mut store) = new_store();
    let base = vec![
        listener(22, 10, "sshd"),
        listener(80, 20, "nginx"),
        listener(25, 30, "exim"),
    ];
    store.record(&snap(0, base.clone())).unwrap();
    let next = vec![
        listener(22, 11, "sshd"),
        listener(80, 40, "apache2"),
        listener(443, 50, "nginx"),
    ];
    store.record(&snap(10, next)).unwrap();
    let d = store
        .diff(&Point::Run(1), &Point::Last, &DiffOptions::default())
        .unwrap();
    assert_eq!(
        kinds(&d),
        vec![
            (22, "restarted"),
            (25, "removed"),
            (80, "changed"),
            (443, "added")
        ]
    );
    assert_eq!(d.from, "run 1 (2026-12-01T00:00:00Z)");
    assert_eq!(d.to, "last: run 2 (2026-12-01T00:10:00Z)");
    assert_eq!(d.changes[3].at.as_deref(), Some("2026-12-01T00:10:00Z"));
    // back again: 25 reopens
    store.record(&snap(20, base)).unwrap();
    let d = store
        .diff(&Point::Run(2), &Point::Run(3), &DiffOptions::default())
        .unwrap();
    assert_eq!(
        kinds(&d),
        vec![
            (22, "restarted"),
            (25, "reopened"),
            (80, "changed"),
            (443, "removed")
        ]
    );
    // the same point: nothing
    assert!(
        store
            .diff(&Point::Last, &Point::Last, &DiffOptions::default())
            .unwrap()
            .is_empty()
    );
    // run 1 and run 3 hold the same listeners
    assert!(
        store
            .diff(&Point::Run(1), &Point::Run(3), &DiffOptions::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn database_diff_equals_snapshot_diff() {
    let (_t, mut store) = new_store();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut cur = many(60);
    let mut snaps = Vec::new();
    for i in 0..12 {
        for l in cur.iter_mut() {
            if rng.u8(..10) == 0 {
                *l = listener(
                    l.port,
                    rng.u32(1..60000),
                    if rng.bool() { "daemon" } else { "other" },
                );
            }
        }
        if rng.bool() {
            cur.push(listener(3000 + rng.u16(..50), 7, "extra"));
        }
        if rng.bool() && !cur.is_empty() {
            cur.remove(rng.usize(..cur.len()));
        }
        cur.sort_by_key(|l| l.port);
        cur.dedup_by_key(|l| l.port);
        let s = snap(i * 5, cur.clone());
        store.record(&s).unwrap();
        snaps.push(s);
    }
    let opts = DiffOptions::default();
    for a in 0..snaps.len() {
        for b in a..snaps.len() {
            let db = store.diff_runs(a as i64 + 1, b as i64 + 1, &opts).unwrap();
            let pure = portolan_store::diff_snapshots(&snaps[a], &snaps[b], &opts);
            let strip = |d: &portolan_model::Diff| {
                d.changes
                    .iter()
                    .map(|c| {
                        let k = if c.change == ChangeKind::Reopened {
                            ChangeKind::Added
                        } else {
                            c.change
                        };
                        (k, c.subject.clone(), c.fields.clone())
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(strip(&db), strip(&pure), "runs {} -> {}", a + 1, b + 1);
        }
    }
}

/// A store of two runs: sshd at minute 0; sshd, and web on 8080, at minute 10.
fn store_where_web_came_at_10() -> (tempfile::TempDir, Store) {
    let (t, mut store) = new_store();
    store
        .record(&snap(0, vec![listener(22, 1, "sshd")]))
        .unwrap();
    store
        .record(&snap(
            10,
            vec![listener(22, 1, "sshd"), listener(8080, 2, "web")],
        ))
        .unwrap();
    (t, store)
}

#[test]
fn min_age_debounces() {
    let (_t, mut store) = store_where_web_came_at_10();
    store
        .record(&snap(
            12,
            vec![
                listener(22, 1, "sshd"),
                listener(8080, 2, "web"),
                listener(9090, 3, "x"),
            ],
        ))
        .unwrap();
    let opts = DiffOptions {
        min_age: Some(Duration::from_secs(60)),
        ..DiffOptions::default()
    };
    let d = store.diff(&Point::Run(1), &Point::Last, &opts).unwrap();
    assert_eq!(kinds(&d), vec![(8080, "added")]);
}

/// A library caller's `min_age` of `Duration::MAX` wrapped in `as i64`, so changes
/// counted as held long enough: nothing has held that long.
#[test]
fn huge_min_age_does_not_overflow() {
    let (_t, store) = store_where_web_came_at_10();
    for min_age in [Duration::MAX, Duration::from_millis(u64::MAX)] {
        let opts = DiffOptions {
            min_age: Some(min_age),
            ..DiffOptions::default()
        };
        let d = store.diff(&Point::Run(1), &Point::Last, &opts).unwrap();
        assert!(kinds(&d).is_empty(), "{:?}", kinds(&d));
    }
}

#[test]
fn unchanged_snapshots_add_one_small_row() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("h.db");
    let mut store = Store::open(&path).unwrap();
    let ls = many(1000);
    store.record(&snap(0, ls.clone())).unwrap();
    store.checkpoint().unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let runs = 300u32;
    let started = std::time::Instant::now();
    for i in 1..=runs {
        store.record(&snap(i, ls.clone())).unwrap();
    }
    store.checkpoint().unwrap();
    let grown = std::fs::metadata(&path).unwrap().len() - before;
    let per_run = grown as f64 / f64::from(runs);
    eprintln!(
        "{runs} unchanged runs of 1000 listeners: +{grown} bytes ({per_run:.1} per run, {:.1} ms per run); 10,000 runs: +{:.0} KiB",
        started.elapsed().as_secs_f64() * 1e3 / f64::from(runs),
        per_run * 10_000.0 / 1024.0
    );
    assert!(per_run * 10_000.0 < 1_000_000.0, "{per_run} bytes per run");
    assert!(
        store
            .diff(&Point::Run(1), &Point::Last, &DiffOptions::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn points_that_do_not_exist() {
    let (_t, mut store) = new_store();
    let e = store.resolve(&Point::Last).unwrap_err();
    assert!(e.to_string().contains("no run recorded yet"), "{e}");
    store.record(&snap(60, vec![])).unwrap();
    let e = store.resolve(&Point::Run(9)).unwrap_err();
    assert!(e.to_string().contains("run 9 is not in"), "{e}");
    let e = store.resolve(&Point::Baseline).unwrap_err();
    assert!(e.to_string().contains("no baseline"), "{e}");
    let early = Point::parse("2026-11-01T00:00:00Z").unwrap();
    let e = store.resolve(&early).unwrap_err();
    assert!(
        e.to_string()
            .contains("no run at or before 2026-11-01T00:00:00Z"),
        "{e}"
    );
    let late = Point::parse("2026-12-01T05:00:00Z").unwrap();
    assert_eq!(store.resolve(&late).unwrap(), 1);
}

#[test]
fn baseline_and_new_listeners() {
    let (_t, mut store) = new_store();
    store
        .record(&snap(0, vec![listener(22, 1, "sshd")]))
        .unwrap();
    assert_eq!(store.baseline_accept(&Point::Last).unwrap(), 1);
    let now = vec![listener(22, 2, "sshd"), listener(6666, 3, "nc")];
    store.record(&snap(5, now.clone())).unwrap();
    let new = store.not_in_baseline(&now).unwrap();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].port, 6666);
    assert!(store.baseline().unwrap().unwrap().baseline);
    let d = store
        .diff(&Point::Baseline, &Point::Last, &DiffOptions::default())
        .unwrap();
    assert_eq!(kinds(&d), vec![(22, "restarted"), (6666, "added")]);
}

#[test]
fn timeline_of_a_port_and_a_process() {
    let (_t, mut store) = new_store();
    store
        .record(&snap(0, vec![listener(8080, 1, "web")]))
        .unwrap();
    store
        .record(&snap(1, vec![listener(8080, 2, "web")]))
        .unwrap();
    store.record(&snap(2, vec![])).unwrap();
    store
        .record(&snap(
            3,
            vec![listener(8080, 3, "web"), listener(22, 4, "sshd")],
        ))
        .unwrap();
    let spans = store
        .timeline(&TimelineQuery {
            port: Some(8080),
            ..Default::default()
        })
        .unwrap();
    let shape: Vec<(i64, Option<i64>, Option<i64>, bool)> = spans
        .iter()
        .map(|s| {
            (
                s.first_seen.id,
                s.last_seen.as_ref().map(|r| r.id),
                s.ended,
                s.closed,
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (1, Some(1), Some(2), false),
            (2, Some(2), Some(3), true),
            (4, Some(4), None, false)
        ]
    );
    let by_name = store
        .timeline(&TimelineQuery {
            process: Some("ssh*".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_name.len(), 1);
}

#[test]
fn prune_keeps_baseline_and_consistency() {
    let (_t, mut store) = new_store();
    let mut snaps = Vec::new();
    for i in 0..10u32 {
        let mut ls = vec![listener(22, 1, "sshd")];
        if i % 3 == 0 {
            ls.push(listener(8000 + i as u16, 2, "x"));
        }
        let mut s = snap(i * 60, ls);
        sort(&mut s);
        store.record(&s).unwrap();
        snaps.push(s);
    }
    store.baseline_accept(&Point::Run(2)).unwrap();
    let now: jiff::Timestamp = "2026-12-01T09:30:00Z".parse().unwrap();
    // keep runs started in the last 3.5 h: 7 (06:00), 8, 9, 10
    let p = store
        .prune(Duration::from_secs(3 * 3600 + 1800), now)
        .unwrap();
    assert_eq!(p.runs, 5);
    let ids: Vec<i64> = store.runs().unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![2, 7, 8, 9, 10]);
    for id in ids {
        assert_eq!(
            store.snapshot(id).unwrap(),
            snaps[id as usize - 1],
            "run {id}"
        );
    }
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let d = store
        .diff(&Point::Baseline, &Point::Last, &DiffOptions::default())
        .unwrap();
    assert_eq!(kinds(&d), vec![(8009, "added")]);
}

#[test]
fn corrupt_files_are_refused_and_untouched() {
    let t = tempfile::tempdir().unwrap();
    let junk = t.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database at all, just text\n").unwrap();
    let e = Store::open(&junk).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("left untouched"), "{e}");
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        b"this is not a database at all, just text\n"
    );

    // a real database, damaged in the middle
    let good = t.path().join("good.db");
    {
        let mut s = Store::open(&good).unwrap();
        for i in 0..20 {
            s.record(&snap(i, many(200 + i as u16))).unwrap();
        }
        s.checkpoint().unwrap();
    }
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 2..n / 2 + 8192] {
        *b = 0x5a;
    }
    std::fs::write(&good, &bytes).unwrap();
    let e = Store::open(&good).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert_eq!(std::fs::read(&good).unwrap(), bytes);

    // some other program's SQLite database
    let other = t.path().join("other.db");
    {
        let c = rusqlite_conn(&other);
        c.execute_batch("CREATE TABLE x(a); INSERT INTO x VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    assert!(matches!(
        Store::open(&other).unwrap_err(),
        Error::Corrupt { .. }
    ));
    assert_eq!(std::fs::read(&other).unwrap(), before);
}

/// A history database of one run whose schema version was then set to `version`, and
/// its bytes.
fn db_of_schema_version(dir: &std::path::Path, version: i32) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("h.db");
    Store::open(&path)
        .unwrap()
        .record(&snap(0, many(3)))
        .unwrap();
    let c = rusqlite_conn(&path);
    c.execute_batch(&format!(
        "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE; PRAGMA user_version = {version};"
    ))
    .unwrap();
    drop(c);
    let before = std::fs::read(&path).unwrap();
    (path, before)
}

#[test]
fn newer_schema_is_refused_and_untouched() {
    let t = tempfile::tempdir().unwrap();
    let (path, before) = db_of_schema_version(t.path(), 99);
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::NewerSchema { found: 99, .. }), "{e}");
    assert!(e.to_string().contains("schema version 99"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn negative_schema_version_is_corrupt_not_skipped_migrations() {
    let t = tempfile::tempdir().unwrap();
    let (path, before) = db_of_schema_version(t.path(), -1);
    let e = Store::open(&path).unwrap_err();
    assert!(matches!(e, Error::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("schema version -1"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

fn rusqlite_conn(p: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(p).unwrap()
}

fn audit(ports: &[u16]) -> portolan_model::AuditReport {
    use portolan_model::{AuditReport, AuditSummary, Counts, Finding, Remediation, Rule};
    let findings: Vec<Finding> = ports
        .iter()
        .map(|&p| {
            let mut f = Finding::new(
                Rule::NotAllowed,
                format!("port {p} is not allowed"),
                Remediation::new("Stop it: `systemctl stop x`."),
            );
            f.protocol = Some(Proto::Tcp);
            f.port = Some(p);
            f.addresses = vec!["0.0.0.0".parse().unwrap()];
            f.seal()
        })
        .collect();
    AuditReport {
        summary: AuditSummary {
            policy: "baseline".into(),
            listeners: Some(ports.len()),
            exposed: Some(ports.len()),
            reachable: None,
            unreachable: None,
            not_checked: None,
            findings: findings.len(),
            severities: Counts::default(),
            suppressed: 0,
            next_step: "fix it".into(),
        },
        findings,
        suppressed: vec![],
    }
}

#[test]
fn findings_round_trip_and_diff_by_fingerprint() {
    let (_t, mut store) = new_store();
    let mut a = snap(
        0,
        vec![listener(23, 1, "inetd"), listener(6379, 2, "redis")],
    );
    a.audit = Some(audit(&[6379, 23]));
    let mut b = snap(5, vec![listener(23, 1, "inetd")]);
    b.audit = Some(audit(&[23]));
    let ida = store.record(&a).unwrap();
    let idb = store.record(&b).unwrap();
    let mut sa = a.clone();
    sort(&mut sa);
    assert_eq!(store.snapshot(ida).unwrap(), sa);
    assert_eq!(store.snapshot(idb).unwrap(), b);
    let d = store
        .diff(&Point::Run(1), &Point::Run(2), &DiffOptions::default())
        .unwrap();
    let subjects: Vec<(&str, &str)> = d
        .changes
        .iter()
        .map(|c| {
            let k = match c.subject {
                portolan_model::Subject::Finding { .. } => "finding",
                portolan_model::Subject::Listener(_) => "listener",
                portolan_model::Subject::Port { .. } => "port",
            };
            (k, c.change.as_str())
        })
        .collect();
    assert_eq!(
        subjects,
        vec![("listener", "removed"), ("finding", "removed")]
    );
}
