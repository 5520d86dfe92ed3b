//! What the provider sends (with its attribution headers), and its registration.

use llm_core::Registry;
use llm_provider_openrouter::{ID, OpenRouter};
use llm_test_support::replay::sent_request;

use crate::{env, provider};

#[tokio::test]
async fn stream_request_carries_key_model_usage_option_and_default_title() {
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}

#[tokio::test]
async fn attribution_headers_come_from_the_environment() {
    let build = |uri: &str| {
        let env = env(uri)
            .with("OPENROUTER_HTTP_REFERER", "https://example.test/app")
            .with("OPENROUTER_X_TITLE", "my-app");
        Box::new(OpenRouter::from_env(&env).expect("a valid configuration"))
    };
    let sent = sent_request(ID, "chat.success", false, build).await;
    assert_eq!(sent["headers"]["http-referer"], "https://example.test/app");
    assert_eq!(sent["headers"]["x-title"], "my-app");
    assert_eq!(sent["body"]["stream"], false);
}

#[test]
fn registers_with_its_defaults() {
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert_eq!(
        (found.priority, found.default_model, found.default_base_url),
        (50, "openai/gpt-4o-mini", "https://openrouter.ai/api/v1")
    );
}
