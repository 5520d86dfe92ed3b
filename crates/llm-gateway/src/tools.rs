//! Structured output and tool calls in the OpenAI dialect, server side: the request fields
//! (`response_format`, `tools`, `tool_choice`, `parallel_tool_calls`, assistant `tool_calls`, `tool`
//! messages), the answers that carry them (`message.tool_calls`, `delta.tool_calls`,
//! `message.refusal`), and the errors that are the request's fault (no provider can serve it).
//!
//! What the engine does with them (skip a provider without tools, validate a structured answer, retry
//! and fall over) is llm-cascade's `structured` module; this module only translates.

use std::collections::HashSet;

use llm_cascade::{
    Attempt, Cascade, CascadeError, CascadeResponse, ChatRequest, ErrorKind, Outcome,
    ResponseFormat, Tool, ToolCall, ToolChoice, strip_fences,
};
use serde_json::{Map, Value, json};

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::api::{self, non_null, wrong};
use crate::error::{ApiError, clean, sanitize_attempts};

/// OpenAI's rule for schema and function names: `[a-zA-Z0-9_-]`, 1 to 64 characters.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Refuses keys of `object` outside `allowed`, naming the first one as `field.key`.
fn only_keys(object: &Map<String, Value>, allowed: &[&str], field: &str) -> Result<(), ApiError> {
    match object
        .iter()
        .find(|(k, v)| !v.is_null() && !allowed.contains(&k.as_str()))
    {
        None => Ok(()),
        Some((key, _)) => Err(ApiError::invalid(
            format!("unsupported field: {field}.{key} (the cascade does not support it yet)"),
            format!("`{field}` may have: {}.", allowed.join(", ")),
        )),
    }
}

/// A JSON Schema the validator can compile (so a bad one is the client's 400, not an answer that
/// fails on every provider).
fn schema(value: Option<&Value>, field: &str) -> Result<Value, ApiError> {
    let Some(schema @ Value::Object(_)) = value else {
        return Err(wrong(field, "a JSON Schema object"));
    };
    jsonschema::validator_for(schema).map_err(|e| {
        ApiError::invalid(
            format!("`{field}` is not a valid JSON Schema: {e}"),
            "Fix the schema (draft 2020-12 or an earlier draft named in `$schema`).",
        )
    })?;
    Ok(schema.clone())
}

/// `response_format`: `text`, `json_object`, or `json_schema` {name, schema, strict, description}.
pub(crate) fn response_format(
    object: &Map<String, Value>,
) -> Result<Option<ResponseFormat>, ApiError> {
    let Some(value) = non_null(object, "response_format") else {
        return Ok(None);
    };
    let Value::Object(format) = value else {
        return Err(wrong("response_format", "an object"));
    };
    let kinds = "\"text\", \"json_object\" or \"json_schema\"";
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {
            only_keys(&format, &["type"], "response_format")?;
            Ok(Some(ResponseFormat::Text))
        }
        Some("json_object") => {
            only_keys(&format, &["type"], "response_format")?;
            Ok(Some(ResponseFormat::JsonObject))
        }
        Some("json_schema") => {
            only_keys(&format, &["type", "json_schema"], "response_format")?;
            json_schema(format.get("json_schema")).map(Some)
        }
        Some(other) => Err(ApiError::invalid(
            format!("unsupported response_format.type `{}`", clean(other)),
            format!("Use {kinds}."),
        )),
        None => Err(wrong("response_format.type", kinds)),
    }
}

fn json_schema(value: Option<&Value>) -> Result<ResponseFormat, ApiError> {
    const FIELD: &str = "response_format.json_schema";
    let Some(Value::Object(spec)) = value else {
        return Err(wrong(FIELD, "an object with `name` and `schema`"));
    };
    only_keys(spec, &["name", "schema", "strict", "description"], FIELD)?;
    let name = match spec.get("name") {
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        _ => return Err(wrong(&format!("{FIELD}.name"), "1 to 64 of [a-zA-Z0-9_-]")),
    };
    let mut schema = schema(spec.get("schema"), &format!("{FIELD}.schema"))?;
    let strict = optional_bool(spec, "strict", &format!("{FIELD}.strict"))?;
    // The format's description guides the model: it travels inside the schema, where every provider's
    // mechanism (and the instruction fallback) shows it.
    match spec.get("description") {
        None | Some(Value::Null) => {}
        Some(Value::String(description)) => {
            let text = match schema.get("description").and_then(Value::as_str) {
                Some(inner) => format!("{description}\n\n{inner}"),
                None => description.clone(),
            };
            schema["description"] = Value::from(text);
        }
        Some(_) => return Err(wrong(&format!("{FIELD}.description"), "a string")),
    }
    Ok(ResponseFormat::JsonSchema {
        name,
        schema,
        strict,
    })
}

fn optional_bool(object: &Map<String, Value>, key: &str, field: &str) -> Result<bool, ApiError> {
    match non_null(object, key) {
        None => Ok(false),
        Some(v) => v.as_bool().ok_or_else(|| wrong(field, "a boolean")),
    }
}

/// `tools`: function tools `{type: "function", function: {name, description, parameters, strict}}`.
pub(crate) fn tools(object: &Map<String, Value>) -> Result<Vec<Tool>, ApiError> {
    let Some(value) = non_null(object, "tools") else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(wrong("tools", "an array of function tools"));
    };
    let mut seen = HashSet::new();
    let mut tools = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let tool = tool(index, item)?;
        if !seen.insert(tool.name.clone()) {
            return Err(ApiError::invalid(
                format!("tools[{index}]: a second tool named `{}`", tool.name),
                "Give every tool its own name.",
            ));
        }
        tools.push(tool);
    }
    Ok(tools)
}

fn tool(index: usize, item: &Value) -> Result<Tool, ApiError> {
    let field = format!("tools[{index}]");
    let Value::Object(object) = item else {
        return Err(wrong(&field, "an object"));
    };
    match object.get("type").and_then(Value::as_str) {
        Some("function") => only_keys(object, &["type", "function"], &field)?,
        Some(other) => {
            return Err(ApiError::invalid(
                format!(
                    "unsupported tool type `{}` in {field}.type (function tools only)",
                    clean(other)
                ),
                "Send tools of type \"function\".",
            ));
        }
        None => return Err(wrong(&format!("{field}.type"), "\"function\"")),
    }
    let field = format!("{field}.function");
    let Some(Value::Object(function)) = object.get("function") else {
        return Err(wrong(&field, "an object with a `name`"));
    };
    only_keys(
        function,
        &["name", "description", "parameters", "strict"],
        &field,
    )?;
    let name = match function.get("name") {
        Some(Value::String(name)) if valid_name(name) => name.clone(),
        _ => return Err(wrong(&format!("{field}.name"), "1 to 64 of [a-zA-Z0-9_-]")),
    };
    let description = match non_null(function, "description") {
        None => None,
        Some(Value::String(text)) => Some(text),
        Some(_) => return Err(wrong(&format!("{field}.description"), "a string")),
    };
    // OpenAI: "Omitting parameters defines a function with an empty parameter list."
    let parameters = match function.get("parameters") {
        None | Some(Value::Null) => json!({"type": "object", "properties": {}}),
        given => schema(given, &format!("{field}.parameters"))?,
    };
    Ok(Tool {
        name,
        description,
        parameters,
        strict: optional_bool(function, "strict", &format!("{field}.strict"))?,
    })
}

/// `tool_choice`: `none`, `auto`, `required` or `{type: "function", function: {name}}` naming an
/// offered tool. Without tools, `none` and `auto` mean what no choice means; anything else is a 400.
pub(crate) fn tool_choice(
    object: &Map<String, Value>,
    tools: &[Tool],
) -> Result<Option<ToolChoice>, ApiError> {
    let expected =
        "\"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": …}}";
    let choice = match non_null(object, "tool_choice") {
        None => return Ok(None),
        Some(Value::String(choice)) => match choice.as_str() {
            "none" => ToolChoice::None,
            "auto" => ToolChoice::Auto,
            "required" => ToolChoice::Required,
            _ => return Err(wrong("tool_choice", expected)),
        },
        Some(Value::Object(choice)) => named_choice(&choice, expected)?,
        Some(_) => return Err(wrong("tool_choice", expected)),
    };
    if tools.is_empty() {
        return match choice {
            ToolChoice::None | ToolChoice::Auto => Ok(None),
            _ => Err(ApiError::invalid(
                "`tool_choice` asks for a tool call but the request has no `tools`",
                "Send the tools, or remove `tool_choice`.",
            )),
        };
    }
    if let ToolChoice::Named(name) = &choice
        && !tools.iter().any(|t| &t.name == name)
    {
        return Err(ApiError::invalid(
            format!(
                "`tool_choice` names `{}`, which is not in `tools`",
                clean(name)
            ),
            "Name one of the tools the request offers.",
        ));
    }
    Ok(Some(choice))
}

fn named_choice(choice: &Map<String, Value>, expected: &str) -> Result<ToolChoice, ApiError> {
    if choice.get("type").and_then(Value::as_str) != Some("function") {
        return Err(wrong("tool_choice", expected));
    }
    only_keys(choice, &["type", "function"], "tool_choice")?;
    match choice.get("function").and_then(|f| f.get("name")) {
        Some(Value::String(name)) => Ok(ToolChoice::Named(name.clone())),
        _ => Err(wrong("tool_choice.function.name", "a string")),
    }
}

/// `parallel_tool_calls`: `false` asks for one call per answer (see
/// [`llm_cascade::ChatRequest::parallel_tool_calls`]).
pub(crate) fn parallel_tool_calls(object: &Map<String, Value>) -> Result<Option<bool>, ApiError> {
    match non_null(object, "parallel_tool_calls") {
        None => Ok(None),
        Some(Value::Bool(parallel)) => Ok(Some(parallel)),
        Some(_) => Err(wrong("parallel_tool_calls", "a boolean")),
    }
}

/// An assistant message's `tool_calls`: `[{id, type: "function", function: {name, arguments}}]`.
pub(crate) fn message_tool_calls(
    value: Option<&Value>,
    field: &str,
) -> Result<Vec<ToolCall>, ApiError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(wrong(field, "an array of tool calls")),
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("{field}[{i}]");
            let text = |key: &str, value: Option<&Value>| match value {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(wrong(&format!("{field}.{key}"), "a string")),
            };
            if let Some(kind) = item.get("type").filter(|t| !t.is_null())
                && kind != "function"
            {
                return Err(wrong(&format!("{field}.type"), "\"function\""));
            }
            let function = item.get("function");
            Ok(ToolCall::new(
                text("id", item.get("id"))?,
                text("function.name", function.and_then(|f| f.get("name")))?,
                text(
                    "function.arguments",
                    function.and_then(|f| f.get("arguments")),
                )?,
            ))
        })
        .collect()
}

/// Every `tool` message answers a call an earlier assistant message made (providers refuse a result
/// for an unknown call; saying so here names the message).
pub(crate) fn check_results(messages: &[llm_cascade::Message]) -> Result<(), ApiError> {
    let mut calls: HashSet<&str> = HashSet::new();
    for (index, message) in messages.iter().enumerate() {
        calls.extend(message.tool_calls.iter().map(|c| c.id.as_str()));
        if let Some(id) = &message.tool_call_id
            && !calls.contains(id.as_str())
        {
            return Err(ApiError::invalid(
                format!(
                    "messages[{index}].tool_call_id `{}` answers no earlier assistant tool call",
                    clean(id)
                ),
                "Send the assistant message with its `tool_calls` before the tool results.",
            ));
        }
    }
    Ok(())
}

/// Asks the cascade for a whole answer. A `json_schema` request without tools goes through the
/// library's `chat_json_schema` (validated; a mismatch retried with the validator's message, then the
/// next provider); any other request through `chat`, which validates a JSON answer against its format
/// too. A JSON answer is sent without the code fences a model may have put around it.
pub(crate) async fn chat(
    cascade: &Cascade,
    request: ChatRequest,
) -> Result<CascadeResponse, CascadeError> {
    let wants_json = request
        .response_format
        .as_ref()
        .is_some_and(ResponseFormat::wants_json);
    let schema = match &request.response_format {
        Some(ResponseFormat::JsonSchema { name, schema, .. }) if request.tools.is_empty() => {
            Some((name.clone(), schema.clone()))
        }
        _ => None,
    };
    let mut answer = match schema {
        Some((name, schema)) => {
            cascade
                .chat_json_schema(request, &name, schema)
                .await?
                .response
        }
        None => cascade.chat(request).await?,
    };
    if wants_json && answer.response.tool_calls.is_empty() {
        answer.response.content = strip_fences(&answer.response.content).to_owned();
    }
    Ok(answer)
}

/// `message.tool_calls` / the OpenAI shape of calls (no `index`: that is the stream's).
pub fn tool_calls_json(calls: &[ToolCall]) -> Value {
    calls
        .iter()
        .map(|call| {
            json!({
                "id": llm_core::redact(&call.id),
                "type": "function",
                "function": {
                    "name": llm_core::redact(&call.name),
                    "arguments": llm_core::redact(&call.arguments),
                },
            })
        })
        .collect()
}

/// The `delta` of the one chunk a whole call is streamed in: `index`, `id`, `type`, `function.name`
/// and all of `function.arguments` (OpenAI streams the arguments in fragments after a first fragment
/// with the name; clients append them, so one fragment is the same call).
pub fn tool_call_delta(index: usize, call: &ToolCall) -> Value {
    let mut entry = tool_calls_json(std::slice::from_ref(call));
    entry[0]["index"] = Value::from(index);
    json!({ "tool_calls": entry })
}

/// A model that declined: the provider that said so and its words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The provider that refused.
    pub provider: String,
    /// What the model said.
    pub text: String,
}

/// The refusal that ended a cascade call, when its final word was one: OpenAI clients expect a
/// refusal as an answer (`message.refusal`, HTTP 200), not as an error.
pub fn refusal(error: &CascadeError) -> Option<Refusal> {
    if error.kind != ErrorKind::Refused {
        return None;
    }
    let attempt = error
        .attempts
        .iter()
        .rev()
        .find(|a| a.outcome == Outcome::Failed(ErrorKind::Refused))?;
    let message = attempt.message.as_deref().unwrap_or_default();
    // llm-protocol words it "the model declined to answer: <the model's text>".
    let text = message
        .split_once("declined to answer: ")
        .map_or(message, |(_, text)| text);
    Some(Refusal {
        provider: attempt.provider.clone(),
        text: llm_core::redact(text).into_owned(),
    })
}

/// The model `provider` is configured with in `cascade` (its id when it is not in the chain).
pub(crate) fn model_of(cascade: &Cascade, provider: &str) -> String {
    cascade
        .providers()
        .iter()
        .find(|p| p.id() == provider)
        .map_or_else(|| provider.to_owned(), |p| clean(p.model()))
}

/// A refusal as a whole answer (see [`api::refusal_completion`]).
pub(crate) fn refusal_answer(
    cascade: &Cascade,
    id: &str,
    refusal: &Refusal,
    error: &CascadeError,
) -> Response {
    let model = model_of(cascade, &refusal.provider);
    let created = crate::server::unix_now();
    let body = api::refusal_completion(id, created, &model, refusal, &error.attempts);
    let mut response = axum::Json(body).into_response();
    crate::server::cascade_headers(&mut response, &refusal.provider, error.attempts.len());
    response
}

/// A refusal that came before any text, streamed as OpenAI streams one: a role chunk, the refusal in
/// `delta.refusal`, finish `stop`, the usage chunk when asked, `[DONE]`.
pub(crate) fn refusal_stream(
    cascade: &Cascade,
    id: &str,
    refusal: &Refusal,
    error: &CascadeError,
    include_usage: bool,
) -> Response {
    let created = crate::server::unix_now();
    let model = model_of(cascade, &refusal.provider);
    let role = json!({"role": "assistant", "content": null, "refusal": ""});
    let mut chunks = vec![
        api::chunk(id, created, &model, role, None),
        api::chunk(id, created, &model, json!({"refusal": refusal.text}), None),
    ];
    let mut finish = api::chunk(id, created, &model, json!({}), Some("stop"));
    finish["cascade"] = api::extension(&refusal.provider, None, &error.attempts);
    chunks.push(finish);
    if include_usage {
        chunks.push(api::usage_chunk(id, created, &model, None));
    }
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    crate::server::cascade_headers(&mut response, &refusal.provider, error.attempts.len());
    response
}

/// Every failed attempt was a provider that cannot serve what the request needs (tools, a schema):
/// the request, not the providers, has to change, so it is a 400 naming why.
pub fn unsupported(error: &CascadeError) -> Option<ApiError> {
    let failed: Vec<&Attempt> = error
        .attempts
        .iter()
        .filter(|a| a.outcome != Outcome::Ok)
        .collect();
    let all = !failed.is_empty()
        && failed
            .iter()
            .all(|a| a.outcome == Outcome::Failed(ErrorKind::Unsupported));
    if !all {
        return None;
    }
    let reasons: Vec<String> = failed
        .iter()
        .map(|a| format!("{} {}", a.provider, a.message.as_deref().unwrap_or("")))
        .collect();
    let mut api = ApiError::gateway(
        axum::http::StatusCode::BAD_REQUEST,
        "invalid_request",
        ErrorKind::Unsupported.as_str(),
        clean(&format!(
            "no provider in the chain can serve this request: {}",
            reasons.join("; ")
        )),
        format!(
            "{} Or choose one with `model`/`models` (GET /v1/models lists them).",
            ErrorKind::Unsupported.advice()
        ),
    );
    api.details = error.details.iter().map(|d| clean(d)).collect();
    api.attempts = sanitize_attempts(&error.attempts);
    Some(api)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::parse;

    fn parse_body(value: &Value) -> Result<crate::api::CompletionRequest, ApiError> {
        parse(&serde_json::to_vec(value).expect("json"))
    }

    fn with(extra: &Value) -> Value {
        let mut body = json!({"messages": [{"role": "user", "content": "hi"}]});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    }

    fn add() -> Value {
        json!({"type": "function", "function": {"name": "add_numbers", "description": "Adds.",
            "strict": true, "parameters": {"type": "object", "properties": {"a": {"type": "integer"}},
            "required": ["a"], "additionalProperties": false}}})
    }

    #[test]
    fn formats_tools_and_choices_are_read() {
        let request = parse_body(&with(&json!({
            "response_format": {"type": "json_schema", "json_schema": {"name": "Calc", "strict": true,
                "description": "A result.", "schema": {"type": "object"}}},
            "tools": [add(), {"type": "function", "function": {"name": "noop"}}],
            "tool_choice": {"type": "function", "function": {"name": "add_numbers"}},
            "parallel_tool_calls": false,
        })))
        .expect("parsed");
        let chat = request.chat;
        assert_eq!(chat.parallel_tool_calls, Some(false));
        assert_eq!(
            chat.response_format,
            Some(ResponseFormat::JsonSchema {
                name: "Calc".into(),
                schema: json!({"type": "object", "description": "A result."}),
                strict: true,
            })
        );
        assert_eq!(chat.tools.len(), 2);
        assert_eq!(chat.tools[0].name, "add_numbers");
        assert!(chat.tools[0].strict);
        assert_eq!(chat.tools[0].description.as_deref(), Some("Adds."));
        assert_eq!(chat.tools[0].parameters["required"], json!(["a"]));
        assert_eq!(
            chat.tools[1].parameters,
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(
            chat.tool_choice,
            Some(ToolChoice::Named("add_numbers".into()))
        );
        for (given, expected) in [
            ("none", ToolChoice::None),
            ("auto", ToolChoice::Auto),
            ("required", ToolChoice::Required),
        ] {
            let request = parse_body(&with(&json!({"tools": [add()], "tool_choice": given})))
                .expect("parsed");
            assert_eq!(request.chat.tool_choice, Some(expected));
        }
        let object = parse_body(&with(&json!({"response_format": {"type": "json_object"}})))
            .expect("parsed");
        assert_eq!(
            object.chat.response_format,
            Some(ResponseFormat::JsonObject)
        );
        let text = parse_body(&with(&json!({"response_format": {"type": "text"}}))).expect("text");
        assert_eq!(text.chat.response_format, Some(ResponseFormat::Text));
    }

    #[test]
    fn a_tool_conversation_is_read() {
        let request = parse_body(&json!({"tools": [add()], "messages": [
            {"role": "user", "content": "15 + 27?"},
            {"role": "assistant", "content": null, "refusal": null, "tool_calls": [{"id": "call_1",
                "type": "function", "function": {"name": "add_numbers", "arguments": "{\"a\":15}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "name": "add_numbers", "content": "42"},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "4"}, {"type": "text", "text": "2"}]},
        ]}))
        .expect("parsed");
        let messages = &request.chat.messages;
        assert_eq!(
            messages[1],
            llm_cascade::Message::assistant_tool_calls(
                "",
                vec![ToolCall::new("call_1", "add_numbers", "{\"a\":15}")]
            )
        );
        assert_eq!(
            messages[2],
            llm_cascade::Message::tool_result("call_1", "42")
        );
        assert_eq!(
            messages[3],
            llm_cascade::Message::tool_result("call_1", "42")
        );
        assert!(request.chat.needs_tools());
    }

    /// The message of the 400 `body` gets.
    fn refused(body: &Value) -> String {
        let error = parse_body(body).expect_err("refused");
        assert_eq!(error.status, 400);
        error.message
    }

    #[test]
    fn malformed_values_are_400_naming_the_field() {
        let cases = [
            (json!({"response_format": "json"}), "response_format"),
            (json!({"response_format": {"type": "yaml"}}), "yaml"),
            (
                json!({"response_format": {"type": "json_schema"}}),
                "response_format.json_schema",
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}}}),
                "response_format.json_schema.name",
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 7}}}}),
                "response_format.json_schema.schema",
            ),
            (
                json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": "yes"}}}),
                "response_format.json_schema.strict",
            ),
            (json!({"tools": {}}), "tools"),
            (
                json!({"tools": [{"type": "custom", "custom": {}}]}),
                "tools[0].type",
            ),
            (
                json!({"tools": [{"type": "function", "function": {}}]}),
                "tools[0].function.name",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]}),
                "tools[0].function.parameters",
            ),
            (json!({"tools": [add(), add()]}), "second tool"),
            (
                json!({"tools": [add()], "tool_choice": "always"}),
                "tool_choice",
            ),
            (
                json!({"tools": [add()], "tool_choice": {"type": "function", "function": {"name": "sub"}}}),
                "`sub`",
            ),
            (json!({"tool_choice": "required"}), "no `tools`"),
            (json!({"parallel_tool_calls": "yes"}), "parallel_tool_calls"),
        ];
        for (extra, needle) in cases {
            let message = refused(&with(&extra));
            assert!(message.contains(needle), "{extra}: {message}");
        }
        let messages = [
            (
                json!({"role": "assistant", "tool_calls": [{"id": 1, "function": {"name": "f", "arguments": "{}"}}]}),
                "messages[1].tool_calls[0].id",
            ),
            (
                json!({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}),
                "messages[1].tool_calls[0].function.arguments",
            ),
            (
                json!({"role": "tool", "content": "42"}),
                "messages[1].tool_call_id",
            ),
            (
                json!({"role": "tool", "tool_call_id": "nope", "content": "42"}),
                "answers no earlier",
            ),
        ];
        for (message, needle) in messages {
            let body = json!({"messages": [{"role": "user", "content": "hi"}, message,
                {"role": "user", "content": "go on"}]});
            let text = refused(&body);
            assert!(text.contains(needle), "{message}: {text}");
        }
    }

    #[test]
    fn without_tools_a_neutral_choice_is_the_default() {
        let request = parse_body(&with(&json!({"tool_choice": "auto"}))).expect("parsed");
        assert_eq!(request.chat.tool_choice, None);
        let request = parse_body(&with(&json!({"tool_choice": "none"}))).expect("parsed");
        assert_eq!(request.chat.tool_choice, None);
    }

    #[test]
    fn calls_render_as_openai_sends_them() {
        let call = ToolCall::new("call_1", "add_numbers", "{\"a\":15}");
        assert_eq!(
            tool_call_delta(2, &call),
            json!({"tool_calls": [{"index": 2, "id": "call_1", "type": "function",
                "function": {"name": "add_numbers", "arguments": "{\"a\":15}"}}]})
        );
    }

    #[test]
    fn a_refusal_is_read_from_the_last_refusing_attempt() {
        let declined = llm_cascade::Error::new(
            ErrorKind::Refused,
            "the model declined to answer: I can't help with that.",
        );
        let attempts = vec![Attempt::failed(
            "openai",
            1,
            std::time::Duration::ZERO,
            &declined,
        )];
        let error = CascadeError::exhausted(attempts, None);
        assert_eq!(
            refusal(&error),
            Some(Refusal {
                provider: "openai".into(),
                text: "I can't help with that.".into()
            })
        );
        let other = CascadeError::exhausted(Vec::new(), Some(&declined));
        assert_eq!(refusal(&other), None, "no refusing attempt: no text");
    }

    #[test]
    fn only_a_chain_that_cannot_serve_the_request_is_a_400() {
        let skip = llm_cascade::Error::new(ErrorKind::Unsupported, "skipped: no tool support");
        let limited = llm_cascade::Error::new(ErrorKind::RateLimit, "slow down");
        let at =
            |p: &str, e: &llm_cascade::Error| Attempt::failed(p, 1, std::time::Duration::ZERO, e);
        let error =
            CascadeError::exhausted(vec![at("anthropic", &skip), at("gemini", &skip)], None);
        let api = unsupported(&error).expect("a 400");
        assert_eq!(api.status, 400);
        assert_eq!(api.code, "unsupported");
        assert!(
            api.message
                .contains("anthropic skipped: no tool support; gemini skipped"),
            "{}",
            api.message
        );
        assert_eq!(api.attempts.len(), 2);
        let mixed =
            CascadeError::exhausted(vec![at("anthropic", &skip), at("groq", &limited)], None);
        assert!(unsupported(&mixed).is_none());
    }
}
