//! The two socket-table parsers on 10,000 sockets: a netlink sock_diag dump and a
//! /proc/net/tcp6 table.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portolan_inventory::fake::sock;
use portolan_inventory::{Family, diag, procnet};
use portolan_registry::Proto;

const N: usize = 10_000;

fn sockets(v6: bool) -> Vec<portolan_inventory::RawSocket> {
    (0..N)
        .map(|i| {
            let addr: IpAddr = if v6 {
                "2001:2::2".parse().unwrap()
            } else {
                "198.18.0.2".parse().unwrap()
            };
            sock(
                Proto::Tcp,
                &addr.to_string(),
                10_000 + i as u16,
                Some(true),
                0,
                i as u64,
            )
        })
        .collect()
}

fn netlink(c: &mut Criterion) {
    let socks = sockets(true);
    // The kernel sends about 32 KiB per receive; parse in chunks of that size.
    let msgs: Vec<Vec<u8>> = socks.iter().map(|s| diag::encode(s, 1)).collect();
    let mut chunks: Vec<Vec<u8>> = vec![Vec::new()];
    for m in msgs {
        if chunks.last().unwrap().len() + m.len() > 32 * 1024 {
            chunks.push(Vec::new());
        }
        chunks.last_mut().unwrap().extend(m);
    }
    let mut g = c.benchmark_group("netlink");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("parse 10k tcp6 listeners", |b| {
        let mut out = Vec::with_capacity(N);
        b.iter(|| {
            out.clear();
            for c in &chunks {
                black_box(diag::parse(black_box(c), Proto::Tcp, &mut out).unwrap());
            }
            out.len()
        })
    });
    g.finish();
}

fn proc_net(c: &mut Criterion) {
    let socks = sockets(true);
    let mut text = String::from(procnet::HEADER);
    text.push('\n');
    for (i, s) in socks.iter().enumerate() {
        text.push_str(&procnet::format_line(i, s));
        text.push('\n');
    }
    let mut g = c.benchmark_group("proc_net");
    g.throughput(Throughput::Elements(N as u64));
    g.bench_function("parse 10k tcp6 lines", |b| {
        let mut out = Vec::with_capacity(N);
        b.iter(|| {
            out.clear();
            procnet::parse(black_box(&text), Proto::Tcp, Family::V6, &mut out).unwrap();
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, netlink, proc_net);
criterion_main!(benches);
