//! The cascade's own overhead: a cascade call minus a direct call to the same provider.
//!
//! - `in_memory`: a provider that answers at once, so the difference is the engine alone (request
//!   preparation, the attempt loop, the timeout wrapper, the attempt record, tracing spans).
//! - `loopback_http` (with `provider-openai`): the OpenAI provider against a local wiremock server; the
//!   difference is the same overhead, measured under real HTTP noise. `direct_with_timeout` wraps the
//!   direct call in the per-attempt timeout the cascade applies, separating the cost of arming a tokio
//!   timer (which any caller that bounds its requests pays) from the engine's own.
//!
//! Run: `cargo bench -p llm-cascade --bench overhead`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use llm_cascade::{CascadeBuilder, ChatRequest, Provider};

mod instant;

use instant::Instant;

fn in_memory(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cascade = CascadeBuilder::new()
        .provider(Instant { usage: None })
        .build();
    let request = ChatRequest::from_prompt("hello");
    let mut group = c.benchmark_group("in_memory");
    group.bench_function("direct", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(Instant { usage: None }.chat(black_box(&request)).await) });
    });
    group.bench_function("cascade", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(cascade.chat(black_box(request.clone())).await) });
    });
    group.finish();
}

/// The OpenAI provider against a local server replaying a real captured answer.
#[cfg(feature = "provider-openai")]
fn loopback_http(c: &mut Criterion) {
    use std::sync::Arc;

    use llm_cascade::MapEnv;
    use llm_test_support::{CANARY_KEY, Fixture};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(async {
        let server = wiremock::MockServer::start().await;
        // No `.expect(..)`: the number of calls depends on criterion's sampling.
        wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
            .respond_with(Fixture::load("openai", "chat.success").response_template())
            .mount(&server)
            .await;
        server
    });
    let env = MapEnv::new()
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{}/v1", server.uri()))
        .with("LLM_FALLBACK_ORDER", "openai");
    let cascade = llm_cascade::Cascade::from_env_source(&env).expect("cascade");
    let provider: Arc<dyn Provider> = cascade.providers()[0].clone();
    let request = ChatRequest::from_prompt("hello");
    let mut group = c.benchmark_group("loopback_http");
    group.bench_function("direct", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(provider.chat(black_box(&request)).await) });
    });
    group.bench_function("cascade", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(cascade.chat(black_box(request.clone())).await) });
    });
    group.bench_function("direct_with_timeout", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                tokio::time::timeout(Duration::from_secs(60), provider.chat(black_box(&request)))
                    .await,
            )
        });
    });
    group.finish();
}

#[cfg(not(feature = "provider-openai"))]
fn loopback_http(_: &mut Criterion) {}

criterion_group!(benches, in_memory, loopback_http);
criterion_main!(benches);
