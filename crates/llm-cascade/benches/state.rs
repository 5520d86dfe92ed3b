//! The cost of the in-memory provider-state check the engine makes before each provider: a lock, a
//! map lookup by `provider/model`, and the verdict (cooling, breaker, four budgets).
//!
//! Run: `cargo bench -p llm-cascade --bench state`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use llm_cascade::{Budget, MemoryStore, StateSettings, Verdict};

fn check(c: &mut Criterion) {
    let store = MemoryStore::default();
    let settings = StateSettings::default();
    let budget = Budget {
        prefix: "GROQ".to_owned(),
        rpm: Some(u64::MAX),
        tpd: Some(u64::MAX),
        ..Budget::default()
    };
    let mut now = 1_700_000_000_000_u64;
    c.bench_function("state_check_memory", |b| {
        b.iter(|| {
            now += 1;
            let mut verdict = Verdict::Go;
            store.modify_now(black_box("groq/llama-3.3-70b-versatile"), &mut |state| {
                verdict = state.check(now, 7, &budget, &settings, false);
            });
            black_box(verdict)
        });
    });
}

criterion_group!(benches, check);
criterion_main!(benches);
