//! The request and response types every provider speaks.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{ResponseFormat, Tool, ToolCall, ToolChoice};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The person asking.
    User,
    /// The model's earlier answers.
    Assistant,
    /// The result of a tool call ([`Message::tool_call_id`] says which).
    Tool,
}

impl Role {
    /// The lowercase name used on the wire by most providers.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text (a tool result's text for [`Role::Tool`]; may be empty beside tool calls).
    pub content: String,
    /// The tools an assistant message called.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a [`Role::Tool`] message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn text(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(Role::System, content)
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::text(Role::User, content)
    }
    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::text(Role::Assistant, content)
    }
    /// An assistant message that calls tools (and may say something too).
    pub fn assistant_tool_calls(content: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls: calls,
            ..Self::text(Role::Assistant, content)
        }
    }
    /// The result of the tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            ..Self::text(Role::Tool, content)
        }
    }
}

/// A chat request, the same for every provider.
///
/// `model: None` means "the provider's configured model". Options left `None` are not sent, so the
/// provider's own default applies (except where a provider requires a value, which it documents).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Overrides the provider's configured model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sequences that end generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// The shape of the answer (text unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Tools the model may call. A provider that cannot call tools is skipped, never sent the request
    /// without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call (the provider's default, `auto`, when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per answer (several when unset or `true`, where the model
    /// can). Sent to providers that have the setting; from the others the cascade keeps an answer's
    /// first call only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
}

impl ChatRequest {
    /// A request with one user message.
    pub fn from_prompt(prompt: impl Into<String>) -> Self {
        Self {
            messages: vec![Message::user(prompt)],
            ..Self::default()
        }
    }

    /// Prepends a system message.
    #[must_use]
    pub fn with_system(mut self, system: impl Into<String>) -> Self {
        self.messages.insert(0, Message::system(system));
        self
    }

    /// Whether serving the request needs tool support: it offers tools, or its conversation carries
    /// tool calls or results.
    pub fn needs_tools(&self) -> bool {
        !self.tools.is_empty()
            || self
                .messages
                .iter()
                .any(|m| m.role == Role::Tool || !m.tool_calls.is_empty())
    }

    /// The tool named `name`, when the request offers it.
    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|tool| tool.name == name)
    }

    /// The name of the tool whose call `call_id` an assistant message of the conversation made (what a
    /// tool result answers, for dialects that name the tool rather than the call).
    pub fn called_tool(&self, call_id: &str) -> Option<&str> {
        self.messages
            .iter()
            .flat_map(|m| &m.tool_calls)
            .find(|call| call.id == call_id)
            .map(|call| call.name.as_str())
    }

    /// The model the request will use with a provider configured for `configured`: its own, else that.
    pub fn model_or<'a>(&'a self, configured: &'a str) -> &'a str {
        self.model.as_deref().unwrap_or(configured)
    }
}

/// Why generation ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The model finished its answer (or hit a stop sequence).
    Stop,
    /// The answer was cut by the token limit: complete as a response, but not as an answer.
    Length,
    /// The provider filtered the answer.
    ContentFilter,
    /// The model asked to call a tool.
    ToolCalls,
    /// A reason this crate does not know, as the provider spelled it.
    Other(String),
}

impl FinishReason {
    /// The snake_case name, as reported in `--json` output.
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(other) => other,
        }
    }

    /// Whether the answer was cut by the token limit ([`FinishReason::Length`]).
    ///
    /// Such an answer is a success (the provider finished the response) but not a whole answer: callers
    /// should say so (the CLI prints a note and `"truncated": true`) and may retry with a larger
    /// `max_tokens`.
    pub fn is_truncated(&self) -> bool {
        matches!(self, FinishReason::Length)
    }
}

impl Serialize for FinishReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FinishReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(match raw.as_str() {
            "stop" => FinishReason::Stop,
            "length" => FinishReason::Length,
            "content_filter" => FinishReason::ContentFilter,
            "tool_calls" => FinishReason::ToolCalls,
            _ => FinishReason::Other(raw),
        })
    }
}

/// Token counts of one exchange.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The answer's text.
    pub content: String,
    /// The id of the provider that answered.
    pub provider: String,
    /// The model that answered, as the provider reported it.
    pub model: String,
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Token counts, when the provider reported them.
    pub usage: Option<Usage>,
    /// The tools the model called (with [`FinishReason::ToolCalls`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// A rate limit the response's headers say this request used up (`x-ratelimit-remaining-*: 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpent>,
}

/// A rate limit that a successful response says is used up: nothing is left of it until
/// `reset_after` has passed (from a `remaining` header of `0` and its reset header). The cascade
/// skips the provider until then instead of wasting the next call on a 429.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitSpent {
    /// The header that said nothing is left (`x-ratelimit-remaining-requests`).
    pub header: String,
    /// How long after the response the limit resets.
    pub reset_after: Duration,
}

/// One event of a streamed answer.
///
/// A well-formed stream is any number of `Delta`, `ToolCall` and `Usage` events followed by exactly one
/// `Finish`. Providers assemble streamed tool-call fragments: a `ToolCall` event is a whole call.
/// A stream that ends without `Finish` was cut short; providers report that as an error instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More text.
    Delta {
        /// The new text.
        text: String,
    },
    /// A whole tool call (its fragments assembled by the provider).
    ToolCall {
        /// The call.
        call: ToolCall,
    },
    /// Token counts (usually near the end).
    Usage {
        /// The counts.
        usage: Usage,
    },
    /// The response's headers say this request used up a rate limit (first, when at all): callers
    /// may ignore it; the cascade skips the provider until the limit resets.
    RateLimit {
        /// The limit and when it resets.
        spent: RateLimitSpent,
    },
    /// The end of the answer.
    Finish {
        /// Why generation ended.
        reason: FinishReason,
        /// The model that answered, when the stream said.
        model: Option<String>,
    },
    /// The stream was cut after text was delivered and the cascade continues it with this provider:
    /// the events that follow go on from the text already delivered (nothing is repeated). Only the
    /// cascade emits it; a provider's own stream never does.
    Resumed {
        /// The provider that continues the answer.
        provider: String,
        /// The model asked.
        model: String,
        /// How the answer is continued.
        mode: ResumeMode,
    },
}

/// How the cascade continued a cut stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResumeMode {
    /// The text delivered so far was sent as a final assistant message (a prefill); the provider
    /// streamed only the remainder.
    Prefill,
    /// The answer was asked for again and the part already delivered was dropped from the new stream.
    Restart,
}

impl ResumeMode {
    /// `"prefill"` or `"restart"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResumeMode::Prefill => "prefill",
            ResumeMode::Restart => "restart",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_token_limit_cut_is_truncated() {
        assert!(FinishReason::Length.is_truncated());
        for reason in [
            FinishReason::Stop,
            FinishReason::ContentFilter,
            FinishReason::ToolCalls,
            FinishReason::Other("length_ish".into()),
        ] {
            assert!(!reason.is_truncated(), "{reason:?}");
        }
    }
}
