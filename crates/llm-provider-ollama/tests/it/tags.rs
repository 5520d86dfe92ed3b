//! Model presence through `/api/tags`: cached, and a missing model fails fast.

use llm_core::{ChatRequest, ErrorKind, Provider};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{mount, provider};

#[tokio::test]
async fn tags_are_asked_once_across_requests() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.success", 2).await;
    let ollama = provider(&server.uri(), &[]);

    ollama.check_available().await.expect("installed");
    ollama
        .chat(&ChatRequest::from_prompt("one"))
        .await
        .expect("first chat");
    ollama
        .chat(&ChatRequest::from_prompt("two"))
        .await
        .expect("second chat");
}

#[tokio::test]
async fn missing_model_fails_fast_without_a_generation_request() {
    let server = MockServer::start().await;
    // The real list: codellama:latest and gemma2:27b, not llama3.2.
    mount(&server, "tags.success", 1).await;
    mount(&server, "chat.success", 0).await;
    let ollama = provider(&server.uri(), &[]);

    let error = ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("not installed");
    let streamed = ollama
        .chat_stream(&ChatRequest::from_prompt("Hi"))
        .await
        .err()
        .expect("not installed");
    let checked = ollama.check_available().await.expect_err("not installed");

    for error in [&error, &streamed, &checked] {
        assert_eq!(error.kind(), ErrorKind::ModelNotFound);
        assert_eq!(error.provider(), Some("ollama"));
        assert!(
            error
                .message()
                .contains("model 'llama3.2' is not installed"),
            "{}",
            error.message()
        );
        assert!(
            error.message().contains("can be pulled"),
            "{}",
            error.message()
        );
        assert!(ollama.can_prepare(error));
    }
}

#[tokio::test]
async fn installed_model_with_its_tag_and_a_requested_model() {
    let server = MockServer::start().await;
    mount(&server, "tags.success", 1).await;
    mount(&server, "chat.success", 1).await;
    let ollama = provider(&server.uri(), &[("OLLAMA_MODEL", "gemma2:27b")]);

    ollama
        .check_available()
        .await
        .expect("gemma2:27b is installed");
    // `codellama` resolves to the installed `codellama:latest`.
    let request = ChatRequest {
        model: Some("codellama".to_owned()),
        ..ChatRequest::from_prompt("Hi")
    };
    ollama.chat(&request).await.expect("chat succeeds");
}

#[tokio::test]
async fn unreadable_tags_leave_the_decision_to_the_chat() {
    let server = MockServer::start().await;
    // A proxy that hides /api/tags: not a reason to refuse the chat.
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(ResponseTemplate::new(403).set_body_string("forbidden"))
        .expect(1)
        .mount(&server)
        .await;
    mount(&server, "chat.success", 1).await;
    let ollama = provider(&server.uri(), &[]);

    ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect("chat still sent");
}
