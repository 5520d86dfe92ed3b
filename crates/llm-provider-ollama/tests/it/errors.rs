//! Error classification: missing model, server failure, a server that is not running, `can_prepare`.

use llm_core::{ChatRequest, Error, ErrorKind, Provider};
use wiremock::MockServer;

use crate::support::{mount, provider, summary};
use llm_test_support::refused_port;

#[tokio::test]
async fn model_not_found_404_says_not_installed_and_can_be_pulled() {
    let server = MockServer::start().await;
    // The tags list says installed, the server says not (removed meanwhile): the 404 drops the cached
    // list, so the second chat asks /api/tags again.
    mount(&server, "tags.success.doc", 2).await;
    mount(&server, "error.404.model_not_found", 2).await;
    let ollama = provider(&server.uri(), &[]);

    let error = ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("404");
    let again = ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("404");

    insta::assert_json_snapshot!(summary(&error));
    assert_eq!(summary(&again), summary(&error));
    let message = error.message();
    assert!(
        message.contains("model 'llama3.2' is not installed"),
        "{message}"
    );
    assert!(message.contains("ollama pull llama3.2"), "{message}");
    assert!(ollama.can_prepare(&error));
}

#[tokio::test]
async fn server_error_500_is_retryable() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "error.500.server", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let error = ollama
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("500");

    insta::assert_json_snapshot!(summary(&error));
    assert!(error.is_retryable());
    assert!(
        error
            .message()
            .contains("the model failed to generate a response")
    );
    assert!(!ollama.can_prepare(&error));
}

#[tokio::test]
async fn refused_connection_is_not_running_everywhere() {
    let ollama = provider(&format!("http://127.0.0.1:{}", refused_port()), &[]);
    let request = ChatRequest::from_prompt("Hi");

    let errors: Vec<Error> = vec![
        ollama.chat(&request).await.expect_err("chat"),
        ollama
            .chat_stream(&request)
            .await
            .err()
            .expect("chat_stream"),
        ollama.check_available().await.expect_err("check_available"),
        ollama.prepare(&|_| {}).await.expect_err("prepare"),
    ];

    // Refused at once: the kind is NotRunning (a timeout would be ErrorKind::Timeout).
    for error in &errors {
        assert_eq!(error.kind(), ErrorKind::NotRunning, "{error}");
        assert_eq!(error.provider(), Some("ollama"));
        assert!(
            error.message().contains("nothing listens"),
            "{}",
            error.message()
        );
        assert!(!ollama.can_prepare(error));
    }
    assert!(
        errors[3]
            .message()
            .contains("pull it by hand: `ollama pull llama3.2`"),
        "{}",
        errors[3].message()
    );
}

#[test]
fn can_prepare_only_a_missing_configured_model() {
    let ollama = provider("http://127.0.0.1:9", &[]);
    let missing =
        |message: &str| Error::new(ErrorKind::ModelNotFound, message).with_provider("ollama");
    assert!(ollama.can_prepare(&missing("model not installed")));
    assert!(ollama.can_prepare(&missing("model 'llama3.2:latest' not found")));
    // Another model (a request's override): pulling the configured one would not help.
    assert!(!ollama.can_prepare(&missing("model 'gemma3:1b' not found")));
    // A failed pull is not prepared again.
    assert!(!ollama.can_prepare(&missing(
        "pulling model 'llama3.2' failed: x; pull it by hand: `ollama pull llama3.2`"
    )));
    assert!(
        !ollama.can_prepare(
            &Error::new(ErrorKind::ModelNotFound, "model 'llama3.2' not found")
                .with_provider("lmstudio")
        )
    );
    assert!(
        !ollama.can_prepare(&Error::new(ErrorKind::ServerError, "boom").with_provider("ollama"))
    );
}
