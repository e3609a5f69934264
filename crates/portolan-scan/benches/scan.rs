//! Hot paths of the SYN engine and the parsers: per-packet work has to stay far below the
//! microsecond a raw send costs.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_scan::packet::{self, CookieKey, SYN_LEN};
use portolan_scan::{PortSpec, Proto, Target, TargetSet};

const S: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1));
const D: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));

fn packets(c: &mut Criterion) {
    let key = CookieKey::new();
    c.bench_function("cookie", |b| {
        b.iter(|| key.cookie(black_box(S), black_box(D), 40000, black_box(443)))
    });
    let mut buf = [0u8; SYN_LEN];
    c.bench_function("build_syn", |b| {
        b.iter(|| packet::build_syn(&mut buf, S, D, 40000, black_box(443), black_box(7)))
    });
    // A SYN-ACK as a raw IPv4 socket delivers it.
    let mut pkt = vec![
        0x45, 0, 0, 44, 0, 0, 0, 0, 64, 6, 0, 0, 198, 18, 0, 2, 198, 18, 0, 1,
    ];
    pkt.extend_from_slice(&buf);
    pkt[33] = packet::TCP_SYN | packet::TCP_ACK;
    c.bench_function("parse_tcp_v4", |b| {
        b.iter(|| packet::parse_tcp_v4(black_box(&pkt)))
    });
}

fn parsers(c: &mut Criterion) {
    let none = |_: &str| Vec::new();
    c.bench_function("portspec_all_ports", |b| {
        b.iter(|| {
            PortSpec::parse(black_box("-"), &none)
                .unwrap()
                .ports(Proto::Tcp)
                .len()
        })
    });
    c.bench_function("portspec_list", |b| {
        b.iter(|| PortSpec::parse(black_box("T:22,80,443,8000-8100,U:53,161"), &none))
    });
    c.bench_function("targets_slash16_iterate", |b| {
        let t = [Target::parse("198.18.0.0/16").unwrap()];
        let ex = [Target::parse("198.18.7.0/24").unwrap()];
        b.iter(|| TargetSet::build(&t, &ex, false).unwrap().iter().count())
    });
}

criterion_group!(benches, packets, parsers);
criterion_main!(benches);
