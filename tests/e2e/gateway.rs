//! `cascade serve` end to end: the running binary behind a real OpenAI client library (`async-openai`)
//! and plain HTTP, against mock providers replaying captured answers.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions,
    CreateChatCompletionRequestArgs,
};
use futures_util::StreamExt;
use llm_test_support::{CANARY_KEY, ConnectionEvent, Fixture, ScriptedServer, Step};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::harness::{
    cascade, command, fast, fixture_content, order, provider, send_signal, serve,
};

mod tools;

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";
const ANTHROPIC_ROUTE: &str = "/v1/messages";

/// A running `cascade serve`.
pub(crate) struct Served {
    child: Child,
    pub(crate) url: String,
    stderr: BufReader<ChildStderr>,
    dir: tempfile::TempDir,
}

/// Starts `cascade serve` on a free loopback port and waits for its "listening" line.
pub(crate) async fn start(mut env: Vec<(String, String)>, extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().expect("temp dir");
    env.push(("LLM_GATEWAY_ADDR".into(), "127.0.0.1:0".into()));
    let mut args = vec!["serve"];
    args.extend_from_slice(extra);
    let mut child = command(&args, &env, dir.path())
        .spawn()
        .expect("run cascade serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    loop {
        line.clear();
        let read = stderr.read_line(&mut line).await.expect("read stderr");
        assert!(read > 0, "cascade serve ended before listening");
        if let Some(rest) = line.split("listening on ").nth(1) {
            let url = rest.split_whitespace().next().expect("url").to_owned();
            return Served {
                child,
                url,
                stderr,
                dir,
            };
        }
    }
}

impl Served {
    pub(crate) fn openai(&self, key: &str) -> Client<OpenAIConfig> {
        Client::with_config(
            OpenAIConfig::new()
                .with_api_base(format!("{}/v1", self.url))
                .with_api_key(key),
        )
    }

    pub(crate) async fn post(&self, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", self.url))
            .json(body)
            .send()
            .await
            .expect("send")
    }

    async fn get(&self, route: &str) -> (u16, String) {
        let response = reqwest::get(format!("{}{route}", self.url))
            .await
            .expect("get");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// The usage log this gateway writes.
    fn usage_db(&self) -> (String, String) {
        let path = self.dir.path().join("usage.db");
        ("LLM_USAGE_DB".to_owned(), path.display().to_string())
    }

    /// SIGTERM, then the exit code and the rest of stderr.
    pub(crate) async fn stop(self) -> (Option<i32>, String) {
        let (code, stderr, _dir) = self.stop_keeping_dir().await;
        (code, stderr)
    }

    /// [`Served::stop`], keeping its directory (and usage log) until the caller drops it.
    async fn stop_keeping_dir(mut self) -> (Option<i32>, String, tempfile::TempDir) {
        send_signal(&self.child, "TERM");
        let status = self.child.wait().await.expect("wait");
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest).await;
        (status.code(), rest, self.dir)
    }
}

pub(crate) fn user(text: &str) -> async_openai::types::ChatCompletionRequestMessage {
    ChatCompletionRequestUserMessageArgs::default()
        .content(text)
        .build()
        .expect("message")
        .into()
}

/// The text of a captured OpenAI-dialect stream: every `delta.content`, joined.
pub(crate) fn streamed_text(provider: &str, scenario: &str) -> String {
    let body = String::from_utf8(Fixture::load(provider, scenario).body_bytes()).expect("UTF-8");
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// The `data:` payloads of an SSE body, and the names of its non-default events.
pub(crate) fn sse(body: &str) -> (Vec<String>, Vec<String>) {
    let mut data = Vec::new();
    let mut events = Vec::new();
    for line in body.lines() {
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.to_owned());
        } else if let Some(e) = line.strip_prefix("event: ") {
            events.push(e.to_owned());
        }
    }
    (data, events)
}

#[tokio::test]
async fn an_openai_client_gets_whole_and_streamed_answers() {
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let groq = serve("groq", "chat.stream", GROQ_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));
    let served = start(env, &[]).await;
    let client = served.openai("any-key-is-fine-without-gateway-keys");

    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages(vec![user("Invent a holiday")])
        .build()
        .expect("request");
    let answer = client.chat().create(request).await.expect("an answer");
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some(fixture_content("openai", "chat.success").as_str())
    );
    assert_eq!(answer.model, "gpt-4.1-nano-2025-04-14");
    assert_eq!(answer.usage.expect("usage").prompt_tokens, 16);

    let request = CreateChatCompletionRequestArgs::default()
        .model("groq")
        .messages(vec![user("Think")])
        .stream(true)
        .stream_options(ChatCompletionStreamOptions {
            include_usage: true,
        })
        .build()
        .expect("request");
    let mut stream = client
        .chat()
        .create_stream(request)
        .await
        .expect("a stream");
    let mut text = String::new();
    let mut usage = None;
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk");
        if let Some(choice) = chunk.choices.first() {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finish = finish.or(choice.finish_reason);
        }
        usage = usage.or(chunk.usage);
    }
    assert_eq!(text, streamed_text("groq", "chat.stream"));
    assert!(finish.is_some(), "no finish chunk");
    assert!(usage.expect("a usage chunk").total_tokens > 0);

    // The cascade's own facts ride along: headers and the `cascade` extension.
    let response = served
        .post(&json!({"model": "openai", "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(response.headers()["x-cascade-provider"], "openai");
    assert_eq!(response.headers()["x-cascade-attempts"], "1");
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["cascade"]["attempts"][0]["outcome"], "ok");
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn fallback_then_exhaustion_with_status_envelope_and_retry_after() {
    // One cascade serves every request: groq's 429 (`retry-after: 2`, longer than the 0 s
    // LLM_MAX_RETRY_WAIT of `fast()`) and anthropic's (16 s) make them rest, and later requests
    // skip them without a call until then.
    let groq = serve("groq", "error.429.rate_limit", GROQ_ROUTE, 2).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let anthropic = serve("anthropic", "error.429.rate_limit", ANTHROPIC_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("ANTHROPIC", format!("{}/v1", anthropic.uri())));
    env.push(order("groq,openai,anthropic"));
    let served = start(env, &[]).await;

    let hi = json!([{"role": "user", "content": "hi"}]);
    let response = served
        .post(&json!({"model": "gpt-4o-mini", "messages": hi}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cascade-provider"], "openai");
    assert_eq!(response.headers()["x-cascade-attempts"], "2");

    // `models` sets this request's order: two rate-limited providers, nothing else. Groq is resting
    // (skipped), anthropic answers 429 asking for 16 s: the soonest back is groq, in 2 s at most.
    let only =
        |stream: bool| json!({"models": ["groq", "anthropic"], "messages": hi, "stream": stream});
    let response = served.post(&only(false)).await;
    assert_eq!(response.status(), 429);
    let wait = response.headers()["retry-after"].to_str().expect("ascii");
    assert!(["1", "2"].contains(&wait), "Retry-After {wait}");
    let body: Value = response.json().await.expect("json");
    let error = &body["error"];
    assert_eq!(error["type"], "rate_limit");
    assert_eq!(error["code"], "rate_limit");
    assert_eq!(error["attempts"][0]["outcome"], "skipped");
    assert_eq!(error["attempts"][1]["outcome"], "rate_limit");
    assert_eq!(error["details"].as_array().expect("details").len(), 2);
    assert!(!error["hint"].as_str().expect("hint").is_empty());

    // Streamed, with both resting: the cascade waits for the soonest (groq, within the deadline),
    // asks it again and gets its 429 again. A failure before the first token is a real status,
    // never 200, with groq's announced 2 s.
    let response = served.post(&only(true)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("groq, anthropic"),
        "{body}"
    );
    let db = served.usage_db();
    let (code, stderr, _dir) = served.stop_keeping_dir().await;
    assert_eq!(code, Some(0), "{stderr}");

    // Every attempt of every request is in the usage log, each request under its own id (skips
    // are logged too, and are not requests to the provider).
    let stats = cascade(&["stats", "--json"], &[db]).await;
    assert_eq!(stats.code, Some(0), "stderr: {}", stats.stderr);
    let json = stats.json();
    assert_eq!(json["calls"], 3);
    assert_eq!(
        json["providers"]["groq"]["failures"],
        json!({"rate_limit": 2})
    );
    assert_eq!(json["providers"]["openai"]["successes"], 1);
    assert_eq!(json["providers"]["anthropic"]["requests"], 1);
}

#[tokio::test]
async fn keys_limits_and_unsupported_fields_are_enforced() {
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    env.push((
        "LLM_GATEWAY_KEYS".into(),
        "gateway-key-e2e-one,gateway-key-e2e-two".into(),
    ));
    env.push(("LLM_GATEWAY_MAX_BODY".into(), "2048".into()));
    let served = start(env, &[]).await;
    let http = reqwest::Client::new();
    let chat = format!("{}/v1/chat/completions", served.url);
    let hi = json!({"messages": [{"role": "user", "content": "hi"}]});

    for auth in [None, Some("Bearer wrong-key"), Some("gateway-key-e2e-one")] {
        let mut request = http.post(&chat).json(&hi);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.expect("send");
        assert_eq!(response.status(), 401, "{auth:?}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }
    assert_eq!(served.get("/healthz").await.0, 200);
    assert_eq!(served.get("/readyz").await.0, 200);
    assert_eq!(served.get("/metrics").await.0, 401);

    let client = served.openai("gateway-key-e2e-two");
    let models = client.models().list().await.expect("models");
    let ids: Vec<&str> = models.data.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids[0], "cascade");
    assert!(ids.iter().any(|id| id.starts_with("openai/")), "{ids:?}");
    let request = CreateChatCompletionRequestArgs::default()
        .model("cascade")
        .messages(vec![user("hi")])
        .build()
        .expect("request");
    assert!(client.chat().create(request).await.is_ok());

    let authed = |body: &Value| {
        http.post(&chat)
            .bearer_auth("gateway-key-e2e-one")
            .json(body)
            .send()
    };
    let unsupported =
        json!({"messages": [{"role": "user", "content": "hi"}], "logprobs": true, "top_p": 0.5});
    let response = authed(&unsupported).await.expect("send");
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("logprobs") && message.contains("top_p"),
        "{message}"
    );

    let big = json!({"messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let response = authed(&big).await.expect("send");
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "body_too_large");
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn a_public_address_without_keys_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = command(&["serve", "--addr", "0.0.0.0:0"], &fast(), dir.path())
        .output()
        .await
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--allow-unauthenticated"), "{stderr}");
}

/// Polls `/metrics` until `line` appears (the gateway counts a request when its future is dropped,
/// a moment after the upstream saw the close).
async fn wait_for_metric(served: &Served, line: &str) {
    for _ in 0..200 {
        let (_, metrics) = served.get("/metrics").await;
        if metrics.contains(line) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{line} never appeared in /metrics:\n{}",
        served.get("/metrics").await.1
    );
}

#[tokio::test]
async fn overload_is_503_and_a_client_that_leaves_cancels_its_upstream_request() {
    let upstream = ScriptedServer::start(vec![Step::Hang]).await;
    let mut env = fast();
    env.extend(provider("DEEPSEEK", upstream.uri()));
    env.push(order("deepseek"));
    env.push(("LLM_GATEWAY_MAX_INFLIGHT".into(), "1".into()));
    let served = start(env, &[]).await;
    let hi = json!({"messages": [{"role": "user", "content": "hi"}]});

    let first = {
        let request = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", served.url))
            .json(&hi);
        tokio::spawn(async move { request.send().await })
    };
    assert_eq!(upstream.next_event().await, ConnectionEvent::Requested);
    let second = served.post(&hi).await;
    assert_eq!(second.status(), 503);
    assert_eq!(second.headers()["retry-after"], "1");
    let body: Value = second.json().await.expect("json");
    assert_eq!(body["error"]["code"], "gateway_overloaded");

    first.abort();
    assert_eq!(
        upstream.next_event().await,
        ConnectionEvent::ClosedByClient { sent: 0 }
    );
    wait_for_metric(&served, "cascade_gateway_in_flight 0").await;
    wait_for_metric(
        &served,
        r#"cascade_gateway_requests_total{provider="none",outcome="cancelled"} 1"#,
    )
    .await;
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// The real DeepSeek stream, one event every 10 ms.
fn slow_stream() -> Vec<Step> {
    let body = Fixture::load("deepseek", "chat.stream.length").body_bytes();
    let text = String::from_utf8(body).expect("UTF-8 SSE");
    let mut steps = vec![Step::head(200, "text/event-stream; charset=utf-8")];
    for event in text.split_inclusive("\n\n") {
        steps.push(Step::text(event));
        steps.push(Step::Wait(Duration::from_millis(10)));
    }
    steps
}

#[tokio::test]
async fn a_streaming_client_that_leaves_closes_the_upstream_stream() {
    let script = slow_stream();
    let total = script.iter().filter(|s| matches!(s, Step::Send(_))).count();
    let upstream = ScriptedServer::start(script).await;
    let mut env = fast();
    env.extend(provider("DEEPSEEK", upstream.uri()));
    env.push(order("deepseek"));
    let served = start(env, &[]).await;
    let mut response = served
        .post(&json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let first = response
        .chunk()
        .await
        .expect("read")
        .expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).starts_with("data: "));
    drop(response);
    assert_eq!(upstream.next_event().await, ConnectionEvent::Requested);
    match upstream.next_event().await {
        ConnectionEvent::ClosedByClient { sent } => assert!(sent < total, "{sent} of {total}"),
        other => panic!("the upstream stream was not closed: {other:?}"),
    }
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn a_stream_cut_after_its_first_token_ends_with_an_error_event_and_no_done() {
    let groq = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GROQ_ROUTE))
        .respond_with(Fixture::load("groq", "chat.stream.truncated").response_template())
        .expect(1..)
        .mount(&groq)
        .await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("groq"));
    let served = start(env, &[]).await;
    let response = served
        .post(&json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}))
        .await;
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let (data, events) = sse(&body);
    assert_eq!(events, ["error"], "{body}");
    assert!(!data.iter().any(|d| d == "[DONE]"), "{body}");
    let first: Value = serde_json::from_str(&data[0]).expect("json");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let error: Value = serde_json::from_str(data.last().expect("error")).expect("json");
    assert_eq!(error["error"]["type"], "network");
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

/// The OpenAI success body, sent after a pause, close-delimited.
fn slow_answer(pause: Duration) -> Vec<Step> {
    let body = Fixture::load("openai", "chat.success").body_bytes();
    vec![
        Step::Wait(pause),
        Step::head(200, "application/json"),
        Step::Send(body),
    ]
}

#[tokio::test]
async fn sigterm_lets_requests_in_flight_finish() {
    let upstream = ScriptedServer::start(slow_answer(Duration::from_millis(400))).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", upstream.uri())));
    env.push(order("openai"));
    let served = start(env, &[]).await;
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", served.url))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}));
    let in_flight = tokio::spawn(async move { request.send().await });
    assert_eq!(upstream.next_event().await, ConnectionEvent::Requested);
    let (code, stderr) = served.stop().await;
    let response = in_flight
        .await
        .expect("task")
        .expect("answered during the drain");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        fixture_content("openai", "chat.success")
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("draining"), "{stderr}");
}

#[tokio::test]
async fn the_grace_period_bounds_the_drain_and_cancels_what_is_left() {
    let upstream = ScriptedServer::start(vec![Step::Hang]).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", upstream.uri())));
    env.push(order("openai"));
    env.push(("LLM_GATEWAY_GRACE".into(), "200ms".into()));
    let served = start(env, &[]).await;
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", served.url))
        .json(&json!({"messages": [{"role": "user", "content": "hi"}]}));
    let in_flight = tokio::spawn(async move { request.send().await });
    assert_eq!(upstream.next_event().await, ConnectionEvent::Requested);
    let (code, _) = served.stop().await;
    assert_eq!(code, Some(0));
    assert!(
        in_flight.await.expect("task").is_err(),
        "the request was not cut"
    );
    assert!(matches!(
        upstream.next_event().await,
        ConnectionEvent::ClosedByClient { .. }
    ));
}

#[tokio::test]
async fn no_route_shows_a_provider_key_and_the_page_renders_in_a_browser() {
    // The 401 disables groq's key: the second request skips it without a call.
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("groq"));
    let served = start(env, &[]).await;
    let hi = json!([{"role": "user", "content": "hi"}]);
    let mut seen = Vec::new();
    for stream in [false, true] {
        let response = served
            .post(&json!({"messages": hi, "stream": stream}))
            .await;
        assert_eq!(response.status(), 503);
        seen.push(format!("{:?}", response.headers()));
        seen.push(response.text().await.expect("body"));
    }
    for route in [
        "/",
        "/metrics",
        "/v1/models",
        "/v1/providers",
        "/healthz",
        "/readyz",
        "/nope",
    ] {
        let (_, body) = served.get(route).await;
        seen.push(body);
    }
    let page = served.get("/").await.1;
    assert!(page.contains("groq") && page.contains("auth"), "{page}");
    let dom = chromium_dom(&format!("{}/", served.url));
    assert!(dom.contains("Recent failures"), "{dom}");
    assert!(dom.contains("<b>groq</b>"), "{dom}");
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
    seen.push(stderr);
    for text in &seen {
        assert!(!text.contains(CANARY_KEY), "the key leaked: {text}");
    }
}

/// The page's DOM as headless Chromium renders it.
fn chromium_dom(url: &str) -> String {
    let profile = tempfile::tempdir().expect("profile dir");
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium (Debian package `chromium`; .ci/run installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
