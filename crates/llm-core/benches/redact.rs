//! The cost of redaction at ingress on the largest body we read (16 MiB, `MAX_BODY_BYTES`).
//!
//! - `body/none_registered`: no secret registered (a keyless local provider): one read lock.
//! - `body/three_registered`: three keys registered, none in the body (the common case): a SIMD
//!   substring search per key.
//! - `stream/three_registered`: the same body through `StreamRedactor` in 16 KiB chunks, as
//!   `body_stream` sees it.
//!
//! The secrets registry is process-wide and only grows, so the keyless case runs first.
//! Run: `cargo bench -p llm-core --bench redact`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llm_core::{StreamRedactor, redact_bytes, register_secret};

const BODY_BYTES: usize = 16 * 1024 * 1024;
const CHUNK_BYTES: usize = 16 * 1024;

/// A body shaped like a long answer: JSON text with no key in it.
fn body() -> Vec<u8> {
    let line = br#"data: {"choices":[{"delta":{"content":"the quick brown fox jumps over the lazy dog "}}]}"#;
    line.iter()
        .chain(b"\n\n")
        .copied()
        .cycle()
        .take(BODY_BYTES)
        .collect()
}

fn redaction(c: &mut Criterion) {
    let body = body();
    let mut group = c.benchmark_group("body");
    group.throughput(Throughput::Bytes(BODY_BYTES as u64));
    group.sample_size(20);
    group.bench_function("none_registered", |b| {
        b.iter(|| black_box(redact_bytes(black_box(&body))).len());
    });
    for key in [
        "canary-bench-0000-first-DO-NOT-LEAK",
        "canary-bench-0000-second-key-DO-NOT-LEAK",
        "canary-bench-0000-third-a-much-longer-key-DO-NOT-LEAK",
    ] {
        register_secret(key);
    }
    group.bench_function("three_registered", |b| {
        b.iter(|| black_box(redact_bytes(black_box(&body))).len());
    });
    group.finish();

    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(BODY_BYTES as u64));
    group.sample_size(20);
    group.bench_function("three_registered", |b| {
        b.iter(|| {
            let mut redactor = StreamRedactor::new();
            let mut passed = 0;
            for chunk in body.chunks(CHUNK_BYTES) {
                passed += redactor
                    .push(chunk)
                    .map_or(chunk.len(), |clean| clean.len());
            }
            black_box(passed + redactor.finish().len())
        });
    });
    group.finish();
}

criterion_group!(benches, redaction);
criterion_main!(benches);
