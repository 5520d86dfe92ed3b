//! Native tools: the documented requests sent exactly, calls decoded (with synthetic ids, since
//! Ollama gives none), streamed calls, tool results, and a model without tools.

use llm_core::{
    ChatRequest, ErrorKind, FinishReason, Message, Provider, StreamEvent, Tool, ToolCall,
};
use llm_test_support::Fixture;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::support::{bodies_at, collect, mount, provider};

/// The documented weather tool, as a library caller would declare it.
fn weather() -> Tool {
    Tool::new(
        "get_weather",
        "Get the weather in a given city",
        json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city to get the weather for"}},
            "required": ["city"]
        }),
    )
}

fn sent_body(scenario: &str) -> Value {
    Fixture::load("ollama", scenario)
        .request
        .body
        .expect("the fixture records the request body")
}

#[tokio::test]
async fn a_tool_request_is_the_documented_one_and_its_call_is_decoded() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.tools.doc", 1).await;
    let request = ChatRequest {
        tools: vec![weather()],
        ..ChatRequest::from_prompt("what is the weather in tokyo?")
    };

    let response = provider(&server.uri(), &[])
        .chat(&request)
        .await
        .expect("a call");

    assert_eq!(
        bodies_at(&server, "/api/chat").await,
        vec![sent_body("chat.tools.doc")]
    );
    assert_eq!(response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        response.tool_calls,
        vec![ToolCall::new(
            "call_0_0",
            "get_weather",
            r#"{"city":"Tokyo"}"#
        )]
    );
}

#[tokio::test]
async fn a_tool_result_names_the_tool_as_documented() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.tool_result.doc", 1).await;
    // The conversation as the library holds it: the call carries an id (ours, or another
    // provider's), which Ollama does not take; the result names the tool instead.
    let call = ToolCall::new(
        "toolu_01A09q90qw90lq917835lq9",
        "get_weather",
        r#"{"city": "Toronto"}"#,
    );
    let request = ChatRequest {
        messages: vec![
            Message::user("what is the weather in Toronto?"),
            Message::assistant_tool_calls("", vec![call.clone()]),
            Message::tool_result(call.id, "11 degrees celsius"),
        ],
        tools: vec![weather()],
        ..ChatRequest::default()
    };

    let response = provider(&server.uri(), &[])
        .chat(&request)
        .await
        .expect("an answer");

    assert_eq!(
        bodies_at(&server, "/api/chat").await,
        vec![sent_body("chat.tool_result.doc")]
    );
    assert_eq!(
        response.content,
        "The current temperature in Toronto is 11°C."
    );
    assert_eq!(response.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn a_streamed_call_arrives_whole_and_ends_as_tool_calls() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.stream.tools.doc", 1).await;
    let request = ChatRequest {
        // One earlier assistant turn: the new call's id counts it.
        messages: vec![
            Message::user("hi"),
            Message::assistant("Hello!"),
            Message::user("what is the weather in tokyo?"),
        ],
        tools: vec![weather()],
        ..ChatRequest::default()
    };
    let stream = provider(&server.uri(), &[])
        .chat_stream(&request)
        .await
        .expect("stream starts");
    let items = collect(stream).await;

    let events: Vec<StreamEvent> = items
        .into_iter()
        .map(|item| serde_json::from_value(item).expect("events only"))
        .collect();
    assert_eq!(
        events,
        vec![
            StreamEvent::ToolCall {
                call: ToolCall::new("call_1_0", "get_weather", r#"{"city":"Tokyo"}"#)
            },
            StreamEvent::Usage {
                usage: llm_core::Usage {
                    input_tokens: 169,
                    output_tokens: 15
                }
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                model: Some("llama3.2".to_owned())
            },
        ]
    );
    assert_eq!(
        bodies_at(&server, "/api/chat").await[0]["tools"][0]["function"]["name"],
        "get_weather"
    );
}

#[tokio::test]
async fn a_model_without_tools_is_unsupported_and_the_cascade_moves_on() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "error.400.unsupported", 1).await;
    let request = ChatRequest {
        tools: vec![weather()],
        ..ChatRequest::from_prompt("what is the weather in tokyo?")
    };
    let error = provider(&server.uri(), &[])
        .chat(&request)
        .await
        .expect_err("no tools");
    assert_eq!(
        (error.kind(), error.status(), error.provider()),
        (ErrorKind::Unsupported, Some(400), Some("ollama"))
    );
    assert!(
        error.message().contains("does not support tools"),
        "{}",
        error.message()
    );
    assert!(!error.kind().is_retryable());
}

#[tokio::test]
async fn tool_choice_none_offers_no_tool_and_a_named_one_only_that() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 1).await;
    mount(&server, "chat.success", 2).await;
    let ollama = provider(&server.uri(), &[]);
    let other = Tool::new("get_time", "The time in a city", json!({"type": "object"}));
    let mut request = ChatRequest {
        tools: vec![weather(), other],
        tool_choice: Some(llm_core::ToolChoice::None),
        ..ChatRequest::from_prompt("hi")
    };
    ollama.chat(&request).await.expect("answer");
    request.tool_choice = Some(llm_core::ToolChoice::Named("get_time".to_owned()));
    ollama.chat(&request).await.expect("answer");

    let bodies = bodies_at(&server, "/api/chat").await;
    assert!(bodies[0].get("tools").is_none(), "{}", bodies[0]);
    let names: Vec<&Value> = bodies[1]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| &t["function"]["name"])
        .collect();
    assert_eq!(names, vec!["get_time"]);
}
