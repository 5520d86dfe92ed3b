//! The body of `:generateContent` / `:streamGenerateContent`: private serde types and the pure
//! encoding of a [`ChatRequest`].

use llm_core::{ChatRequest, Error, ErrorKind, Message, ResponseFormat, Role, Tool, ToolChoice};
use llm_protocol::conversation::LEADING_USER_TURN;
use llm_protocol::error_map::one_line;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::schema;

/// What Gemini 3 accepts in place of a thought signature on a function call it did not make (one
/// that came from another provider): the documented way to replay such a call.
pub(crate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// What joins system messages, and consecutive messages of the same speaker: a blank line.
const JOIN: &str = "\n\n";

/// The body of `:generateContent` and `:streamGenerateContent`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateRequest<'a> {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<SystemInstruction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolSet>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
}

#[derive(Debug, Serialize)]
struct Content {
    role: &'static str,
    parts: Vec<Part>,
}

#[derive(Debug, Serialize)]
struct SystemInstruction {
    parts: Vec<Part>,
}

/// One part: text, a function call (with the signature Gemini gave it) or a function response.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<String>,
}

impl Part {
    fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Serialize)]
struct FunctionCall {
    name: String,
    args: Value,
}

#[derive(Debug, Serialize)]
struct FunctionResponse {
    name: String,
    response: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSet {
    function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionDeclaration {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// JSON Schema (not the OpenAPI subset of `parameters`), normalised by [`schema::normalise`].
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig {
    function_calling_config: FunctionCallingConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FunctionCallingConfig {
    mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    allowed_function_names: Vec<String>,
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
    /// The answer's JSON schema (the field that takes JSON Schema, not the OpenAPI subset of
    /// `responseSchema`), normalised by [`schema::normalise`].
    #[serde(skip_serializing_if = "Option::is_none")]
    response_json_schema: Option<Value>,
}

/// Encodes `request` for `model`.
///
/// - System messages, wherever they are, go to `systemInstruction` (joined by a blank line); roles
///   map to `user` / `model`; consecutive user or assistant messages are merged into one turn (texts
///   joined by a blank line); a conversation that does not start with a user turn gets
///   [`LEADING_USER_TURN`] first (Gemini expects the user to open).
/// - An assistant message's tool calls become `functionCall` parts after its text, each with the
///   `thoughtSignature` Gemini gave it; a tool result becomes a `functionResponse` part in a user turn
///   of its own (as real clients send them, parallel results included), named after the call it
///   answers.
/// - `tools` become `functionDeclarations`; `tool_choice` becomes `toolConfig` (`auto`, Gemini's
///   default, is not sent); `generationConfig` is sent only when an option is set.
///
/// # Errors
/// `invalid_request` when a tool result answers no earlier call, a call's arguments are not a JSON
/// object, or `tool_choice` names a tool the request does not offer.
pub(crate) fn encode<'a>(
    request: &'a ChatRequest,
    model: &str,
) -> Result<GenerateRequest<'a>, Error> {
    let mut turns = Turns::default();
    for message in &request.messages {
        turns.push(message)?;
    }
    let mut contents = turns.contents;
    if contents.first().is_none_or(|first| first.role != "user") {
        contents.insert(
            0,
            Content {
                role: "user",
                parts: vec![Part::text(LEADING_USER_TURN)],
            },
        );
    }
    if needs_thought_signatures(model) {
        sign_unsigned_calls(&mut contents);
    }
    Ok(GenerateRequest {
        contents,
        system_instruction: (!turns.system.is_empty()).then(|| SystemInstruction {
            parts: vec![Part::text(turns.system.join(JOIN))],
        }),
        tools: tool_sets(&request.tools),
        tool_config: tool_config(request)?,
        generation_config: generation_config(request),
    })
}

/// The conversation being built: turns so far, system texts, and every call made so far (id, name).
#[derive(Default)]
struct Turns<'a> {
    contents: Vec<Content>,
    system: Vec<&'a str>,
    calls: Vec<(&'a str, &'a str)>,
}

impl<'a> Turns<'a> {
    fn push(&mut self, message: &'a Message) -> Result<(), Error> {
        match message.role {
            Role::System => self.system.push(&message.content),
            Role::User => self.user_text(&message.content),
            Role::Assistant => self.assistant(message)?,
            Role::Tool => self.tool_result(message)?,
        }
        Ok(())
    }

    fn user_text(&mut self, text: &str) {
        // A tool result's turn stays its own: the text goes into a new user turn after it.
        match self.contents.last_mut() {
            Some(last) if last.role == "user" && last.parts.iter().all(|p| p.text.is_some()) => {
                append_text(&mut last.parts, text);
            }
            _ => self.contents.push(Content {
                role: "user",
                parts: vec![Part::text(text)],
            }),
        }
    }

    fn assistant(&mut self, message: &'a Message) -> Result<(), Error> {
        let mut parts = Vec::new();
        if message.tool_calls.is_empty() || !message.content.is_empty() {
            parts.push(Part::text(message.content.as_str()));
        }
        for call in &message.tool_calls {
            parts.push(Part {
                function_call: Some(FunctionCall {
                    name: call.name.clone(),
                    args: call_args(&call.arguments, &call.name)?,
                }),
                thought_signature: call.signature.clone(),
                ..Part::default()
            });
            self.calls.push((&call.id, &call.name));
        }
        match self.contents.last_mut() {
            Some(last) if last.role == "model" => {
                for part in parts {
                    match part.text {
                        Some(text) => append_text(&mut last.parts, &text),
                        None => last.parts.push(part),
                    }
                }
            }
            _ => self.contents.push(Content {
                role: "model",
                parts,
            }),
        }
        Ok(())
    }

    fn tool_result(&mut self, message: &Message) -> Result<(), Error> {
        let id = message.tool_call_id.as_deref().unwrap_or_default();
        let Some(&(_, name)) = self.calls.iter().rev().find(|(call, _)| *call == id) else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "a tool result answers call `{}`, which no earlier assistant message made \
                     (Gemini needs the function's name, found from the call)",
                    one_line(id, 80)
                ),
            ));
        };
        self.contents.push(Content {
            role: "user",
            parts: vec![Part {
                function_response: Some(FunctionResponse {
                    name: name.to_owned(),
                    response: response_object(&message.content),
                }),
                ..Part::default()
            }],
        });
        Ok(())
    }
}

/// Adds `text` to a turn: joined to its last part by a blank line when that is text, else a new part.
fn append_text(parts: &mut Vec<Part>, text: &str) {
    match parts.last_mut().and_then(|p| p.text.as_mut()) {
        Some(last) => {
            last.push_str(JOIN);
            last.push_str(text);
        }
        None => parts.push(Part::text(text)),
    }
}

/// A call's arguments as the object `functionCall.args` needs (`{}` for none).
fn call_args(arguments: &str, name: &str) -> Result<Value, Error> {
    let call = llm_core::ToolCall::new("", name, arguments);
    match call.arguments_json() {
        Ok(Value::Object(args)) => Ok(Value::Object(args)),
        _ => Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("the arguments of a call of `{name}` are not a JSON object"),
        )),
    }
}

/// A tool result as `functionResponse.response` (a JSON object): a result that is a JSON object is
/// sent as it is; anything else goes under `result`, parsed when it is JSON (`"30000"` → `30000`), as
/// the captured clients send it.
fn response_object(content: &str) -> Value {
    match serde_json::from_str::<Value>(content) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(other) => Value::Object(Map::from_iter([("result".to_owned(), other)])),
        Err(_) => Value::Object(Map::from_iter([(
            "result".to_owned(),
            Value::String(content.to_owned()),
        )])),
    }
}

/// Whether `model` rejects a replayed function call without a thought signature (Gemini 3 and later;
/// 2.x models take calls without one).
pub(crate) fn needs_thought_signatures(model: &str) -> bool {
    let id = model.strip_prefix("models/").unwrap_or(model);
    id.strip_prefix("gemini-")
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 3)
}

/// Puts [`SKIP_SIGNATURE`] on the first call of every model turn whose calls carry no signature
/// (calls another provider made): Gemini 3 checks the first call of a turn only.
fn sign_unsigned_calls(contents: &mut [Content]) {
    for content in contents.iter_mut().filter(|c| c.role == "model") {
        let mut calls = content
            .parts
            .iter_mut()
            .filter(|p| p.function_call.is_some());
        if let Some(first) = calls.next()
            && first.thought_signature.is_none()
        {
            first.thought_signature = Some(SKIP_SIGNATURE.to_owned());
        }
    }
}

fn tool_sets(tools: &[Tool]) -> Vec<ToolSet> {
    if tools.is_empty() {
        return Vec::new();
    }
    let function_declarations = tools
        .iter()
        .map(|tool| FunctionDeclaration {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters_json_schema: parameters(&tool.parameters),
        })
        .collect();
    vec![ToolSet {
        function_declarations,
    }]
}

/// A tool's parameter schema, normalised; `None` for a function without parameters (no schema, or an
/// object schema with no properties), which Gemini declares without one.
fn parameters(schema: &Value) -> Option<Value> {
    let normalised = schema::normalise(schema);
    let has_properties = normalised
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    let anything_else = normalised.as_object().is_some_and(|o| {
        o.keys()
            .any(|k| !matches!(k.as_str(), "type" | "properties"))
    });
    (has_properties || anything_else).then_some(normalised)
}

/// `toolConfig.functionCallingConfig`: `none` → `NONE`, `required` → `ANY`, a named tool → `ANY`
/// limited to it; `auto` (Gemini's default) and requests without tools send none.
fn tool_config(request: &ChatRequest) -> Result<Option<ToolConfig>, Error> {
    let Some(choice) = request
        .tool_choice
        .as_ref()
        .filter(|_| !request.tools.is_empty())
    else {
        return Ok(None);
    };
    let (mode, allowed_function_names) = match choice {
        ToolChoice::Auto => return Ok(None),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Named(name) => {
            if request.tool(name).is_none() {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "tool_choice names `{}`, which the request does not offer",
                        one_line(name, 80)
                    ),
                ));
            }
            ("ANY", vec![name.clone()])
        }
    };
    Ok(Some(ToolConfig {
        function_calling_config: FunctionCallingConfig {
            mode,
            allowed_function_names,
        },
    }))
}

fn generation_config(request: &ChatRequest) -> Option<GenerationConfig<'_>> {
    let format = request.response_format.as_ref();
    let wants_json = format.is_some_and(ResponseFormat::wants_json);
    let has_options = request.temperature.is_some()
        || request.max_tokens.is_some()
        || !request.stop.is_empty()
        || wants_json;
    has_options.then(|| GenerationConfig {
        temperature: request.temperature,
        max_output_tokens: request.max_tokens,
        stop_sequences: &request.stop,
        response_mime_type: wants_json.then_some("application/json"),
        response_json_schema: format
            .and_then(ResponseFormat::schema)
            .map(schema::normalise),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(request: &ChatRequest) -> Value {
        serde_json::to_value(encode(request, "gemini-2.5-flash").expect("encodes"))
            .expect("serialise")
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
        assert_eq!(body(&request)["generationConfig"], *sent);
        let mut with_marker = request.clone();
        with_marker.response_format = Some(llm_core::ResponseFormat::json_schema(
            "x",
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}),
        ));
        assert_eq!(
            body(&with_marker)["generationConfig"]["responseJsonSchema"],
            json!({"type": "object"})
        );
    }

    #[test]
    fn minimal_request_has_no_generation_config() {
        assert_eq!(
            body(&ChatRequest::from_prompt("Hi")),
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
            body(&request),
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

    fn weather() -> Tool {
        Tool::new(
            "weather",
            "The weather in a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )
    }

    fn with_choice(choice: ToolChoice) -> Result<Value, Error> {
        let request = ChatRequest {
            tools: vec![weather()],
            tool_choice: Some(choice),
            ..ChatRequest::from_prompt("Weather?")
        };
        encode(&request, "gemini-2.5-flash").map(|b| serde_json::to_value(b).expect("serialise"))
    }

    /// No capture has a `toolConfig` (see SOURCES.md): the shape is the API reference's
    /// (`functionCallingConfig.mode` AUTO / ANY / NONE, `allowedFunctionNames` with ANY).
    #[test]
    fn tool_choice_is_the_function_calling_mode() {
        let config = |choice| {
            with_choice(choice)
                .expect("encodes")
                .get("toolConfig")
                .cloned()
        };
        assert_eq!(config(ToolChoice::Auto), None);
        assert_eq!(
            config(ToolChoice::None),
            Some(json!({"functionCallingConfig": {"mode": "NONE"}}))
        );
        assert_eq!(
            config(ToolChoice::Required),
            Some(json!({"functionCallingConfig": {"mode": "ANY"}}))
        );
        assert_eq!(
            config(ToolChoice::Named("weather".into())),
            Some(
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
            )
        );
        let err = with_choice(ToolChoice::Named("nope".into())).expect_err("not offered");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn a_function_without_parameters_is_declared_without_a_schema() {
        for parameters in [
            json!({}),
            json!({"type": "object", "properties": {}}),
            Value::Null,
        ] {
            let request = ChatRequest {
                tools: vec![Tool::new("now", "The time", parameters)],
                ..ChatRequest::from_prompt("Time?")
            };
            assert_eq!(
                body(&request)["tools"],
                json!([{"functionDeclarations": [{"name": "now", "description": "The time"}]}])
            );
        }
    }

    /// A conversation that started on another provider (OpenAI ids, no signatures) goes on on
    /// Gemini: results are matched to calls by id; Gemini 3 gets the documented stand-in signature on
    /// the first call of each model turn, a real signature is replayed as it came.
    #[test]
    fn calls_from_another_provider_go_on_on_gemini() {
        let request = ChatRequest {
            messages: vec![
                Message::user("Weather in Paris and Rome?"),
                Message::assistant_tool_calls(
                    "Checking.",
                    vec![
                        llm_core::ToolCall::new("call_Xy1", "weather", r#"{"city":"Paris"}"#),
                        llm_core::ToolCall::new("call_Xy2", "weather", r#"{"city":"Rome"}"#),
                    ],
                ),
                Message::tool_result("call_Xy2", r#"{"temp": 21}"#),
                Message::tool_result("call_Xy1", "sunny"),
                Message::assistant_tool_calls(
                    "",
                    vec![
                        llm_core::ToolCall::new("call_1_0", "weather", "{}").with_signature("c2ln"),
                    ],
                ),
                Message::tool_result("call_1_0", "[]"),
            ],
            tools: vec![weather()],
            ..ChatRequest::default()
        };
        let encoded = |model| {
            serde_json::to_value(encode(&request, model).expect("encodes")).expect("serialise")
        };
        let call =
            |city: &str| json!({"functionCall": {"name": "weather", "args": {"city": city}}});
        let response = |response: Value| json!({"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": response}}]});
        let mut first = call("Paris");
        first["thoughtSignature"] = json!(SKIP_SIGNATURE);
        assert_eq!(
            encoded("gemini-3-flash-preview")["contents"],
            json!([
                {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
                {"role": "model", "parts": [{"text": "Checking."}, first, call("Rome")]},
                response(json!({"temp": 21})),
                response(json!({"result": "sunny"})),
                {"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {}}, "thoughtSignature": "c2ln"}]},
                response(json!({"result": []})),
            ])
        );
        assert_eq!(
            encoded("models/gemini-2.5-flash")["contents"][1]["parts"][1],
            call("Paris"),
            "2.x models take calls without a signature"
        );
    }

    #[test]
    fn calls_that_cannot_be_replayed_are_request_errors() {
        for messages in [
            vec![Message::user("Hi"), Message::tool_result("call_0_0", "x")],
            vec![
                Message::user("Hi"),
                Message::assistant_tool_calls("", vec![llm_core::ToolCall::new("a", "f", "[1]")]),
            ],
            vec![
                Message::user("Hi"),
                Message::assistant_tool_calls("", vec![llm_core::ToolCall::new("a", "f", "{oops")]),
            ],
        ] {
            let request = ChatRequest {
                messages,
                ..ChatRequest::default()
            };
            let err = encode(&request, "gemini-2.5-flash").expect_err("refused");
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
        }
    }

    #[test]
    fn which_models_need_thought_signatures() {
        for (model, needs) in [
            ("gemini-3-pro-preview", true),
            ("models/gemini-3.1-pro-preview", true),
            ("gemini-2.5-flash", false),
            ("gemini-flash-latest", false),
            ("gemma-3-27b-it", false),
        ] {
            assert_eq!(needs_thought_signatures(model), needs, "{model}");
        }
    }
}
