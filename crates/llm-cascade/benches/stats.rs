//! The cost of counting one finished attempt in the per-process [`Stats`] (an observer called inline on
//! the request path), and of a snapshot after many records.
//!
//! Run: `cargo bench -p llm-cascade --bench stats`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use llm_cascade::{Outcome, Stats, Usage};

fn record(c: &mut Criterion) {
    let stats = Stats::new();
    let usage = Some(Usage {
        input_tokens: 12,
        output_tokens: 5,
    });
    let mut ms = 0_u64;
    c.bench_function("stats_record", |b| {
        b.iter(|| {
            // Latencies spread over many buckets, as a real mix of providers would.
            ms = (ms + 37) % 30_000;
            stats.record(
                black_box("groq"),
                Outcome::Ok,
                Duration::from_millis(ms),
                usage,
            );
        });
    });
    c.bench_function("stats_snapshot", |b| {
        b.iter(|| black_box(stats.snapshot()));
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
