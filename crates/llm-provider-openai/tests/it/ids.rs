//! A conversation that started at Anthropic goes on at OpenAI: its `toolu_…` ids go as they are
//! (OpenAI accepts any id), in the assistant's call and in the tool result.

use llm_provider_openai::ID;
use llm_test_support::replay::{sent_body, tool_conversation, tool_conversation_messages};

use crate::provider;

#[tokio::test]
async fn anthropic_ids_are_sent_as_they_are() {
    let id = "toolu_01A09q90qw90lq917835lq9";
    let body = sent_body(ID, "chat.tool_result", &tool_conversation(id), provider).await;
    assert_eq!(body["messages"], tool_conversation_messages(id));
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
}
