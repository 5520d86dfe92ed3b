//! What the provider sends, and its registration.

use llm_core::Registry;
use llm_provider_deepseek::ID;
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
        (90, "deepseek-chat", "https://api.deepseek.com")
    );
}

#[test]
fn the_reasoner_is_text_only_and_the_chat_model_has_json_mode_and_tools() {
    use llm_core::{Capabilities, Provider};
    let deepseek = provider("http://127.0.0.1:9");
    let chat = deepseek.capabilities();
    assert!(
        chat.tools && chat.json_mode && !chat.json_schema,
        "{chat:?}"
    );
    assert_eq!(deepseek.capabilities_for("deepseek-chat"), chat);
    assert_eq!(
        deepseek.capabilities_for("deepseek-reasoner"),
        Capabilities::TEXT
    );
}
