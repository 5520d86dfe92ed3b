//! What we send: the key in a header and never in the URL, system placement, roles, options.

use llm_core::{ChatRequest, Message, Provider};
use llm_test_support::CANARY_KEY;
use serde_json::json;

use crate::support::{provider, serve};

#[tokio::test]
async fn headers_url_and_body_of_a_chat_request() {
    let (server, _fixture) = serve("chat.success").await;
    let request = ChatRequest {
        messages: vec![
            Message::system("Be brief."),
            Message::user("Hello"),
            Message::user("How are you?"),
            Message::assistant("Fine."),
            Message::user("Sure?"),
        ],
        ..ChatRequest::default()
    };
    provider(&server).chat(&request).await.expect("answer");
    let requests = server.received_requests().await.expect("recorded");
    let sent = &requests[0];
    assert_eq!(
        sent.headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok()),
        Some(CANARY_KEY)
    );
    assert!(!sent.url.as_str().contains(CANARY_KEY), "{}", sent.url);
    assert_eq!(sent.url.query(), None);
    assert_eq!(
        sent.url.path(),
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("json body");
    assert_eq!(
        body,
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Hello\n\nHow are you?"}]},
                {"role": "model", "parts": [{"text": "Fine."}]},
                {"role": "user", "parts": [{"text": "Sure?"}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]}
        })
    );
}

#[tokio::test]
async fn stream_request_uses_alt_sse_and_generation_config() {
    let (server, _fixture) = serve("chat.stream").await;
    let request = ChatRequest {
        messages: vec![Message::assistant("Ask me."), Message::user("Capital?")],
        model: Some("models/gemini-2.5-flash".into()),
        temperature: Some(0.25),
        max_tokens: Some(64),
        stop: vec!["\n\n".into()],
        ..ChatRequest::default()
    };
    drop(
        provider(&server)
            .chat_stream(&request)
            .await
            .expect("stream"),
    );
    let requests = server.received_requests().await.expect("recorded");
    let sent = &requests[0];
    assert_eq!(sent.url.query(), Some("alt=sse"));
    assert!(!sent.url.as_str().contains(CANARY_KEY));
    let body: serde_json::Value = serde_json::from_slice(&sent.body).expect("json body");
    assert_eq!(
        body,
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "(start of conversation)"}]},
                {"role": "model", "parts": [{"text": "Ask me."}]},
                {"role": "user", "parts": [{"text": "Capital?"}]}
            ],
            "generationConfig": {"temperature": 0.25, "maxOutputTokens": 64, "stopSequences": ["\n\n"]}
        })
    );
}

#[tokio::test]
async fn a_model_id_that_would_change_the_url_is_refused_before_sending() {
    let server = wiremock::MockServer::start().await;
    let request = ChatRequest {
        model: Some("gemini-2.5-flash:generateContent?key=x".into()),
        ..ChatRequest::from_prompt("Hi")
    };
    let err = provider(&server).chat(&request).await.expect_err("refused");
    assert_eq!(err.kind(), llm_core::ErrorKind::InvalidRequest);
    assert_eq!(err.provider(), Some("gemini"));
    assert!(
        server
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
}
