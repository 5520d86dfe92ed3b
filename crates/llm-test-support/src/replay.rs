//! Replaying a fixture against a provider and normalising what comes back, for snapshots.
//!
//! Generic over [`Provider`]: a test builds its provider for the mock server's URI, replays a scenario,
//! and snapshots the JSON these functions return (our normalised result, never the vendor's JSON).
//! Every error is checked for [`CANARY_KEY`] in its `Display` and `Debug` output.

use futures_util::StreamExt;
use llm_core::{ChatRequest, ChatResponse, ChatStream, Error, Provider, StreamEvent};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::{CANARY_KEY, Fixture};

/// Panics when `text` contains the canary key.
pub fn assert_no_canary(text: &str) {
    assert!(!text.contains(CANARY_KEY), "the key leaked into: {text}");
}

/// `{kind, status, retry_after_ms, provider}` of an error, after checking that neither its `Display`
/// nor its `Debug` output shows the canary key.
pub fn error_summary(error: &Error) -> Value {
    assert_no_canary(&error.to_string());
    assert_no_canary(&format!("{error:?}"));
    json!({
        "kind": error.kind().as_str(),
        "status": error.status(),
        "retry_after_ms": error.retry_after().map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        "provider": error.provider(),
    })
}

/// [`error_summary`] plus the error's `message`.
pub fn error_json(error: &Error) -> Value {
    let mut value = error_summary(error);
    value["message"] = Value::from(error.message());
    value
}

/// A chat outcome: the response, or `{"error": error_json}`.
pub fn chat_json(result: &Result<ChatResponse, Error>) -> Value {
    match result {
        Ok(response) => serde_json::to_value(response).expect("a response serialises"),
        Err(error) => json!({ "error": error_json(error) }),
    }
}

/// Every item of a stream, in order.
pub async fn collect(stream: ChatStream) -> Vec<Result<StreamEvent, Error>> {
    stream.collect().await
}

/// A stream outcome: the text (deltas joined), how many deltas, the non-delta events, and the error
/// that ended it, if any.
pub fn stream_json(items: &[Result<StreamEvent, Error>]) -> Value {
    let mut text = String::new();
    let mut deltas = 0;
    let mut events = Vec::new();
    let mut error = Value::Null;
    for item in items {
        match item {
            Ok(StreamEvent::Delta { text: more }) => {
                text.push_str(more);
                deltas += 1;
            }
            Ok(other) => events.push(serde_json::to_value(other).expect("an event serialises")),
            Err(e) => error = error_json(e),
        }
    }
    json!({ "text": text, "deltas": deltas, "events": events, "error": error })
}

/// Every item of a stream as a JSON array, in order: each event as it serialises, an error as
/// `{"error": error_summary}`.
pub fn event_list(items: &[Result<StreamEvent, Error>]) -> Value {
    items
        .iter()
        .map(|item| match item {
            Ok(event) => serde_json::to_value(event).expect("an event serialises"),
            Err(error) => json!({ "error": error_summary(error) }),
        })
        .collect()
}

/// Serves `fixture` at its recorded method and path, expecting exactly `times` calls.
pub async fn serve(fixture: &Fixture, times: u64) -> MockServer {
    let server = MockServer::start().await;
    let method = if fixture.request.method.is_empty() {
        "POST"
    } else {
        fixture.request.method.as_str()
    };
    fixture
        .mount(&server, method, &fixture.request.path, times)
        .await;
    server
}

/// Replays `fixtures/<provider>/<scenario>` once through `build(server_uri)` with a one-line prompt:
/// [`chat_json`] of the answer, or with `stream` set, [`stream_json`] of the stream (an error before the
/// stream starts as `{"error": …}`).
pub async fn replay<P: Provider + ?Sized>(
    provider: &str,
    scenario: &str,
    stream: bool,
    build: impl FnOnce(&str) -> Box<P>,
) -> Value {
    let fixture = Fixture::load(provider, scenario);
    let server = serve(&fixture, 1).await;
    let client = build(&server.uri());
    assert_no_canary(&format!("{client:?}"));
    let request = ChatRequest::from_prompt("Say hello.");
    if !stream {
        return chat_json(&client.chat(&request).await);
    }
    match client.chat_stream(&request).await {
        Ok(events) => stream_json(&collect(events).await),
        Err(error) => json!({ "error": error_json(&error) }),
    }
}

/// The headers a test looks at in a captured request.
const SHOWN_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "http-referer",
    "x-title",
    "accept",
];

/// Replays `scenario` like [`replay`] and returns what the provider sent: method, path, the headers
/// that matter (the canary key shown as `<CANARY_KEY>`) and the JSON body.
pub async fn sent_request<P: Provider + ?Sized>(
    provider: &str,
    scenario: &str,
    stream: bool,
    build: impl FnOnce(&str) -> Box<P>,
) -> Value {
    let fixture = Fixture::load(provider, scenario);
    let server = serve(&fixture, 1).await;
    let client = build(&server.uri());
    let request = ChatRequest::from_prompt("Say hello.");
    if stream {
        let events = client
            .chat_stream(&request)
            .await
            .expect("the stream starts");
        collect(events).await;
    } else {
        client.chat(&request).await.expect("the chat succeeds");
    }
    let requests = server
        .received_requests()
        .await
        .expect("requests are recorded");
    let sent = requests.first().expect("one request was sent");
    let headers: serde_json::Map<String, Value> = SHOWN_HEADERS
        .iter()
        .filter_map(|name| {
            let value = sent.headers.get(*name)?.to_str().ok()?;
            Some((
                (*name).to_owned(),
                Value::from(value.replace(CANARY_KEY, "<CANARY_KEY>")),
            ))
        })
        .collect();
    let body: Value = serde_json::from_slice(&sent.body).unwrap_or(Value::Null);
    json!({
        "method": sent.method.to_string(),
        "path": sent.url.path(),
        "headers": headers,
        "body": body,
    })
}

/// One scenario of a provider's fixture replay: chat or stream, and the error kind it must end in.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The fixture's scenario name.
    pub scenario: &'static str,
    /// Whether to replay it as a stream.
    pub stream: bool,
    /// The error kind the outcome must carry (`None`: a successful answer).
    pub kind: Option<&'static str>,
}

impl Case {
    /// A non-streamed chat that must end in `kind` (or succeed).
    pub const fn chat(scenario: &'static str, kind: Option<&'static str>) -> Self {
        Self {
            scenario,
            stream: false,
            kind,
        }
    }

    /// A streamed chat that must end in `kind` (or finish).
    pub const fn stream(scenario: &'static str, kind: Option<&'static str>) -> Self {
        Self {
            scenario,
            stream: true,
            kind,
        }
    }
}

/// Replays every case (one mock server each), checks its error kind, and hands the outcome to
/// `snapshot` under the scenario's name (the caller's `insta` macro, so snapshots live in its crate).
pub async fn check_all<P: Provider + ?Sized>(
    provider: &str,
    cases: &[Case],
    build: impl Fn(&str) -> Box<P>,
    snapshot: impl Fn(&str, &Value),
) {
    for case in cases {
        let outcome = replay(provider, case.scenario, case.stream, &build).await;
        assert_eq!(
            outcome["error"]["kind"].as_str(),
            case.kind,
            "{}: {outcome:#}",
            case.scenario
        );
        if case.stream && case.kind.is_none() {
            let last = outcome["events"].as_array().and_then(|e| e.last());
            assert_eq!(
                last.map(|e| &e["type"]),
                Some(&json!("finish")),
                "{}",
                case.scenario
            );
        }
        snapshot(case.scenario, &outcome);
    }
}

/// The JSON body `request` went out as through `build(server_uri)`, against the answer of
/// `fixtures/<provider>/<scenario>` (a whole answer, which must succeed).
pub async fn sent_body<P: Provider + ?Sized>(
    provider: &str,
    scenario: &str,
    request: &ChatRequest,
    build: impl FnOnce(&str) -> Box<P>,
) -> Value {
    let server = serve(&Fixture::load(provider, scenario), 1).await;
    build(&server.uri())
        .chat(request)
        .await
        .expect("the chat succeeds");
    let requests = server
        .received_requests()
        .await
        .expect("requests are recorded");
    let sent = requests.first().expect("one request was sent");
    serde_json::from_slice(&sent.body).expect("a JSON body")
}

/// A tool conversation that started on another provider: the user's question, the assistant's call of
/// `get_weather` with the id `call_id` (Anthropic's `toolu_…`, an id we made up, …) and the tool's
/// result answering it, with the tool offered.
pub fn tool_conversation(call_id: &str) -> ChatRequest {
    use llm_core::{Message, Tool, ToolCall};
    let weather = Tool::new(
        "get_weather",
        "Get the current weather for a city.",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    ChatRequest {
        messages: vec![
            Message::user("Get weather for Paris and summarize"),
            Message::assistant_tool_calls(
                "",
                vec![ToolCall::new(
                    call_id,
                    "get_weather",
                    r#"{"city": "Paris"}"#,
                )],
            ),
            Message::tool_result(call_id, "Sunny, 22C in Paris"),
        ],
        tools: vec![weather],
        ..ChatRequest::default()
    }
}

/// The `messages` an OpenAI-dialect provider sends for [`tool_conversation`] when the call's id goes
/// out as `sent_id`.
pub fn tool_conversation_messages(sent_id: &str) -> Value {
    json!([
        {"role": "user", "content": "Get weather for Paris and summarize"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": sent_id, "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "content": "Sunny, 22C in Paris", "tool_call_id": sent_id,
            "name": "get_weather"},
    ])
}
