//! The Messages API on the wire: private serde types and pure encode/decode functions.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_core::{ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, ToolCall, Usage};
use llm_protocol::HttpFailure;
use llm_protocol::error_map::{
    describe_unparsed_body, kind_for_status, one_line, retry_after_from_headers,
    retry_after_from_message,
};
use llm_protocol::header::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::ID;
use crate::content::{self, WireMessage};
use crate::structured::{self, Plan, WireTool, WireToolChoice};

/// `max_tokens` is required by the Messages API; this is sent when the request sets none.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(crate) struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<serde_json::Value>,
    /// How to read the answer (not sent).
    #[serde(skip)]
    pub(crate) plan: Plan,
}

/// Encodes `request` for `model`.
///
/// The messages are normalised by [`content::encode_messages`]: system messages, wherever they are,
/// go to the top-level `system` (joined by a blank line); consecutive messages of the same role are
/// merged (joined by a blank line); a conversation that does not start with a user message gets
/// [`LEADING_USER_TURN`](llm_protocol::conversation::LEADING_USER_TURN) first (the Messages API
/// requires the first message to be a user message); tool calls and results become content blocks.
/// Tools, tool choice and the response format follow [`structured::encode`].
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] when the conversation cannot be sent (see
/// [`content::encode_messages`]).
pub(crate) fn encode_request<'a>(
    request: &'a ChatRequest,
    model: &'a str,
    stream: bool,
) -> Result<MessagesRequest<'a>, Error> {
    let encoded = content::encode_messages(&request.messages)?;
    let structured = structured::encode(request, model);
    Ok(MessagesRequest {
        model,
        max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        system: encoded.system,
        messages: encoded.messages,
        temperature: request.temperature,
        stop_sequences: &request.stop,
        stream,
        tools: structured.tools,
        tool_choice: structured.tool_choice,
        output_config: structured.output_config,
        plan: structured.plan,
    })
}

/// A Messages API response (or an error object that came with a 2xx status).
#[derive(Debug, Deserialize)]
pub(crate) struct MessagesResponse {
    #[serde(default)]
    pub(crate) model: Option<String>,
    #[serde(default)]
    content: Option<Vec<ContentBlock>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    pub(crate) usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

/// A content block of an answer (`text`, `tool_use`; others are ignored), or the block a stream's
/// `content_block_start` opens.
#[derive(Debug, Deserialize)]
pub(crate) struct ContentBlock {
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    input: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) output_tokens: Option<u64>,
}

impl WireUsage {
    /// Prompt tokens: uncached input plus what was written to or read from the prompt cache.
    pub(crate) fn input(&self) -> Option<u64> {
        self.input_tokens.map(|n| {
            n + self.cache_creation_input_tokens.unwrap_or(0)
                + self.cache_read_input_tokens.unwrap_or(0)
        })
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorObject {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<serde_json::Value>,
}

/// Maps a `stop_reason`; a missing or `null` one is [`ErrorKind::StreamTruncated`]: only the provider
/// can say the answer is complete.
pub(crate) fn finish_reason(stop_reason: Option<&str>) -> Result<FinishReason, Error> {
    Ok(match stop_reason {
        Some("end_turn" | "stop_sequence") => FinishReason::Stop,
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("refusal") => FinishReason::ContentFilter,
        Some("tool_use") => FinishReason::ToolCalls,
        Some(other) => FinishReason::Other(other.to_owned()),
        None => {
            return Err(Error::new(
                ErrorKind::StreamTruncated,
                "the answer has no stop_reason: the provider did not say it is complete",
            ));
        }
    })
}

/// The finish reason of a complete answer read under `plan`. A refusal of a request for JSON is
/// [`ErrorKind::Refused`] (its text is not the data asked for; `text` is quoted); an answer given
/// through the answer tool, with no other call, finished normally.
pub(crate) fn complete(
    stop_reason: Option<&str>,
    plan: &Plan,
    answered: bool,
    calls: usize,
    text: &str,
) -> Result<FinishReason, Error> {
    let reason = finish_reason(stop_reason)?;
    if plan.wants_json && reason == FinishReason::ContentFilter {
        let quoted = if text.trim().is_empty() {
            "stop_reason refusal".to_owned()
        } else {
            one_line(text, 300)
        };
        return Err(Error::new(
            ErrorKind::Refused,
            format!("the model declined to answer: {quoted}"),
        ));
    }
    Ok(match reason {
        FinishReason::ToolCalls if answered && calls == 0 => FinishReason::Stop,
        other => other,
    })
}

/// A call's arguments as JSON text: the `input` object exactly as the model wrote it (`{}` when there
/// is none).
pub(crate) fn arguments(input: Option<&RawValue>) -> String {
    match input.map(RawValue::get) {
        None | Some("null") => "{}".to_owned(),
        Some(input) => input.to_owned(),
    }
}

/// Turns a decoded 2xx body into our response; an error object in it is a classified error, a body
/// without `content` is a validation error, one without `stop_reason` a truncation. Text blocks are
/// concatenated; `tool_use` blocks are tool calls, except a call of the plan's answer tool, whose
/// input is the answer (text blocks beside it are the model's preamble and dropped); other blocks
/// (thinking, server tools) are not content.
pub(crate) fn decode_response(
    response: MessagesResponse,
    requested_model: &str,
    plan: &Plan,
) -> Result<ChatResponse, Error> {
    if let Some(error) = response.error {
        return Err(error_from_object(&error, None));
    }
    let Some(blocks) = response.content else {
        return Err(Error::new(
            ErrorKind::MalformedAnswer,
            "the response has no `content`: not a Messages API answer",
        ));
    };
    let mut text = String::new();
    let mut answer = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "text" => text.push_str(block.text.as_deref().unwrap_or_default()),
            "tool_use" => {
                let call = ToolCall::new(
                    block.id.unwrap_or_default(),
                    block.name.unwrap_or_default(),
                    arguments(block.input.as_deref()),
                );
                match plan.answer(&call.name, &call.arguments) {
                    Some(json) => answer = Some(json),
                    None => tool_calls.push(call),
                }
            }
            _ => {}
        }
    }
    let finish_reason = complete(
        response.stop_reason.as_deref(),
        plan,
        answer.is_some(),
        tool_calls.len(),
        &text,
    )?;
    let usage = response.usage.map(|usage| Usage {
        input_tokens: usage.input().unwrap_or(0),
        output_tokens: usage.output_tokens.unwrap_or(0),
    });
    Ok(ChatResponse {
        tool_calls,
        content: answer.unwrap_or(text),
        provider: ID.to_owned(),
        model: response.model.unwrap_or_else(|| requested_model.to_owned()),
        finish_reason,
        usage,
        rate_limit: None,
    })
}

/// The kind an Anthropic `error.type` means, refined by its message (400s carry context-length and
/// credit problems as `invalid_request_error`), falling back to the HTTP status.
pub(crate) fn error_kind(
    error_type: &str,
    message: &str,
    details: Option<&serde_json::Value>,
    status: Option<u16>,
) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    let spend_limit = details
        .and_then(|d| d.get("error_code"))
        .and_then(serde_json::Value::as_str)
        .is_some_and(|code| code.contains("spend_limit"));
    match error_type {
        "rate_limit_error" if spend_limit => ErrorKind::QuotaExhausted,
        "rate_limit_error" => ErrorKind::RateLimit,
        "overloaded_error" => ErrorKind::Overloaded,
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "not_found_error" => ErrorKind::ModelNotFound,
        "request_too_large" => ErrorKind::ContextLength,
        "api_error" => ErrorKind::ServerError,
        "timeout_error" => ErrorKind::Timeout,
        "billing_error" => ErrorKind::QuotaExhausted,
        "invalid_request_error"
            if lower.contains("prompt is too long")
                || lower.contains("context limit")
                || lower.contains("context window") =>
        {
            ErrorKind::ContextLength
        }
        "invalid_request_error" if lower.contains("credit balance") || spend_limit => {
            ErrorKind::QuotaExhausted
        }
        "invalid_request_error" if capability_mismatch(&lower) => ErrorKind::Unsupported,
        "invalid_request_error" => ErrorKind::InvalidRequest,
        _ => status.map_or(ErrorKind::ServerError, kind_for_status),
    }
}

/// Whether a 400's (lowercased) message says the model cannot take the tools or structured output we
/// sent, so another provider may serve the request: the request validator's "output_config: Extra
/// inputs are not permitted" for a field the model does not know (`output_config`, `output_format`, a
/// tool's `strict`), or a "does not support" / "not supported" naming tools or structured output.
/// "This model does not support effort level …" names neither and stays a request error.
fn capability_mismatch(message: &str) -> bool {
    let field = message.split(':').next().unwrap_or_default().trim();
    let unknown_field = message.contains("extra inputs are not permitted")
        && (field.starts_with("output_config")
            || field.starts_with("output_format")
            || (field.starts_with("tools.") && field.ends_with(".strict")));
    let refused = ["does not support", "not supported", "unsupported"]
        .iter()
        .any(|r| message.contains(r));
    let feature = [
        "tool use",
        "tool_use",
        "tools",
        "structured output",
        "output format",
        "output_config",
        "output_format",
        "json_schema",
        "strict",
    ]
    .iter()
    .any(|f| message.contains(f));
    unknown_field || (refused && feature)
}

/// An error from an Anthropic error object (HTTP error body, 2xx body or stream `error` event).
pub(crate) fn error_from_object(error: &ErrorObject, status: Option<u16>) -> Error {
    let kind = error_kind(&error.kind, &error.message, error.details.as_ref(), status);
    let label = if error.kind.is_empty() {
        "error"
    } else {
        error.kind.as_str()
    };
    Error::new(kind, format!("{label}: {}", one_line(&error.message, 300)))
        .with_retry_after(retry_after_from_message(&error.message))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorObject,
}

/// This provider's `parse_error`: the body's `error.type` first, then the status; the wait hint from
/// `retry-after`, else from the `anthropic-ratelimit-*-reset` of an exhausted bucket.
pub(crate) fn parse_error(failure: &HttpFailure) -> Error {
    classify_failure(failure, SystemTime::now())
}

fn classify_failure(failure: &HttpFailure, now: SystemTime) -> Error {
    let error = match serde_json::from_slice::<ErrorBody>(&failure.body) {
        Ok(body) => error_from_object(&body.error, Some(failure.status)),
        Err(_) => Error::new(
            kind_for_status(failure.status),
            describe_unparsed_body(&failure.body),
        ),
    };
    let wait = error
        .retry_after()
        .or_else(|| retry_after_from_headers(&failure.headers))
        .or_else(|| ratelimit_reset_wait(&failure.headers, now));
    error.with_retry_after(wait)
}

/// How long until the exhausted `anthropic-ratelimit-<bucket>-*` buckets (remaining `0`) reset, from
/// their RFC 3339 `-reset` headers; the longest wait wins.
pub(crate) fn ratelimit_reset_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: String| {
        headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    ["requests", "tokens", "input-tokens", "output-tokens"]
        .iter()
        .filter(|bucket| text(format!("anthropic-ratelimit-{bucket}-remaining")) == Some("0"))
        .filter_map(|bucket| text(format!("anthropic-ratelimit-{bucket}-reset")))
        .filter_map(parse_rfc3339)
        .map(|reset| reset.duration_since(now).unwrap_or(Duration::ZERO))
        .max()
}

/// Parses an RFC 3339 timestamp (`2025-06-02T15:15:48Z`, optional fraction, `Z` or `±hh:mm`).
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = std::str::from_utf8(b.get(range)?).ok()?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0_u32;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        let kept = &fraction[..digits.min(9)];
        let value: u32 = std::str::from_utf8(kept).ok()?.parse().ok()?;
        nanos = value * 10_u32.pow(9 - u32::try_from(kept.len()).ok()?);
        rest = &fraction[digits..];
    }
    let offset_seconds: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digit = |c: &u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let minutes = (digit(h1)? * 10 + digit(h2)?) * 60 + digit(m1)? * 10 + digit(m2)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::new(seconds, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::Message;
    use llm_protocol::conversation::LEADING_USER_TURN;
    use llm_protocol::header::HeaderValue;

    fn encode(request: &ChatRequest, stream: bool) -> serde_json::Value {
        serde_json::to_value(encode_request(request, "claude-x", stream).expect("encodes"))
            .expect("serialise")
    }

    #[test]
    fn system_goes_top_level_and_max_tokens_defaults() {
        let request = ChatRequest::from_prompt("Hi").with_system("Be brief.");
        assert_eq!(
            encode(&request, false),
            serde_json::json!({
                "model": "claude-x",
                "max_tokens": 4096,
                "system": "Be brief.",
                "messages": [{"role": "user", "content": "Hi"}]
            })
        );
    }

    #[test]
    fn options_and_stream_flag() {
        let request = ChatRequest {
            messages: vec![Message::user("Hi")],
            model: None,
            temperature: Some(0.5),
            max_tokens: Some(10),
            stop: vec!["END".into()],
            ..ChatRequest::default()
        };
        let body = encode(&request, true);
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["stop_sequences"], serde_json::json!(["END"]));
        assert_eq!(body["stream"], true);
        assert!(body.get("system").is_none());
    }

    #[test]
    fn same_role_runs_merge_and_systems_join() {
        let request = ChatRequest {
            messages: vec![
                Message::system("S1"),
                Message::user("a"),
                Message::user("b"),
                Message::system("S2"),
                Message::assistant("c"),
                Message::assistant("d"),
                Message::user("e"),
            ],
            ..ChatRequest::default()
        };
        let body = encode(&request, false);
        assert_eq!(body["system"], "S1\n\nS2");
        assert_eq!(
            body["messages"],
            serde_json::json!([
                {"role": "user", "content": "a\n\nb"},
                {"role": "assistant", "content": "c\n\nd"},
                {"role": "user", "content": "e"}
            ])
        );
    }

    #[test]
    fn leading_assistant_gets_a_user_turn_first() {
        let request = ChatRequest {
            messages: vec![Message::assistant("Hello!"), Message::user("Hi")],
            ..ChatRequest::default()
        };
        let body = encode(&request, false);
        assert_eq!(body["messages"][0]["role"], "user");
        assert_eq!(body["messages"][0]["content"], LEADING_USER_TURN);
        assert_eq!(body["messages"][1]["role"], "assistant");
    }

    #[test]
    fn stop_reasons() {
        let reason = |r| finish_reason(Some(r)).expect("a reason");
        assert_eq!(reason("end_turn"), FinishReason::Stop);
        assert_eq!(reason("stop_sequence"), FinishReason::Stop);
        assert_eq!(reason("max_tokens"), FinishReason::Length);
        assert!(reason("max_tokens").is_truncated());
        assert_eq!(reason("refusal"), FinishReason::ContentFilter);
        assert_eq!(reason("tool_use"), FinishReason::ToolCalls);
        assert_eq!(
            reason("pause_turn"),
            FinishReason::Other("pause_turn".into())
        );
        assert_eq!(
            finish_reason(None).expect_err("no reason").kind(),
            ErrorKind::StreamTruncated
        );
    }

    #[test]
    fn null_stop_reason_is_truncated() {
        let response: MessagesResponse = serde_json::from_str(
            r#"{"model":"m","content":[{"type":"text","text":"Hel"}],"stop_reason":null}"#,
        )
        .expect("decode");
        assert_eq!(
            decode_response(response, "m", &Plan::default())
                .expect_err("cut")
                .kind(),
            ErrorKind::StreamTruncated
        );
    }

    #[test]
    fn response_text_blocks_concatenate_and_cache_counts_as_input() {
        let response: MessagesResponse = serde_json::from_str(
            r#"{"model":"m","content":[{"type":"thinking","thinking":"hmm"},{"type":"text","text":"a"},{"type":"text","text":"b"}],
                "stop_reason":"max_tokens","usage":{"input_tokens":3,"cache_read_input_tokens":4,"output_tokens":5}}"#,
        )
        .expect("decode");
        let response = decode_response(response, "req", &Plan::default()).expect("ok");
        assert_eq!(response.content, "ab");
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 7,
                output_tokens: 5
            })
        );
    }

    fn answer_plan() -> Plan {
        Plan {
            answer_tool: Some(crate::structured::AnswerTool {
                name: "structured_output".into(),
                wrapped: false,
            }),
            wants_json: true,
        }
    }

    #[test]
    fn the_answer_tool_input_is_the_text_and_other_calls_stay_calls() {
        let body = r#"{"model":"m","stop_reason":"tool_use","content":[
            {"type":"text","text":"Here you go."},
            {"type":"tool_use","id":"toolu_1","name":"structured_output","input":{"b":1,"a":2}}]}"#;
        let response: MessagesResponse = serde_json::from_str(body).expect("decode");
        let response = decode_response(response, "m", &answer_plan()).expect("ok");
        assert_eq!(
            (response.content.as_str(), &response.finish_reason),
            (r#"{"b":1,"a":2}"#, &FinishReason::Stop),
            "the input exactly as written; a normal finish"
        );
        assert!(response.tool_calls.is_empty());

        let other = body.replace("\"structured_output\"", "\"lookup\"");
        let response: MessagesResponse = serde_json::from_str(&other).expect("decode");
        let response = decode_response(response, "m", &answer_plan()).expect("ok");
        assert_eq!(response.content, "Here you go.");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.tool_calls,
            vec![ToolCall::new("toolu_1", "lookup", r#"{"b":1,"a":2}"#)]
        );
    }

    #[test]
    fn a_refusal_is_refused_only_when_json_was_asked_for() {
        let body = r#"{"model":"m","stop_reason":"refusal","content":[{"type":"text","text":"I can't help with that."}]}"#;
        let refused = decode_response(
            serde_json::from_str(body).expect("decode"),
            "m",
            &answer_plan(),
        )
        .expect_err("refused");
        assert_eq!(refused.kind(), ErrorKind::Refused);
        assert!(refused.message().contains("I can't help"), "{refused}");
        let plain = decode_response(
            serde_json::from_str(body).expect("decode"),
            "m",
            &Plan::default(),
        )
        .expect("filtered text is an answer");
        assert_eq!(plain.finish_reason, FinishReason::ContentFilter);
    }

    #[test]
    fn error_objects_and_missing_content_in_200_bodies() {
        let error: MessagesResponse = serde_json::from_str(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        )
        .expect("decode");
        assert_eq!(
            decode_response(error, "m", &Plan::default())
                .expect_err("error")
                .kind(),
            ErrorKind::Overloaded
        );
        let empty: MessagesResponse = serde_json::from_str(r#"{"id":"x"}"#).expect("decode");
        assert_eq!(
            decode_response(empty, "m", &Plan::default())
                .expect_err("empty")
                .kind(),
            ErrorKind::MalformedAnswer
        );
    }

    #[test]
    fn error_kinds_by_type_then_message_then_status() {
        let kind = |t: &str, m: &str, s: u16| error_kind(t, m, None, Some(s));
        assert_eq!(
            kind(
                "invalid_request_error",
                "prompt is too long: 203284 tokens > 200000 maximum",
                400
            ),
            ErrorKind::ContextLength
        );
        assert_eq!(
            kind(
                "invalid_request_error",
                "input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000",
                400
            ),
            ErrorKind::ContextLength
        );
        assert_eq!(
            kind(
                "invalid_request_error",
                "Your credit balance is too low to access the Anthropic API.",
                400
            ),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            kind("invalid_request_error", "bad", 400),
            ErrorKind::InvalidRequest
        );
        assert_eq!(kind("permission_error", "no", 403), ErrorKind::Auth);
        assert_eq!(
            kind("request_too_large", "big", 413),
            ErrorKind::ContextLength
        );
        assert_eq!(kind("api_error", "oops", 500), ErrorKind::ServerError);
        assert_eq!(kind("something_new", "?", 503), ErrorKind::Overloaded);
        for unsupported in [
            "output_config: Extra inputs are not permitted",
            "output_config.format: Extra inputs are not permitted",
            "tools.0.custom.strict: Extra inputs are not permitted",
            "This model does not support tool use.",
            "claude-3-haiku-20240307 does not support structured outputs",
        ] {
            assert_eq!(
                kind("invalid_request_error", unsupported, 400),
                ErrorKind::Unsupported,
                "{unsupported}"
            );
        }
        for plain in [
            "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
            "messages.65.content.1.tool_use.text: Extra inputs are not permitted",
            "system.1.cache_control.ephemeral.scope: Extra inputs are not permitted",
        ] {
            assert_eq!(
                kind("invalid_request_error", plain, 400),
                ErrorKind::InvalidRequest,
                "{plain}"
            );
        }
        let spend = serde_json::json!({"error_code": "enforced_spend_limit_reached"});
        assert_eq!(
            error_kind("rate_limit_error", "limit", Some(&spend), Some(429)),
            ErrorKind::QuotaExhausted
        );
    }

    #[test]
    fn html_error_pages_are_described() {
        let failure = HttpFailure {
            status: 502,
            headers: HeaderMap::new(),
            body: "<html><head><title>502 Bad Gateway</title></head></html>".into(),
        };
        let err = parse_error(&failure);
        assert_eq!(err.kind(), ErrorKind::ServerError);
        assert!(err.message().contains("502 Bad Gateway"), "{err}");
    }

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339("2025-06-02T15:15:48Z").expect("parse");
        assert_eq!(
            t.duration_since(UNIX_EPOCH).expect("after epoch").as_secs(),
            1_748_877_348
        );
        let offset = parse_rfc3339("2025-06-02T17:15:48.5+02:00").expect("parse");
        assert_eq!(
            offset.duration_since(t).expect("later"),
            Duration::from_millis(500)
        );
        for bad in [
            "",
            "2025-06-02",
            "2025-13-02T00:00:00Z",
            "2025-06-02T15:15:48",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn reset_headers_of_exhausted_buckets() {
        let mut headers = HeaderMap::new();
        let mut set = |name: &'static str, value: &str| {
            headers.insert(name, HeaderValue::from_str(value).expect("value"));
        };
        set("anthropic-ratelimit-input-tokens-remaining", "0");
        set(
            "anthropic-ratelimit-input-tokens-reset",
            "2025-06-02T15:15:48Z",
        );
        set("anthropic-ratelimit-requests-remaining", "4000");
        set("anthropic-ratelimit-requests-reset", "2025-06-02T15:20:00Z");
        let now = parse_rfc3339("2025-06-02T15:14:45Z").expect("now");
        assert_eq!(
            ratelimit_reset_wait(&headers, now),
            Some(Duration::from_secs(63))
        );
        let failure = HttpFailure {
            status: 429,
            headers,
            body:
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}"#
                    .into(),
        };
        let err = classify_failure(&failure, now);
        assert_eq!(
            (err.kind(), err.retry_after()),
            (ErrorKind::RateLimit, Some(Duration::from_secs(63)))
        );
    }
}
