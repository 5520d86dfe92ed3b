//! The cascade's own overhead: a cascade call minus a direct call to the same provider.
//!
//! - `in_memory`: a provider that answers at once, so the difference is the engine alone (request
//!   preparation, the attempt loop, the timeout wrapper, the attempt record, tracing spans).
//! - `loopback_http` (with `provider-openai`): the OpenAI provider against a local wiremock server; the
//!   difference is the same overhead, measured under real HTTP noise.
//!
//! Run: `cargo bench -p llm-cascade --bench overhead`.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use async_trait::async_trait;
use criterion::{Criterion, criterion_group, criterion_main};
use llm_cascade::{
    CascadeBuilder, ChatRequest, ChatResponse, ChatStream, Error, FinishReason, Provider,
};

#[derive(Debug)]
struct Instant;

#[async_trait]
impl Provider for Instant {
    fn id(&self) -> &str {
        "instant"
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
        Ok(ChatResponse {
            content: "ok".to_owned(),
            provider: "instant".to_owned(),
            model: "m".to_owned(),
            finish_reason: FinishReason::Stop,
            usage: None,
        })
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::config("not used"))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn in_memory(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cascade = CascadeBuilder::new().provider(Instant).build();
    let request = ChatRequest::from_prompt("hello");
    let mut group = c.benchmark_group("in_memory");
    group.bench_function("direct", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(Instant.chat(black_box(&request)).await) });
    });
    group.bench_function("cascade", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(cascade.chat(black_box(request.clone())).await) });
    });
    group.finish();
}

criterion_group!(benches, in_memory);
criterion_main!(benches);
