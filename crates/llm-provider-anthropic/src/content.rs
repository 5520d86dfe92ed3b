//! The conversation as Messages API turns: plain text, or `text`, `tool_use` and `tool_result`
//! content blocks.
//!
//! The rules are those of [`llm_protocol::conversation`] (system messages go to the top-level
//! `system`, consecutive turns of the same speaker merge, the first turn is the user's), with tool
//! calls and results as blocks: an assistant message's calls become `tool_use` blocks after its text,
//! and tool results are the user's side, so consecutive results (and a user message after them) merge
//! into one user turn, `tool_result` blocks first, as the API requires.

use std::borrow::Cow;

use llm_core::{Error, ErrorKind, Message, Role, ToolCall};
use llm_protocol::conversation::LEADING_USER_TURN;
use serde::Serialize;
use serde_json::Value;

/// What joins system messages, and the texts of merged turns: a blank line.
const JOIN: &str = "\n\n";

/// At most this many characters of a foreign tool-call id are kept before its hash.
const KEPT_ID_CHARS: usize = 40;

/// One message of the `messages` array.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct WireMessage {
    role: &'static str,
    content: Content,
}

/// A turn's content: a string when it is only text (as every text request was sent before tools),
/// blocks when it carries tool calls or results.
#[derive(Debug, Serialize, PartialEq)]
#[serde(untagged)]
enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// A content block we send.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        // Optional on the wire; an empty text block would be rejected.
        #[serde(skip_serializing_if = "String::is_empty")]
        content: String,
    },
}

/// A turn being built: its texts and its tool blocks, kept apart until the order is known.
#[derive(Debug)]
struct Turn {
    user: bool,
    texts: Vec<String>,
    blocks: Vec<Block>,
}

/// The system text and the turns of a request.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// The system messages joined by a blank line; `None` when there are none.
    pub system: Option<String>,
    /// The turns, alternating, the user's first.
    pub messages: Vec<WireMessage>,
}

/// Encodes `messages` as Messages API turns.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] when a tool call's arguments are not a JSON object (the API takes
/// only objects as `input`) or a tool result names no call.
pub(crate) fn encode_messages(messages: &[Message]) -> Result<Encoded, Error> {
    let system: Vec<&str> = messages
        .iter()
        .filter(|m| m.role == Role::System)
        .map(|m| m.content.as_str())
        .collect();
    let mut turns: Vec<Turn> = Vec::new();
    for message in messages.iter().filter(|m| m.role != Role::System) {
        let user = matches!(message.role, Role::User | Role::Tool);
        let turn = match turns.last_mut() {
            Some(last) if last.user == user => last,
            _ => {
                turns.push(Turn {
                    user,
                    texts: Vec::new(),
                    blocks: Vec::new(),
                });
                turns.last_mut().expect("just pushed")
            }
        };
        add(turn, message)?;
    }
    if turns.first().is_none_or(|first| !first.user) {
        turns.insert(
            0,
            Turn {
                user: true,
                texts: vec![LEADING_USER_TURN.to_owned()],
                blocks: Vec::new(),
            },
        );
    }
    Ok(Encoded {
        system: (!system.is_empty()).then(|| system.join(JOIN)),
        messages: turns.into_iter().map(finish).collect(),
    })
}

fn add(turn: &mut Turn, message: &Message) -> Result<(), Error> {
    match message.role {
        Role::Tool => {
            let call_id = message
                .tool_call_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidRequest,
                        "a tool result names no tool call (tool_call_id is missing)",
                    )
                })?;
            turn.blocks.push(Block::ToolResult {
                tool_use_id: wire_id(call_id).into_owned(),
                content: message.content.clone(),
            });
        }
        Role::Assistant => {
            turn.texts.push(message.content.clone());
            for call in &message.tool_calls {
                turn.blocks.push(tool_use(call)?);
            }
        }
        Role::User | Role::System => turn.texts.push(message.content.clone()),
    }
    Ok(())
}

fn tool_use(call: &ToolCall) -> Result<Block, Error> {
    let input = call
        .arguments_json()
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "the arguments of tool call `{}` ({}) are not a JSON object, the only input the \
                     Messages API takes",
                    call.name, call.id
                ),
            )
        })?;
    Ok(Block::ToolUse {
        id: wire_id(&call.id).into_owned(),
        name: call.name.clone(),
        input,
    })
}

fn finish(turn: Turn) -> WireMessage {
    let role = if turn.user { "user" } else { "assistant" };
    if turn.blocks.is_empty() {
        return WireMessage {
            role,
            content: Content::Text(turn.texts.join(JOIN)),
        };
    }
    // Beside blocks, empty texts are left out: the API rejects an empty text block.
    let text: Vec<String> = turn.texts.into_iter().filter(|t| !t.is_empty()).collect();
    let text = (!text.is_empty()).then(|| Block::Text {
        text: text.join(JOIN),
    });
    let blocks = if turn.user {
        // Tool results must come first in a user turn.
        turn.blocks.into_iter().chain(text).collect()
    } else {
        text.into_iter().chain(turn.blocks).collect()
    };
    WireMessage {
        role,
        content: Content::Blocks(blocks),
    }
}

/// The id a tool call goes out with. The API takes ids matching `^[a-zA-Z0-9_-]+$`: those (Anthropic's
/// `toolu_…`, OpenAI's `call_…`, our synthetic `call_<turn>_<index>`) go out unchanged. Any other id
/// (empty, or with `.`, `:` or spaces, as some OpenAI-compatible servers write them) becomes its first
/// 40 characters with every other character replaced by `_`, then `_` and the 16 hex digits of its
/// FNV-1a hash: the same id always maps to the same value, so a call and its result still match, and
/// ids that differ only in replaced characters stay distinct.
pub(crate) fn wire_id(id: &str) -> Cow<'_, str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !id.is_empty() && id.chars().all(allowed) {
        return Cow::Borrowed(id);
    }
    let kept: String = id
        .chars()
        .take(KEPT_ID_CHARS)
        .map(|c| if allowed(c) { c } else { '_' })
        .collect();
    let prefix = if kept.is_empty() { "call" } else { &kept };
    Cow::Owned(format!("{prefix}_{:016x}", fnv1a(id.as_bytes())))
}

/// 64-bit FNV-1a: a stable hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(messages: &[Message]) -> Value {
        let encoded = encode_messages(messages).expect("encodes");
        json!({"system": encoded.system, "messages": encoded.messages})
    }

    #[test]
    fn text_only_turns_stay_strings() {
        let body = encode(&[Message::system("S"), Message::user("a"), Message::user("b")]);
        assert_eq!(
            body,
            json!({"system": "S", "messages": [{"role": "user", "content": "a\n\nb"}]})
        );
    }

    #[test]
    fn calls_become_tool_use_after_the_text_and_results_merge_into_one_user_turn() {
        let calls = vec![
            ToolCall::new("toolu_1", "one", r#"{"q":1}"#),
            ToolCall::new("call_2", "two", ""),
        ];
        let body = encode(&[
            Message::user("Go"),
            Message::assistant_tool_calls("Calling.", calls),
            Message::tool_result("toolu_1", "r1"),
            Message::tool_result("call_2", ""),
            Message::user("Summarise."),
        ]);
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "Go"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Calling."},
                    {"type": "tool_use", "id": "toolu_1", "name": "one", "input": {"q": 1}},
                    {"type": "tool_use", "id": "call_2", "name": "two", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r1"},
                    {"type": "tool_result", "tool_use_id": "call_2"},
                    {"type": "text", "text": "Summarise."}
                ]}
            ])
        );
    }

    #[test]
    fn an_assistant_turn_of_only_calls_has_no_text_block() {
        let body = encode(&[
            Message::user("Go"),
            Message::assistant_tool_calls("", vec![ToolCall::new("a", "f", "{}")]),
        ]);
        assert_eq!(
            body["messages"][1]["content"],
            json!([{"type": "tool_use", "id": "a", "name": "f", "input": {}}])
        );
    }

    #[test]
    fn bad_arguments_and_unanswerable_results_are_request_errors() {
        let not_object = [
            Message::user("Go"),
            Message::assistant_tool_calls("", vec![ToolCall::new("a", "f", "[1]")]),
        ];
        let err = encode_messages(&not_object).expect_err("array input");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.message().contains("`f`"), "{err}");
        let orphan = [Message::user("Go"), Message::tool_result("", "r")];
        let err = encode_messages(&orphan).expect_err("no call id");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    }

    #[test]
    fn foreign_ids_map_deterministically_onto_the_allowed_pattern() {
        for id in [
            "toolu_01AbC",
            "call_Tbs8Do1pty9ixq7sj37jRJMI",
            "call_0_1",
            "D681PevKs",
        ] {
            assert_eq!(wire_id(id), id, "accepted ids go out unchanged");
        }
        let mapped = wire_id("functions.get_weather:0");
        assert_eq!(mapped, wire_id("functions.get_weather:0"), "deterministic");
        assert!(mapped.starts_with("functions_get_weather_0_"), "{mapped}");
        assert_ne!(mapped, wire_id("functions_get_weather:0"), "no collision");
        for id in ["functions.get_weather:0", "", "日本", &"x.".repeat(100)] {
            let mapped = wire_id(id);
            assert!(
                !mapped.is_empty()
                    && mapped.len() <= 64
                    && mapped
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{id:?} -> {mapped}"
            );
        }
        let body = encode(&[
            Message::user("Go"),
            Message::assistant_tool_calls("", vec![ToolCall::new("a.b", "f", "{}")]),
            Message::tool_result("a.b", "r"),
        ]);
        assert_eq!(
            body["messages"][1]["content"][0]["id"],
            body["messages"][2]["content"][0]["tool_use_id"],
            "a call and its result keep matching"
        );
    }
}
