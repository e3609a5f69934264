//! Lookups by port and by name (the goal: well under a microsecond), name_for (what
//! enrichment calls per socket), parsing a services file, and search.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_registry::services::parse_services;
use portolan_registry::{Origin, Proto, Registry};

/// A services file like Debian's: the first 360 IANA entries with a port, one line each.
fn sample_services() -> Vec<u8> {
    let mut s = String::new();
    for e in Registry::embedded()
        .entries(portolan_registry::Which::Iana)
        .iter()
        .filter(|e| {
            !e.name.is_empty() && e.proto.is_some() && e.ports.is_some_and(|p| p.is_single())
        })
        .take(360)
    {
        s.push_str(&format!(
            "{} {}/{}\n",
            e.name,
            e.ports.map_or(0, |p| p.first),
            e.protocol
        ));
    }
    s.into_bytes()
}

fn benches(c: &mut Criterion) {
    let iana = Registry::embedded();
    c.bench_function("iana by_port 443/tcp", |b| {
        b.iter(|| iana.by_port(black_box(443), Proto::Tcp))
    });
    c.bench_function("iana by_port 6010/tcp (range)", |b| {
        b.iter(|| iana.by_port(black_box(6010), Proto::Tcp))
    });
    c.bench_function("iana by_name https", |b| {
        b.iter(|| iana.by_name(black_box("https")))
    });
    c.bench_function("iana by_name whois++ (alias)", |b| {
        b.iter(|| iana.by_name(black_box("whois++")))
    });
    c.bench_function("iana name_for 443/tcp", |b| {
        b.iter(|| iana.name_for(black_box(443), Proto::Tcp))
    });

    let text = sample_services();
    let system = Registry::with_services(parse_services(&text), Origin::System);
    c.bench_function("merged by_port 443/tcp", |b| {
        b.iter(|| system.by_port(black_box(443), Proto::Tcp))
    });
    c.bench_function("merged by_name https", |b| {
        b.iter(|| system.by_name(black_box("https")))
    });
    c.bench_function("merged name_for 443/tcp", |b| {
        b.iter(|| system.name_for(black_box(443), Proto::Tcp))
    });
    c.bench_function("parse a 360-line services file", |b| {
        b.iter(|| parse_services(black_box(&text)))
    });
    c.bench_function("search mail", |b| b.iter(|| iana.search(black_box("mail"))));
}

criterion_group!(registry, benches);
criterion_main!(registry);
