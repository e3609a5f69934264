//! Reliability with real processes: writers killed with SIGKILL, and two writers at once.
//! The test binary runs itself as the writer (`writer_child`, active only with
//! `PORTOLAN_STORE_CHILD` set).

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use portolan_store::{Point, Store};

fn writer(path: &str, count: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_child", "--nocapture", "--test-threads=1"])
        .env("PORTOLAN_STORE_CHILD", path)
        .env("PORTOLAN_STORE_CHILD_COUNT", count)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn committed(out: &str) -> Vec<i64> {
    out.lines()
        // libtest may print `test writer_child ... ` before the first line
        .filter_map(|l| l.split_once("committed ").map(|(_, n)| n))
        .map(|n| n.trim().parse().unwrap())
        .collect()
}

#[test]
fn writer_child() {
    let Ok(path) = std::env::var("PORTOLAN_STORE_CHILD") else {
        return;
    };
    let count: u32 = std::env::var("PORTOLAN_STORE_CHILD_COUNT")
        .unwrap()
        .parse()
        .unwrap();
    let mut store = Store::open(&path).unwrap();
    let mut rng = fastrand::Rng::new();
    let mut ls = many(300);
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let k = rng.usize(..ls.len());
        ls[k] = listener(ls[k].port, rng.u32(1..1_000_000), "daemon");
        ls.push(listener(20_000 + rng.u16(..5000), 1, "extra"));
        ls.sort_by_key(|l| l.port);
        ls.dedup_by_key(|l| l.port);
        let id = store.record(&snap(i, ls.clone())).unwrap();
        writeln!(out, "committed {id}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_loses_nothing_committed() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("h.db");
    let p = path.to_str().unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    for round in 0..100 {
        assert!(Instant::now() < deadline, "out of time at round {round}");
        let mut child = writer(p, "1000");
        std::thread::sleep(Duration::from_millis(rng.u64(20..400)));
        child.kill().unwrap(); // SIGKILL
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child.wait().unwrap();
        all.extend(committed(&out));
        // it opens again after every kill
        let store = Store::open(&path).unwrap();
        if let Some(&last) = all.last() {
            assert!(
                store.resolve(&Point::Run(last)).is_ok(),
                "run {last} lost in round {round}"
            );
        }
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert!(
        all.len() > 10,
        "only {} runs committed in 100 rounds",
        all.len()
    );
    for id in &all {
        store.snapshot(*id).unwrap();
    }
    eprintln!("100 kills, {} committed runs, all present", all.len());
}

#[test]
fn two_writers_at_once_both_succeed() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("h.db");
    let p = path.to_str().unwrap();
    let mut a = writer(p, "40");
    let mut b = writer(p, "40");
    let mut outs = Vec::new();
    for c in [&mut a, &mut b] {
        let mut out = String::new();
        c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert!(c.wait().unwrap().success());
        outs.push(committed(&out));
    }
    assert_eq!(outs[0].len(), 40);
    assert_eq!(outs[1].len(), 40);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.runs().unwrap().len(), 80);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}
