//! What sharing provider state through Redis costs: a cascade call (one attempt, with token usage, so
//! the engine checks the state, reports the success and then the tokens) on the memory store and on a
//! `RedisStore` against a loopback Redis, and one state check alone on each. Before measuring, it
//! prints the round trips to Redis per call.
//!
//! Run: `LLM_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo bench -p llm-cascade --features redis
//! --bench redis_state` (without the variable only the memory store is measured).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use llm_cascade::{
    Cascade, CascadeBuilder, ChatRequest, MemoryStore, RedisStore, StateStore, Usage,
};

/// A provider that answers at once, with usage (so the tokens are reported too).
mod instant;

use instant::Instant;

fn stores() -> Vec<(&'static str, Arc<dyn StateStore>)> {
    let mut stores: Vec<(&'static str, Arc<dyn StateStore>)> =
        vec![("memory", Arc::new(MemoryStore::default()))];
    match std::env::var("LLM_TEST_REDIS_URL") {
        Ok(url) => {
            let prefix = format!("llm-cascade-bench:{:016x}:", fastrand::u64(..));
            let store = RedisStore::new(&url)
                .expect("a Redis URL")
                .with_prefix(prefix);
            stores.push(("redis", Arc::new(store)));
        }
        Err(_) => eprintln!("LLM_TEST_REDIS_URL is not set: measuring the memory store only"),
    }
    stores
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Round trips per call, over 1000 calls.
fn round_trips_per_call(runtime: &tokio::runtime::Runtime, cascade: &Cascade, name: &str) {
    let before = cascade.state_health().map_or(0, |h| h.round_trips);
    runtime.block_on(async {
        for _ in 0..1000 {
            cascade
                .chat(ChatRequest::from_prompt("hello"))
                .await
                .expect("answer");
        }
    });
    if let Some(health) = cascade.state_health() {
        let per_call = (health.round_trips - before) as f64 / 1000.0;
        eprintln!(
            "{name}: {per_call:.2} round trips per call ({} conflicts, {} fallbacks)",
            health.conflicts, health.fallbacks
        );
    }
}

fn per_call(c: &mut Criterion) {
    let runtime = runtime();
    let request = ChatRequest::from_prompt("hello");
    let mut group = c.benchmark_group("state_per_call");
    for (name, store) in stores() {
        let cascade = CascadeBuilder::new()
            .provider(Instant {
                usage: Some(Usage {
                    input_tokens: 3,
                    output_tokens: 1,
                }),
            })
            .build()
            .with_state_store(store);
        round_trips_per_call(&runtime, &cascade, name);
        group.bench_function(name, |b| {
            b.to_async(&runtime)
                .iter(|| async { black_box(cascade.chat(black_box(request.clone())).await) });
        });
    }
    group.finish();
}

fn one_check(c: &mut Criterion) {
    let runtime = runtime();
    let mut group = c.benchmark_group("state_one_change");
    for (name, store) in stores() {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| async {
                store
                    .modify(black_box("instant/m"), &mut |state| {
                        state.minute.requests += 1;
                    })
                    .await;
            });
        });
    }
    group.finish();
}

criterion_group!(benches, per_call, one_check);
criterion_main!(benches);
