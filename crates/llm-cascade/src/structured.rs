//! Structured output and tools through the cascade: what each provider is sent (its native mechanism,
//! a checked degraded mode, or nothing: skipped), and the validation of what comes back.
//!
//! - [`adapt`]: a provider that cannot call tools is skipped ([`ErrorKind::Unsupported`], "skipped: no
//!   tool support"); tools are never dropped from a request. A JSON schema goes natively to a provider
//!   that takes one; otherwise it is asked for by instruction (with JSON mode when the provider has it),
//!   and the answer is validated like any other.
//! - [`Cascade::chat_json`] / [`Cascade::chat_json_schema`]: the answer is stripped of code fences,
//!   parsed and validated against the schema (`jsonschema`); a mismatch is
//!   [`ErrorKind::MalformedAnswer`] naming the failing path and rule, retried on the same provider (as
//!   the retry policy allows: once by default) with the validator's message appended to the
//!   conversation, then the next provider.
//! - Tool-call arguments are validated against the tool's parameter schema the same way, in every
//!   call ([`check_tool_calls`]), streamed or not.
//! - A request with `parallel_tool_calls: false` gets one call per answer: providers that have the
//!   setting are sent it; from one that sends several anyway, the first is kept ([`first_call_only`];
//!   a stream passes on its first `ToolCall` only), before the calls are checked.
//! - An answer to a request with a JSON [`ResponseFormat`] is validated the same way
//!   ([`check_format`]): a whole answer before it is returned; a stream when it finishes, since nothing
//!   can be checked before its first token, so an invalid one ends with a `malformed_answer` error
//!   instead of its `Finish` ([`check_stream_event`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use llm_core::{
    Capabilities, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message, Provider,
    ResponseFormat, StreamEvent, ToolCall,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::info;

use crate::engine::Cascade;
use crate::report::{CascadeError, CascadeResponse};

/// How many validation failures a message lists: enough to fix, short enough to read.
const MAX_REPORTED: usize = 5;

/// A validated structured answer: the value and the whole response with its attempt record.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StructuredResponse<T> {
    /// The answer, validated against the schema.
    pub value: T,
    /// The response it came from (text, provider, model, attempts).
    pub response: CascadeResponse,
}

/// The request as `provider` should get it, or [`ErrorKind::Unsupported`] when it cannot serve it.
///
/// # Errors
/// [`ErrorKind::Unsupported`] ("skipped: no tool support") when the request needs tools and the
/// provider has none.
pub fn adapt(provider: &dyn Provider, request: &ChatRequest) -> Result<ChatRequest, Error> {
    // The model the request will use decides, not the provider's configured one.
    let capabilities = provider.capabilities_for(request.model_or(provider.model()));
    adapt_to(capabilities, request).map_err(|e| e.with_provider(provider.id()))
}

fn adapt_to(capabilities: Capabilities, request: &ChatRequest) -> Result<ChatRequest, Error> {
    if request.needs_tools() && !capabilities.tools {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "skipped: no tool support",
        ));
    }
    let mut adapted = request.clone();
    let Some(format) = &request.response_format else {
        return Ok(adapted);
    };
    let (native, instruction) = match format {
        ResponseFormat::Text => (true, None),
        ResponseFormat::JsonObject => (
            capabilities.json_mode,
            Some("Answer with one JSON object only: no prose, no code fences.".to_owned()),
        ),
        ResponseFormat::JsonSchema { schema, .. } => (
            capabilities.json_schema,
            Some(format!(
                "Answer with one JSON value that matches this JSON Schema, and nothing else (no prose, \
                 no code fences):\n{schema}"
            )),
        ),
    };
    if native {
        return Ok(adapted);
    }
    // Degraded but checked: JSON mode when the provider has it, the schema by instruction, and the
    // answer validated by the caller.
    adapted.response_format = capabilities.json_mode.then_some(ResponseFormat::JsonObject);
    if let Some(instruction) = instruction {
        adapted.messages.push(Message::system(instruction));
    }
    Ok(adapted)
}

/// Checks every tool call of `response` against the parameter schema of the tool it names.
///
/// # Errors
/// [`ErrorKind::MalformedAnswer`] naming the call, the failing path and rule, when a call names a
/// tool the request did not offer or its arguments do not match.
pub fn check_tool_calls(request: &ChatRequest, response: &ChatResponse) -> Result<(), Error> {
    for call in &response.tool_calls {
        check_tool_call(request, call).map_err(|details| {
            tool_error(call, &details).with_provider(response.provider.clone())
        })?;
    }
    Ok(())
}

/// When `request` asks for one tool call at a time (`parallel_tool_calls: false`), `response` keeps
/// only its first call: the provider had no such setting (or ignored it) and sent several. The client
/// asked for calls one by one, so it answers the first and the model asks for the next again.
pub(crate) fn first_call_only(request: &ChatRequest, response: &mut ChatResponse) {
    if request.parallel_tool_calls == Some(false) && response.tool_calls.len() > 1 {
        log_dropped_calls(&response.provider, response.tool_calls.len() - 1);
        response.tool_calls.truncate(1);
    }
}

/// Logs that `dropped` tool calls of `provider`'s answer were not passed on (see [`first_call_only`]).
pub(crate) fn log_dropped_calls(provider: &str, dropped: usize) {
    info!(
        provider,
        dropped, "one tool call at a time was asked for: {provider}'s other calls are dropped"
    );
}

fn tool_error(call: &ToolCall, details: &str) -> Error {
    Error::new(
        ErrorKind::MalformedAnswer,
        format!("tool call `{}` ({}): {details}", call.name, call.id),
    )
}

/// Checks `text`, a whole answer, against the JSON format `request` asked for (code fences
/// stripped): an object for [`ResponseFormat::JsonObject`], a match for
/// [`ResponseFormat::JsonSchema`]. Text answers always pass, and so does a schema that does not compile
/// (the provider was sent it and refused it already).
///
/// # Errors
/// [`ErrorKind::MalformedAnswer`] with the details: why it is not JSON, or each failing path and rule.
pub fn check_format(request: &ChatRequest, text: &str) -> Result<(), Error> {
    let details = match &request.response_format {
        Some(ResponseFormat::JsonObject) => match serde_json::from_str(strip_fences(text)) {
            Ok(Value::Object(_)) => return Ok(()),
            Ok(_) => "the answer is JSON but not an object".to_owned(),
            Err(e) => format!("the answer is not JSON: {e}"),
        },
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            let Ok(validator) = jsonschema::validator_for(schema) else {
                return Ok(());
            };
            match parse_and_validate(&validator, text) {
                Ok(_) => return Ok(()),
                Err(details) => details,
            }
        }
        Some(ResponseFormat::Text) | None => return Ok(()),
    };
    Err(Error::new(ErrorKind::MalformedAnswer, details))
}

/// [`check_format`] for a whole response, unless it answered with tool calls instead of text (with
/// tools offered, a model may call one instead of answering; the calls are checked by
/// [`check_tool_calls`]).
///
/// # Errors
/// As [`check_format`], naming the provider.
pub(crate) fn check_response_format(
    request: &ChatRequest,
    response: &ChatResponse,
) -> Result<(), Error> {
    if response.finish_reason == FinishReason::ToolCalls || !response.tool_calls.is_empty() {
        return Ok(());
    }
    check_format(request, &response.content).map_err(|e| e.with_provider(response.provider.clone()))
}

/// What a streamed `event` means for `request`'s structured output: a tool call's arguments are
/// checked against its tool; the `Finish` of a text answer checks `delivered`, the whole text the
/// caller received ([`check_format`]).
///
/// # Errors
/// [`ErrorKind::MalformedAnswer`] with the details (the caller names the provider).
pub(crate) fn check_stream_event(
    request: &ChatRequest,
    event: &StreamEvent,
    delivered: &str,
) -> Result<(), Error> {
    match event {
        StreamEvent::ToolCall { call } => {
            check_tool_call(request, call).map_err(|details| tool_error(call, &details))
        }
        StreamEvent::Finish { reason, .. } if *reason != FinishReason::ToolCalls => {
            check_format(request, delivered).map_err(|e| {
                let message = format!("the streamed answer is invalid: {}", e.message());
                Error::new(ErrorKind::MalformedAnswer, message)
            })
        }
        _ => Ok(()),
    }
}

fn check_tool_call(request: &ChatRequest, call: &ToolCall) -> Result<(), String> {
    let tool = request
        .tool(&call.name)
        .ok_or_else(|| "the request offers no tool of that name".to_owned())?;
    let arguments = call
        .arguments_json()
        .map_err(|e| format!("the arguments are not JSON: {e}"))?;
    let validator =
        jsonschema::validator_for(&tool.parameters).map_err(|e| format!("bad schema: {e}"))?;
    validate(&validator, &arguments)
}

/// The JSON in an answer: the text without surrounding whitespace and Markdown code fences.
pub fn strip_fences(text: &str) -> &str {
    let trimmed = text.trim();
    let Some(rest) = trimmed.strip_prefix("```") else {
        return trimmed;
    };
    // The fence's info string (`json`) runs to the end of its line.
    let body = rest.split_once('\n').map_or("", |(_, body)| body);
    body.trim_end().strip_suffix("```").unwrap_or(body).trim()
}

/// Parses `text` (fences stripped) and validates it.
///
/// # Errors
/// The details: why it is not JSON, or each failing path with its rule.
pub fn parse_and_validate(validator: &jsonschema::Validator, text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(strip_fences(text))
        .map_err(|e| format!("the answer is not JSON: {e}"))?;
    validate(validator, &value)?;
    Ok(value)
}

/// `Ok` when `value` matches, else up to [`MAX_REPORTED`] failures as `at <path>: <what> (rule
/// <schema path>)`.
fn validate(validator: &jsonschema::Validator, value: &Value) -> Result<(), String> {
    let failures: Vec<String> = validator
        .iter_errors(value)
        .take(MAX_REPORTED)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            };
            format!("at {path}: {e} (rule {})", e.schema_path())
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the answer does not match the schema: {}",
            failures.join("; ")
        ))
    }
}

/// What the model is told on the retry after an invalid answer.
fn correction(details: &str) -> Message {
    Message::user(format!(
        "Your previous answer was rejected: {details}. Answer again with only JSON that matches the \
         schema."
    ))
}

impl Cascade {
    /// Asks the chain for JSON that validates against `T`'s schema (from `schemars`) and returns it
    /// parsed, with the attempt record: every provider is tried until one answers valid data.
    ///
    /// # Errors
    /// A [`CascadeError`] when no provider produced valid output (the attempts say why: category
    /// `validation` with the failing path and rule), or the request is invalid.
    pub async fn chat_json<T: DeserializeOwned + schemars::JsonSchema>(
        &self,
        request: ChatRequest,
    ) -> Result<StructuredResponse<T>, CascadeError> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null);
        let name = schema_name(&T::schema_name());
        let answer = self.chat_json_schema(request, &name, schema).await?;
        let value = serde_json::from_value(answer.value).map_err(|e| {
            let error = Error::new(
                ErrorKind::MalformedAnswer,
                format!("the validated answer does not deserialize: {e}"),
            );
            CascadeError::interrupted(answer.response.attempts.clone(), &error)
        })?;
        Ok(StructuredResponse {
            value,
            response: answer.response,
        })
    }

    /// Asks the chain for JSON that validates against `schema` (named `name`); see
    /// [`Cascade::chat_json`].
    ///
    /// # Errors
    /// As [`Cascade::chat_json`]; an invalid schema is an invalid request, before any attempt.
    pub async fn chat_json_schema(
        &self,
        mut request: ChatRequest,
        name: &str,
        schema: Value,
    ) -> Result<StructuredResponse<Value>, CascadeError> {
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            let error = Error::new(
                ErrorKind::InvalidRequest,
                format!("the schema is not a valid JSON Schema: {e}"),
            );
            CascadeError::before_any_attempt(&error, "Fix the schema.")
        })?;
        // Strict unless the request already asked for this format without it (a gateway client's
        // `strict: false`): strict mode rejects some schemas that validate fine here.
        let strict = !matches!(
            request.response_format,
            Some(ResponseFormat::JsonSchema { strict: false, .. })
        );
        request.response_format = Some(ResponseFormat::JsonSchema {
            name: name.to_owned(),
            schema,
            strict,
        });
        let request = Arc::new(self.prepare_request(request)?);
        let validator = Arc::new(validator);
        // The last validation failure per provider: its retry is told what was wrong.
        let feedback: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let mut call = self.start_call();
        let (provider, (response, value)) = self
            .run(&mut call, |provider| {
                let (request, validator, feedback) =
                    (request.clone(), validator.clone(), feedback.clone());
                Box::pin(async move {
                    let mut adapted = adapt(provider.as_ref(), &request)?;
                    let previous = lock(&feedback).get(provider.id()).cloned();
                    if let Some(details) = previous {
                        adapted.messages.push(correction(&details));
                    }
                    let response = provider.chat(&adapted).await?;
                    check_tool_calls(&request, &response)?;
                    match parse_and_validate(&validator, &response.content) {
                        Ok(value) => Ok((response, value)),
                        Err(details) => {
                            lock(&feedback).insert(provider.id().to_owned(), details.clone());
                            Err(Error::new(ErrorKind::MalformedAnswer, details)
                                .with_provider(provider.id()))
                        }
                    }
                })
            })
            .await?;
        self.answered(&call, provider.as_ref(), &request, &response)
            .await;
        info!(
            provider = provider.id(),
            "valid structured answer from {}",
            provider.id()
        );
        Ok(StructuredResponse {
            value,
            response: CascadeResponse::new(response, call.attempts),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the map half-written: insert and get are single steps.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A schema name OpenAI accepts: `[a-zA-Z0-9_-]`, at most 64 characters.
fn schema_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if name.is_empty() {
        "answer".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::Tool;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}},
            "required": ["label"], "additionalProperties": false})
    }

    #[test]
    fn fences_are_stripped() {
        assert_eq!(strip_fences("```json\n{\"a\":1}\n```\n"), "{\"a\":1}");
        assert_eq!(strip_fences("```\n[1]\n```"), "[1]");
        assert_eq!(strip_fences("  {\"a\":1} "), "{\"a\":1}");
    }

    #[test]
    fn mismatches_name_the_path_and_rule() {
        let validator = jsonschema::validator_for(&schema()).expect("schema");
        let details = parse_and_validate(&validator, r#"{"label": "eggs"}"#).expect_err("enum");
        assert!(details.contains("at /label"), "{details}");
        assert!(details.contains("enum"), "{details}");
        let details = parse_and_validate(&validator, "Sure! Here it is").expect_err("prose");
        assert!(details.starts_with("the answer is not JSON"), "{details}");
        let value =
            parse_and_validate(&validator, "```json\n{\"label\":\"ham\"}\n```").expect("ok");
        assert_eq!(value, json!({"label": "ham"}));
    }

    #[test]
    fn a_provider_without_tools_is_skipped_not_stripped() {
        let request = ChatRequest {
            tools: vec![Tool::new("f", "does f", json!({"type": "object"}))],
            ..ChatRequest::from_prompt("hi")
        };
        let error = adapt_to(Capabilities::TEXT, &request).expect_err("skipped");
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert_eq!(error.message(), "skipped: no tool support");
        let adapted = adapt_to(Capabilities::ALL, &request).expect("native");
        assert_eq!(adapted, request);
        let replay = ChatRequest {
            messages: vec![Message::tool_result("call_1", "42")],
            ..ChatRequest::default()
        };
        assert!(
            adapt_to(Capabilities::TEXT, &replay).is_err(),
            "a tool result needs tools too"
        );
    }

    #[test]
    fn schemas_degrade_to_json_mode_or_instruction() {
        let request = ChatRequest {
            response_format: Some(ResponseFormat::json_schema("x", schema())),
            ..ChatRequest::from_prompt("classify")
        };
        let native = adapt_to(Capabilities::ALL, &request).expect("native");
        assert_eq!(native, request);
        let json_mode = Capabilities {
            json_schema: false,
            ..Capabilities::ALL
        };
        let degraded = adapt_to(json_mode, &request).expect("degraded");
        assert_eq!(degraded.response_format, Some(ResponseFormat::JsonObject));
        let instruction = &degraded.messages.last().expect("instruction").content;
        assert!(
            instruction.contains("\"enum\":[\"spam\",\"ham\"]"),
            "{instruction}"
        );
        let text_only = adapt_to(Capabilities::TEXT, &request).expect("by instruction");
        assert_eq!(text_only.response_format, None);
        assert_eq!(text_only.messages.len(), 2);
    }

    #[test]
    fn tool_arguments_are_validated_against_the_parameters() {
        let request = ChatRequest {
            tools: vec![Tool::new(
                "add",
                "adds",
                json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}),
            )],
            ..ChatRequest::from_prompt("add")
        };
        let mut response = ChatResponse {
            content: String::new(),
            provider: "p".into(),
            model: "m".into(),
            finish_reason: llm_core::FinishReason::ToolCalls,
            usage: None,
            tool_calls: vec![ToolCall::new("c1", "add", r#"{"a": 1}"#)],
            rate_limit: None,
        };
        check_tool_calls(&request, &response).expect("valid");
        response.tool_calls = vec![ToolCall::new("c1", "add", r#"{"a": "one"}"#)];
        let error = check_tool_calls(&request, &response).expect_err("invalid");
        assert_eq!(error.kind(), ErrorKind::MalformedAnswer);
        assert!(error.message().contains("at /a"), "{}", error.message());
        response.tool_calls = vec![ToolCall::new("c1", "sub", "{}")];
        assert!(check_tool_calls(&request, &response).is_err());
    }

    #[test]
    fn whole_answers_are_checked_against_their_format_unless_they_call_tools() {
        let mut request = ChatRequest {
            response_format: Some(ResponseFormat::json_schema("x", schema())),
            ..ChatRequest::from_prompt("classify")
        };
        let mut response = ChatResponse {
            content: "```json\n{\"label\": \"ham\"}\n```".into(),
            provider: "p".into(),
            model: "m".into(),
            finish_reason: llm_core::FinishReason::Stop,
            usage: None,
            tool_calls: Vec::new(),
            rate_limit: None,
        };
        check_response_format(&request, &response).expect("valid");
        response.content = r#"{"label": "eggs"}"#.into();
        let error = check_response_format(&request, &response).expect_err("enum");
        assert_eq!(error.kind(), ErrorKind::MalformedAnswer);
        assert!(error.message().contains("at /label"), "{}", error.message());
        response.tool_calls = vec![ToolCall::new("c1", "f", "{}")];
        check_response_format(&request, &response).expect("a tool call is not the answer");
        response.tool_calls.clear();
        request.response_format = Some(ResponseFormat::JsonObject);
        response.content = "[1, 2]".into();
        assert!(
            check_response_format(&request, &response).is_err(),
            "an array is not an object"
        );
        request.response_format = None;
        response.content = "prose".into();
        check_response_format(&request, &response).expect("text asked, text given");
    }

    #[test]
    fn schema_names_are_what_openai_accepts() {
        assert_eq!(schema_name("Vec<Label>"), "Vec_Label_");
        assert_eq!(schema_name(""), "answer");
    }
}
