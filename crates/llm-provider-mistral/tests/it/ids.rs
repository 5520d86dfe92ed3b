//! A conversation that started elsewhere goes on at Mistral: foreign tool-call ids become Mistral's
//! nine letters and digits, the same in the assistant's call and in the tool result.

use llm_provider_mistral::ID;
use llm_test_support::replay::{sent_body, tool_conversation, tool_conversation_messages};

use crate::provider;

/// What Mistral is sent for a conversation whose call has the id `id`.
async fn sent_for(id: &str) -> serde_json::Value {
    sent_body(ID, "chat.tool_result", &tool_conversation(id), provider).await
}

#[tokio::test]
async fn anthropic_ids_are_mapped_to_nine_alphanumerics_in_call_and_result() {
    let body = sent_for("toolu_01A09q90qw90lq917835lq9").await;
    let mapped = "Bd8DSP1EI";
    assert_eq!(body["messages"], tool_conversation_messages(mapped));
    // The next turn maps the same id the same way; Mistral's own ids and other foreign ids differ.
    let again = sent_for("toolu_01A09q90qw90lq917835lq9").await;
    assert_eq!(again["messages"][2]["tool_call_id"], mapped);
    let own = sent_for("rHU0eZiMa").await;
    assert_eq!(own["messages"][1]["tool_calls"][0]["id"], "rHU0eZiMa");
    let synthetic = sent_for("call_0_0").await;
    let id = synthetic["messages"][2]["tool_call_id"]
        .as_str()
        .expect("id");
    assert!(
        id.len() == 9 && id != mapped && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
}
