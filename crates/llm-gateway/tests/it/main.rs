//! The gateway's router in process, over scripted providers: exact stream shapes, and no key in any
//! route even when a provider echoes it back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::stream;
use http_body_util::BodyExt;
use llm_cascade::{
    CascadeBuilder, CascadeConfig, CascadeEvent, ChatRequest, ChatResponse, ChatStream, Error,
    ErrorKind, FinishReason, Provider, StreamEvent, Usage,
};
use llm_core::Secret;
use llm_gateway::{Gateway, GatewayConfig, RequestObserver};
use llm_test_support::CANARY_KEY;
use serde_json::{Value, json};
use tower::ServiceExt;

mod state;
mod tools;

/// A provider that answers with `events` (streamed) or their text (whole), or fails with `error`.
#[derive(Debug)]
struct Scripted {
    id: &'static str,
    events: Vec<StreamEvent>,
    /// Kind, message and status of the failure to return.
    error: Option<(ErrorKind, String, u16)>,
}

impl Scripted {
    fn failure(&self) -> Option<Error> {
        self.error.as_ref().map(|(kind, message, status)| {
            Error::new(*kind, message.clone())
                .with_status(*status)
                .with_provider(self.id)
        })
    }
}

#[async_trait]
impl Provider for Scripted {
    fn id(&self) -> &str {
        self.id
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    fn base_url(&self) -> &str {
        "http://127.0.0.1:1"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, Error> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        let content = self
            .events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Delta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        Ok(ChatResponse {
            content,
            provider: self.id.to_owned(),
            model: "scripted-model-2025".to_owned(),
            finish_reason: FinishReason::Stop,
            usage: Some(Usage {
                input_tokens: 3,
                output_tokens: 2,
            }),
            tool_calls: Vec::new(),
            rate_limit: None,
        })
    }
    async fn chat_stream(&self, _: &ChatRequest) -> Result<ChatStream, Error> {
        if let Some(error) = self.failure() {
            return Err(error);
        }
        Ok(Box::pin(stream::iter(
            self.events.clone().into_iter().map(Ok),
        )))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn answering(id: &'static str) -> Scripted {
    Scripted {
        id,
        events: vec![
            StreamEvent::Delta { text: "Hel".into() },
            StreamEvent::Delta { text: "lo".into() },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 3,
                    output_tokens: 2,
                },
            },
            StreamEvent::Finish {
                reason: FinishReason::Stop,
                model: Some("scripted-model-2025".into()),
            },
        ],
        error: None,
    }
}

fn failing(id: &'static str, kind: ErrorKind, message: &str, status: u16) -> Scripted {
    Scripted {
        id,
        events: Vec::new(),
        error: Some((kind, message.to_owned(), status)),
    }
}

fn quick() -> CascadeConfig {
    CascadeConfig::default()
        .with_max_attempts(1)
        .with_jitter(false)
}

fn gateway(providers: Vec<Scripted>) -> Gateway {
    let mut builder = CascadeBuilder::new().config(quick());
    for p in providers {
        builder = builder.provider(p);
    }
    Gateway::new(&builder.build(), GatewayConfig::default())
}

async fn call(
    gateway: &Gateway,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, String, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let response = gateway.router().oneshot(request).await.expect("response");
    let status = response.status();
    let headers = format!("{:?}", response.headers());
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Every chunk's JSON, `[DONE]` as a string.
fn chunks(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .filter_map(|frame| frame.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::from(data)))
        .collect()
}

#[tokio::test]
async fn a_stream_is_role_deltas_finish_usage_done() {
    let gateway = gateway(vec![answering("groq")]);
    let body = json!({"messages": [{"role": "user", "content": "hi"}], "stream": true,
        "stream_options": {"include_usage": true}});
    let (status, headers, text) = call(&gateway, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(status, 200);
    assert!(
        headers.contains("\"x-cascade-provider\": \"groq\""),
        "{headers}"
    );
    let chunks = chunks(&text);
    let shape: Vec<Value> = chunks
        .iter()
        .map(|c| match c.get("choices") {
            Some(choices) if choices.as_array().is_some_and(Vec::is_empty) => {
                json!({"usage": c["usage"]})
            }
            Some(choices) => {
                json!({"delta": choices[0]["delta"], "finish": choices[0]["finish_reason"]})
            }
            None => c.clone(),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            json!({"delta": {"role": "assistant", "content": ""}, "finish": null}),
            json!({"delta": {"content": "Hel"}, "finish": null}),
            json!({"delta": {"content": "lo"}, "finish": null}),
            json!({"delta": {}, "finish": "stop"}),
            json!({"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}),
            json!("[DONE]"),
        ]
    );
    let ids: Vec<&Value> = chunks[..5].iter().map(|c| &c["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "one id per stream");
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[3]["cascade"]["provider"], "groq");
}

#[tokio::test]
async fn a_whole_answer_names_the_model_that_answered_and_the_fallback() {
    let busy = failing("groq", ErrorKind::ServerError, "busy", 500);
    let gateway = gateway(vec![busy, answering("openai")]);
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let (status, headers, text) = call(&gateway, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers.contains("\"x-cascade-attempts\": \"2\""),
        "{headers}"
    );
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["model"], "scripted-model-2025");
    assert_eq!(json["choices"][0]["message"]["content"], "Hello");
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["usage"]["total_tokens"], 5);
    assert_eq!(json["cascade"]["attempts"][0]["outcome"], "server_error");
}

#[derive(Default)]
struct Recorded(Mutex<Vec<(String, String)>>);

impl RequestObserver for Recorded {
    fn on_event(&self, request_id: &str, event: &CascadeEvent) {
        if let CascadeEvent::AttemptFinished { attempt, .. } = event {
            let mut seen = self.0.lock().expect("lock");
            seen.push((request_id.to_owned(), attempt.provider.clone()));
        }
    }
}

#[tokio::test]
async fn each_request_reports_its_attempts_under_its_own_id() {
    let recorded = Arc::new(Recorded::default());
    let gateway = gateway(vec![answering("groq")]).with_request_observer(recorded.clone());
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let (status, _, _) =
            call(&gateway, "POST", "/v1/chat/completions", Some(body.clone())).await;
        assert_eq!(status, 200);
    }
    let seen = recorded.0.lock().expect("lock").clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0].0, seen[1].0);
    assert!(seen.iter().all(|(_, provider)| provider == "groq"));
}

#[tokio::test]
async fn a_key_echoed_by_a_provider_reaches_no_route() {
    let _registered = Secret::new(CANARY_KEY);
    let echoed = format!("invalid api key {CANARY_KEY}\u{1b}[2J <b>");
    let mut seen = Vec::new();
    let mut gateways = Vec::new();
    // A gateway each: after a 401 the provider's key is disabled and a second request is not sent.
    for stream in [false, true] {
        let gateway = gateway(vec![failing("groq", ErrorKind::Auth, &echoed, 401)]);
        let body = json!({"messages": [{"role": "user", "content": "hi"}], "stream": stream});
        let (status, headers, text) =
            call(&gateway, "POST", "/v1/chat/completions", Some(body)).await;
        assert_eq!(status, 503);
        assert!(text.contains("[REDACTED]"), "{text}");
        seen.extend([headers, text]);
        gateways.push(gateway);
    }
    let gateway = gateways.pop().expect("a gateway");
    for route in [
        "/",
        "/metrics",
        "/v1/models",
        "/v1/providers",
        "/healthz",
        "/readyz",
        "/missing",
    ] {
        let (_, headers, text) = call(&gateway, "GET", route, None).await;
        seen.extend([headers, text]);
    }
    let page = call(&gateway, "GET", "/", None).await.2;
    assert!(
        page.contains("&lt;b&gt;") && !page.contains("<b> "),
        "{page}"
    );
    for text in &seen {
        assert!(!text.contains(CANARY_KEY), "the key leaked: {text}");
        assert!(!text.contains('\u{1b}'), "a raw escape: {text}");
    }
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let cascade = CascadeBuilder::new()
        .config(quick())
        .provider(answering("groq"))
        .build();
    let config = GatewayConfig {
        body_limit: 100,
        ..GatewayConfig::default()
    };
    let gateway = Gateway::new(&cascade, config);
    let piece = || Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![b' '; 80]));
    let body = Body::from_stream(stream::iter([piece(), piece()]));
    let request = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .body(body)
        .expect("request");
    let response = gateway.router().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: Value = serde_json::from_slice(&bytes).expect("envelope");
    assert_eq!(json["error"]["code"], "body_too_large");
}

/// A usage log whose queue was full seven times.
struct Dropping;

impl RequestObserver for Dropping {
    fn on_event(&self, _: &str, _: &CascadeEvent) {}
    fn dropped(&self) -> u64 {
        7
    }
}

#[tokio::test]
async fn provider_state_and_dropped_usage_rows_show_in_providers_metrics_and_the_page() {
    let bad_key = failing("groq", ErrorKind::Auth, "invalid api key", 401);
    let gateway =
        gateway(vec![bad_key, answering("openai")]).with_request_observer(Arc::new(Dropping));
    let body = json!({"messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..2 {
        let (status, _, _) =
            call(&gateway, "POST", "/v1/chat/completions", Some(body.clone())).await;
        assert_eq!(status, 200);
    }
    let (_, _, text) = call(&gateway, "GET", "/v1/providers", None).await;
    let json: Value = serde_json::from_str(&text).expect("json");
    let groq = &json["providers"][0];
    assert_eq!(groq["state"]["condition"], "auth_failed");
    assert_eq!(
        groq["state"]["summary"],
        "auth failed: disabled until its key changes"
    );
    // The second request skipped groq: one attempt, not two.
    assert_eq!(groq["stats"]["attempts"], 1);
    assert_eq!(json["providers"][1]["state"]["condition"], "ready");
    assert_eq!(json["providers"][1]["state"]["budget"], json!([]));
    let (_, _, metrics) = call(&gateway, "GET", "/metrics", None).await;
    for line in [
        r#"cascade_gateway_provider_state{provider="groq",state="auth_failed"} 1"#,
        r#"cascade_gateway_provider_state{provider="groq",state="ready"} 0"#,
        r#"cascade_gateway_provider_state{provider="openai",state="ready"} 1"#,
        "cascade_gateway_usage_rows_dropped_total 7",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    // A second scrape does not count the same drops again.
    let (_, _, metrics) = call(&gateway, "GET", "/metrics", None).await;
    assert!(metrics.contains("cascade_gateway_usage_rows_dropped_total 7"));
    let (_, _, page) = call(&gateway, "GET", "/", None).await;
    assert!(page.contains(r#"data-state="auth_failed""#), "{page}");
    assert!(page.contains("<th>State</th>"), "{page}");
}

/// A shared state store in an outage: it keeps state in memory and says so.
#[derive(Default)]
struct Unreachable(llm_cascade::MemoryStore);

#[async_trait]
impl llm_cascade::StateStore for Unreachable {
    async fn modify(&self, key: &str, change: &mut llm_cascade::Change<'_>) {
        self.0.modify(key, change).await;
    }
    fn health(&self) -> Option<llm_cascade::StoreHealth> {
        let mut health = llm_cascade::StoreHealth::new("redis");
        health.reachable = false;
        health.fallbacks = 3;
        health.round_trips = 7;
        Some(health)
    }
}

#[tokio::test]
async fn a_shared_state_store_outage_shows_in_metrics() {
    let healthy = gateway(vec![answering("groq")]);
    let (_, _, metrics) = call(&healthy, "GET", "/metrics", None).await;
    assert!(
        metrics.contains("cascade_gateway_state_store_reachable 1"),
        "{metrics}"
    );
    let cascade = CascadeBuilder::new()
        .config(quick())
        .provider(answering("groq"))
        .build()
        .with_state_store(Arc::new(Unreachable::default()));
    let gateway = Gateway::new(&cascade, GatewayConfig::default());
    for _ in 0..2 {
        let (_, _, metrics) = call(&gateway, "GET", "/metrics", None).await;
        for line in [
            "cascade_gateway_state_store_reachable 0",
            "cascade_gateway_state_store_fallbacks_total 3",
            "cascade_gateway_state_store_round_trips_total 7",
        ] {
            assert!(metrics.contains(line), "{line} in:\n{metrics}");
        }
    }
}
