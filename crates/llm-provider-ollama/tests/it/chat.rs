//! Non-streamed chat: fixture replay and what is sent.

use llm_core::{ChatRequest, Message, Provider};
use llm_test_support::CANARY_KEY;
use serde_json::json;
use wiremock::MockServer;

use crate::support::{MODEL, bodies_at, mount, provider};

#[tokio::test]
async fn chat_replays_the_documented_answer() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.success", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let response = ollama
        .chat(&ChatRequest::from_prompt("Why is the sky blue?"))
        .await
        .expect("chat succeeds");

    assert_eq!(response.content, "Hello! How are you today?");
    insta::assert_json_snapshot!(response);
}

#[tokio::test]
async fn options_go_into_the_options_object() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.success", 2).await;
    let ollama = provider(&server.uri(), &[]);

    let request = ChatRequest {
        messages: vec![Message::system("Answer briefly."), Message::user("Hi")],
        model: None,
        temperature: Some(0.5),
        max_tokens: Some(32),
        stop: vec!["END".to_owned()],
        ..ChatRequest::default()
    };
    ollama.chat(&request).await.expect("chat succeeds");
    // A request naming another installed model (deepseek-r1:latest, no tag given) sends that model.
    let other = ChatRequest {
        model: Some("deepseek-r1".to_owned()),
        ..ChatRequest::from_prompt("Hi")
    };
    ollama.chat(&other).await.expect("chat succeeds");

    let bodies = bodies_at(&server, "/api/chat").await;
    assert_eq!(
        bodies,
        vec![
            json!({
                "model": MODEL,
                "messages": [
                    {"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": "Hi"}
                ],
                "stream": false,
                "options": {"temperature": 0.5, "num_predict": 32, "stop": ["END"]}
            }),
            json!({
                "model": "deepseek-r1",
                "messages": [{"role": "user", "content": "Hi"}],
                "stream": false
            }),
        ]
    );
    let requests = server.received_requests().await.expect("recording");
    assert!(
        requests
            .iter()
            .all(|r| !r.headers.contains_key("authorization")),
        "no key configured, no Authorization header"
    );
}

#[tokio::test]
async fn api_key_is_sent_as_bearer_and_never_shown() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "error.404.model_not_found", 1).await;
    let ollama = provider(&server.uri(), &[("OLLAMA_API_KEY", CANARY_KEY)]);

    let error = ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("404");

    let requests = server.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(
            request
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok()),
            Some(format!("Bearer {CANARY_KEY}").as_str()),
            "{}",
            request.url.path()
        );
    }
    for shown in [
        format!("{ollama:?}"),
        format!("{error:?}"),
        error.to_string(),
    ] {
        assert!(!shown.contains(CANARY_KEY), "{shown}");
    }
}

#[tokio::test]
async fn an_answer_not_done_is_truncated_not_a_stop() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.not_done.truncated", 1).await;
    let err = provider(&server.uri(), &[])
        .chat(&ChatRequest::from_prompt("Why is the sky blue?"))
        .await
        .expect_err("done: false");
    assert_eq!(err.kind(), llm_core::ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("ollama"));
}
