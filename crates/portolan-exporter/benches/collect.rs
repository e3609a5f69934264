//! One uncached collection and encoding at 10k and 100k listeners, through the encoder
//! alone (borrowed, and consumed as the exporter does) and through a real scrape of the
//! exporter (fake collector, min interval 0). Prints the process's peak RSS after each
//! size.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion};
use portolan_exporter::{CollectResult, CollectorStatus, ServeConfig, Server};
use portolan_model::{Listener, Process, Proto, Snapshot};
use portolan_report::metrics::{self, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn listeners(n: usize) -> Vec<Listener> {
    let procs: Vec<Arc<Process>> = (0..200)
        .map(|i| {
            let mut p = Process::new(1000 + i, format!("daemon-{i}"));
            p.unit = Some(format!("daemon-{i}.service"));
            Arc::new(p)
        })
        .collect();
    // As the inventory makes them: namespace labels shared, service names borrowed from
    // the registry.
    let netns: Vec<Arc<str>> = (0..=n / 60000).map(|k| format!("ns{k}").into()).collect();
    (0..n)
        .map(|i| {
            let proto = if i % 3 == 0 { Proto::Udp } else { Proto::Tcp };
            let addr = match i % 4 {
                0 => "0.0.0.0".to_string(),
                1 => "::".to_string(),
                2 => "127.0.0.1".to_string(),
                _ => format!("198.18.{}.{}", (i / 250) % 250, i % 250),
            };
            let mut l = Listener::new(proto, addr.parse().unwrap(), (1024 + i % 60000) as u16);
            l.netns = Arc::clone(&netns[i / 60000]);
            l.service = Some(std::borrow::Cow::Borrowed(if i % 2 == 0 {
                "http-alt"
            } else {
                "unknown"
            }));
            l.processes = vec![Arc::clone(&procs[i % procs.len()])].into();
            l
        })
        .collect()
}

fn hwm_kib() -> u64 {
    portolan_testkit::peak_rss_kib(None).unwrap_or(0)
}

async fn scrape(addr: std::net::SocketAddr) -> usize {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Counted, not kept: the client's memory is not the exporter's.
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf[..]).await.unwrap();
        if total == 0 {
            assert!(buf.starts_with(b"HTTP/1.1 200"));
        }
        if n == 0 {
            break total;
        }
        total += n;
    }
}

/// An exporter on a free loopback port, uncached, whose collector lists `listeners()`:
/// its address and the server, to run.
async fn exporter(
    listeners: impl Fn() -> Vec<Listener> + Send + Sync + 'static,
) -> (std::net::SocketAddr, Server) {
    let collector = Arc::new(move || CollectResult {
        snapshot: Snapshot {
            listeners: listeners(),
            ..Snapshot::default()
        },
        collectors: vec![CollectorStatus::up("inventory")],
        unexpected: None,
    });
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        min_interval: Duration::ZERO,
        ..ServeConfig::default()
    };
    let server = Server::bind(config, collector).await.unwrap();
    (server.local_addr(), server)
}

/// `PORTOLAN_BENCH_RSS=N`: the exporter alone (a collector that builds N listeners on
/// each collection, nothing else held), one uncached scrape, then its peak RSS.
fn rss_only(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let before = hwm_kib();
    let bytes = rt.block_on(async {
        let (addr, server) = exporter(move || listeners(n)).await;
        tokio::spawn(server.run(std::future::pending()));
        let mut total = 0;
        for _ in 0..3 {
            total = scrape(addr).await;
        }
        total
    });
    eprintln!(
        "exporter, {n} listeners: {bytes} bytes per scrape, peak RSS {} KiB (before serving {before} KiB)",
        hwm_kib()
    );
}

fn main() {
    if let Some(n) = std::env::var("PORTOLAN_BENCH_RSS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return rss_only(n);
    }
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for n in [10_000usize, 100_000] {
        let base = Arc::new(listeners(n));
        let mut g = c.benchmark_group("metrics");
        let snap = Arc::new(Snapshot {
            listeners: base.to_vec(),
            ..Snapshot::default()
        });
        g.bench_with_input(BenchmarkId::new("encode", n), &n, |b, _| {
            b.iter(|| {
                let m = Metrics::new(
                    Arc::clone(&snap),
                    vec![CollectorStatus::up("inventory")],
                    SystemTime::now(),
                    Duration::ZERO,
                );
                metrics::encode_openmetrics(&m).len()
            })
        });
        // The exporter's path: the snapshot is its own, and consumed while written.
        g.bench_with_input(BenchmarkId::new("into_openmetrics", n), &n, |b, _| {
            b.iter_batched(
                || {
                    Metrics::new(
                        Snapshot {
                            listeners: base.to_vec(),
                            ..Snapshot::default()
                        },
                        vec![CollectorStatus::up("inventory")],
                        SystemTime::now(),
                        Duration::ZERO,
                    )
                },
                |m| metrics::into_openmetrics(m).len(),
                criterion::BatchSize::LargeInput,
            )
        });
        drop(snap);
        let src = Arc::clone(&base);
        let (addr, stop) = rt.block_on(async {
            let (addr, server) = exporter(move || src.to_vec()).await;
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(server.run(async {
                let _ = rx.await;
            }));
            (addr, tx)
        });
        g.bench_with_input(BenchmarkId::new("scrape_uncached", n), &n, |b, _| {
            b.iter(|| rt.block_on(scrape(addr)))
        });
        g.finish();
        let _ = stop.send(());
        eprintln!("after {n} listeners: peak RSS {} KiB", hwm_kib());
    }
    c.final_summary();
}
