//! Non-streamed answers, content blocks and the availability check.

use llm_core::{ChatRequest, Provider};

use crate::support::{error_json, provider, serve};

async fn chat(scenario: &str) -> Result<llm_core::ChatResponse, llm_core::Error> {
    let (server, _fixture) = serve(scenario).await;
    provider(&server)
        .chat(&ChatRequest::from_prompt("How many r's in strawberry?"))
        .await
}

#[tokio::test]
async fn success_with_thought_tokens() {
    let response = chat("chat.success").await.expect("answer");
    insta::assert_json_snapshot!("chat.success", response);
}

#[tokio::test]
async fn success_2() {
    let response = chat("chat.success.2").await.expect("answer");
    insta::assert_json_snapshot!("chat.success.2", response);
}

#[tokio::test]
async fn safety_finish_is_a_content_filter_error() {
    let err = chat("chat.safety_block").await.expect_err("blocked");
    insta::assert_json_snapshot!("chat.safety_block", error_json(&err));
}

#[tokio::test]
async fn blocked_prompt_is_a_content_filter_error() {
    let err = chat("chat.prompt_blocked").await.expect_err("blocked");
    insta::assert_json_snapshot!("chat.prompt_blocked", error_json(&err));
}

#[tokio::test]
async fn check_available_lists_models_with_the_header_key() {
    let (server, _fixture) = serve("models.list").await;
    provider(&server)
        .check_available()
        .await
        .expect("available");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests[0].url.query(), Some("pageSize=1"));
    assert!(requests[0].headers.get("x-goog-api-key").is_some());
}

#[tokio::test]
async fn check_available_reports_a_bad_key() {
    let server = wiremock::MockServer::start().await;
    let fixture = llm_test_support::Fixture::load("gemini", "error.400.api_key_invalid");
    fixture.mount(&server, "GET", "/v1beta/models", 1).await;
    let err = provider(&server)
        .check_available()
        .await
        .expect_err("bad key");
    insta::assert_json_snapshot!("check_available.400", error_json(&err));
}

#[tokio::test]
async fn no_finish_reason_is_truncated_not_a_success() {
    let err = chat("chat.no_finish_reason.truncated")
        .await
        .expect_err("no finishReason");
    assert_eq!(err.kind(), llm_core::ErrorKind::StreamTruncated);
    assert_eq!(err.provider(), Some("gemini"));
}
