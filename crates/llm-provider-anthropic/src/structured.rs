//! Tools, tool choice and structured output on the Messages API, and which mechanism each model gets.
//!
//! - Tools go out as `{name, description, input_schema, strict}`; `strict` only to models with
//!   structured outputs (older ones do not take it; the cascade validates the arguments anyway).
//! - Tool choice: `auto` / `any` (our `required`) / `none` / `{type: tool, name}`, with
//!   `disable_parallel_tool_use` when the caller turned parallel calls off.
//! - A JSON schema goes in `output_config.format` to models that support it
//!   ([`has_structured_outputs`]); every other model, and every JSON-object request (the API has no
//!   schema-less JSON mode), gets a synthetic *answer tool* whose input is the answer, forced with
//!   `tool_choice {type: tool}` when the request offers no tools of its own. The decoders turn that
//!   tool's input back into the answer's text ([`Plan`]).

use llm_core::{ChatRequest, ResponseFormat, Tool, ToolChoice};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// The answer tool's name (as in the forced-tool captures), unless the request has a tool so named.
const ANSWER_TOOL: &str = "structured_output";
/// The answer tool's description, as in the forced-tool captures.
const ANSWER_TOOL_DESCRIPTION: &str = "Output the structured response";
/// The property that carries an answer whose schema is not an object (a tool's input must be one).
pub(crate) const WRAPPED_PROPERTY: &str = "value";

/// Whether `model` takes `output_config.format` and `strict` tools: Claude Opus, Sonnet and Haiku 4.5
/// and later. Anthropic's structured-outputs page lists Opus 4.6 and 4.5, Sonnet 4.6 and 4.5 and
/// Haiku 4.5 (generally available, no beta header); later generations are assumed to keep it, older
/// ones (Claude 3.x, Sonnet/Opus 4 and 4.1) and ids we cannot read get the forced tool, which every
/// Claude model with tool use serves.
pub(crate) fn has_structured_outputs(model: &str) -> bool {
    let Some(rest) = model.strip_prefix("claude-") else {
        return false;
    };
    let mut parts = rest.split('-');
    if !matches!(parts.next(), Some("opus" | "sonnet" | "haiku")) {
        return false;
    }
    let Some(major) = parts.next().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    // `claude-sonnet-4-20250514`: the segment after the major version is a date, not a minor version.
    let minor = parts
        .next()
        .filter(|p| p.len() <= 2)
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(0);
    (major, minor) >= (4, 5)
}

/// A tool definition on the wire.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct WireTool {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    input_schema: Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict: bool,
}

/// `tool_choice` on the wire.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireToolChoice {
    Auto {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    Any {
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
    None,
    Tool {
        name: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        disable_parallel_tool_use: bool,
    },
}

/// How the answer of a request travels, so that the decoders can turn it back into text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The synthetic tool whose input is the answer, when the request uses one.
    pub answer_tool: Option<AnswerTool>,
    /// The request asked for JSON: a refusal is then [`llm_core::ErrorKind::Refused`] (its text is
    /// not the data asked for), not a filtered answer.
    pub wants_json: bool,
}

/// The synthetic answer tool of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AnswerTool {
    /// Its name.
    pub name: String,
    /// The answer's schema is not an object: the answer is the input's [`WRAPPED_PROPERTY`].
    pub wrapped: bool,
}

impl Plan {
    /// The answer in a call of `name` with `arguments` (JSON text), or `None` when `name` is not the
    /// answer tool.
    pub(crate) fn answer(&self, name: &str, arguments: &str) -> Option<String> {
        let tool = self.answer_tool.as_ref().filter(|tool| tool.name == name)?;
        if !tool.wrapped {
            return Some(arguments.to_owned());
        }
        let value = serde_json::from_str::<Value>(arguments)
            .ok()
            .and_then(|mut input| input.get_mut(WRAPPED_PROPERTY).map(Value::take));
        // A call without the property is returned as it came: validation will say what is wrong.
        Some(value.map_or_else(|| arguments.to_owned(), |value| value.to_string()))
    }
}

/// The tool and structured-output fields of a request for `model`.
#[derive(Debug, Default)]
pub(crate) struct Structured {
    /// `tools`.
    pub tools: Vec<WireTool>,
    /// `tool_choice`.
    pub tool_choice: Option<WireToolChoice>,
    /// `output_config`.
    pub output_config: Option<Value>,
    /// How to read the answer.
    pub plan: Plan,
}

/// Encodes the tools, the tool choice and the response format of `request` for `model`.
/// `parallel_tool_calls: Some(false)` sends `disable_parallel_tool_use`.
pub(crate) fn encode(request: &ChatRequest, model: &str) -> Structured {
    let native = has_structured_outputs(model);
    let single = request.parallel_tool_calls == Some(false);
    let mut out = Structured {
        tools: request.tools.iter().map(|t| wire_tool(t, native)).collect(),
        tool_choice: wire_choice(request.tool_choice.as_ref(), single),
        output_config: None,
        plan: Plan {
            answer_tool: None,
            wants_json: request
                .response_format
                .as_ref()
                .is_some_and(ResponseFormat::wants_json),
        },
    };
    match &request.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonSchema { schema, .. }) if native => {
            out.output_config = Some(json!({"format": {"type": "json_schema", "schema": schema}}));
        }
        Some(format) => add_answer_tool(&mut out, request, format, single),
    }
    out
}

/// A JSON object, or a schema for a model without `output_config`: the answer tool. It is forced
/// unless the request offers tools the model may call (forcing it would forbid those); then the
/// model may answer through it or in text, and the cascade validates either.
fn add_answer_tool(
    out: &mut Structured,
    request: &ChatRequest,
    format: &ResponseFormat,
    single: bool,
) {
    let mut name = ANSWER_TOOL.to_owned();
    while request.tool(&name).is_some() {
        name.push_str("_answer");
    }
    let (input_schema, wrapped) = answer_schema(format);
    out.tools.push(WireTool {
        name: name.clone(),
        description: Some(ANSWER_TOOL_DESCRIPTION.to_owned()),
        input_schema,
        strict: false,
    });
    if request.tools.is_empty() || request.tool_choice == Some(ToolChoice::None) {
        out.tool_choice = Some(WireToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use: single,
        });
    }
    out.plan.answer_tool = Some(AnswerTool { name, wrapped });
}

/// The answer tool's input schema, and whether the answer is wrapped in [`WRAPPED_PROPERTY`] (a tool's
/// input must be an object; definitions stay at the root, where `$ref`s look for them).
fn answer_schema(format: &ResponseFormat) -> (Value, bool) {
    let Some(schema) = format.schema() else {
        return (json!({"type": "object"}), false);
    };
    if schema.get("type").and_then(Value::as_str) == Some("object") {
        return (schema.clone(), false);
    }
    let mut inner = schema.clone();
    let mut root = Map::new();
    root.insert("type".into(), "object".into());
    for key in ["$defs", "definitions"] {
        if let Some(defs) = inner.as_object_mut().and_then(|o| o.remove(key)) {
            root.insert(key.into(), defs);
        }
    }
    root.insert("properties".into(), json!({ WRAPPED_PROPERTY: inner }));
    root.insert("required".into(), json!([WRAPPED_PROPERTY]));
    (Value::Object(root), true)
}

fn wire_tool(tool: &Tool, native: bool) -> WireTool {
    WireTool {
        name: tool.name.clone(),
        description: tool.description.clone(),
        // The API requires an object schema; a tool declared without one takes no arguments.
        input_schema: if tool.parameters.is_null() {
            json!({"type": "object", "properties": {}})
        } else {
            tool.parameters.clone()
        },
        strict: tool.strict && native,
    }
}

fn wire_choice(choice: Option<&ToolChoice>, single: bool) -> Option<WireToolChoice> {
    let disable_parallel_tool_use = single;
    Some(match choice {
        // Unset: the API's default (auto), unless parallel calls must be turned off.
        None if single => WireToolChoice::Auto {
            disable_parallel_tool_use,
        },
        None => return None,
        Some(ToolChoice::Auto) => WireToolChoice::Auto {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::Required) => WireToolChoice::Any {
            disable_parallel_tool_use,
        },
        Some(ToolChoice::None) => WireToolChoice::None,
        Some(ToolChoice::Named(name)) => WireToolChoice::Tool {
            name: name.clone(),
            disable_parallel_tool_use,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})
    }

    fn with_format(format: ResponseFormat) -> ChatRequest {
        ChatRequest {
            response_format: Some(format),
            ..ChatRequest::from_prompt("Hi")
        }
    }

    #[test]
    fn models_with_structured_outputs() {
        for model in [
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5",
            "claude-sonnet-4-6",
            "claude-opus-4-5-20251101",
            "claude-opus-4-6",
            "claude-haiku-4-5-20251001",
            "claude-opus-5",
        ] {
            assert!(has_structured_outputs(model), "{model}");
        }
        for model in [
            "claude-3-5-haiku-20241022",
            "claude-3-7-sonnet-latest",
            "claude-sonnet-4-20250514",
            "claude-opus-4-1-20250805",
            "claude-opus-4-0",
            "claude-instant-1.2",
            "gpt-4o",
            "claude-sonnet",
        ] {
            assert!(!has_structured_outputs(model), "{model}");
        }
    }

    #[test]
    fn schema_goes_to_output_config_on_new_models_and_to_a_forced_tool_on_old_ones() {
        let request = with_format(ResponseFormat::json_schema("answer", schema()));
        let native = encode(&request, "claude-sonnet-4-5");
        assert_eq!(
            native.output_config,
            Some(json!({"format": {"type": "json_schema", "schema": schema()}}))
        );
        assert!(native.tools.is_empty() && native.tool_choice.is_none());
        assert_eq!(native.plan.answer_tool, None);
        assert!(native.plan.wants_json);

        let forced = encode(&request, "claude-3-5-haiku-20241022");
        assert_eq!(forced.output_config, None);
        assert_eq!(
            serde_json::to_value(&forced.tools).expect("json"),
            json!([{"name": "structured_output", "description": "Output the structured response",
                    "input_schema": schema()}])
        );
        assert_eq!(
            forced.tool_choice,
            Some(WireToolChoice::Tool {
                name: "structured_output".into(),
                disable_parallel_tool_use: false
            })
        );
    }

    #[test]
    fn json_object_is_a_forced_tool_taking_any_object_on_every_model() {
        let forced = encode(
            &with_format(ResponseFormat::JsonObject),
            "claude-sonnet-4-5",
        );
        assert_eq!(forced.output_config, None);
        assert_eq!(
            serde_json::to_value(&forced.tools).expect("json")[0]["input_schema"],
            json!({"type": "object"})
        );
        assert!(forced.plan.answer(ANSWER_TOOL, r#"{"x":1}"#).is_some());
    }

    #[test]
    fn non_object_schemas_are_wrapped_and_unwrapped() {
        let list = json!({"type": "array", "items": {"$ref": "#/$defs/item"},
                          "$defs": {"item": {"type": "string"}}});
        let request = with_format(ResponseFormat::json_schema("list", list));
        let forced = encode(&request, "claude-3-haiku-20240307");
        assert_eq!(
            serde_json::to_value(&forced.tools).expect("json")[0]["input_schema"],
            json!({"type": "object", "$defs": {"item": {"type": "string"}},
                   "properties": {"value": {"type": "array", "items": {"$ref": "#/$defs/item"}}},
                   "required": ["value"]})
        );
        assert_eq!(
            forced.plan.answer(ANSWER_TOOL, r#"{"value": ["a", "b"]}"#),
            Some(r#"["a","b"]"#.to_owned())
        );
        assert_eq!(forced.plan.answer("other_tool", "{}"), None);
    }

    #[test]
    fn with_tools_of_its_own_the_answer_tool_is_offered_not_forced() {
        let request = ChatRequest {
            tools: vec![Tool::new("structured_output", "clash", schema())],
            ..with_format(ResponseFormat::JsonObject)
        };
        let out = encode(&request, "claude-sonnet-4-5");
        assert_eq!(out.tools.len(), 2);
        assert_eq!(out.tool_choice, None);
        assert_eq!(
            out.plan.answer_tool.map(|tool| tool.name),
            Some("structured_output_answer".to_owned()),
            "a name the request does not use"
        );
    }

    #[test]
    fn tool_choices_strictness_and_parallel_calls() {
        let mut tool = Tool::new("f", "does f", schema());
        tool.strict = true;
        let request = |choice, parallel_tool_calls| ChatRequest {
            tools: vec![tool.clone()],
            tool_choice: choice,
            parallel_tool_calls,
            ..ChatRequest::from_prompt("Hi")
        };
        let choice = |choice, parallel| {
            serde_json::to_value(
                encode(&request(choice, parallel), "claude-sonnet-4-6").tool_choice,
            )
            .expect("json")
        };
        assert_eq!(choice(None, None), Value::Null);
        assert_eq!(
            choice(Some(ToolChoice::Auto), None),
            json!({"type": "auto"})
        );
        assert_eq!(
            choice(Some(ToolChoice::Required), None),
            json!({"type": "any"})
        );
        assert_eq!(
            choice(Some(ToolChoice::None), None),
            json!({"type": "none"})
        );
        assert_eq!(
            choice(Some(ToolChoice::Named("f".into())), Some(false)),
            json!({"type": "tool", "name": "f", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            choice(None, Some(false)),
            json!({"type": "auto", "disable_parallel_tool_use": true})
        );
        assert_eq!(
            choice(Some(ToolChoice::Auto), Some(true)),
            json!({"type": "auto"})
        );

        let strict = |model| {
            serde_json::to_value(encode(&request(None, None), model).tools).expect("json")[0]["strict"]
                .clone()
        };
        assert_eq!(strict("claude-sonnet-4-6"), json!(true));
        assert_eq!(strict("claude-3-5-haiku-20241022"), Value::Null, "not sent");
    }
}
