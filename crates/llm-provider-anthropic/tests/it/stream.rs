//! Streamed answers: complete, tool use (the call assembled), an error event mid-stream, a cut-off body.

use llm_core::{ChatRequest, Provider};
use llm_test_support::replay::{collect, event_list};

use crate::support::{provider, serve};

async fn run(scenario: &str) -> serde_json::Value {
    let (server, _fixture) = serve(scenario).await;
    let stream = provider(&server)
        .chat_stream(&ChatRequest::from_prompt("Count to 5"))
        .await
        .expect("stream starts");
    event_list(&collect(stream).await)
}

#[tokio::test]
async fn stream() {
    insta::assert_json_snapshot!("chat.stream", run("chat.stream").await);
}

#[tokio::test]
async fn stream_reframed_chunks() {
    insta::assert_json_snapshot!("chat.stream.2", run("chat.stream.2").await);
}

#[tokio::test]
async fn stream_tool_use_assembles_the_call() {
    insta::assert_json_snapshot!("chat.stream.tool_use", run("chat.stream.tool_use").await);
}

#[tokio::test]
async fn error_event_mid_stream_is_classified() {
    let events = run("chat.stream.error_event").await;
    insta::assert_json_snapshot!("chat.stream.error_event", events);
}

#[tokio::test]
async fn stream_without_message_stop_is_truncated() {
    let events = run("chat.stream.truncated").await;
    insta::assert_json_snapshot!("chat.stream.truncated", events);
}

#[tokio::test]
async fn error_status_before_the_stream_starts() {
    let (server, _fixture) = serve("error.529.overloaded").await;
    let err = provider(&server)
        .chat_stream(&ChatRequest::from_prompt("Hi"))
        .await
        .err()
        .expect("529");
    insta::assert_json_snapshot!("chat.stream.529", crate::support::error_json(&err));
}

#[tokio::test]
async fn message_stop_without_stop_reason_is_truncated() {
    // Cut from the real capture: the `message_delta` event is gone, `message_stop` still comes.
    let events = run("chat.stream.no_stop_reason.truncated").await;
    let items = events.as_array().expect("a list");
    assert!(items.iter().any(|e| e["type"] == "delta"), "{events:#}");
    assert_eq!(
        items.last().map(|e| &e["error"]["kind"]),
        Some(&serde_json::json!("stream_truncated")),
        "{events:#}"
    );
}
