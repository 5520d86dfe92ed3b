//! The OpenAI chat-completions dialect, server side: what a request may say and what we answer.
//!
//! Every field is accounted for: the ones the engine supports are read (structured output and tools
//! in [`crate::tools`]), a few that change nothing (`n: 1`, `user`) are accepted, and any other field
//! gets a 400 naming it, so an app never believes a setting took effect when it was dropped.

use llm_cascade::{Attempt, ChatRequest, ChatResponse, FinishReason, Message, Role, Usage};
use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, sanitize_attempts};
use crate::tools;

/// Fields read from a request.
const SUPPORTED: &[&str] = &[
    "messages",
    "model",
    "models",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stream",
    "stream_options",
    "n",
    "user",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
];

/// A parsed chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The request for the engine (its `model` still unset: routing decides it).
    pub chat: ChatRequest,
    /// `model` as the client sent it.
    pub model: Option<String>,
    /// `models`: this request's order.
    pub models: Vec<String>,
    /// Whether to stream.
    pub stream: bool,
    /// Whether the stream ends with a usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
}

pub(crate) fn non_null(object: &Map<String, Value>, key: &str) -> Option<Value> {
    object.get(key).filter(|v| !v.is_null()).cloned()
}

pub(crate) fn wrong(field: &str, expected: &str) -> ApiError {
    ApiError::invalid(
        format!("`{field}` must be {expected}"),
        "See the OpenAI chat-completions reference for the field's type.",
    )
}

/// Parses and checks a request body.
///
/// # Errors
/// A 400 naming the first problem: not JSON, an unsupported field, a wrong type, no messages.
pub fn parse(body: &[u8]) -> Result<CompletionRequest, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            format!("the body is not valid JSON: {e}"),
            "Send a JSON object.",
        )
    })?;
    let Value::Object(object) = value else {
        return Err(wrong("the body", "a JSON object"));
    };
    reject_unsupported(&object)?;
    let messages = parse_messages(object.get("messages"))?;
    let mut chat = ChatRequest {
        messages,
        ..ChatRequest::default()
    };
    chat.temperature = non_null(&object, "temperature")
        .map(|v| {
            v.as_f64()
                .map(|t| t as f32)
                .ok_or_else(|| wrong("temperature", "a number"))
        })
        .transpose()?;
    let max =
        non_null(&object, "max_completion_tokens").or_else(|| non_null(&object, "max_tokens"));
    chat.max_tokens = max
        .map(|v| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| wrong("max_tokens", "a positive integer"))
        })
        .transpose()?;
    chat.stop = match non_null(&object, "stop") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong("stop", "a string or an array of strings"))?,
        Some(_) => return Err(wrong("stop", "a string or an array of strings")),
    };
    check_n(&object)?;
    let model = match non_null(&object, "model") {
        None => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(wrong("model", "a string")),
    };
    let models = match non_null(&object, "models") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| wrong("models", "an array of strings"))?,
        Some(_) => return Err(wrong("models", "an array of strings")),
    };
    let stream = match non_null(&object, "stream") {
        None => false,
        Some(v) => v.as_bool().ok_or_else(|| wrong("stream", "a boolean"))?,
    };
    let include_usage = parse_stream_options(&object)?;
    chat.response_format = tools::response_format(&object)?;
    chat.tools = tools::tools(&object)?;
    chat.tool_choice = tools::tool_choice(&object, &chat.tools)?;
    chat.parallel_tool_calls = tools::parallel_tool_calls(&object)?;
    tools::check_results(&chat.messages)?;
    Ok(CompletionRequest {
        chat,
        model,
        models,
        stream,
        include_usage,
    })
}

fn reject_unsupported(object: &Map<String, Value>) -> Result<(), ApiError> {
    let unsupported: Vec<&str> = object
        .iter()
        .filter(|(k, v)| !v.is_null() && !SUPPORTED.contains(&k.as_str()))
        .map(|(k, _)| k.as_str())
        .collect();
    if unsupported.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        format!(
            "unsupported field{}: {} (the cascade does not support {} yet)",
            if unsupported.len() == 1 { "" } else { "s" },
            unsupported.join(", "),
            if unsupported.len() == 1 { "it" } else { "them" },
        ),
        format!("Remove them; supported fields: {}.", SUPPORTED.join(", ")),
    ))
}

fn check_n(object: &Map<String, Value>) -> Result<(), ApiError> {
    match non_null(object, "n") {
        None => Ok(()),
        Some(v) if v.as_u64() == Some(1) => Ok(()),
        Some(_) => Err(ApiError::invalid(
            "unsupported field: n other than 1 (the cascade returns one choice)",
            "Remove `n` or set it to 1.",
        )),
    }
}

fn parse_stream_options(object: &Map<String, Value>) -> Result<bool, ApiError> {
    let Some(options) = non_null(object, "stream_options") else {
        return Ok(false);
    };
    let Value::Object(options) = options else {
        return Err(wrong("stream_options", "an object"));
    };
    if let Some(key) = options.keys().find(|k| k.as_str() != "include_usage") {
        return Err(ApiError::invalid(
            format!("unsupported field: stream_options.{key}"),
            "Only stream_options.include_usage is supported.",
        ));
    }
    match non_null(&options, "include_usage") {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| wrong("stream_options.include_usage", "a boolean")),
    }
}

fn parse_messages(value: Option<&Value>) -> Result<Vec<Message>, ApiError> {
    let Some(Value::Array(items)) = value else {
        return Err(wrong("messages", "a non-empty array"));
    };
    let messages = items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_message(i, item))
        .collect::<Result<Vec<_>, _>>()?;
    match messages.last() {
        None => Err(wrong("messages", "a non-empty array")),
        Some(last) if last.role == Role::Assistant => Err(ApiError::invalid(
            "a final assistant message (a prefill) is not supported yet",
            "End the conversation with a user message.",
        )),
        Some(_) => Ok(messages),
    }
}

fn parse_message(index: usize, item: &Value) -> Result<Message, ApiError> {
    let field = |name: &str| format!("messages[{index}].{name}");
    let Value::Object(object) = item else {
        return Err(wrong(&format!("messages[{index}]"), "an object"));
    };
    let role = match object.get("role").and_then(Value::as_str) {
        Some("system" | "developer") => Role::System,
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some("tool") => Role::Tool,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("unsupported role `{other}` in {}", field("role")),
                "Use system, developer, user, assistant or tool.",
            ));
        }
        None => return Err(wrong(&field("role"), "a string")),
    };
    // A tool message's `name` (sent by some clients) repeats the name of the call it answers, which
    // the providers get from that call.
    let allowed: &[&str] = match role {
        Role::Assistant => &["role", "content", "tool_calls", "refusal"],
        Role::Tool => &["role", "content", "tool_call_id", "name"],
        Role::System | Role::User => &["role", "content"],
    };
    if let Some((key, _)) = object
        .iter()
        .find(|(k, v)| !v.is_null() && !allowed.contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!(
                "unsupported field: {} (the cascade does not support it yet)",
                field(key)
            ),
            format!(
                "{} messages may have: {}.",
                role.as_str(),
                allowed.join(", ")
            ),
        ));
    }
    match role {
        Role::System => Ok(Message::system(parse_content(
            object.get("content"),
            &field("content"),
        )?)),
        Role::User => Ok(Message::user(parse_content(
            object.get("content"),
            &field("content"),
        )?)),
        Role::Assistant => parse_assistant(object, &field),
        Role::Tool => {
            let Some(Value::String(id)) = object.get("tool_call_id") else {
                return Err(wrong(&field("tool_call_id"), "a string"));
            };
            let content = parse_content(object.get("content"), &field("content"))?;
            Ok(Message::tool_result(id.clone(), content))
        }
    }
}

/// An assistant message: text, tool calls (its content may then be null), or an earlier refusal
/// (replayed as its text).
fn parse_assistant(
    object: &Map<String, Value>,
    field: &dyn Fn(&str) -> String,
) -> Result<Message, ApiError> {
    let calls = tools::message_tool_calls(object.get("tool_calls"), &field("tool_calls"))?;
    let refusal = match non_null(object, "refusal") {
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => return Err(wrong(&field("refusal"), "a string")),
    };
    let content = match non_null(object, "content") {
        None if !calls.is_empty() || refusal.is_some() => String::new(),
        value => parse_content(value.as_ref(), &field("content"))?,
    };
    let content = match refusal {
        Some(text) if content.is_empty() => text,
        _ => content,
    };
    Ok(Message::assistant_tool_calls(content, calls))
}

/// A string, or an array of `{"type": "text", "text": …}` parts joined; other parts are refused.
fn parse_content(value: Option<&Value>, field: &str) -> Result<String, ApiError> {
    match value {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.get("type").and_then(Value::as_str), part.get("text")) {
                    (Some("text"), Some(Value::String(t))) => text.push_str(t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            format!(
                                "unsupported content part `{}` in {field} (text only)",
                                kind.unwrap_or("?")
                            ),
                            "Send text parts only.",
                        ));
                    }
                }
            }
            Ok(text)
        }
        _ => Err(wrong(field, "a string or an array of text parts")),
    }
}

/// `finish_reason` as OpenAI spells it; reasons OpenAI clients do not know are reported as `stop`
/// (their raw value stays in the `cascade` extension).
pub fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Stop | FinishReason::Other(_) => "stop",
    }
}

/// `finish_reason` of an answer: `tool_calls` when it calls tools and the provider said only `stop`
/// (Ollama and Gemini do), so a client that checks the reason runs the calls.
pub fn answer_finish(reason: &FinishReason, calls_tools: bool) -> &'static str {
    match finish_reason(reason) {
        "stop" if calls_tools => "tool_calls",
        other => other,
    }
}

/// `choices[0].message`: the text (`null` when there is none, as OpenAI sends beside tool calls), the
/// tool calls when there are any, `refusal: null` (a refusal is answered by [`refusal_completion`]).
#[derive(Serialize)]
struct AnswerMessage<'a> {
    role: &'static str,
    content: Option<Cow<'a, str>>,
    refusal: Option<()>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Value>,
}

impl<'a> AnswerMessage<'a> {
    fn of(answer: &'a ChatResponse) -> Self {
        Self {
            role: "assistant",
            content: (!answer.content.is_empty()).then(|| llm_core::redact(&answer.content)),
            refusal: None,
            tool_calls: (!answer.tool_calls.is_empty())
                .then(|| tools::tool_calls_json(&answer.tool_calls)),
        }
    }
}

/// A refusal as OpenAI answers one: HTTP 200, `content: null`, `message.refusal`, finish `stop`.
pub fn refusal_completion(
    id: &str,
    created: u64,
    model: &str,
    refusal: &tools::Refusal,
    attempts: &[Attempt],
) -> Value {
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": null, "refusal": refusal.text},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": null,
        "cascade": extension(&refusal.provider, None, attempts),
    })
}

/// `usage` in OpenAI's shape.
#[derive(Serialize)]
struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl From<Usage> for OpenAiUsage {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.input_tokens + usage.output_tokens,
        }
    }
}

/// `usage` in OpenAI's shape.
pub fn usage_json(usage: Usage) -> Value {
    to_value(OpenAiUsage::from(usage))
}

/// The `cascade` extension field: who answered and every attempt.
#[derive(Serialize)]
pub struct Extension<'a> {
    provider: &'a str,
    attempts: Vec<Attempt>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<Cow<'a, str>>,
}

impl<'a> Extension<'a> {
    /// The extension for an answer by `provider` that ended for `finish` (none for a refusal).
    pub fn new(provider: &'a str, finish: Option<&'a FinishReason>, attempts: &[Attempt]) -> Self {
        Self {
            provider,
            attempts: sanitize_attempts(attempts),
            finish_reason: finish.map(|reason| llm_core::sanitize(reason.as_str())),
        }
    }
}

/// The `cascade` extension field as a `Value`, for chunks built as values.
pub fn extension(provider: &str, finish: Option<&FinishReason>, attempts: &[Attempt]) -> Value {
    to_value(Extension::new(provider, finish, attempts))
}

/// A `Value` of a type whose serialisation cannot fail (strings, numbers, plain structs).
fn to_value(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A non-streamed answer: a `chat.completion` object, serialised straight from the answer (no `Value`
/// tree: this is the gateway's hot path).
#[derive(Serialize)]
pub struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: Cow<'a, str>,
    choices: [CompletionChoice<'a>; 1],
    usage: Option<OpenAiUsage>,
    cascade: Extension<'a>,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: AnswerMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// A non-streamed answer: a `chat.completion` object.
pub fn completion<'a>(
    id: &'a str,
    created: u64,
    answer: &'a ChatResponse,
    attempts: &[Attempt],
) -> Completion<'a> {
    Completion {
        id,
        object: "chat.completion",
        created,
        model: llm_core::sanitize(&answer.model),
        choices: [CompletionChoice {
            index: 0,
            message: AnswerMessage::of(answer),
            logprobs: None,
            finish_reason: answer_finish(&answer.finish_reason, !answer.tool_calls.is_empty()),
        }],
        usage: answer.usage.map(OpenAiUsage::from),
        cascade: Extension::new(&answer.provider, Some(&answer.finish_reason), attempts),
    }
}

/// One `chat.completion.chunk` with one choice.
pub fn chunk(id: &str, created: u64, model: &str, delta: Value, finish: Option<&str>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish,
        }],
    })
}

/// The final usage chunk (`choices` empty), sent when `stream_options.include_usage` was set.
pub fn usage_chunk(id: &str, created: u64, model: &str, usage: Option<Usage>) -> Value {
    json!({
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage.map(usage_json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(value: Value) -> Vec<u8> {
        serde_json::to_vec(&value).expect("json")
    }

    #[test]
    fn a_full_request_is_read() {
        let request = parse(&body(json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]},
            ],
            "temperature": 0.5,
            "max_completion_tokens": 64,
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
            "n": 1,
            "tools": null,
        })))
        .expect("parsed");
        assert_eq!(request.chat.messages[0], Message::system("Be brief."));
        assert_eq!(request.chat.messages[1], Message::user("Hi there"));
        assert_eq!(request.chat.temperature, Some(0.5));
        assert_eq!(request.chat.max_tokens, Some(64));
        assert_eq!(request.chat.stop, vec!["END".to_owned()]);
        assert_eq!(request.model.as_deref(), Some("gpt-4o-mini"));
        assert!(request.stream && request.include_usage);
    }

    #[test]
    fn unsupported_fields_are_named_never_dropped() {
        let error = parse(&body(json!({
            "messages": [{"role": "user", "content": "hi"}],
            "logprobs": true,
            "audio": {"voice": "alloy", "format": "wav"},
            "tools": [],
        })))
        .expect_err("refused");
        assert_eq!(error.status, 400);
        assert!(error.message.contains("logprobs"), "{}", error.message);
        assert!(error.message.contains("audio"), "{}", error.message);
        assert!(!error.message.contains("tools"), "{}", error.message);
        let n = parse(&body(
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 2}),
        ))
        .expect_err("n");
        assert!(n.message.contains("n other than 1"));
        let image = parse(&body(json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "x"}}]}]})))
        .expect_err("image");
        assert!(image.message.contains("image_url"));
        let function = parse(&body(
            json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}),
        ))
        .expect_err("the legacy function role");
        assert!(
            function.message.contains("`function`"),
            "{}",
            function.message
        );
        let named = parse(&body(
            json!({"messages": [{"role": "user", "name": "ann", "content": "x"}]}),
        ))
        .expect_err("a user's name");
        assert!(
            named.message.contains("messages[0].name"),
            "{}",
            named.message
        );
    }

    #[test]
    fn a_final_assistant_message_and_an_empty_conversation_are_400() {
        let prefill = parse(&body(json!({"messages": [
            {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hel"}]})))
        .expect_err("prefill");
        assert!(prefill.message.contains("prefill"));
        let empty = parse(&body(json!({"messages": []}))).expect_err("empty");
        assert!(empty.message.contains("messages"));
        let not_json = parse(b"{").expect_err("json");
        assert!(not_json.message.contains("JSON"));
    }
}
