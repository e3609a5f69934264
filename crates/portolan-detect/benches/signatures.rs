//! The hot paths of detection that are not I/O: parsing the signature file (done once
//! per run) and matching transcripts against it (done once per probe answer).

use criterion::{Criterion, criterion_group, criterion_main};
use portolan_detect::Signatures;
use portolan_detect::sig::BUILTIN;

fn signatures(c: &mut Criterion) {
    c.bench_function("parse built-in signatures", |b| {
        b.iter(|| Signatures::parse(std::hint::black_box(BUILTIN), "builtin").unwrap())
    });
    let sigs = Signatures::builtin();
    let http = "HTTP/1.1 200 OK\nServer: nginx/1.22.1\nDate: Fri, 27 Nov 2026 11:00:00 GMT\nContent-Type: text/plain\n";
    c.bench_function("identify http (early match)", |b| {
        b.iter(|| sigs.identify(Some("http"), std::hint::black_box(http)))
    });
    let unknown = "\u{0}\u{1}binary greeting nobody knows\n".repeat(20);
    c.bench_function("identify unknown greeting (all signatures)", |b| {
        b.iter(|| sigs.identify(None, std::hint::black_box(&unknown)))
    });
}

criterion_group!(benches, signatures);
criterion_main!(benches);
