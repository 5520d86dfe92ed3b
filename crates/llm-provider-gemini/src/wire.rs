//! `generateContent` / `streamGenerateContent` responses, stream chunks and errors on the wire: private
//! serde types and pure decode functions (the request side is in `request.rs`).

use std::time::Duration;

use llm_core::{ChatResponse, Error, ErrorKind, FinishReason, StreamEvent, Usage};
use llm_protocol::error_map::{
    decode_frame, describe_unparsed_body, kind_for_status, one_line, parse_go_duration,
    retry_after_from_message,
};
use llm_protocol::sse::SseEvent;
use llm_protocol::{FrameDecoder, HttpFailure};
use serde::Deserialize;
use serde_json::Value;

use crate::ID;
use crate::calls::{CallAssembler, FunctionCallPart};

/// A `GenerateContentResponse` (one stream chunk), or an error object where one was expected.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateResponse {
    #[serde(default)]
    candidates: Option<Vec<Candidate>>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    error: Option<GoogleError>,
}

/// A body that is one response object or a JSON array of them (the non-SSE stream shape, and the
/// shape errors sometimes take on the stream endpoint).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    /// One object.
    One(GenerateResponse),
    /// An array of objects.
    Many(Vec<GenerateResponse>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<GenerateResponse> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    function_call: Option<FunctionCallPart>,
    #[serde(default)]
    thought_signature: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct GoogleError {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Vec<Value>,
}

/// Names of the `FinishReason` enum, for bodies that spell enums as numbers.
const FINISH_REASONS: [&str; 11] = [
    "FINISH_REASON_UNSPECIFIED",
    "STOP",
    "MAX_TOKENS",
    "SAFETY",
    "RECITATION",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MALFORMED_FUNCTION_CALL",
    "IMAGE_SAFETY",
];

/// Names of the `BlockReason` enum, for bodies that spell enums as numbers.
const BLOCK_REASONS: [&str; 6] = [
    "BLOCK_REASON_UNSPECIFIED",
    "SAFETY",
    "OTHER",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "IMAGE_SAFETY",
];

/// An enum value as a name, whether spelled as a string or a number.
fn enum_name(value: &Value, names: &[&str]) -> Option<String> {
    match value {
        Value::String(name) => Some(name.clone()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| names.get(i))
            .map(|name| (*name).to_owned()),
        _ => None,
    }
}

/// What a candidate's `finishReason` means for us.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The answer ended normally (or for a reason we pass through).
    Done(FinishReason),
    /// The answer was withheld for content reasons: an error, never an empty success.
    Blocked(String),
    /// The model wrote a function call Gemini could not parse, or one of a tool it was not offered:
    /// malformed data, never an empty success.
    BadCall(String),
}

/// Maps a `finishReason`; `None` for an unset or unspecified one.
pub(crate) fn finish(reason: &str) -> Option<Finish> {
    Some(match reason {
        "" | "FINISH_REASON_UNSPECIFIED" => return None,
        "STOP" => Finish::Done(FinishReason::Stop),
        "MAX_TOKENS" => Finish::Done(FinishReason::Length),
        "SAFETY"
        | "RECITATION"
        | "PROHIBITED_CONTENT"
        | "BLOCKLIST"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION" => Finish::Blocked(reason.to_owned()),
        "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => Finish::BadCall(reason.to_owned()),
        other => Finish::Done(FinishReason::Other(other.to_owned())),
    })
}

/// Decodes responses chunk by chunk (a non-streamed answer is one chunk). The stream is complete only
/// when a candidate carried a `finishReason`; a body that ends without one is truncated.
/// `functionCall` parts become whole [`StreamEvent::ToolCall`]s (see [`CallAssembler`]); an answer
/// that called tools and stopped finishes with [`FinishReason::ToolCalls`] (Gemini says `STOP`).
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    saw_candidate: bool,
    calls: CallAssembler,
}

impl StreamDecoder {
    /// A decoder for the answer that follows `turn` assistant messages (the turn of its call ids).
    pub(crate) fn for_turn(turn: usize) -> Self {
        Self {
            calls: CallAssembler::for_turn(turn),
            ..Self::default()
        }
    }

    /// Takes one response chunk, returns its text as `Delta` events and its calls as `ToolCall`
    /// events, in the order of its parts.
    fn chunk(&mut self, response: GenerateResponse) -> Result<Vec<StreamEvent>, Error> {
        if let Some(error) = &response.error {
            return Err(error_from_google(error, None));
        }
        if let Some(reason) = response
            .prompt_feedback
            .and_then(|feedback| feedback.block_reason)
            .and_then(|reason| enum_name(&reason, &BLOCK_REASONS))
            .filter(|reason| reason != "BLOCK_REASON_UNSPECIFIED")
        {
            return Err(Error::new(
                ErrorKind::ContentFilter,
                format!("the prompt was blocked (blockReason {reason})"),
            ));
        }
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(Usage {
                input_tokens: usage.prompt_token_count.unwrap_or(0),
                output_tokens: usage.candidates_token_count.unwrap_or(0)
                    + usage.thoughts_token_count.unwrap_or(0),
            });
        }
        if response.model_version.is_some() {
            self.model = response.model_version;
        }
        let Some(candidate) = response.candidates.and_then(|c| c.into_iter().next()) else {
            return Ok(vec![]);
        };
        self.saw_candidate = true;
        let events = self.parts(candidate.content.map(|c| c.parts).unwrap_or_default())?;
        match candidate
            .finish_reason
            .as_ref()
            .and_then(|reason| enum_name(reason, &FINISH_REASONS))
            .and_then(|reason| finish(&reason))
        {
            Some(Finish::Blocked(reason)) => {
                return Err(Error::new(
                    ErrorKind::ContentFilter,
                    format!("the answer was blocked (finishReason {reason})"),
                ));
            }
            Some(Finish::BadCall(reason)) => {
                return Err(Error::new(
                    ErrorKind::MalformedAnswer,
                    format!("the model's function call was rejected (finishReason {reason})"),
                ));
            }
            Some(Finish::Done(reason)) => self.finish = Some(reason),
            None => {}
        }
        Ok(events)
    }

    /// A candidate's parts as events: consecutive text parts joined into one `Delta` (thought parts
    /// skipped), each completed call a `ToolCall`.
    fn parts(&mut self, parts: Vec<Part>) -> Result<Vec<StreamEvent>, Error> {
        let mut events = Vec::new();
        for part in parts {
            if let Some(call) = part.function_call {
                for call in self.calls.part(call, part.thought_signature)? {
                    events.push(StreamEvent::ToolCall { call });
                }
            } else if let Some(more) = part.text.filter(|t| !t.is_empty())
                && part.thought != Some(true)
            {
                match events.last_mut() {
                    Some(StreamEvent::Delta { text }) => text.push_str(&more),
                    _ => events.push(StreamEvent::Delta { text: more }),
                }
            }
        }
        Ok(events)
    }

    /// Why the answer ended, once a candidate said so: `STOP` after calls is `ToolCalls`.
    fn reason(&self) -> Option<FinishReason> {
        match self.finish.clone()? {
            FinishReason::Stop if self.calls.made() > 0 => Some(FinishReason::ToolCalls),
            reason => Some(reason),
        }
    }

    /// The events after the last chunk: `Usage` and `Finish` once a finish reason was seen.
    ///
    /// # Errors
    /// `stream_truncated` when the body ended inside a call whose arguments were still arriving.
    fn closing_events(&self) -> Result<Vec<StreamEvent>, Error> {
        if self.calls.is_pending() {
            return Err(Error::new(
                ErrorKind::StreamTruncated,
                "the answer ended inside a function call whose arguments were still arriving",
            ));
        }
        let Some(reason) = self.reason() else {
            return Ok(vec![]);
        };
        let mut events: Vec<StreamEvent> = self
            .usage
            .map(|usage| StreamEvent::Usage { usage })
            .into_iter()
            .collect();
        events.push(StreamEvent::Finish {
            reason,
            model: self.model.clone(),
        });
        Ok(events)
    }
}

impl FrameDecoder<SseEvent> for StreamDecoder {
    fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
        let body: OneOrMany = decode_frame(&frame.data, "stream chunk")?;
        let mut events = Vec::new();
        for response in body.into_vec() {
            events.extend(self.chunk(response)?);
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        self.closing_events()
    }
}

/// Turns a decoded 2xx body into our response for the answer that follows `turn` assistant messages.
/// An error object, a blocked prompt or a blocked answer is an error; a body without candidates is a
/// `malformed_answer`; one whose candidate has no `finishReason` is a truncation. Text parts are
/// concatenated (thought parts skipped); `functionCall` parts become tool calls with synthetic ids.
pub(crate) fn decode_response(
    body: OneOrMany,
    requested_model: &str,
    turn: usize,
) -> Result<ChatResponse, Error> {
    let mut decoder = StreamDecoder::for_turn(turn);
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for response in body.into_vec() {
        for event in decoder.chunk(response)? {
            match event {
                StreamEvent::Delta { text } => content.push_str(&text),
                StreamEvent::ToolCall { call } => tool_calls.push(call),
                _ => {}
            }
        }
    }
    if !decoder.saw_candidate {
        return Err(Error::new(
            ErrorKind::MalformedAnswer,
            "the response has no candidates",
        ));
    }
    decoder.closing_events()?;
    Ok(ChatResponse {
        finish_reason: decoder.reason().ok_or_else(|| {
            Error::new(
                ErrorKind::StreamTruncated,
                "the answer has no finishReason: the provider did not say it is complete",
            )
        })?,
        tool_calls,
        content,
        provider: ID.to_owned(),
        model: decoder.model.unwrap_or_else(|| requested_model.to_owned()),
        usage: decoder.usage,
        rate_limit: None,
    })
}

/// The `@type` suffix of a `google.rpc` detail, if `detail` is one of `kind`.
fn is_detail(detail: &Value, kind: &str) -> bool {
    detail
        .get("@type")
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with(kind))
}

/// The `RetryInfo.retryDelay` of an error (`"34.4s"`), else a "retry in 37.6s" hint in its message.
fn retry_delay(error: &GoogleError) -> Option<Duration> {
    error
        .details
        .iter()
        .filter(|d| is_detail(d, "google.rpc.RetryInfo"))
        .find_map(|d| d.get("retryDelay").and_then(Value::as_str))
        .and_then(parse_go_duration)
        .or_else(|| {
            let lower = error.message.to_ascii_lowercase();
            let start = lower.find("retry in ")? + "retry in ".len();
            let token: String = lower[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            parse_go_duration(token.trim_end_matches('.'))
        })
        .or_else(|| retry_after_from_message(&error.message))
}

/// Whether a `QuotaFailure` names a per-day quota (it will not reset within this call).
fn daily_quota(error: &GoogleError) -> bool {
    error
        .details
        .iter()
        .filter(|d| is_detail(d, "google.rpc.QuotaFailure"))
        .filter_map(|d| d.get("violations").and_then(Value::as_array))
        .flatten()
        .filter_map(|v| v.get("quotaId").and_then(Value::as_str))
        .any(|id| id.contains("PerDay"))
}

/// Whether a (lower-cased) 400 message says the model cannot do what the request asks: function
/// calling or JSON output ("Function calling is not enabled for models/gemma-3-12b-it", "Json mode is
/// not enabled for models/gemini-pro", "Function calling with a response mime type:
/// 'application/json' is unsupported"). That is a capability mismatch (another provider may serve
/// the request), not a malformed request.
fn says_unsupported(lower: &str) -> bool {
    const FEATURES: [&str; 7] = [
        "function calling",
        "json mode",
        "response mime type",
        "response_mime_type",
        "response_schema",
        "response_json_schema",
        "tool use",
    ];
    const VERDICTS: [&str; 4] = [
        "is not enabled for",
        "is unsupported",
        "is not supported",
        "are not supported",
    ];
    FEATURES.iter().any(|f| lower.contains(f)) && VERDICTS.iter().any(|v| lower.contains(v))
}

/// The kind a Google error means: `ErrorInfo.reason`, then `error.status`, then the message, then the
/// HTTP status.
pub(crate) fn error_kind(error: &GoogleError, http_status: Option<u16>) -> ErrorKind {
    let reason = error
        .details
        .iter()
        .filter(|d| is_detail(d, "google.rpc.ErrorInfo"))
        .find_map(|d| d.get("reason").and_then(Value::as_str))
        .unwrap_or_default();
    let lower = error.message.to_ascii_lowercase();
    if reason.starts_with("API_KEY_") {
        return ErrorKind::Auth;
    }
    match error.status.as_deref().unwrap_or_default() {
        "RESOURCE_EXHAUSTED" if daily_quota(error) => ErrorKind::QuotaExhausted,
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE"
            if lower.contains("input token count") && lower.contains("exceed") =>
        {
            ErrorKind::ContextLength
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" if says_unsupported(&lower) => {
            ErrorKind::Unsupported
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => ErrorKind::InvalidRequest,
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => ErrorKind::Auth,
        "NOT_FOUND" => ErrorKind::ModelNotFound,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => ErrorKind::ServerError,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        _ => http_status
            .or(error.code)
            .map_or(ErrorKind::ServerError, kind_for_status),
    }
}

/// An error from a Google error object (HTTP error body, 2xx body or stream chunk).
pub(crate) fn error_from_google(error: &GoogleError, http_status: Option<u16>) -> Error {
    let label = error.status.as_deref().unwrap_or("error");
    let mut result = Error::new(
        error_kind(error, http_status),
        format!("{label}: {}", one_line(&error.message, 300)),
    )
    .with_retry_after(retry_delay(error));
    if let (None, Some(code)) = (http_status, error.code) {
        result = result.with_status(code);
    }
    result
}

/// This provider's `parse_error`: the body is `{"error": …}` or `[{"error": …}]`; a body that is not
/// a Google error (an HTML page from a proxy) is classified by status and described.
pub(crate) fn parse_error(failure: &HttpFailure) -> Error {
    let google = serde_json::from_slice::<OneOrMany>(&failure.body)
        .ok()
        .and_then(|body| body.into_vec().into_iter().find_map(|r| r.error));
    match google {
        Some(error) => error_from_google(&error, Some(failure.status)),
        None => Error::new(
            kind_for_status(failure.status),
            describe_unparsed_body(&failure.body),
        ),
    }
}

/// The model's path segment: a leading `models/` is dropped; anything that is not a plain model id
/// (letters, digits, `.`, `-`, `_`) is refused rather than put into the URL.
pub(crate) fn model_segment(model: &str) -> Result<&str, Error> {
    let id = model.strip_prefix("models/").unwrap_or(model);
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        Ok(id)
    } else {
        Err(Error::new(
            ErrorKind::InvalidRequest,
            format!(
                "`{}` is not a Gemini model id (letters, digits, `.`, `-`, `_`)",
                one_line(model, 80)
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_protocol::header::HeaderMap;

    fn decode(body: &str) -> Result<ChatResponse, Error> {
        decode_response(serde_json::from_str(body).expect("json"), "req-model", 0)
    }

    #[test]
    fn text_parts_concatenate_thoughts_skipped_thought_tokens_count() {
        let response = decode(
            r#"{"candidates":[{"content":{"parts":[{"text":"thinking…","thought":true},{"text":"A"},{"text":"B","thoughtSignature":"x"}],"role":"model"},"finishReason":"MAX_TOKENS"}],
                "usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"thoughtsTokenCount":5}}"#,
        )
        .expect("ok");
        assert_eq!(response.content, "AB");
        assert_eq!(response.model, "req-model");
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 3,
                output_tokens: 9
            })
        );
    }

    #[test]
    fn blocks_are_content_filter_errors_and_no_candidates_is_invalid() {
        for body in [
            r#"{"candidates":[{"finishReason":"SAFETY","index":0}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"RECITATION"}]}"#,
            r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#,
            r#"{"candidates":[{"finishReason":3}]}"#,
        ] {
            assert_eq!(
                decode(body).expect_err(body).kind(),
                ErrorKind::ContentFilter,
                "{body}"
            );
        }
        assert_eq!(
            decode(r#"{"usageMetadata":{"promptTokenCount":1}}"#)
                .expect_err("empty")
                .kind(),
            ErrorKind::MalformedAnswer
        );
        assert_eq!(
            decode(r#"[{"error":{"code":503,"message":"x","status":"UNAVAILABLE"}}]"#)
                .expect_err("error array")
                .kind(),
            ErrorKind::Overloaded
        );
    }

    #[test]
    fn a_candidate_without_finish_reason_is_truncated() {
        for body in [
            r#"{"candidates":[{"content":{"parts":[{"text":"The"}],"role":"model"}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"The"}]},"finishReason":"FINISH_REASON_UNSPECIFIED"}]}"#,
            r#"[{"candidates":[{"content":{"parts":[{"text":"The"}]}}]},{"candidates":[{"content":{"parts":[{"text":" end"}]},"finishReason":null}]}]"#,
        ] {
            assert_eq!(
                decode(body).expect_err(body).kind(),
                ErrorKind::StreamTruncated,
                "{body}"
            );
        }
    }

    #[test]
    fn finish_reasons() {
        assert_eq!(finish("STOP"), Some(Finish::Done(FinishReason::Stop)));
        assert_eq!(
            finish("MAX_TOKENS"),
            Some(Finish::Done(FinishReason::Length))
        );
        assert_eq!(finish("SPII"), Some(Finish::Blocked("SPII".into())));
        assert_eq!(
            finish("MALFORMED_FUNCTION_CALL"),
            Some(Finish::BadCall("MALFORMED_FUNCTION_CALL".into()))
        );
        assert_eq!(
            finish("LANGUAGE"),
            Some(Finish::Done(FinishReason::Other("LANGUAGE".into())))
        );
        assert_eq!(finish("FINISH_REASON_UNSPECIFIED"), None);
    }

    fn failure(status: u16, body: &str) -> Error {
        parse_error(&HttpFailure {
            status,
            headers: HeaderMap::new(),
            body: body.to_owned().into(),
        })
    }

    #[test]
    fn error_kinds() {
        let err = failure(
            400,
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#,
        );
        assert_eq!(err.kind(), ErrorKind::Auth);
        let err = failure(
            400,
            r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        let err = failure(
            400,
            r#"{"error":{"code":400,"message":"bad","status":"INVALID_ARGUMENT"}}"#,
        );
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        let err = failure(
            429,
            r#"[{"error":{"code":429,"message":"Quota exceeded. Please retry in 37.6s.","status":"RESOURCE_EXHAUSTED"}}]"#,
        );
        assert_eq!(
            (err.kind(), err.retry_after()),
            (ErrorKind::RateLimit, Some(Duration::from_millis(37_600)))
        );
        let daily = failure(
            429,
            r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[
                {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"20s"}]}}"#,
        );
        assert_eq!(
            (daily.kind(), daily.retry_after()),
            (ErrorKind::QuotaExhausted, Some(Duration::from_secs(20)))
        );
        let html = failure(502, "<html><title>Bad Gateway</title></html>");
        assert_eq!(html.kind(), ErrorKind::ServerError);
        assert!(html.message().contains("Bad Gateway"), "{html}");
    }

    #[test]
    fn a_model_that_cannot_call_tools_or_answer_json_is_unsupported() {
        // Messages as Google wrote them (quoted in agno-agi/agno#3505, generative-ai-python#137,
        // Simpleyyt/ai-manus#101, google/adk-python#134, deprecated-generative-ai-js#241).
        for message in [
            "Function calling is not enabled for models/gemma-3-12b-it",
            "Json mode is not enabled for models/gemini-pro",
            "Function calling with a response mime type: 'application/json' is unsupported",
            "Tool use with function calling is unsupported",
            "Function calling mode `ANY` is not enabled for api version v1beta",
        ] {
            let body = serde_json::json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}});
            assert_eq!(
                failure(400, &body.to_string()).kind(),
                ErrorKind::Unsupported,
                "{message}"
            );
        }
        // Other 400s about tools stay request errors.
        for message in [
            "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.",
            "Function call is missing a thought_signature in functionCall parts.",
            "Invalid JSON payload received. Unknown name \"examples\" at 'tools[0].function_declarations[5].parameters': Cannot find field.",
        ] {
            let body = serde_json::json!({"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}});
            assert_eq!(
                failure(400, &body.to_string()).kind(),
                ErrorKind::InvalidRequest,
                "{message}"
            );
        }
    }

    #[test]
    fn calls_and_text_keep_their_order_and_stop_after_calls_is_tool_calls() {
        let response = decode_response(
            serde_json::from_str(
                r#"{"candidates":[{"content":{"parts":[{"text":"Let me "},{"text":"check."},{"functionCall":{"name":"f","args":{"x":1}},"thoughtSignature":"c2ln"},{"functionCall":{"name":"g"}}]},"finishReason":"STOP"}]}"#,
            )
            .expect("json"),
            "m",
            3,
        )
        .expect("ok");
        assert_eq!(response.content, "Let me check.");
        assert_eq!(response.finish_reason, FinishReason::ToolCalls);
        assert_eq!(
            response.tool_calls,
            vec![
                llm_core::ToolCall::new("call_3_0", "f", r#"{"x":1}"#).with_signature("c2ln"),
                llm_core::ToolCall::new("call_3_1", "g", "{}"),
            ]
        );
        let cut = decode(r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f"}}]},"finishReason":"MAX_TOKENS"}]}"#)
            .expect("ok");
        assert_eq!(cut.finish_reason, FinishReason::Length, "a cut stays a cut");
        let bad = decode(r#"{"candidates":[{"finishReason":"MALFORMED_FUNCTION_CALL"}]}"#)
            .expect_err("bad call");
        assert_eq!(bad.kind(), ErrorKind::MalformedAnswer);
    }

    #[test]
    fn a_stream_that_ends_inside_a_call_is_truncated() {
        let mut decoder = StreamDecoder::default();
        decoder
            .frame(data(
                r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","willContinue":true}}]},"finishReason":"STOP"}]}"#,
            ))
            .expect("chunk");
        assert_eq!(
            decoder.end().expect_err("cut").kind(),
            ErrorKind::StreamTruncated
        );
    }

    #[test]
    fn model_segments() {
        assert_eq!(
            model_segment("models/gemini-2.5-flash").ok(),
            Some("gemini-2.5-flash")
        );
        assert_eq!(
            model_segment("gemini-2.5-flash").ok(),
            Some("gemini-2.5-flash")
        );
        for bad in ["", "a/b", "x:generateContent?key=1", "m#"] {
            assert_eq!(
                model_segment(bad).expect_err(bad).kind(),
                ErrorKind::InvalidRequest
            );
        }
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    #[test]
    fn stream_finishes_at_end_of_body_only_after_a_finish_reason() {
        let mut decoder = StreamDecoder::default();
        let first = decoder
            .frame(data(
                r#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"usageMetadata":{"promptTokenCount":2},"modelVersion":"gemini-x"}"#,
            ))
            .expect("chunk");
        assert_eq!(first, vec![StreamEvent::Delta { text: "Hi".into() }]);
        assert_eq!(decoder.end().expect("end"), vec![], "no finishReason yet");
        decoder
            .frame(data(
                r#"{"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":2,"candidatesTokenCount":1}}"#,
            ))
            .expect("last chunk");
        assert_eq!(
            decoder.end().expect("end"),
            vec![
                StreamEvent::Usage {
                    usage: Usage {
                        input_tokens: 2,
                        output_tokens: 1
                    }
                },
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: Some("gemini-x".into())
                }
            ]
        );
    }

    #[test]
    fn stream_errors() {
        let mut decoder = StreamDecoder::default();
        let err = decoder
            .frame(data(r#"{"candidates":[{"finishReason":"SAFETY"}]}"#))
            .expect_err("safety");
        assert_eq!(err.kind(), ErrorKind::ContentFilter);
        let err = StreamDecoder::default()
            .frame(data(
                r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
            ))
            .expect_err("error chunk");
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::Overloaded, Some(503))
        );
        let err = StreamDecoder::default()
            .frame(data("{not json"))
            .expect_err("garbage");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
    }
}
