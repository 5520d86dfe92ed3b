//! `generateContent` / `streamGenerateContent` on the wire: private serde types and pure
//! encode/decode functions.

use std::time::Duration;

use llm_core::{ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, StreamEvent, Usage};
use llm_protocol::conversation::{Conversation, Speaker};
use llm_protocol::error_map::{
    describe_unparsed_body, kind_for_status, one_line, parse_go_duration, retry_after_from_message,
};
use llm_protocol::sse::SseEvent;
use llm_protocol::{FrameDecoder, HttpFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ID;

/// The body of `:generateContent` and `:streamGenerateContent`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateRequest<'a> {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
}

#[derive(Debug, Serialize)]
struct Content {
    role: &'static str,
    parts: Vec<TextPart>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction {
    parts: Vec<TextPart>,
}

#[derive(Debug, Serialize)]
struct TextPart {
    text: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    /// `application/json` for JSON answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    response_mime_type: Option<&'static str>,
    /// The answer's JSON schema (the newer field that takes JSON Schema, not the OpenAPI subset).
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<serde_json::Value>,
}

/// The schema as `responseJsonSchema` takes it: without the `$schema` dialect marker (schemars adds
/// one), which Gemini rejects.
fn gemini_schema(schema: &serde_json::Value) -> serde_json::Value {
    let mut schema = schema.clone();
    if let Some(object) = schema.as_object_mut() {
        object.remove("$schema");
    }
    schema
}

/// Encodes `request`.
///
/// The messages are normalised by [`Conversation::from_messages`]: system messages, wherever they are,
/// go to `systemInstruction` (joined by a blank line); roles map to `user` / `model`; consecutive
/// messages of the same role are merged into one turn (joined by a blank line); a conversation that
/// does not start with a user turn gets
/// [`LEADING_USER_TURN`](llm_protocol::conversation::LEADING_USER_TURN) first (Gemini expects the
/// conversation to open with a user turn). `generationConfig` is sent only when an option is set.
pub(crate) fn encode_request(request: &ChatRequest) -> GenerateRequest<'_> {
    let conversation = Conversation::from_messages(&request.messages);
    let contents = conversation
        .turns
        .into_iter()
        .map(|turn| Content {
            role: match turn.speaker {
                Speaker::User => "user",
                Speaker::Assistant => "model",
            },
            parts: vec![TextPart { text: turn.text }],
        })
        .collect();
    let format = request.response_format.as_ref();
    let wants_json = format.is_some_and(llm_core::ResponseFormat::wants_json);
    let has_options = request.temperature.is_some()
        || request.max_tokens.is_some()
        || !request.stop.is_empty()
        || wants_json;
    GenerateRequest {
        contents,
        system_instruction: conversation.system.map(|text| SystemInstruction {
            parts: vec![TextPart { text }],
        }),
        generation_config: has_options.then_some(GenerationConfig {
            temperature: request.temperature,
            max_output_tokens: request.max_tokens,
            stop_sequences: &request.stop,
            response_mime_type: wants_json.then_some("application/json"),
            response_json_schema: format
                .and_then(llm_core::ResponseFormat::schema)
                .map(gemini_schema),
        }),
    }
}

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
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
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
        other => Finish::Done(FinishReason::Other(other.to_owned())),
    })
}

/// Decodes responses chunk by chunk (a non-streamed answer is one chunk). The stream is complete only
/// when a candidate carried a `finishReason`; a body that ends without one is truncated.
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    saw_candidate: bool,
}

impl StreamDecoder {
    /// Takes one response chunk, returns its text as `Delta` events.
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
        let text: String = candidate
            .content
            .iter()
            .flat_map(|content| &content.parts)
            .filter(|part| part.thought != Some(true))
            .filter_map(|part| part.text.as_deref())
            .collect();
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
            Some(Finish::Done(reason)) => self.finish = Some(reason),
            None => {}
        }
        Ok(if text.is_empty() {
            vec![]
        } else {
            vec![StreamEvent::Delta { text }]
        })
    }

    fn closing_events(&self) -> Vec<StreamEvent> {
        let Some(reason) = self.finish.clone() else {
            return vec![];
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
        events
    }
}

impl FrameDecoder<SseEvent> for StreamDecoder {
    fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
        let body: OneOrMany = serde_json::from_str(&frame.data).map_err(|e| {
            Error::new(
                ErrorKind::MalformedAnswer,
                format!(
                    "could not decode a stream chunk ({}): {e}",
                    describe_unparsed_body(frame.data.as_bytes())
                ),
            )
        })?;
        let mut events = Vec::new();
        for response in body.into_vec() {
            events.extend(self.chunk(response)?);
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        Ok(self.closing_events())
    }
}

/// Turns a decoded 2xx body into our response. An error object, a blocked prompt or a blocked answer
/// is an error; a body without candidates is a validation error; one whose candidate has no
/// `finishReason` is a truncation. Text parts are concatenated, thought
/// parts skipped.
pub(crate) fn decode_response(
    body: OneOrMany,
    requested_model: &str,
) -> Result<ChatResponse, Error> {
    let mut decoder = StreamDecoder::default();
    let mut content = String::new();
    for response in body.into_vec() {
        for event in decoder.chunk(response)? {
            if let StreamEvent::Delta { text } = event {
                content.push_str(&text);
            }
        }
    }
    if !decoder.saw_candidate {
        return Err(Error::new(
            ErrorKind::MalformedAnswer,
            "the response has no candidates",
        ));
    }
    Ok(ChatResponse {
        tool_calls: Vec::new(),
        content,
        provider: ID.to_owned(),
        model: decoder.model.unwrap_or_else(|| requested_model.to_owned()),
        finish_reason: decoder.finish.ok_or_else(|| {
            Error::new(
                ErrorKind::StreamTruncated,
                "the answer has no finishReason: the provider did not say it is complete",
            )
        })?,
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
    use llm_core::Message;
    use llm_protocol::conversation::LEADING_USER_TURN;
    use llm_protocol::header::HeaderMap;
    use serde_json::json;

    fn encode(request: &ChatRequest) -> Value {
        serde_json::to_value(encode_request(request)).expect("serialise")
    }

    /// `generationConfig` against the real capture (crewAI, `responseJsonSchema`).
    #[test]
    fn a_json_schema_goes_in_generation_config() {
        let full = format!(
            "{}/../../fixtures/gemini/generate.response_json_schema.request.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(full).expect("fixture")).expect("JSON");
        let sent = &fixture["request"]["body"]["generationConfig"];
        let request = ChatRequest {
            stop: vec!["\nObservation:".into()],
            response_format: Some(llm_core::ResponseFormat::json_schema(
                "AnalysisResult",
                sent["responseJsonSchema"].clone(),
            )),
            ..ChatRequest::from_prompt("Analyze")
        };
        assert_eq!(encode(&request)["generationConfig"], *sent);
        let mut with_marker = request.clone();
        with_marker.response_format = Some(llm_core::ResponseFormat::json_schema(
            "x",
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}),
        ));
        assert_eq!(
            encode(&with_marker)["generationConfig"]["responseJsonSchema"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn minimal_request_has_no_generation_config() {
        assert_eq!(
            encode(&ChatRequest::from_prompt("Hi")),
            json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
        );
    }

    #[test]
    fn system_roles_merging_and_options() {
        let request = ChatRequest {
            messages: vec![
                Message::system("S1"),
                Message::assistant("Hello!"),
                Message::user("a"),
                Message::user("b"),
                Message::system("S2"),
                Message::assistant("c"),
            ],
            model: None,
            temperature: Some(0.5),
            max_tokens: Some(100),
            stop: vec!["END".into()],
            ..ChatRequest::default()
        };
        assert_eq!(
            encode(&request),
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": LEADING_USER_TURN}]},
                    {"role": "model", "parts": [{"text": "Hello!"}]},
                    {"role": "user", "parts": [{"text": "a\n\nb"}]},
                    {"role": "model", "parts": [{"text": "c"}]}
                ],
                "systemInstruction": {"parts": [{"text": "S1\n\nS2"}]},
                "generationConfig": {"temperature": 0.5, "maxOutputTokens": 100, "stopSequences": ["END"]}
            })
        );
    }

    fn decode(body: &str) -> Result<ChatResponse, Error> {
        decode_response(serde_json::from_str(body).expect("json"), "req-model")
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
            Some(Finish::Done(FinishReason::Other(
                "MALFORMED_FUNCTION_CALL".into()
            )))
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
