//! What sharing provider state through Redis costs: a cascade call (one attempt, with token usage, so
//! the engine checks the state and then reports the success with its tokens) on the memory store and
//! on a `RedisStore` against a loopback Redis, and one state check alone on each. Before measuring, it
//! prints the round trips to Redis per call and per attempt: healthy calls, streamed calls, and calls
//! where a failing provider comes first (one that fails without changing its state, and one whose
//! server errors open its breaker).
//!
//! Run: `LLM_TEST_REDIS_URL=redis://127.0.0.1:6379/ cargo bench -p llm-cascade --features redis
//! --bench redis_state` (without the variable only the memory store is measured).

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;
use llm_cascade::{
    Cascade, CascadeBuilder, CascadeConfig, ChatRequest, ChatResponse, ChatStream, Error,
    ErrorKind, MemoryStore, Provider, RedisStore, StateStore, Usage,
};

/// A provider that answers at once, with usage (so the tokens are reported too).
mod instant;

use instant::Instant;

fn redis_store(url: &str) -> RedisStore {
    let prefix = format!("llm-cascade-bench:{:016x}:", fastrand::u64(..));
    RedisStore::new(url)
        .expect("a Redis URL")
        .with_prefix(prefix)
}

fn redis_url() -> Option<String> {
    let url = std::env::var("LLM_TEST_REDIS_URL").ok();
    if url.is_none() {
        eprintln!("LLM_TEST_REDIS_URL is not set: measuring the memory store only");
    }
    url
}

fn stores() -> Vec<(&'static str, Arc<dyn StateStore>)> {
    let mut stores: Vec<(&'static str, Arc<dyn StateStore>)> =
        vec![("memory", Arc::new(MemoryStore::default()))];
    if let Some(url) = redis_url() {
        stores.push(("redis", Arc::new(redis_store(&url))));
    }
    stores
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Fails every call at once with an error of `kind`.
#[derive(Debug)]
struct Failing {
    kind: ErrorKind,
}

#[async_trait]
impl Provider for Failing {
    fn id(&self) -> &str {
        "failing"
    }
    fn model(&self) -> &str {
        "m"
    }
    fn base_url(&self) -> &str {
        "memory://"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, Error> {
        Err(Error::new(self.kind, "failing on purpose").with_provider("failing"))
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::new(self.kind, "failing on purpose").with_provider("failing"))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn usage() -> Option<Usage> {
    Some(Usage {
        input_tokens: 3,
        output_tokens: 1,
    })
}

/// A cascade on `store`: `failing` first when given (one attempt per provider), then the instant one.
fn cascade(store: Arc<dyn StateStore>, failing: Option<ErrorKind>) -> Cascade {
    let mut config = CascadeConfig::default();
    config.max_attempts = 1;
    let mut builder = CascadeBuilder::new().config(config);
    if let Some(kind) = failing {
        builder = builder.provider(Failing { kind });
    }
    builder
        .provider(Instant { usage: usage() })
        .build()
        .with_state_store(store)
}

/// One call, whole or streamed to its end; the attempts that reached a provider.
async fn call(cascade: &Cascade, streamed: bool) -> usize {
    let request = ChatRequest::from_prompt("hello");
    if streamed {
        let mut stream = cascade.chat_stream(request).await.expect("a stream");
        while let Some(event) = stream.next().await {
            event.expect("an event");
        }
        return stream
            .attempts()
            .iter()
            .filter(|a| a.skip.is_none())
            .count();
    }
    let answer = cascade.chat(request).await.expect("answer");
    answer.attempts.iter().filter(|a| a.skip.is_none()).count()
}

/// Round trips per call and per attempt over 1000 calls (a fresh key prefix each), then a flush.
fn round_trips(runtime: &tokio::runtime::Runtime, url: &str) {
    let rows = [
        ("healthy", None, false),
        ("streamed", None, true),
        (
            "model_not_found first",
            Some(ErrorKind::ModelNotFound),
            false,
        ),
        ("server errors first", Some(ErrorKind::ServerError), false),
    ];
    for (name, failing, streamed) in rows {
        let cascade = cascade(Arc::new(redis_store(url)), failing);
        let calls = 1000;
        let attempts: usize = runtime.block_on(async {
            let mut attempts = 0;
            for _ in 0..calls {
                attempts += call(&cascade, streamed).await;
            }
            attempts
        });
        let health = cascade.state_health().expect("a Redis store");
        runtime.block_on(cascade.flush_state());
        let flushed =
            cascade.state_health().expect("a Redis store").round_trips - health.round_trips;
        eprintln!(
            "redis, {name}: {:.3} round trips per call, {:.3} per attempt ({} calls, {attempts} \
             attempts, {} conflicts, {} fallbacks, {} background flushes; {flushed} to flush at the end)",
            health.round_trips as f64 / calls as f64,
            health.round_trips as f64 / attempts as f64,
            calls,
            health.conflicts,
            health.fallbacks,
            health.flushes,
        );
    }
}

fn per_call(c: &mut Criterion) {
    let runtime = runtime();
    if let Some(url) = redis_url() {
        round_trips(&runtime, &url);
    }
    let request = ChatRequest::from_prompt("hello");
    let mut group = c.benchmark_group("state_per_call");
    for (name, store) in stores() {
        let cascade = cascade(store, None);
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
