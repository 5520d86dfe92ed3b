//! Tools and structured output, replayed from real captures: the body we send for the typed form of
//! a captured request equals, structurally, the body the recorded client sent; every captured answer
//! and stream decodes, and the normalised results are snapshotted.

use llm_core::{
    ChatRequest, ChatResponse, ErrorKind, Message, Provider, ResponseFormat, Tool, ToolCall,
    ToolChoice,
};
use llm_test_support::Fixture;
use llm_test_support::replay::{chat_json, collect, event_list};
use serde_json::{Value, json};

use crate::support::{error_json, provider, serve};

/// The body fields a capture is compared on.
const COMPARED: &[&str] = &[
    "model",
    "max_tokens",
    "system",
    "messages",
    "tools",
    "tool_choice",
    "output_config",
    "stop_sequences",
];

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The text of a content that is a string or a list of text blocks.
fn joined(content: &Value) -> Option<String> {
    match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(blocks) if blocks.iter().all(|b| b["type"] == "text") => Some(
            blocks
                .iter()
                .map(|b| text(&b["text"]))
                .collect::<Vec<_>>()
                .join("\n\n"),
        ),
        _ => None,
    }
}

/// The structural form of a Messages API body part: a content made only of text blocks is its text,
/// `cache_control` (prompt caching, not ours) is dropped, a `tool_result`'s text-block content is its
/// text and `is_error: false` (the default) is dropped.
fn normalise(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, item) in map {
                let item = match key.as_str() {
                    "cache_control" => continue,
                    "is_error" if item == &json!(false) => continue,
                    "content" | "system" => {
                        joined(item).map_or_else(|| normalise(item), Value::from)
                    }
                    _ => normalise(item),
                };
                out.insert(key.clone(), item);
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// What a caller of the library would have built for a captured request body.
fn typed(body: &Value) -> ChatRequest {
    let mut messages: Vec<Message> = joined(&body["system"])
        .map(Message::system)
        .into_iter()
        .collect();
    for message in body["messages"].as_array().expect("messages") {
        messages.extend(typed_message(message));
    }
    let tools = body["tools"].as_array().into_iter().flatten();
    let tool_choice = match body["tool_choice"]["type"].as_str() {
        Some("auto") => Some(ToolChoice::Auto),
        Some("any") => Some(ToolChoice::Required),
        Some("none") => Some(ToolChoice::None),
        Some("tool") => Some(ToolChoice::Named(text(&body["tool_choice"]["name"]))),
        _ => None,
    };
    let schema = &body["output_config"]["format"]["schema"];
    ChatRequest {
        messages,
        model: body["model"].as_str().map(str::to_owned),
        max_tokens: body["max_tokens"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok()),
        stop: body["stop_sequences"]
            .as_array()
            .into_iter()
            .flatten()
            .map(text)
            .collect(),
        tools: tools
            .map(|t| Tool {
                name: text(&t["name"]),
                description: t["description"].as_str().map(str::to_owned),
                parameters: t["input_schema"].clone(),
                strict: t["strict"] == json!(true),
            })
            .collect(),
        tool_choice,
        response_format: (!schema.is_null())
            .then(|| ResponseFormat::json_schema("answer", schema.clone())),
        ..ChatRequest::default()
    }
}

fn typed_message(message: &Value) -> Vec<Message> {
    let content = &message["content"];
    let user = message["role"] == "user";
    if let Some(text) = joined(content) {
        return vec![if user {
            Message::user(text)
        } else {
            Message::assistant(text)
        }];
    }
    let blocks = content.as_array().expect("content blocks");
    if user {
        return blocks
            .iter()
            .map(|b| match b["type"].as_str() {
                Some("tool_result") => Message::tool_result(
                    text(&b["tool_use_id"]),
                    joined(&b["content"]).unwrap_or_default(),
                ),
                _ => Message::user(text(&b["text"])),
            })
            .collect();
    }
    let said: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| text(&b["text"]))
        .collect();
    let calls = blocks
        .iter()
        .filter(|b| b["type"] == "tool_use")
        .map(|b| ToolCall::new(text(&b["id"]), text(&b["name"]), b["input"].to_string()))
        .collect();
    vec![Message::assistant_tool_calls(said, calls)]
}

/// A captured forced-tool request (tool_choice naming its only tool) as the structured-output
/// request it stands for: the tool's input schema is the answer's schema.
fn typed_forced(body: &Value) -> ChatRequest {
    let mut request = typed(body);
    let tool = request.tools.remove(0);
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Named(tool.name)),
        "a forced tool"
    );
    request.tool_choice = None;
    request.response_format = Some(ResponseFormat::json_schema("answer", tool.parameters));
    request
}

/// Sends `request` to a server serving `scenario` and asserts that the body sent equals the captured
/// one on [`COMPARED`]; returns the answer.
async fn replay_request(
    scenario: &str,
    request: &ChatRequest,
) -> Result<ChatResponse, llm_core::Error> {
    let (server, fixture) = serve(scenario).await;
    let result = provider(&server).chat(request).await;
    let requests = server.received_requests().await.expect("recorded");
    let sent: Value = serde_json::from_slice(&requests[0].body).expect("json body");
    let captured = fixture
        .request
        .body
        .as_ref()
        .expect("the fixture has the captured request");
    for key in COMPARED {
        // Normalised as fields, so that a `system` of text blocks compares as its text.
        assert_eq!(
            normalise(&json!({ *key: sent[*key] })),
            normalise(&json!({ *key: captured[*key] })),
            "{scenario}: `{key}` differs"
        );
    }
    result
}

async fn replay_typed(scenario: &str) -> Result<ChatResponse, llm_core::Error> {
    let captured = Fixture::load("anthropic", scenario)
        .request
        .body
        .expect("request body");
    replay_request(scenario, &typed(&captured)).await
}

#[tokio::test]
async fn strict_tool_and_its_call() {
    let response = replay_typed("chat.tools_strict").await.expect("answer");
    assert_eq!(response.finish_reason, llm_core::FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall::new(
            "toolu_0111pu1MrxY8aTqNzYSWAgQF",
            "add_numbers",
            r#"{"a":15,"b":27}"#
        )]
    );
    insta::assert_json_snapshot!("chat.tools_strict", response);
}

#[tokio::test]
async fn tool_result_follow_up() {
    let response = replay_typed("chat.tool_result").await.expect("answer");
    assert!(response.content.contains("42"), "{}", response.content);
    insta::assert_json_snapshot!("chat.tool_result", response);
}

#[tokio::test]
async fn parallel_calls_and_their_merged_results() {
    let calls = replay_typed("chat.parallel_tools").await.expect("answer");
    assert_eq!(calls.tool_calls.len(), 3);
    insta::assert_json_snapshot!("chat.parallel_tools", calls);
    // The follow-up sends the three results as ONE user turn, as the capture shows.
    let summary = replay_typed("chat.tool_results.parallel")
        .await
        .expect("answer");
    insta::assert_json_snapshot!("chat.tool_results.parallel", summary);
}

#[tokio::test]
async fn tool_choice_any_and_a_call_without_arguments() {
    let response = replay_typed("chat.tool_choice_any").await.expect("answer");
    assert_eq!(response.tool_calls[0].arguments, "{}");
    insta::assert_json_snapshot!("chat.tool_choice_any", response);
}

#[tokio::test]
async fn schema_through_a_forced_tool_on_an_older_model() {
    let captured = Fixture::load("anthropic", "chat.forced_tool")
        .request
        .body
        .expect("body");
    let request = typed_forced(&captured);
    let response = replay_request("chat.forced_tool", &request)
        .await
        .expect("answer");
    // The forced tool's input is the answer: text, a normal finish, no tool call.
    assert_eq!(response.finish_reason, llm_core::FinishReason::Stop);
    assert!(response.tool_calls.is_empty());
    let answer: Value = serde_json::from_str(&response.content).expect("JSON text");
    assert_eq!(answer["topic"], "Benefits of Remote Work");
    insta::assert_json_snapshot!("chat.forced_tool", response);
}

#[tokio::test]
async fn schema_through_output_config_on_claude_4_5() {
    let response = replay_typed("chat.output_format").await.expect("answer");
    let answer: Value = serde_json::from_str(&response.content).expect("JSON text");
    assert_eq!(answer["city"], "London");
    insta::assert_json_snapshot!("chat.output_format", response);
}

#[tokio::test]
async fn output_config_with_a_strict_tool_then_its_result() {
    let call = replay_typed("chat.output_format.tools_strict")
        .await
        .expect("answer");
    assert_eq!(call.tool_calls[0].name, "lookup_country");
    insta::assert_json_snapshot!("chat.output_format.tools_strict", call);
    let answer = replay_typed("chat.output_format.tool_result")
        .await
        .expect("answer");
    assert_eq!(
        serde_json::from_str::<Value>(&answer.content).expect("JSON")["country"],
        "France"
    );
    insta::assert_json_snapshot!("chat.output_format.tool_result", answer);
}

/// Captures whose request was not recorded (or went to a model we serve by the other mechanism),
/// decoded as answers to a plain request.
#[tokio::test]
async fn other_captured_answers_decode() {
    let mut results = Vec::new();
    for scenario in ["chat.forced_tool.2", "chat.output_format.2"] {
        let (server, _fixture) = serve(scenario).await;
        let result = provider(&server)
            .chat(&ChatRequest::from_prompt("Hi"))
            .await;
        results.push(json!({"fixture": scenario, "result": chat_json(&result)}));
    }
    insta::assert_json_snapshot!("other_answers", results);
}

#[tokio::test]
async fn a_conversation_from_openai_keeps_its_call_ids() {
    // The tool-call conversation of OpenAI's capture, continued on Anthropic.
    let openai = Fixture::load("openai", "chat.tool_result")
        .request
        .body
        .expect("body");
    let calls: Vec<ToolCall> = openai["messages"][2]["tool_calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| {
            ToolCall::new(
                text(&c["id"]),
                text(&c["function"]["name"]),
                text(&c["function"]["arguments"]),
            )
        })
        .collect();
    let id = calls[0].id.clone();
    let request = ChatRequest {
        messages: vec![
            Message::user(text(&openai["messages"][1]["content"])),
            Message::assistant_tool_calls("", calls),
            Message::tool_result(&id, text(&openai["messages"][3]["content"])),
        ],
        ..ChatRequest::default()
    };
    let (server, _fixture) = serve("chat.tool_result").await;
    provider(&server).chat(&request).await.expect("answer");
    let requests = server.received_requests().await.expect("recorded");
    let sent: Value = serde_json::from_slice(&requests[0].body).expect("json body");
    assert!(id.starts_with("call_"), "{id}");
    assert_eq!(sent["messages"][1]["content"][0]["id"], json!(id));
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], json!(id));
    assert_eq!(
        sent["messages"][1]["content"][0]["input"],
        json!({"a": 15, "b": 27})
    );
}

async fn stream_of(scenario: &str) -> Value {
    let (server, _fixture) = serve(scenario).await;
    let stream = provider(&server)
        .chat_stream(&ChatRequest::from_prompt("Hi"))
        .await
        .expect("stream starts");
    event_list(&collect(stream).await)
}

#[tokio::test]
async fn streamed_tool_calls_arrive_whole() {
    let events = stream_of("chat.stream.json_tool").await;
    let calls: Vec<&Value> = events
        .as_array()
        .expect("list")
        .iter()
        .filter(|e| e["type"] == "tool_call")
        .collect();
    assert_eq!(calls.len(), 1, "{events:#}");
    let arguments: Value =
        serde_json::from_str(calls[0]["call"]["arguments"].as_str().expect("text"))
            .expect("whole JSON");
    assert_eq!(arguments["elements"][0]["temperature"], 58);
    insta::assert_json_snapshot!("chat.stream.json_tool", events);
}

#[tokio::test]
async fn streamed_output_format_is_text() {
    let events = stream_of("chat.stream.output_format").await;
    let text: String = events
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["text"].as_str())
        .collect();
    serde_json::from_str::<Value>(&text).expect("the deltas make one JSON document");
    insta::assert_json_snapshot!("chat.stream.output_format", events);
}

#[tokio::test]
async fn a_stream_cut_inside_a_tool_call_is_truncated_without_the_call() {
    let events = stream_of("chat.stream.tool_use.truncated").await;
    let items = events.as_array().expect("list");
    assert!(
        !items.iter().any(|e| e["type"] == "tool_call"),
        "{events:#}"
    );
    assert_eq!(
        items.last().map(|e| &e["error"]["kind"]),
        Some(&json!("stream_truncated")),
        "{events:#}"
    );
    insta::assert_json_snapshot!("chat.stream.tool_use.truncated", events);
}

#[tokio::test]
async fn a_400_for_an_unknown_output_config_is_a_capability_mismatch() {
    let (server, _fixture) = serve("error.400.unsupported").await;
    let request = ChatRequest {
        response_format: Some(ResponseFormat::json_schema("a", json!({"type": "object"}))),
        ..ChatRequest::from_prompt("Hi")
    };
    let err = provider(&server).chat(&request).await.expect_err("400");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    insta::assert_json_snapshot!("error.400.unsupported", error_json(&err));
}

#[tokio::test]
async fn check_available_reports_an_error_object_in_a_200() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                    .to_vec(),
                "application/json",
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = provider(&server)
        .check_available()
        .await
        .expect_err("error in 200");
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert_eq!(err.provider(), Some("anthropic"));
}
