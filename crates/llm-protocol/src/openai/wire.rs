//! Sans-IO encoding of chat requests and tolerant decoding of chat responses.

use llm_core::{ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Usage};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::errors::embedded_error;
use crate::ParseError;

/// The body of `POST {base}/chat/completions`.
#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// Encodes `request` for `model`. When `stream` is set and the provider accepts it (`stream_usage`),
/// asks for a final usage chunk with `stream_options: {"include_usage": true}`.
pub fn encode_request(
    request: &ChatRequest,
    model: &str,
    stream: bool,
    stream_usage: bool,
) -> Value {
    let body = WireRequest {
        model,
        messages: request
            .messages
            .iter()
            .map(|m| WireMessage {
                role: m.role.as_str(),
                content: &m.content,
            })
            .collect(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stop: &request.stop,
        stream,
        stream_options: (stream && stream_usage).then_some(StreamOptions {
            include_usage: true,
        }),
    };
    // Serialising plain strings and numbers into a `Value` cannot fail.
    serde_json::to_value(body).unwrap_or(Value::Null)
}

/// Marks a final assistant message of an encoded request as a prefill with `"prefix": true` (Mistral's
/// form: the model continues that message instead of answering after it). A body whose last message is
/// not the assistant's is left as it is.
pub fn mark_prefix(body: &mut Value) {
    let last = body
        .get_mut("messages")
        .and_then(Value::as_array_mut)
        .and_then(|messages| messages.last_mut());
    if let Some(last) = last
        && last.get("role").and_then(Value::as_str) == Some("assistant")
        && let Some(message) = last.as_object_mut()
    {
        message.insert("prefix".to_owned(), Value::Bool(true));
    }
}

/// A non-streamed completion; everything optional, unknown fields ignored.
#[derive(Debug, Deserialize)]
struct WireCompletion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireChoiceMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireChoiceMessage {
    #[serde(default)]
    content: Option<Value>,
}

/// Token counts as every dialect member reports them (extra fields such as Groq's timings ignored).
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl WireUsage {
    pub(crate) fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
        }
    }
}

/// The text of a `content` value: a string, or (Mistral) an array of typed parts of which only `text`
/// parts are the answer (`thinking` parts are reasoning). `null` is empty.
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|part| part.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

/// A finish reason as the dialect's members spell it; Together's `eos` is a stop and Mistral's
/// `model_length` a length cut; anything unknown is kept as [`FinishReason::Other`].
pub(crate) fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "stop" | "eos" => FinishReason::Stop,
        "length" | "model_length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Whether a decoded JSON body carries an error object (`{"error": {…}}` or `{"error": "text"}`).
pub(crate) fn error_in(value: &Value) -> bool {
    value.get("error").is_some_and(|e| !e.is_null())
}

/// Decodes a 200 chat-completions body into a [`ChatResponse`] of `provider`.
///
/// The answer is complete only when the choice says why it ended: a `finish_reason` that is missing or
/// `null` is [`ErrorKind::StreamTruncated`] (retried like any cut), never a silent stop.
///
/// # Errors
/// The classified error when the body carries `{"error": …}` (OpenRouter, LM Studio), a
/// [`ErrorKind::MalformedAnswer`] error when it is not JSON or has no choices, and
/// [`ErrorKind::StreamTruncated`] when the choice has no finish reason.
pub fn decode_response(
    provider: &str,
    body: &[u8],
    parse_error: ParseError,
) -> Result<ChatResponse, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::MalformedAnswer,
            format!(
                "could not decode the response: not JSON ({}): {e}",
                crate::error_map::describe_unparsed_body(body)
            ),
        )
        .with_provider(provider)
    })?;
    if error_in(&value) {
        return Err(embedded_error(&value, 200, parse_error).with_provider(provider));
    }
    let completion: WireCompletion = serde_json::from_value(value).map_err(|e| {
        Error::new(
            ErrorKind::MalformedAnswer,
            format!("could not decode the response: unexpected JSON shape: {e}"),
        )
        .with_provider(provider)
    })?;
    let choice = completion
        .choices
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::MalformedAnswer,
                "the response has no choices: there is no answer in it",
            )
            .with_provider(provider)
        })?;
    let reason = choice.finish_reason.as_deref().ok_or_else(|| {
        Error::new(
            ErrorKind::StreamTruncated,
            "the answer has no finish_reason: the provider did not say it is complete",
        )
        .with_provider(provider)
    })?;
    Ok(ChatResponse {
        content: content_text(choice.message.as_ref().and_then(|m| m.content.as_ref())),
        provider: provider.to_owned(),
        model: completion.model.unwrap_or_default(),
        finish_reason: finish_reason(reason),
        usage: completion.usage.map(WireUsage::to_usage),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_error;
    use llm_core::Message;

    #[test]
    fn only_a_final_assistant_message_is_marked_as_a_prefix() {
        let mut request = ChatRequest::from_prompt("Count to five");
        request.messages.push(Message::assistant("1, 2,"));
        let mut body = encode_request(&request, "m", true, false);
        mark_prefix(&mut body);
        assert_eq!(
            body["messages"],
            serde_json::json!([
                {"role": "user", "content": "Count to five"},
                {"role": "assistant", "content": "1, 2,", "prefix": true},
            ])
        );
        let mut plain = encode_request(&ChatRequest::from_prompt("hi"), "m", true, false);
        mark_prefix(&mut plain);
        assert_eq!(
            plain["messages"],
            serde_json::json!([{"role": "user", "content": "hi"}])
        );
    }

    fn request() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            model: None,
            temperature: Some(0.5),
            max_tokens: Some(64),
            stop: vec!["END".into()],
        }
    }

    #[test]
    fn encodes_messages_options_and_stream_usage() {
        let body = encode_request(&request(), "m1", true, true);
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m1",
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
                "temperature": 0.5,
                "max_tokens": 64,
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn unset_options_are_not_sent() {
        let body = encode_request(&ChatRequest::from_prompt("hi"), "m1", false, true);
        assert_eq!(
            body,
            serde_json::json!({"model": "m1", "messages": [{"role": "user", "content": "hi"}], "stream": false})
        );
        let stream = encode_request(&ChatRequest::from_prompt("hi"), "m1", true, false);
        assert!(stream.get("stream_options").is_none());
    }

    #[test]
    fn decodes_a_completion_tolerantly() {
        let body = br#"{"id":"x","model":"m-2024","choices":[{"index":0,"message":{"role":"assistant",
            "content":"Hello","refusal":null},"finish_reason":"stop","logprobs":null}],
            "usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"queue_time":0.1},"x_groq":{}}"#;
        let response = decode_response("groq", body, parse_error).expect("decodes");
        assert_eq!(response.content, "Hello");
        assert_eq!(response.model, "m-2024");
        assert_eq!(response.finish_reason, FinishReason::Stop);
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 3,
                output_tokens: 2
            })
        );
    }

    #[test]
    fn null_content_and_unknown_reasons() {
        let body =
            br#"{"model":"m","choices":[{"message":{"content":null},"finish_reason":"eos"}]}"#;
        let response = decode_response("together", body, parse_error).expect("decodes");
        assert_eq!(
            (response.content.as_str(), response.finish_reason),
            ("", FinishReason::Stop)
        );
        let body =
            br#"{"model":"m","choices":[{"message":{"content":"x"},"finish_reason":"weird"}]}"#;
        let response = decode_response("x", body, parse_error).expect("decodes");
        assert_eq!(response.finish_reason, FinishReason::Other("weird".into()));
    }

    #[test]
    fn missing_or_null_finish_reason_is_truncated() {
        for body in [
            &br#"{"model":"m","choices":[{"message":{"content":"{}"}}]}"#[..],
            br#"{"model":"m","choices":[{"message":{"content":"Hel"},"finish_reason":null}]}"#,
            br#"{"model":"m","choices":[{"message":{"content":""},"finish_reason":null}]}"#,
        ] {
            let err = decode_response("x", body, parse_error).expect_err("no finish reason");
            assert_eq!(err.kind(), ErrorKind::StreamTruncated);
            assert_eq!(err.provider(), Some("x"));
        }
    }

    #[test]
    fn content_parts_keep_text_and_drop_thinking() {
        let body = br#"{"model":"m","choices":[{"message":{"content":[{"type":"thinking","thinking":[{"type":"text",
            "text":"hmm"}]},{"type":"text","text":"Answer"}]},"finish_reason":"stop"}]}"#;
        let response = decode_response("mistral", body, parse_error).expect("decodes");
        assert_eq!(response.content, "Answer");
    }

    #[test]
    fn no_choices_is_a_validation_error() {
        for body in [&br#"{"model":"m","choices":[]}"#[..], br#"{"model":"m"}"#] {
            let err = decode_response("x", body, parse_error).expect_err("no choices");
            assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
            assert_eq!(err.provider(), Some("x"));
        }
    }

    #[test]
    fn error_inside_a_200_body_is_classified() {
        let body = br#"{"error":{"message":"Insufficient credits","code":402}}"#;
        let err = decode_response("openrouter", body, parse_error).expect_err("error body");
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::QuotaExhausted, Some(402))
        );
        let body = br#"{"error":"Unexpected endpoint or method. (POST /chat/completions)"}"#;
        let err = decode_response("lmstudio", body, parse_error).expect_err("error body");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.message().contains("Unexpected endpoint"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn html_is_a_validation_error_with_a_readable_message() {
        let err = decode_response("x", b"<html><title>Oops</title></html>", parse_error)
            .expect_err("html");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
        assert!(
            err.message().contains("HTML error page (Oops)"),
            "{}",
            err.message()
        );
    }
}
