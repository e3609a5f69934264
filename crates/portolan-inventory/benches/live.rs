//! The live inventory, job by job, on sockets this bench opens itself: N/2 TCP listeners
//! and N/2 UDP sockets on 127.0.0.1, ports chosen by the kernel
//! (`PORTOLAN_BENCH_SOCKETS=N`, default 10,000, at most the open-file limit allows).
//!
//!   sockets   the netlink sock_diag dumps of the current namespace
//!   owners    the walk of /proc/*/fd for those sockets' owners (root sees every process)
//!   collect   the whole inventory: sockets, owners, users, services, sorting
//!
//! It prints the process's peak RSS at the end. Run as root for the full walk:
//! `cargo bench -p portolan-inventory --bench live`.

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput};
use portolan_inventory::{InodeSet, Inventory, LiveOs, NetnsChoice, Options, Os};
use portolan_registry::Registry;

fn open_files_limit() -> usize {
    // The soft limit, as the shell reports it; 1024 when it cannot be read.
    std::process::Command::new("sh")
        .args(["-c", "ulimit -n"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

fn hwm_kib() -> u64 {
    portolan_testkit::peak_rss_kib(None).unwrap_or(0)
}

fn main() {
    let want: usize = std::env::var("PORTOLAN_BENCH_SOCKETS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let n = want.min(open_files_limit().saturating_sub(200)) / 2 * 2;
    let tcp: Vec<TcpListener> = (0..n / 2)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a TCP listener on 127.0.0.1"))
        .collect();
    let udp: Vec<UdpSocket> = (0..n / 2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1"))
        .collect();
    let os = LiveOs::new();
    let registry = Registry::embedded();
    let opts = Options::default();
    let found = Inventory::collect(&opts, registry)
        .expect("an inventory")
        .listeners
        .len();
    assert!(
        found >= n,
        "the inventory saw {found} sockets, want at least {n}"
    );
    eprintln!("{n} sockets opened; the inventory sees {found}");

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut g = c.benchmark_group("inventory");
    g.throughput(Throughput::Elements(found as u64));
    let ns = os
        .namespaces(&NetnsChoice::Current)
        .expect("the current namespace")
        .remove(0);
    let query = portolan_inventory::SocketQuery {
        tcp: true,
        udp: true,
        ipv4: true,
        ipv6: true,
        all: false,
        source: portolan_inventory::SocketSource::Netlink,
    };
    g.bench_with_input(BenchmarkId::new("sockets", found), &found, |b, _| {
        b.iter(|| os.sockets(&ns, &query).expect("a dump").sockets.len())
    });
    let inodes: InodeSet = os
        .sockets(&ns, &query)
        .expect("a dump")
        .sockets
        .iter()
        .map(|s| s.inode)
        .collect();
    g.bench_with_input(BenchmarkId::new("owners", found), &found, |b, _| {
        b.iter(|| os.owners(&inodes, false).owners.len())
    });
    g.bench_with_input(BenchmarkId::new("collect", found), &found, |b, _| {
        b.iter(|| {
            Inventory::collect_with(&os, &opts, registry)
                .expect("an inventory")
                .listeners
                .len()
        })
    });
    g.finish();
    c.final_summary();
    eprintln!("peak RSS {} KiB", hwm_kib());
    drop((tcp, udp));
}
