//! What the provider sends, its registration, and its availability check.

use llm_core::{ErrorKind, Provider, Registry};
use llm_provider_openai::ID;
use llm_test_support::replay::{error_json, sent_request};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::provider;

#[tokio::test]
async fn stream_request_carries_bearer_key_default_model_and_usage_option() {
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}

#[tokio::test]
async fn check_available_lists_models_with_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(401).set_body_string(
            r#"{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let error = provider(&server.uri())
        .check_available()
        .await
        .expect_err("401");
    assert_eq!(error.kind(), ErrorKind::Auth);
    error_json(&error);
}

#[test]
fn registers_with_its_defaults() {
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert_eq!(
        (found.priority, found.default_model, found.default_base_url),
        (80, "gpt-4.1-mini", "https://api.openai.com/v1")
    );
}

#[test]
fn capabilities_follow_the_model_a_request_names() {
    use llm_core::Capabilities;
    let openai = provider("http://127.0.0.1:9");
    assert_eq!(openai.capabilities(), Capabilities::ALL, "gpt-4.1-mini");
    for model in ["gpt-4o", "gpt-4o-mini", "o1", "o3-mini", "gpt-4.1"] {
        assert_eq!(openai.capabilities_for(model), Capabilities::ALL, "{model}");
    }
    for model in ["o1-mini", "o1-preview-2024-09-12"] {
        assert_eq!(
            openai.capabilities_for(model),
            Capabilities::TEXT,
            "{model}"
        );
    }
    for model in ["gpt-4-turbo", "gpt-4", "gpt-3.5-turbo", "gpt-4o-2024-05-13"] {
        let caps = openai.capabilities_for(model);
        assert!(caps.tools && caps.json_mode && !caps.json_schema, "{model}");
    }
}
