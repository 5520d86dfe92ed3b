//! Structured output and tool calls: what a request asks for, and what a provider can give.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The shape the answer must have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    #[default]
    Text,
    /// Any JSON object ("JSON mode").
    JsonObject,
    /// JSON that validates against `schema`.
    JsonSchema {
        /// A name for the schema (OpenAI requires one: `[a-zA-Z0-9_-]`, at most 64 characters).
        name: String,
        /// The JSON Schema of the answer.
        schema: Value,
        /// Asks the provider to enforce the schema exactly (OpenAI `strict`; needs
        /// `additionalProperties: false` on every object).
        strict: bool,
    },
}

impl ResponseFormat {
    /// A JSON-schema format named `name`, strict.
    pub fn json_schema(name: impl Into<String>, schema: Value) -> Self {
        ResponseFormat::JsonSchema {
            name: name.into(),
            schema,
            strict: true,
        }
    }

    /// Whether the answer must be JSON (object or schema).
    pub fn wants_json(&self) -> bool {
        !matches!(self, ResponseFormat::Text)
    }

    /// The schema, for [`ResponseFormat::JsonSchema`].
    pub fn schema(&self) -> Option<&Value> {
        match self {
            ResponseFormat::JsonSchema { schema, .. } => Some(schema),
            _ => None,
        }
    }
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Its name, as the model will call it.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema of its arguments (an object schema).
    pub parameters: Value,
    /// Asks the provider to enforce the parameter schema exactly (OpenAI `strict`).
    #[serde(default)]
    pub strict: bool,
}

impl Tool {
    /// A tool named `name` taking arguments that match `parameters`.
    pub fn new(name: impl Into<String>, description: impl Into<String>, parameters: Value) -> Self {
        Self {
            name: name.into(),
            description: Some(description.into()),
            parameters,
            strict: false,
        }
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the default).
    #[default]
    Auto,
    /// No tool call: answer in text.
    None,
    /// At least one tool call.
    Required,
    /// A call of this tool.
    Named(String),
}

/// One call of a tool, as the model asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, which the tool-result message answers (`call_…`, `toolu_…`, or one we made up
    /// for providers that give none). Any provider accepts any id we replay.
    pub id: String,
    /// The tool called.
    pub name: String,
    /// The arguments: JSON text, exactly as the model wrote it (`{}` when it gave none).
    pub arguments: String,
    /// An opaque token the provider attached to the call and wants back with it when the conversation
    /// continues on that provider (Gemini's `thoughtSignature`, which Gemini 3 models require on
    /// replayed calls). `None` when the provider sent none; other providers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl ToolCall {
    /// A call of `name` with `arguments` (JSON text).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
            signature: None,
        }
    }

    /// The same call carrying the provider's `signature` (see [`ToolCall::signature`]).
    #[must_use]
    pub fn with_signature(mut self, signature: impl Into<String>) -> Self {
        self.signature = Some(signature.into());
        self
    }

    /// The arguments as a JSON value (`{}` when they are empty, as some providers send).
    ///
    /// # Errors
    /// When the model wrote arguments that are not JSON.
    pub fn arguments_json(&self) -> Result<Value, serde_json::Error> {
        if self.arguments.trim().is_empty() {
            return Ok(Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.arguments)
    }
}

/// A stable id for a call the provider gave no id (Gemini, Ollama): `call_<turn>_<index>` in the
/// conversation, so a replay of the same conversation gets the same ids.
pub fn synthetic_call_id(turn: usize, index: usize) -> String {
    format!("call_{turn}_{index}")
}

/// What a provider (with its configured model) can do beyond text.
///
/// Declared by each provider ([`crate::Provider::capabilities`]); the cascade uses it to pick the
/// native mechanism, a checked degraded mode (JSON by instruction), or to skip the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Capabilities {
    /// Accepts a JSON schema for the answer (OpenAI `json_schema`, Gemini `responseJsonSchema`, Ollama
    /// `format`).
    pub json_schema: bool,
    /// Accepts "answer in JSON" without a schema (OpenAI `json_object`).
    pub json_mode: bool,
    /// Calls tools.
    pub tools: bool,
    /// Calls several tools in one answer.
    pub parallel_tools: bool,
}

impl Capabilities {
    /// Text only.
    pub const TEXT: Capabilities = Capabilities {
        json_schema: false,
        json_mode: false,
        tools: false,
        parallel_tools: false,
    };
    /// Everything: JSON schema, JSON mode, tools, parallel tools.
    pub const ALL: Capabilities = Capabilities {
        json_schema: true,
        json_mode: true,
        tools: true,
        parallel_tools: true,
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_arguments_are_an_empty_object() {
        let call = ToolCall::new("c", "f", "");
        assert_eq!(call.arguments_json().expect("json"), serde_json::json!({}));
        assert!(ToolCall::new("c", "f", "{oops").arguments_json().is_err());
    }

    #[test]
    fn formats_say_whether_they_want_json() {
        assert!(!ResponseFormat::Text.wants_json());
        assert!(ResponseFormat::JsonObject.wants_json());
        let schema = ResponseFormat::json_schema("x", serde_json::json!({"type": "object"}));
        assert_eq!(
            schema.schema(),
            Some(&serde_json::json!({"type": "object"}))
        );
    }
}
