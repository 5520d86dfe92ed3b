//! Streamed chat: replay of real NDJSON streams, truncation and mid-stream errors.

use llm_core::{ChatRequest, Provider};
use serde_json::json;
use wiremock::MockServer;

use crate::support::{bodies_at, collect, mount, provider, text_of};

#[tokio::test]
async fn stream_replays_a_real_capture() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let stream = ollama
        .chat_stream(&ChatRequest::from_prompt("Hello"))
        .await
        .expect("stream starts");
    let items = collect(stream).await;

    assert_eq!(text_of(&items), "Hello there! How can I help you today? 😊");
    insta::assert_json_snapshot!(items);
    assert_eq!(
        bodies_at(&server, "/api/chat").await[0]["stream"],
        json!(true)
    );
}

#[tokio::test]
async fn long_real_stream_ends_with_usage_and_finish() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream.long", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let items = collect(
        ollama
            .chat_stream(&ChatRequest::from_prompt("How many feet in a mile?"))
            .await
            .expect("stream starts"),
    )
    .await;

    assert!(
        text_of(&items).starts_with("Okay, this is a surprisingly tricky question!"),
        "{}",
        text_of(&items)
    );
    let tail: Vec<&str> = items[items.len() - 2..]
        .iter()
        .map(|item| item["type"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(tail, vec!["usage", "finish"]);
    assert_eq!(items.last().map(|i| &i["reason"]), Some(&json!("stop")));
}

#[tokio::test]
async fn stream_cut_before_done_is_truncated() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream.truncated", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let items = collect(
        ollama
            .chat_stream(&ChatRequest::from_prompt("How many feet in a mile?"))
            .await
            .expect("stream starts"),
    )
    .await;

    // The 20 whole lines arrive as text; the half line and the missing `done` line end in an error.
    assert_eq!(items.iter().filter(|i| i["type"] == "delta").count(), 20);
    assert!(items.iter().all(|i| i["type"] != "finish"));
    assert_eq!(
        items.last(),
        Some(
            &json!({"error": {"kind": "stream_truncated", "status": null, "retry_after_ms": null, "provider": "ollama"}})
        )
    );
}

#[tokio::test]
async fn error_line_mid_stream_is_a_classified_error() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream.error", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let mut stream = ollama
        .chat_stream(&ChatRequest::from_prompt("Hi"))
        .await
        .expect("stream starts");
    let mut last = None;
    while let Some(item) = futures_util::StreamExt::next(&mut stream).await {
        last = Some(item);
    }
    let error = last.expect("one item").expect_err("ends in an error");
    assert_eq!(error.kind(), llm_core::ErrorKind::ServerError);
    assert_eq!(error.provider(), Some("ollama"));
    assert!(
        error
            .message()
            .contains("an error was encountered while running the model"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn stream_ending_on_a_whole_done_false_line_is_truncated() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream.not_done.truncated", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let items = collect(
        ollama
            .chat_stream(&ChatRequest::from_prompt("Hello"))
            .await
            .expect("stream starts"),
    )
    .await;

    assert!(items.iter().all(|i| i["type"] != "finish"), "{items:?}");
    assert_eq!(
        items.last().map(|i| &i["error"]["kind"]),
        Some(&json!("stream_truncated"))
    );
}
