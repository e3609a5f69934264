//! `portolan policy check` on policies of 1k, 10k and 100k `[[allow]]` entries: parsing
//! must stay near-linear in the number of entries (issue 10 item 12).

use std::fmt::Write;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use portolan_audit::policy::Policy;
use portolan_registry::Registry;

fn policy_text(n: usize) -> String {
    let mut t = String::from(
        "name = \"big\"\nforbid-cleartext = [\"telnet\", \"ftp\"]\nrequire = [\"ssh\"]\n",
    );
    t.push_str("[[allow]]\nservice = \"ssh\"\n");
    for i in 0..n {
        let port = 1024 + (i % 60000);
        let _ = write!(
            t,
            "[[allow]]\nservice = \"{port}/tcp\"\nbind = \"any\"\nfrom = [\"192.0.2.0/24\"]\n"
        );
    }
    t
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy_check");
    g.sample_size(10);
    for n in [1_000, 10_000, 100_000] {
        let text = policy_text(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| {
                let p = Policy::parse(black_box(text), "big.toml", Registry::embedded()).unwrap();
                black_box(p.allow.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
