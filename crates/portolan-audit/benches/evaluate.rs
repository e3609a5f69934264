//! Evaluation of 10,000 listeners against a profile and against the baseline (the audit's
//! share of "inventory plus evaluation under 1 s").

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_audit::policy::Policy;
use portolan_audit::{Context, Date, Inputs, Listener, NoHost, Process, evaluate, profiles};
use portolan_registry::{Proto, Registry};

fn listeners(n: usize) -> Vec<Listener> {
    (0..n)
        .map(|i| {
            let port = 1 + (i % 65000) as u16;
            let addr = match i % 4 {
                0 => "0.0.0.0",
                1 => "::",
                2 => "127.0.0.1",
                _ => "192.0.2.10",
            };
            let proto = if i % 3 == 0 { Proto::Udp } else { Proto::Tcp };
            let mut p = Process::new(1000 + (i % 500) as u32, format!("daemon{}", i % 500));
            p.exe = Some(format!("/usr/sbin/daemon{}", i % 500));
            p.user = Some("root".into());
            p.unit = Some(format!("daemon{}.service", i % 500));
            Listener::new(proto, addr.parse().unwrap(), port).with_process(p)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let inputs = Inputs::inside(listeners(10_000));
    let ctx = Context {
        policy_arg: Some("--profile mail-server".into()),
        ..Context::new(
            Date::new(2026, 11, 27).unwrap(),
            Registry::embedded(),
            &NoHost,
        )
    };
    let mail = profiles::load("mail-server", Registry::embedded()).unwrap();
    c.bench_function("evaluate 10k listeners, mail-server", |b| {
        b.iter(|| black_box(evaluate(&mail, &inputs, &ctx)))
    });
    let baseline = Policy::baseline();
    c.bench_function("evaluate 10k listeners, baseline", |b| {
        b.iter(|| black_box(evaluate(&baseline, &inputs, &ctx)))
    });
    let text = profiles::find("mail-server").unwrap().text;
    c.bench_function("parse mail-server profile", |b| {
        b.iter(|| black_box(Policy::parse(text, "p", Registry::embedded()).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
