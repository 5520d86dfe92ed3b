//! Structured output and tools through the cascade: validation, the retry that tells the model what
//! was wrong, skipping providers without tools, and a tool conversation that crosses providers.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use llm_cascade::{
    Capabilities, Cascade, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason,
    Message, Outcome, Provider, Role, Tool, ToolCall,
};
use serde_json::json;

use crate::fake::fast_config;

/// A provider with declared capabilities that answers from a script and records what it was sent.
#[derive(Debug)]
struct Scripted {
    id: &'static str,
    capabilities: Capabilities,
    script: Mutex<VecDeque<ChatResponse>>,
    seen: Mutex<Vec<ChatRequest>>,
}

impl Scripted {
    fn new(id: &'static str, capabilities: Capabilities, answers: Vec<ChatResponse>) -> Arc<Self> {
        Arc::new(Self {
            id,
            capabilities,
            script: Mutex::new(answers.into()),
            seen: Mutex::new(Vec::new()),
        })
    }

    fn seen(&self) -> Vec<ChatRequest> {
        self.seen.lock().expect("lock").clone()
    }
}

fn text(provider: &str, content: &str) -> ChatResponse {
    ChatResponse {
        content: content.to_owned(),
        provider: provider.to_owned(),
        model: "m".to_owned(),
        finish_reason: FinishReason::Stop,
        usage: None,
        tool_calls: Vec::new(),
        rate_limit: None,
    }
}

fn calls(provider: &str, calls: Vec<ToolCall>) -> ChatResponse {
    ChatResponse {
        finish_reason: FinishReason::ToolCalls,
        tool_calls: calls,
        ..text(provider, "")
    }
}

#[async_trait]
impl Provider for Scripted {
    fn id(&self) -> &str {
        self.id
    }
    fn model(&self) -> &str {
        "m"
    }
    fn base_url(&self) -> &str {
        "http://127.0.0.1:0"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }
    /// One model of every scripted provider ([`TEXT_ONLY_MODEL`]) has no tools and no JSON.
    fn capabilities_for(&self, model: &str) -> Capabilities {
        if model == TEXT_ONLY_MODEL {
            Capabilities::TEXT
        } else {
            self.capabilities
        }
    }
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        self.seen.lock().expect("lock").push(request.clone());
        Ok(self
            .script
            .lock()
            .expect("lock")
            .pop_front()
            .expect("the script ran out: unexpected extra call"))
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, Error> {
        Err(Error::new(ErrorKind::InvalidRequest, "not scripted"))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A model the scripted providers can serve only as text (like `deepseek-reasoner`).
const TEXT_ONLY_MODEL: &str = "text-only";

fn cascade(providers: &[&Arc<Scripted>]) -> Cascade {
    let mut builder = Cascade::builder().config(fast_config());
    for provider in providers {
        builder = builder.provider_arc((*provider).clone());
    }
    builder.build()
}

fn outcomes(attempts: &[llm_cascade::Attempt]) -> Vec<(String, Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome))
        .collect()
}

fn label_schema() -> serde_json::Value {
    json!({"type": "object", "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}},
        "required": ["label"], "additionalProperties": false})
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema, PartialEq)]
struct Verdict {
    label: String,
    confidence: f64,
}

#[tokio::test(start_paused = true)]
async fn invalid_json_twice_moves_to_the_next_provider() {
    let first = Scripted::new(
        "first",
        Capabilities::ALL,
        vec![
            text("first", "Sure! It is spam."),
            text("first", "{\"label\":"),
        ],
    );
    let second = Scripted::new(
        "second",
        Capabilities::ALL,
        vec![text("second", "```json\n{\"label\": \"spam\"}\n```")],
    );
    let answer = cascade(&[&first, &second])
        .chat_json_schema(
            ChatRequest::from_prompt("classify"),
            "label",
            label_schema(),
        )
        .await
        .expect("the second provider answers");
    assert_eq!(answer.value, json!({"label": "spam"}));
    let malformed = Outcome::Failed(ErrorKind::MalformedAnswer);
    assert_eq!(
        outcomes(&answer.response.attempts),
        vec![
            ("first".into(), malformed),
            ("first".into(), malformed),
            ("second".into(), Outcome::Ok)
        ]
    );
    assert!(
        answer.response.attempts[0]
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("the answer is not JSON")),
        "{:?}",
        answer.response.attempts[0].message
    );
    // The native mechanism was used: the schema went as a response format, no instruction added.
    let sent = &first.seen()[0];
    assert!(sent.response_format.is_some());
    assert_eq!(sent.messages.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_schema_mismatch_is_retried_with_the_validators_message() {
    let only = Scripted::new(
        "only",
        Capabilities::ALL,
        vec![
            text("only", r#"{"label": "eggs"}"#),
            text("only", r#"{"label": "ham"}"#),
        ],
    );
    let answer = cascade(&[&only])
        .chat_json_schema(
            ChatRequest::from_prompt("classify"),
            "label",
            label_schema(),
        )
        .await
        .expect("valid on the retry");
    assert_eq!(answer.value, json!({"label": "ham"}));
    let seen = only.seen();
    let correction = seen[1].messages.last().expect("a correction");
    assert_eq!(correction.role, Role::User);
    assert!(
        correction.content.contains("at /label") && correction.content.contains("enum"),
        "{}",
        correction.content
    );
    assert!(seen[0].messages.len() < seen[1].messages.len());
}

#[tokio::test(start_paused = true)]
async fn no_valid_output_anywhere_is_a_validation_error_with_details() {
    let only = Scripted::new(
        "only",
        Capabilities::ALL,
        vec![text("only", r#"{"label": 1}"#), text("only", r#"{}"#)],
    );
    let error = cascade(&[&only])
        .chat_json_schema(
            ChatRequest::from_prompt("classify"),
            "label",
            label_schema(),
        )
        .await
        .expect_err("never valid");
    assert_eq!(error.category.as_str(), "validation");
    let last = error.attempts.last().expect("attempts");
    assert!(
        last.message
            .as_deref()
            .is_some_and(|m| m.contains("required")),
        "{last:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn typed_answers_come_from_the_schemars_schema_and_degrade_by_instruction() {
    let text_only = Scripted::new(
        "text-only",
        Capabilities::TEXT,
        vec![text("text-only", r#"{"label": "spam", "confidence": 0.9}"#)],
    );
    let answer = cascade(&[&text_only])
        .chat_json::<Verdict>(ChatRequest::from_prompt("classify"))
        .await
        .expect("typed");
    assert_eq!(
        answer.value,
        Verdict {
            label: "spam".into(),
            confidence: 0.9
        }
    );
    // Degraded but checked: no response format sent, the schema given by instruction.
    let sent = &text_only.seen()[0];
    assert_eq!(sent.response_format, None);
    let instruction = &sent.messages.last().expect("instruction").content;
    assert!(instruction.contains("\"confidence\""), "{instruction}");
}

fn weather_tool() -> Tool {
    Tool::new(
        "get_weather",
        "The weather in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

#[tokio::test(start_paused = true)]
async fn a_tool_request_skips_a_provider_without_tools() {
    let no_tools = Scripted::new("no-tools", Capabilities::TEXT, vec![]);
    let tools = Scripted::new(
        "tools",
        Capabilities::ALL,
        vec![calls(
            "tools",
            vec![ToolCall::new(
                "call_1",
                "get_weather",
                r#"{"city":"Paris"}"#,
            )],
        )],
    );
    let request = ChatRequest {
        tools: vec![weather_tool()],
        ..ChatRequest::from_prompt("weather in Paris?")
    };
    let response = cascade(&[&no_tools, &tools])
        .chat(request)
        .await
        .expect("the second provider calls the tool");
    assert_eq!(response.response.tool_calls[0].name, "get_weather");
    assert!(
        no_tools.seen().is_empty(),
        "never sent a request without its tools"
    );
    let skipped = &response.attempts[0];
    assert_eq!(
        (skipped.outcome, skipped.message.as_deref()),
        (
            Outcome::Failed(ErrorKind::Unsupported),
            Some("skipped: no tool support")
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_tool_conversation_crosses_providers() {
    // Turn 1 on `first`: it calls the tool with an Anthropic-style id.
    let first = Scripted::new(
        "first",
        Capabilities::ALL,
        vec![calls(
            "first",
            vec![ToolCall::new(
                "toolu_01A09q90qw90lq917835lq9",
                "get_weather",
                r#"{"city":"Paris"}"#,
            )],
        )],
    );
    let request = ChatRequest {
        tools: vec![weather_tool()],
        ..ChatRequest::from_prompt("weather in Paris?")
    };
    let turn = cascade(&[&first])
        .chat(request.clone())
        .await
        .expect("a call");
    // Turn 2 on `second`: the assistant's call and the tool's result are replayed as they were.
    let second = Scripted::new(
        "second",
        Capabilities::ALL,
        vec![text("second", "Sunny, 21°C.")],
    );
    let mut follow_up = request;
    follow_up.messages.push(Message::assistant_tool_calls(
        "",
        turn.response.tool_calls.clone(),
    ));
    follow_up.messages.push(Message::tool_result(
        turn.response.tool_calls[0].id.clone(),
        r#"{"temp_c": 21, "sky": "sunny"}"#,
    ));
    let answer = cascade(&[&second])
        .chat(follow_up)
        .await
        .expect("an answer");
    assert_eq!(answer.text(), "Sunny, 21°C.");
    let sent = &second.seen()[0];
    assert_eq!(
        sent.messages[1].tool_calls[0].id,
        "toolu_01A09q90qw90lq917835lq9"
    );
    assert_eq!(
        sent.messages[2].tool_call_id.as_deref(),
        Some("toolu_01A09q90qw90lq917835lq9")
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_tool_arguments_are_malformed_and_retried() {
    let only = Scripted::new(
        "only",
        Capabilities::ALL,
        vec![
            calls(
                "only",
                vec![ToolCall::new("c", "get_weather", r#"{"town":"Paris"}"#)],
            ),
            calls(
                "only",
                vec![ToolCall::new("c", "get_weather", r#"{"city":"Paris"}"#)],
            ),
        ],
    );
    let request = ChatRequest {
        tools: vec![weather_tool()],
        ..ChatRequest::from_prompt("weather in Paris?")
    };
    let response = cascade(&[&only])
        .chat(request)
        .await
        .expect("valid on the retry");
    assert_eq!(
        response.response.tool_calls[0].arguments,
        r#"{"city":"Paris"}"#
    );
    assert_eq!(
        response.attempts[0].outcome,
        Outcome::Failed(ErrorKind::MalformedAnswer)
    );
}

#[tokio::test(start_paused = true)]
async fn the_model_a_request_names_decides_the_skip() {
    let first = Scripted::new(
        "first",
        Capabilities::ALL,
        vec![calls(
            "first",
            vec![ToolCall::new("c1", "get_weather", r#"{"city":"Paris"}"#)],
        )],
    );
    let second = Scripted::new(
        "second",
        Capabilities::ALL,
        vec![calls(
            "second",
            vec![ToolCall::new("c2", "get_weather", r#"{"city":"Paris"}"#)],
        )],
    );
    let chain = cascade(&[&first, &second]);
    let request = ChatRequest {
        tools: vec![weather_tool()],
        ..ChatRequest::from_prompt("weather in Paris?")
    };
    // The configured model calls tools: the first provider answers.
    let answer = chain.chat(request.clone()).await.expect("a call");
    assert_eq!(answer.response.provider, "first");
    // A request naming a model without tools skips every provider whose model that is: none here can
    // serve it, and none was sent the request.
    let text_only = ChatRequest {
        model: Some(TEXT_ONLY_MODEL.to_owned()),
        ..request
    };
    let error = chain.chat(text_only).await.expect_err("no provider can");
    assert_eq!(
        outcomes(&error.attempts),
        vec![
            ("first".into(), Outcome::Failed(ErrorKind::Unsupported)),
            ("second".into(), Outcome::Failed(ErrorKind::Unsupported)),
        ]
    );
    assert_eq!((first.seen().len(), second.seen().len()), (1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_plain_chat_that_asked_for_json_gets_it_validated_and_retried() {
    let only = Scripted::new(
        "only",
        Capabilities::ALL,
        vec![
            text("only", "Here you go: spam"),
            text("only", r#"{"label": "spam"}"#),
        ],
    );
    let request = ChatRequest {
        response_format: Some(llm_cascade::ResponseFormat::json_schema(
            "label",
            label_schema(),
        )),
        ..ChatRequest::from_prompt("classify")
    };
    let answer = cascade(&[&only])
        .chat(request)
        .await
        .expect("valid on the retry");
    assert_eq!(answer.text(), r#"{"label": "spam"}"#);
    assert_eq!(
        outcomes(&answer.attempts),
        vec![
            ("only".into(), Outcome::Failed(ErrorKind::MalformedAnswer)),
            ("only".into(), Outcome::Ok)
        ]
    );
}
