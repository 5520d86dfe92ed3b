//! The `gen_ai.chat` span of an attempt records OpenTelemetry's GenAI fields: the model actually
//! requested, the model that answered and the token counts.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, stream};
use llm_cascade::{
    Cascade, ChatRequest, ChatResponse, ChatStream, Error, FinishReason, Provider, StreamEvent,
    Usage,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every `gen_ai.chat` span's fields, as text, by span id.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<BTreeMap<u64, BTreeMap<String, String>>>>);

impl Captured {
    fn only_span(&self) -> BTreeMap<String, String> {
        let spans = self.0.lock().expect("lock");
        assert_eq!(spans.len(), 1, "{spans:?}");
        spans.values().next().cloned().expect("one span")
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Captured {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if attrs.metadata().name() == "gen_ai.chat" {
            let mut spans = self.0.lock().expect("lock");
            attrs.record(&mut Fields(spans.entry(id.into_u64()).or_default()));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        if let Some(fields) = self.0.lock().expect("lock").get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

/// Records the spans of everything run while the guard lives (the test's thread).
fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::registry().with(captured.clone());
    (captured, tracing::subscriber::set_default(subscriber))
}

const USAGE: Usage = Usage {
    input_tokens: 12,
    output_tokens: 5,
};

/// Answers as `served-model-2026` (what the provider says answered) with token counts.
#[derive(Debug)]
struct Metered;

#[async_trait]
impl Provider for Metered {
    fn id(&self) -> &str {
        "metered"
    }
    fn model(&self) -> &str {
        "default-model"
    }
    fn base_url(&self) -> &str {
        "http://127.0.0.1:0"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, Error> {
        Ok(ChatResponse {
            tool_calls: Vec::new(),
            content: "hello".to_owned(),
            provider: "metered".to_owned(),
            model: "served-model-2026".to_owned(),
            finish_reason: FinishReason::Stop,
            usage: Some(USAGE),
            rate_limit: None,
        })
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, Error> {
        Ok(Box::pin(stream::iter([
            Ok(StreamEvent::Delta {
                text: "hello".to_owned(),
            }),
            Ok(StreamEvent::Usage { usage: USAGE }),
            Ok(StreamEvent::Finish {
                reason: FinishReason::Stop,
                model: Some("served-model-2026".to_owned()),
            }),
        ])))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn asking(model: Option<&str>) -> ChatRequest {
    let mut request = ChatRequest::from_prompt("hi");
    request.model = model.map(str::to_owned);
    request
}

#[tokio::test]
async fn a_chat_span_records_the_requested_and_answering_models_and_tokens() {
    let (captured, _guard) = capture();
    let cascade = Cascade::builder().provider(Metered).build();
    let answer = cascade
        .chat(asking(Some("asked-model")))
        .await
        .expect("answer");
    assert_eq!(answer.text(), "hello");
    let span = captured.only_span();
    assert_eq!(span["gen_ai.provider.name"], "metered");
    assert_eq!(span["gen_ai.request.model"], "asked-model");
    assert_eq!(span["gen_ai.response.model"], "served-model-2026");
    assert_eq!(span["gen_ai.usage.input_tokens"], "12");
    assert_eq!(span["gen_ai.usage.output_tokens"], "5");
}

#[tokio::test]
async fn a_request_without_a_model_records_the_providers() {
    let (captured, _guard) = capture();
    let cascade = Cascade::builder().provider(Metered).build();
    cascade.chat(asking(None)).await.expect("answer");
    assert_eq!(
        captured.only_span()["gen_ai.request.model"],
        "default-model"
    );
}

#[tokio::test]
async fn a_stream_span_records_usage_and_the_answering_model_when_the_stream_ends() {
    let (captured, _guard) = capture();
    let cascade = Cascade::builder().provider(Metered).build();
    let events: Vec<_> = cascade
        .chat_stream(asking(Some("asked-model")))
        .await
        .expect("stream")
        .collect()
        .await;
    assert_eq!(events.len(), 3);
    let span = captured.only_span();
    assert_eq!(span["gen_ai.request.model"], "asked-model");
    assert_eq!(span["gen_ai.response.model"], "served-model-2026");
    assert_eq!(span["gen_ai.usage.input_tokens"], "12");
    assert_eq!(span["gen_ai.usage.output_tokens"], "5");
}
