//! What the provider sends, and its registration.

use llm_core::Registry;
use llm_provider_mistral::ID;
use llm_test_support::replay::sent_request;

use crate::provider;

#[tokio::test]
async fn stream_request_carries_bearer_key_and_default_model() {
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}

#[test]
fn registers_with_its_defaults() {
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert_eq!(
        (found.priority, found.default_model, found.default_base_url),
        (70, "mistral-small-latest", "https://api.mistral.ai/v1")
    );
}
