//! What we send: headers, key placement, system placement, merged roles, `max_tokens`.

use llm_core::{ChatRequest, Message, Provider};
use llm_test_support::CANARY_KEY;
use serde_json::json;

use crate::support::{provider, serve};

#[tokio::test]
async fn headers_and_body_of_a_chat_request() {
    let (server, _fixture) = serve("chat.success").await;
    let request = ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("Hello"),
            Message::user("How are you?"),
            Message::assistant("Fine."),
            Message::system("Answer in English."),
            Message::user("Sure?"),
        ],
        model: None,
        temperature: Some(0.25),
        max_tokens: None,
        stop: vec![],
        ..ChatRequest::default()
    };
    provider(&server).chat(&request).await.expect("answer");
    let requests = server.received_requests().await.expect("recorded");
    let sent = &requests[0];
    let header = |name: &str| {
        sent.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("x-api-key").as_deref(), Some(CANARY_KEY));
    assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
    assert_eq!(header("authorization"), None);
    assert!(!sent.url.as_str().contains(CANARY_KEY));
    assert_eq!(sent.url.path(), "/v1/messages");
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("json body");
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 4096,
            "system": "Be brief.\n\nAnswer in English.",
            "messages": [
                {"role": "user", "content": "Hello\n\nHow are you?"},
                {"role": "assistant", "content": "Fine."},
                {"role": "user", "content": "Sure?"}
            ],
            "temperature": 0.25
        })
    );
}

#[tokio::test]
async fn stream_request_asks_for_sse_and_keeps_options() {
    let (server, _fixture) = serve("chat.stream").await;
    let request = ChatRequest {
        messages: vec![Message::assistant("Hi! Ask me."), Message::user("Count")],
        model: Some("claude-haiku-4-5".into()),
        temperature: None,
        max_tokens: Some(64),
        stop: vec!["6".into()],
        ..ChatRequest::default()
    };
    let stream = provider(&server)
        .chat_stream(&request)
        .await
        .expect("stream");
    drop(stream);
    let requests = server.received_requests().await.expect("recorded");
    let sent = &requests[0];
    assert_eq!(
        sent.headers.get("accept").and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("json body");
    assert_eq!(
        body,
        json!({
            "model": "claude-haiku-4-5",
            "max_tokens": 64,
            "messages": [
                {"role": "user", "content": "(start of conversation)"},
                {"role": "assistant", "content": "Hi! Ask me."},
                {"role": "user", "content": "Count"}
            ],
            "stop_sequences": ["6"],
            "stream": true
        })
    );
}
