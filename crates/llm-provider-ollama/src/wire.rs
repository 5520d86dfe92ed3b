//! Ollama's native wire format: private serde types and pure encode/decode functions (no I/O).
//!
//! - `POST /api/chat`: `{model, messages, stream, format?, tools?, options: {temperature, num_predict,
//!   stop}}`; the answer (or each NDJSON line of a stream) is `{model, message: {content,
//!   tool_calls?}, done, done_reason, prompt_eval_count, eval_count}`; the `done: true` line ends a
//!   stream. Tools are OpenAI-shaped (`{type: "function", function: {name, description,
//!   parameters}}`); a call is `{function: {name, arguments: {…}}}` with the arguments as an object and
//!   no id; a tool result is `{role: "tool", content, tool_name}`.
//! - `GET /api/tags`: `{models: [{name, model, …}]}`.
//! - `POST /api/pull`: NDJSON `{status, digest?, total?, completed?}` lines ending in `{status: "success"}`.
//! - Errors, as a body or as a line inside a stream: `{"error": "…"}`.

use std::collections::BTreeMap;

use llm_core::{
    ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message, Progress, Role,
    StreamEvent, Tool, ToolCall, ToolChoice, Usage,
};
use llm_protocol::error_map::{
    capability_mismatch, decode_frame, describe_unparsed_body, kind_for_status, one_line,
    retry_after_from_message,
};
use llm_protocol::openai::wire::arguments_text;
use llm_protocol::stream::{Framer, NdjsonFramer};
use llm_protocol::{FrameDecoder, HttpFailure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ID;

// ---------------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------------

/// The body of `POST /api/chat`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    /// `"json"` (JSON mode) or a JSON schema: Ollama's structured output.
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options<'a>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
    /// An assistant's calls: `{function: {name, arguments}}`, the arguments as an object.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    /// The tool a result answers: Ollama names the tool, not the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

fn wire_message<'a>(message: &'a Message, request: &'a ChatRequest) -> WireMessage<'a> {
    WireMessage {
        role: message.role.as_str(),
        content: &message.content,
        tool_calls: message.tool_calls.iter().map(wire_call).collect(),
        tool_name: match (&message.role, &message.tool_call_id) {
            (Role::Tool, Some(id)) => request.called_tool(id),
            _ => None,
        },
    }
}

/// A call as Ollama takes it back: arguments as an object (text that is not JSON goes as the string it
/// is, for Ollama to refuse rather than for us to guess).
fn wire_call(call: &ToolCall) -> Value {
    let arguments = call
        .arguments_json()
        .unwrap_or_else(|_| Value::from(call.arguments.as_str()));
    serde_json::json!({ "function": { "name": call.name, "arguments": arguments } })
}

fn wire_tool(tool: &Tool) -> Value {
    let mut function = serde_json::json!({ "name": tool.name });
    if let Some(description) = &tool.description {
        function["description"] = Value::from(description.as_str());
    }
    function["parameters"] = tool.parameters.clone();
    serde_json::json!({ "type": "function", "function": function })
}

/// The tools offered. Ollama has no `tool_choice`: `none` offers no tool (the model answers in text),
/// a named tool is the only one offered; `required` cannot be enforced, so it offers them all like
/// `auto` (the cascade still checks every call that comes back).
fn wire_tools(request: &ChatRequest) -> Vec<Value> {
    let offered = request
        .tools
        .iter()
        .filter(|tool| match &request.tool_choice {
            Some(ToolChoice::None) => false,
            Some(ToolChoice::Named(name)) => &tool.name == name,
            _ => true,
        });
    offered.map(wire_tool).collect()
}

/// Sampling options: Ollama takes them inside `options`, with its own names.
#[derive(Debug, Default, Serialize)]
struct Options<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
}

impl Options<'_> {
    fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.num_predict.is_none() && self.stop.is_empty()
    }
}

/// Encodes a chat request for `model`.
pub(crate) fn encode_chat<'a>(
    request: &'a ChatRequest,
    model: &'a str,
    stream: bool,
) -> ChatBody<'a> {
    ChatBody {
        model,
        messages: request
            .messages
            .iter()
            .map(|m| wire_message(m, request))
            .collect(),
        stream,
        format: match &request.response_format {
            Some(llm_core::ResponseFormat::JsonObject) => Some(serde_json::Value::from("json")),
            Some(llm_core::ResponseFormat::JsonSchema { schema, .. }) => Some(schema.clone()),
            Some(llm_core::ResponseFormat::Text) | None => None,
        },
        tools: wire_tools(request),
        options: Options {
            temperature: request.temperature,
            num_predict: request.max_tokens,
            stop: &request.stop,
        },
    }
}

/// The body of `POST /api/pull`.
#[derive(Debug, Serialize)]
pub(crate) struct PullBody<'a> {
    model: &'a str,
    stream: bool,
}

/// Encodes a streamed pull of `model`.
pub(crate) fn encode_pull(model: &str) -> PullBody<'_> {
    PullBody {
        model,
        stream: true,
    }
}

// ---------------------------------------------------------------------------------------------------
// Chat answers
// ---------------------------------------------------------------------------------------------------

/// One chat answer, or one line of a chat stream. Every field is optional: unknown fields are ignored.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChatChunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    message: Option<ReplyMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ReplyMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ReplyToolCall>>,
}

/// A call in an answer: `{function: {name, arguments: {…}}}`; the documented answers carry no id (one
/// sent anyway is kept).
#[derive(Debug, Deserialize)]
struct ReplyToolCall {
    #[serde(default)]
    id: Option<String>,
    function: ReplyFunction,
}

#[derive(Debug, Deserialize)]
struct ReplyFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

/// Names the calls of one answer: `call_<turn>_<index>` (see [`llm_core::synthetic_call_id`]) where
/// Ollama gives no id, `turn` being the number of assistant turns before this answer, so the ids of a
/// conversation replayed to Ollama come out the same.
#[derive(Debug, Default)]
pub(crate) struct CallIds {
    turn: usize,
    next: usize,
}

impl CallIds {
    /// The ids for the answer to `request`.
    pub(crate) fn for_request(request: &ChatRequest) -> Self {
        let turn = request
            .messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count();
        Self { turn, next: 0 }
    }

    fn calls(&mut self, message: Option<&mut ReplyMessage>) -> Vec<ToolCall> {
        let calls = message
            .and_then(|m| m.tool_calls.take())
            .unwrap_or_default();
        calls
            .into_iter()
            .map(|call| {
                let index = self.next;
                self.next += 1;
                let id = call
                    .id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| llm_core::synthetic_call_id(self.turn, index));
                let arguments = arguments_text(call.function.arguments.as_ref());
                ToolCall::new(id, call.function.name, arguments)
            })
            .collect()
    }
}

impl ChatChunk {
    fn usage(&self) -> Option<Usage> {
        // Ollama leaves `prompt_eval_count` out when the whole prompt came from its cache.
        (self.prompt_eval_count.is_some() || self.eval_count.is_some()).then(|| Usage {
            input_tokens: self.prompt_eval_count.unwrap_or(0),
            output_tokens: self.eval_count.unwrap_or(0),
        })
    }

    /// Why the answer ended; Ollama says `stop` after tool calls too: that is [`FinishReason::ToolCalls`]
    /// when the answer `called` tools.
    fn finish_reason(&self, called: bool) -> FinishReason {
        match self.done_reason.as_deref() {
            None | Some("" | "stop") if called => FinishReason::ToolCalls,
            // Older servers (and the documented example) send no reason: a normal end.
            None | Some("" | "stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some(other) => FinishReason::Other(other.to_owned()),
        }
    }
}

/// Turns a non-streamed `/api/chat` answer into a [`ChatResponse`].
///
/// # Errors
/// A classified error for an `{"error": …}` body; a validation error when there is no `message`; a
/// truncation when the answer is not `done: true` (a missing `done_reason` with `done: true` is a stop:
/// older servers and the documented example send none).
pub(crate) fn decode_chat(
    mut chunk: ChatChunk,
    requested_model: &str,
    mut ids: CallIds,
) -> Result<ChatResponse, Error> {
    if let Some(error) = &chunk.error {
        return Err(error_from_text(None, &error_text(error)));
    }
    let tool_calls = ids.calls(chunk.message.as_mut());
    let Some(message) = &chunk.message else {
        return Err(Error::new(
            ErrorKind::MalformedAnswer,
            "the answer has no `message`: not an /api/chat response",
        ));
    };
    if !chunk.done {
        // A non-streamed answer is one `done: true` object; anything else is a cut answer.
        return Err(Error::new(
            ErrorKind::StreamTruncated,
            "the answer says `done: false`: the provider did not finish it",
        ));
    }
    Ok(ChatResponse {
        content: message.content.clone().unwrap_or_default(),
        provider: ID.to_owned(),
        model: chunk
            .model
            .clone()
            .unwrap_or_else(|| requested_model.to_owned()),
        finish_reason: chunk.finish_reason(!tool_calls.is_empty()),
        usage: chunk.usage(),
        rate_limit: None,
        tool_calls,
    })
}

/// Decodes the NDJSON lines of a streamed `/api/chat` answer. The `done: true` line is the terminator;
/// a body that ends without it is truncated ([`FrameDecoder::end`] returns no `Finish`). A tool call
/// arrives whole in one line: it becomes one [`StreamEvent::ToolCall`].
#[derive(Debug, Default)]
pub(crate) struct ChatStreamDecoder {
    ids: CallIds,
    called: bool,
}

impl ChatStreamDecoder {
    /// A decoder for the answer to `request` (its calls' ids count its turns).
    pub(crate) fn new(request: &ChatRequest) -> Self {
        Self {
            ids: CallIds::for_request(request),
            called: false,
        }
    }
}

impl FrameDecoder<String> for ChatStreamDecoder {
    fn frame(&mut self, line: String) -> Result<Vec<StreamEvent>, Error> {
        let mut chunk: ChatChunk = decode_frame(&line, "stream line")?;
        if let Some(error) = &chunk.error {
            return Err(error_from_text(None, &error_text(error)));
        }
        let mut events = Vec::new();
        if let Some(text) = chunk.message.as_ref().and_then(|m| m.content.as_deref())
            && !text.is_empty()
        {
            events.push(StreamEvent::Delta {
                text: text.to_owned(),
            });
        }
        for call in self.ids.calls(chunk.message.as_mut()) {
            self.called = true;
            events.push(StreamEvent::ToolCall { call });
        }
        if chunk.done {
            if let Some(usage) = chunk.usage() {
                events.push(StreamEvent::Usage { usage });
            }
            events.push(StreamEvent::Finish {
                reason: chunk.finish_reason(self.called),
                model: chunk.model.clone(),
            });
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        // Only the `done: true` line completes an answer.
        Ok(Vec::new())
    }
}

/// [`NdjsonFramer`], except that a last line cut in the middle (no newline, not valid JSON) is reported
/// as a truncated stream rather than as an undecodable line: Ollama ends every line with `\n`.
#[derive(Debug, Default)]
pub(crate) struct OllamaFramer(NdjsonFramer);

impl Framer for OllamaFramer {
    type Frame = String;

    fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, Error> {
        self.0.push(chunk)
    }

    fn finish(&mut self) -> Result<Option<String>, Error> {
        match self.0.finish()? {
            Some(rest) if serde_json::from_str::<serde::de::IgnoredAny>(&rest).is_err() => {
                Err(Error::new(
                    ErrorKind::StreamTruncated,
                    "the stream ended in the middle of a line: the answer is incomplete",
                ))
            }
            other => Ok(other),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Installed models
// ---------------------------------------------------------------------------------------------------

/// `GET /api/tags`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagsResponse {
    #[serde(default)]
    models: Option<Vec<TagEntry>>,
    #[serde(default)]
    error: Option<Value>,
}

impl TagsResponse {
    /// The error a 200 body carries instead of a list (a proxy, a server in trouble): never read as
    /// "no model installed".
    pub(crate) fn error(&self) -> Option<Error> {
        let text = error_text(self.error.as_ref().filter(|e| !e.is_null())?);
        Some(error_from_text(
            None,
            &format!("/api/tags answered an error: {text}"),
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
struct TagEntry {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model: Option<String>,
}

/// The installed model names (both `name` and `model` of each entry, normalised, deduplicated).
pub(crate) fn installed_models(tags: TagsResponse) -> Vec<String> {
    let mut names: Vec<String> = tags
        .models
        .unwrap_or_default()
        .into_iter()
        .flat_map(|entry| [entry.name, entry.model])
        .flatten()
        .map(|name| normalize_model(&name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A model name as Ollama resolves it: lowercase, with `:latest` when the name has no tag. The tag is
/// looked for after the last `/`, so `host:5000/ns/model` is not mistaken for a tag.
pub(crate) fn normalize_model(name: &str) -> String {
    let name = name.trim().to_ascii_lowercase();
    let last = name.rsplit('/').next().unwrap_or(&name);
    if last.contains(':') {
        name
    } else {
        format!("{name}:latest")
    }
}

/// Whether `model` is among `installed` (already normalised).
pub(crate) fn is_installed(installed: &[String], model: &str) -> bool {
    let wanted = normalize_model(model);
    installed.contains(&wanted)
}

// ---------------------------------------------------------------------------------------------------
// Pull progress
// ---------------------------------------------------------------------------------------------------

/// One line of a pull stream.
#[derive(Debug, Default, Deserialize)]
struct PullLine {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    completed: Option<u64>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// What one pull line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullStep {
    /// Still working.
    Progress(Progress),
    /// The final `{"status": "success"}`.
    Success(Progress),
}

/// Follows a pull stream: sums `completed` and `total` over the layers (by digest), so the numbers grow
/// across the whole pull instead of restarting for every layer.
#[derive(Debug, Default)]
pub(crate) struct PullTracker {
    layers: BTreeMap<String, (u64, u64)>,
}

impl PullTracker {
    /// Decodes one NDJSON line.
    ///
    /// # Errors
    /// A classified error for an `{"error": …}` line; a validation error for a line that is not JSON.
    pub(crate) fn line(&mut self, line: &str) -> Result<PullStep, Error> {
        let parsed: PullLine = decode_frame(line, "pull progress line")?;
        if let Some(error) = &parsed.error {
            return Err(error_from_text(None, &error_text(error)));
        }
        if let Some(digest) = &parsed.digest
            && (parsed.total.is_some() || parsed.completed.is_some())
        {
            let entry = self.layers.entry(digest.clone()).or_default();
            if let Some(completed) = parsed.completed {
                entry.0 = completed;
            }
            if let Some(total) = parsed.total {
                entry.1 = total;
            }
        }
        let status = parsed.status.unwrap_or_default();
        let (completed, total) = if self.layers.is_empty() {
            (None, None)
        } else {
            (
                Some(self.layers.values().map(|l| l.0).sum()),
                Some(self.layers.values().map(|l| l.1).sum()),
            )
        };
        let done = status == "success";
        let progress = Progress {
            provider: ID.to_owned(),
            status,
            completed,
            total,
        };
        Ok(if done {
            PullStep::Success(progress)
        } else {
            PullStep::Progress(progress)
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

/// The text of an `error` field: Ollama sends a string; proxies in front of it may send an object.
fn error_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Object(map) => map
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map_or_else(|| value.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

/// The kind an Ollama error message means; `status` is `None` for an error line inside a stream.
pub(crate) fn kind_for_message(status: Option<u16>, message: &str) -> ErrorKind {
    let lower = message.to_ascii_lowercase();
    let model_missing = (lower.contains("model") && lower.contains("not found"))
        || lower.contains("try pulling it")
        || lower.contains("file does not exist");
    if model_missing {
        ErrorKind::ModelNotFound
    } else if lower.contains("context length") || lower.contains("context window") {
        ErrorKind::ContextLength
    } else if lower.contains("server busy") {
        ErrorKind::Overloaded
    } else if status == Some(400) && capability_mismatch(message) {
        // "registry.ollama.ai/library/gemma3:4b does not support tools": another provider may serve it.
        ErrorKind::Unsupported
    } else if let Some(status) = status {
        kind_for_status(status)
    } else {
        // An error line after a 200: the server failed mid-answer.
        ErrorKind::ServerError
    }
}

fn error_from_text(status: Option<u16>, message: &str) -> Error {
    Error::new(kind_for_message(status, message), one_line(message, 300))
        .with_retry_after(retry_after_from_message(message))
}

/// Ollama's `parse_error`: `{"error": "…"}` classified by its message, then by status.
///
/// A 404 whose body is not Ollama's JSON (`404 page not found`, a proxy's page) means the URL is wrong,
/// not that a model is missing: that is our configuration.
pub(crate) fn parse_error(failure: &HttpFailure) -> Error {
    let message = serde_json::from_slice::<serde_json::Value>(&failure.body)
        .ok()
        .and_then(|v| v.get("error").map(error_text));
    match message {
        Some(message) => error_from_text(Some(failure.status), &message),
        None if failure.status == 404 => Error::new(
            ErrorKind::Config,
            format!(
                "no Ollama API at this address ({}): check OLLAMA_BASE_URL / OLLAMA_HOST",
                describe_unparsed_body(&failure.body)
            ),
        ),
        None => Error::new(
            kind_for_status(failure.status),
            format!(
                "HTTP {}: {}",
                failure.status,
                describe_unparsed_body(&failure.body)
            ),
        ),
    }
}

/// The model named in quotes in an error message (`model 'llama3' not found`), if any.
pub(crate) fn quoted_model(message: &str) -> Option<&str> {
    let start = message.find('\'')? + 1;
    let len = message[start..].find('\'')?;
    Some(&message[start..start + len]).filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::Message;
    use llm_protocol::header::HeaderMap;
    use serde_json::json;

    fn failure(status: u16, body: &str) -> HttpFailure {
        HttpFailure {
            status,
            headers: HeaderMap::new(),
            body: body.as_bytes().to_vec().into(),
        }
    }

    /// The `format` field against the real capture (`format: "json"`) and the documented schema
    /// request: the same body apart from `stream`, which we always send.
    #[test]
    fn structured_output_goes_in_format() {
        for path in [
            "chat.format_json.request.json",
            "chat.format_schema.request.json",
        ] {
            let full = format!(
                "{}/../../fixtures/ollama/{path}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&full).expect("fixture");
            let fixture: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            let sent = &fixture["request"]["body"];
            let format = match &sent["format"] {
                serde_json::Value::String(_) => llm_core::ResponseFormat::JsonObject,
                schema => llm_core::ResponseFormat::json_schema("answer", schema.clone()),
            };
            let request = ChatRequest {
                messages: vec![llm_core::Message::user(
                    sent["messages"][0]["content"].as_str().expect("content"),
                )],
                temperature: Some(0.0),
                response_format: Some(format),
                ..ChatRequest::default()
            };
            let model = sent["model"].as_str().expect("model");
            let mut ours = serde_json::to_value(encode_chat(&request, model, false)).expect("json");
            let mut expected = sent.clone();
            // `0` and `0.0` are the same temperature; JSON equality of numbers is not.
            assert_eq!(
                ours["options"]["temperature"].as_f64(),
                expected["options"]["temperature"].as_f64()
            );
            for body in [&mut ours, &mut expected] {
                let object = body.as_object_mut().expect("object");
                object.remove("stream");
                object.remove("options");
            }
            assert_eq!(ours, expected, "{path}");
        }
    }

    #[test]
    fn chat_body_puts_sampling_into_options() {
        let request = ChatRequest {
            messages: vec![Message::system("be brief"), Message::user("hi")],
            model: None,
            temperature: Some(0.25),
            max_tokens: Some(64),
            stop: vec!["\n\n".to_owned()],
            ..ChatRequest::default()
        };
        let body = serde_json::to_value(encode_chat(&request, "llama3.2:3b", false)).expect("json");
        assert_eq!(
            body,
            json!({
                "model": "llama3.2:3b",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"}
                ],
                "stream": false,
                "options": {"temperature": 0.25, "num_predict": 64, "stop": ["\n\n"]}
            })
        );
        let plain = ChatRequest::from_prompt("hi");
        let body = serde_json::to_value(encode_chat(&plain, "m", true)).expect("json");
        assert_eq!(
            body,
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true})
        );
        assert_eq!(
            serde_json::to_value(encode_pull("m")).expect("json"),
            json!({"model": "m", "stream": true})
        );
    }

    #[test]
    fn chat_answer_with_usage_and_reason() {
        let chunk: ChatChunk = serde_json::from_value(json!({
            "model": "llama3.2", "message": {"role": "assistant", "content": "Hello!"},
            "done": true, "done_reason": "length", "prompt_eval_count": 26, "eval_count": 298,
            "unknown_field": [1, 2]
        }))
        .expect("chunk");
        let response = decode_chat(chunk, "requested", CallIds::default()).expect("ok");
        assert_eq!(response.content, "Hello!");
        assert_eq!(response.model, "llama3.2");
        assert_eq!(response.finish_reason, FinishReason::Length);
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 26,
                output_tokens: 298
            })
        );
    }

    #[test]
    fn chat_answer_edge_cases() {
        // Cached prompt: no prompt_eval_count; no done_reason: a normal stop.
        let chunk: ChatChunk = serde_json::from_value(
            json!({"message": {"content": ""}, "done": true, "eval_count": 3}),
        )
        .expect("chunk");
        let response =
            decode_chat(chunk, "asked", CallIds::default()).expect("empty content is fine");
        assert_eq!(
            (response.model.as_str(), response.finish_reason.clone()),
            ("asked", FinishReason::Stop)
        );
        assert_eq!(response.usage.map(|u| u.input_tokens), Some(0));

        let no_message: ChatChunk = serde_json::from_value(json!({"done": true})).expect("chunk");
        assert_eq!(
            decode_chat(no_message, "m", CallIds::default())
                .expect_err("no message")
                .kind(),
            ErrorKind::MalformedAnswer
        );
        let error: ChatChunk =
            serde_json::from_value(json!({"error": "model 'x' not found"})).expect("chunk");
        assert_eq!(
            decode_chat(error, "m", CallIds::default())
                .expect_err("error body")
                .kind(),
            ErrorKind::ModelNotFound
        );
        let unload: ChatChunk = serde_json::from_value(
            json!({"message": {"content": ""}, "done": true, "done_reason": "unload"}),
        )
        .expect("chunk");
        assert_eq!(
            decode_chat(unload, "m", CallIds::default())
                .expect("ok")
                .finish_reason,
            FinishReason::Other("unload".to_owned())
        );
    }

    #[test]
    fn an_answer_not_done_is_truncated_never_a_stop() {
        for body in [
            json!({"model": "m", "message": {"content": "Hel"}, "done": false}),
            json!({"model": "m", "message": {"content": "Hel"}}),
        ] {
            let chunk: ChatChunk = serde_json::from_value(body).expect("chunk");
            assert_eq!(
                decode_chat(chunk, "m", CallIds::default())
                    .expect_err("not done")
                    .kind(),
                ErrorKind::StreamTruncated
            );
        }
    }

    #[test]
    fn stream_lines_become_events() {
        let mut decoder = ChatStreamDecoder::default();
        let delta = decoder
            .frame(
                r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}"#
                    .to_owned(),
            )
            .expect("delta");
        assert_eq!(
            delta,
            vec![StreamEvent::Delta {
                text: "Hi".to_owned()
            }]
        );
        let last = decoder
            .frame(r#"{"model":"m","message":{"content":""},"done_reason":"stop","done":true,"prompt_eval_count":11,"eval_count":12}"#.to_owned())
            .expect("final");
        assert_eq!(
            last,
            vec![
                StreamEvent::Usage {
                    usage: Usage {
                        input_tokens: 11,
                        output_tokens: 12
                    }
                },
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: Some("m".to_owned())
                }
            ]
        );
        assert_eq!(decoder.end().expect("end"), vec![]);
    }

    #[test]
    fn stream_error_lines_and_garbage() {
        let mut decoder = ChatStreamDecoder::default();
        let err = decoder
            .frame(r#"{"error":"an error was encountered while running the model"}"#.to_owned())
            .expect_err("error line");
        assert_eq!(err.kind(), ErrorKind::ServerError);
        assert!(err.message().contains("while running the model"));
        let err = decoder.frame("<html>".to_owned()).expect_err("garbage");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
    }

    #[test]
    fn framer_reports_a_half_line_as_truncation() {
        let mut framer = OllamaFramer::default();
        assert_eq!(
            framer
                .push(b"{\"done\":false}\n{\"done\":tr")
                .expect("push"),
            vec!["{\"done\":false}".to_owned()]
        );
        assert_eq!(
            framer.finish().expect_err("cut").kind(),
            ErrorKind::StreamTruncated
        );
        // A complete last line without its newline is still a line.
        let mut framer = OllamaFramer::default();
        assert!(framer.push(b"{\"done\":true}").expect("push").is_empty());
        assert_eq!(
            framer.finish().expect("whole"),
            Some("{\"done\":true}".to_owned())
        );
    }

    #[test]
    fn tags_match_with_implicit_latest() {
        let tags: TagsResponse = serde_json::from_value(json!({"models": [
            {"name": "llama3.2:latest", "model": "llama3.2:latest", "details": {"families": null}},
            {"name": "Qwen2.5:3B"},
            {"model": "hf.co/bartowski/Some-GGUF:Q4_K_M"}
        ]}))
        .expect("tags");
        let installed = installed_models(tags);
        assert!(is_installed(&installed, "llama3.2"));
        assert!(is_installed(&installed, "llama3.2:latest"));
        assert!(is_installed(&installed, "qwen2.5:3b"));
        assert!(is_installed(&installed, "hf.co/bartowski/Some-GGUF:Q4_K_M"));
        assert!(!is_installed(&installed, "llama3.2:3b"));
        assert!(!is_installed(&installed, "gemma3"));
        assert_eq!(
            normalize_model("localhost:5000/ns/m"),
            "localhost:5000/ns/m:latest"
        );
        let empty: TagsResponse = serde_json::from_value(json!({"models": null})).expect("null");
        assert!(installed_models(empty).is_empty());
    }

    #[test]
    fn an_error_in_a_tags_body_is_an_error_not_an_empty_list() {
        let tags: TagsResponse =
            serde_json::from_value(json!({"error": "server busy, please try again."}))
                .expect("tags");
        assert_eq!(tags.error().map(|e| e.kind()), Some(ErrorKind::Overloaded));
        let listed: TagsResponse =
            serde_json::from_value(json!({"models": [], "error": null})).expect("tags");
        assert!(listed.error().is_none());
    }

    #[test]
    fn pull_progress_is_summed_over_layers() {
        let mut tracker = PullTracker::default();
        let steps: Vec<PullStep> = [
            r#"{"status":"pulling manifest"}"#,
            r#"{"status":"pulling a","digest":"sha256:a","total":100,"completed":10}"#,
            r#"{"status":"pulling b","digest":"sha256:b","total":50}"#,
            r#"{"status":"pulling a","digest":"sha256:a","total":100,"completed":100}"#,
            r#"{"status":"verifying sha256 digest"}"#,
            r#"{"status":"success"}"#,
        ]
        .iter()
        .map(|line| tracker.line(line).expect("line"))
        .collect();
        let summary: Vec<(bool, Option<u64>, Option<u64>)> = steps
            .iter()
            .map(|step| match step {
                PullStep::Progress(p) => (false, p.completed, p.total),
                PullStep::Success(p) => (true, p.completed, p.total),
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (false, None, None),
                (false, Some(10), Some(100)),
                (false, Some(10), Some(150)),
                (false, Some(100), Some(150)),
                (false, Some(100), Some(150)),
                (true, Some(100), Some(150)),
            ]
        );
        let err = tracker
            .line(r#"{"error":"pull model manifest: file does not exist"}"#)
            .expect_err("error line");
        assert_eq!(err.kind(), ErrorKind::ModelNotFound);
    }

    #[test]
    fn error_bodies_are_classified() {
        let cases = [
            (
                404,
                r#"{"error":"model 'llama3' not found, try pulling it first"}"#,
                ErrorKind::ModelNotFound,
            ),
            (
                404,
                r#"{"error":"model \"x\" not found"}"#,
                ErrorKind::ModelNotFound,
            ),
            (
                500,
                r#"{"error":"the model failed to generate a response"}"#,
                ErrorKind::ServerError,
            ),
            (
                503,
                r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
                ErrorKind::Overloaded,
            ),
            (
                400,
                r#"{"error":"\"nomic-embed-text\" does not support chat"}"#,
                ErrorKind::InvalidRequest,
            ),
            (401, r#"{"error":"unauthorized"}"#, ErrorKind::Auth),
            (
                429,
                r#"{"error":{"message":"rate limited, try again in 2s"}}"#,
                ErrorKind::RateLimit,
            ),
            (404, "404 page not found", ErrorKind::Config),
            (
                502,
                "<html><title>502 Bad Gateway</title></html>",
                ErrorKind::ServerError,
            ),
        ];
        for (status, body, kind) in cases {
            let err = parse_error(&failure(status, body));
            assert_eq!(err.kind(), kind, "{status} {body}");
        }
        let limited = parse_error(&failure(
            429,
            r#"{"error":{"message":"rate limited, try again in 2s"}}"#,
        ));
        assert_eq!(
            limited.retry_after(),
            Some(std::time::Duration::from_secs(2))
        );
        let html = parse_error(&failure(502, "<html><title>502 Bad Gateway</title></html>"));
        assert!(
            html.message().contains("HTML error page (502 Bad Gateway)"),
            "{}",
            html.message()
        );
    }

    #[test]
    fn quoted_model_names() {
        assert_eq!(quoted_model("model 'llama3' not found"), Some("llama3"));
        assert_eq!(quoted_model("nothing quoted"), None);
        assert_eq!(quoted_model("empty '' quotes"), None);
    }
}
