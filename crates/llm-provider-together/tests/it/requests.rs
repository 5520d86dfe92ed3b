//! What the provider sends, its key aliases, and its registration.

use llm_core::{MapEnv, Registry};
use llm_provider_together::{ID, TogetherConfig};
use llm_test_support::CANARY_KEY;
use llm_test_support::replay::sent_request;

use crate::provider;

#[tokio::test]
async fn stream_request_carries_bearer_key_and_default_model() {
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}

#[test]
fn key_aliases_are_accepted() {
    for alias in ["TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY"] {
        let config = TogetherConfig::from_env(&MapEnv::new().with(alias, CANARY_KEY)).expect(alias);
        let key = config.settings.api_key.as_ref().map(|key| key.expose());
        assert_eq!(key, Some(CANARY_KEY), "{alias}");
        assert!(!format!("{config:?}").contains(CANARY_KEY));
    }
    let missing = TogetherConfig::from_env(&MapEnv::new()).expect_err("no key");
    assert!(
        missing.message().contains("TOGETHERAI_API_KEY"),
        "{}",
        missing.message()
    );
}

#[test]
fn registers_with_its_defaults() {
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert_eq!(
        (found.priority, found.default_model, found.default_base_url),
        (
            60,
            "meta-llama/Llama-3.3-70B-Instruct-Turbo",
            "https://api.together.xyz/v1"
        )
    );
}
