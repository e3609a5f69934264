//! `record` of 100k listeners (budget 1 s), a diff between two points of a
//! 100k-listener history (budget 200 ms), and unchanged records of 1,000 listeners
//! (the growth figure: 10,000 runs must add under 1 MB).

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_model::{Listener, Process, Proto, Snapshot};
use portolan_store::{DiffOptions, Point, Store};

fn listeners(n: u32, salt: u32) -> Vec<Listener> {
    (0..n)
        .map(|i| {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i / 60_000);
            let mut p = Process::new(1000 + i, "daemon");
            p.exe = Some("/usr/sbin/daemon".into());
            p.unit = Some("daemon.service".into());
            p.user = Some("root".into());
            // one in a hundred restarted when salted
            if salt > 0 && i % 100 == 0 {
                p.pid += salt;
            }
            let mut l =
                Listener::new(Proto::Tcp, addr.into(), (1 + i % 60_000) as u16).with_process(p);
            l.netns = Arc::from("host");
            l.inode = u64::from(i) + 1;
            l
        })
        .collect()
}

fn snap(ls: Vec<Listener>, minute: u32) -> Snapshot {
    let mut s = Snapshot::default();
    s.run.started = format!("2026-12-01T{:02}:{:02}:00Z", minute / 60, minute % 60);
    s.run.host = "bench".into();
    s.listeners = ls;
    s
}

/// This process's user + system CPU seconds (/proc/self/stat, clock ticks of 10 ms).
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let first = snap(listeners(100_000, 0), 0);
    let second = snap(listeners(100_000, 7), 1);
    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    let mut n = 0;
    g.bench_function("record 100k listeners (new database)", |b| {
        b.iter(|| {
            n += 1;
            let mut s = Store::open(dir.path().join(format!("r{n}.db"))).unwrap();
            s.record(&first).unwrap()
        })
    });
    let mut store = Store::open(dir.path().join("h.db")).unwrap();
    store.record(&first).unwrap();
    store.record(&second).unwrap();
    let mut minute = 2;
    g.bench_function("record 100k listeners (1% restarted)", |b| {
        b.iter(|| {
            minute += 1;
            let s = if minute % 2 == 0 { &first } else { &second };
            store.record(s).unwrap()
        })
    });
    let all = DiffOptions {
        show_noise: true,
        ..DiffOptions::default()
    };
    g.bench_function("diff two points of a 100k-listener history", |b| {
        b.iter(|| {
            let d = store.diff(&Point::Run(1), &Point::Run(2), &all).unwrap();
            assert_eq!(d.changes.len(), 1000);
            d
        })
    });
    g.finish();

    // CPU time, which a loaded machine does not inflate as it does wall time.
    let t = cpu();
    let mut s = Store::open(dir.path().join("cpu.db")).unwrap();
    s.record(&first).unwrap();
    let rec1 = cpu() - t;
    let t = cpu();
    s.record(&second).unwrap();
    let rec2 = cpu() - t;
    let t = cpu();
    for _ in 0..10 {
        s.diff(&Point::Run(1), &Point::Run(2), &all).unwrap();
    }
    let diff = (cpu() - t) / 10.0;
    eprintln!(
        "CPU time: record 100k (new) {rec1:.3} s, record 100k (1% restarted) {rec2:.3} s, diff {:.1} ms",
        diff * 1e3
    );

    // Growth: unchanged records of 1,000 listeners.
    let path = dir.path().join("growth.db");
    let mut s = Store::open(&path).unwrap();
    let base = snap(listeners(1000, 0), 0);
    s.record(&base).unwrap();
    s.checkpoint().unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let t = Instant::now();
    for _ in 0..10_000 {
        s.record(&base).unwrap();
    }
    s.checkpoint().unwrap();
    let grown = std::fs::metadata(&path).unwrap().len() - before;
    eprintln!(
        "10,000 unchanged runs of 1,000 listeners: +{grown} bytes, {:.2} ms per run",
        t.elapsed().as_secs_f64() * 1e3 / 10_000.0
    );
    assert!(grown < 1_000_000);
}

criterion_group!(benches, bench);
criterion_main!(benches);
