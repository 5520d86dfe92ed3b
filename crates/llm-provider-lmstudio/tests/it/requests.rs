//! What the provider sends, model discovery, a server that is not running, and its URL variables.

use std::time::{Duration, Instant};

use llm_core::{ChatRequest, ErrorKind, MapEnv, Provider, Registry};
use llm_provider_lmstudio::{ID, LmStudio, LmStudioConfig};
use llm_test_support::replay::{error_json, sent_request};
use llm_test_support::{CANARY_KEY, Fixture};
use wiremock::MockServer;

use crate::{env, provider};

/// A provider without `LM_STUDIO_MODEL`, so it asks the server for its model.
fn discovering(uri: &str) -> LmStudio {
    let env = MapEnv::new().with("LM_STUDIO_BASE_URL", format!("{uri}/v1"));
    LmStudio::from_env(&env).expect("a valid configuration")
}

#[tokio::test]
async fn stream_request_has_no_key_and_the_configured_model() {
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}

#[tokio::test]
async fn an_optional_key_is_sent_as_bearer() {
    let build = |uri: &str| {
        let env = env(uri).with("LM_STUDIO_API_KEY", CANARY_KEY);
        Box::new(LmStudio::from_env(&env).expect("a valid configuration"))
    };
    let sent = sent_request(ID, "chat.success", false, build).await;
    assert_eq!(sent["headers"]["authorization"], "Bearer <CANARY_KEY>");
}

#[tokio::test]
async fn the_loaded_model_is_discovered_once_and_embeddings_are_skipped() {
    let server = MockServer::start().await;
    Fixture::load(ID, "models.success")
        .mount(&server, "GET", "/v1/models", 1)
        .await;
    Fixture::load(ID, "chat.success")
        .mount(&server, "POST", "/v1/chat/completions", 2)
        .await;
    let lmstudio = discovering(&server.uri());
    assert_eq!(lmstudio.model(), "(loaded model)");
    for _ in 0..2 {
        lmstudio
            .chat(&ChatRequest::from_prompt("hi"))
            .await
            .expect("answer");
    }
    assert_eq!(lmstudio.model(), "qwen2.5-7b-instruct");
    let requests = server.received_requests().await.expect("recorded");
    let chat: serde_json::Value = serde_json::from_slice(&requests[1].body).expect("json body");
    assert_eq!(chat["model"], "qwen2.5-7b-instruct");
}

#[tokio::test]
async fn no_model_to_discover_is_model_not_found_with_advice() {
    let server = MockServer::start().await;
    Fixture::load(ID, "models.empty")
        .mount(&server, "GET", "/v1/models", 1)
        .await;
    let error = discovering(&server.uri())
        .check_available()
        .await
        .expect_err("no model");
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    insta::assert_json_snapshot!(error_json(&error));
}

#[tokio::test]
async fn a_refused_connection_is_not_running_at_once() {
    let port = llm_test_support::refused_port();
    let lmstudio = provider(&format!("http://127.0.0.1:{port}"));
    assert!(lmstudio.is_local());
    let started = Instant::now();
    let error = lmstudio
        .chat(&ChatRequest::from_prompt("hi"))
        .await
        .expect_err("refused");
    assert_eq!(error.kind(), ErrorKind::NotRunning);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn the_full_chat_url_gives_the_base_url_unless_the_base_url_is_set() {
    let full = MapEnv::new().with("LM_STUDIO_URL", "http://10.0.0.5:1234/v1/chat/completions");
    let config = LmStudioConfig::from_env(&full).expect("valid");
    assert_eq!(config.settings.base_url, "http://10.0.0.5:1234/v1");
    assert_eq!(config.settings.timeout, Duration::from_secs(120));
    assert!(config.settings.api_key.is_none());
    let both = full.with("LM_STUDIO_BASE_URL", "http://127.0.0.1:4321/v1");
    let config = LmStudioConfig::from_env(&both).expect("valid");
    assert_eq!(config.settings.base_url, "http://127.0.0.1:4321/v1");
}

#[test]
fn registers_as_local_with_its_defaults() {
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert!(found.local && found.key_env.is_empty());
    assert_eq!(
        (found.priority, found.default_base_url),
        (20, "http://localhost:1234/v1")
    );
}
