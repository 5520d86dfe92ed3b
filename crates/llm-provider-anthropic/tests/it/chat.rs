//! Non-streamed answers and the availability check.

use llm_core::{ChatRequest, Provider};

use crate::support::{provider, serve};

#[tokio::test]
async fn success() {
    let (server, _fixture) = serve("chat.success").await;
    let response = provider(&server)
        .chat(&ChatRequest::from_prompt("How are you?"))
        .await
        .expect("answer");
    insta::assert_json_snapshot!("chat.success", response);
}

#[tokio::test]
async fn check_available_lists_models() {
    let (server, _fixture) = serve("models.list").await;
    provider(&server)
        .check_available()
        .await
        .expect("available");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests[0].url.query(), Some("limit=1"));
    assert!(requests[0].headers.get("x-api-key").is_some());
}

#[tokio::test]
async fn check_available_reports_a_bad_key() {
    let server = wiremock::MockServer::start().await;
    let fixture = llm_test_support::Fixture::load("anthropic", "error.401.auth");
    fixture.mount(&server, "GET", "/v1/models", 1).await;
    let err = provider(&server)
        .check_available()
        .await
        .expect_err("bad key");
    insta::assert_json_snapshot!("check_available.401", crate::support::error_json(&err));
}

#[tokio::test]
async fn null_stop_reason_is_truncated_not_a_success() {
    let (server, _fixture) = serve("chat.no_stop_reason.truncated").await;
    let err = provider(&server)
        .chat(&ChatRequest::from_prompt("How are you?"))
        .await
        .expect_err("no stop_reason");
    assert_eq!(err.kind(), llm_core::ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("anthropic"));
}
