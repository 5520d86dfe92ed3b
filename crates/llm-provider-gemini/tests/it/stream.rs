//! Streamed answers: complete, thought signatures, cut-off body, safety blocks.

use llm_core::{ChatRequest, Provider};
use llm_test_support::replay::{collect, event_list};

use crate::support::{provider, serve};

async fn run(scenario: &str) -> serde_json::Value {
    let (server, _fixture) = serve(scenario).await;
    let stream = provider(&server)
        .chat_stream(&ChatRequest::from_prompt("What is the capital of France?"))
        .await
        .expect("stream starts");
    event_list(&collect(stream).await)
}

#[tokio::test]
async fn stream() {
    insta::assert_json_snapshot!("chat.stream", run("chat.stream").await);
}

#[tokio::test]
async fn stream_reframed_chunks_with_thoughts() {
    insta::assert_json_snapshot!("chat.stream.2", run("chat.stream.2").await);
}

#[tokio::test]
async fn stream_without_finish_reason_is_truncated() {
    insta::assert_json_snapshot!("chat.stream.truncated", run("chat.stream.truncated").await);
}

#[tokio::test]
async fn safety_finish_mid_stream_is_a_content_filter_error() {
    insta::assert_json_snapshot!("chat.stream.safety", run("chat.stream.safety").await);
}

#[tokio::test]
async fn blocked_prompt_in_a_stream_is_a_content_filter_error() {
    insta::assert_json_snapshot!(
        "chat.stream.prompt_blocked",
        run("chat.stream.prompt_blocked").await
    );
}
