//! `functionCall` parts made into whole [`ToolCall`]s.
//!
//! Gemini sends a call whole (`{name, args}`, in one chunk even when streaming), or, when streamed
//! arguments were asked for (Vertex AI `streamFunctionCallArguments`), in pieces: `{name,
//! willContinue: true}`, then parts carrying `partialArgs` (`{jsonPath, stringValue | numberValue |
//! boolValue | nullValue, willContinue}`; string pieces at the same path are concatenated), then a
//! part without `willContinue` (`{}`) that closes the call. Gemini gives calls no ids: each gets
//! [`llm_core::synthetic_call_id`]`(turn, index)`, the turn being the number of assistant messages
//! before the answer, so ids are unique in the conversation and stable when it is replayed.

use llm_core::{Error, ErrorKind, ToolCall};
use serde::Deserialize;
use serde_json::{Map, Value};

/// A `functionCall` as received.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCallPart {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    args: Option<Value>,
    #[serde(default)]
    partial_args: Vec<PartialArg>,
    #[serde(default)]
    will_continue: Option<bool>,
}

/// One piece of streamed arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialArg {
    json_path: String,
    #[serde(default)]
    string_value: Option<String>,
    #[serde(default)]
    number_value: Option<serde_json::Number>,
    #[serde(default)]
    bool_value: Option<bool>,
}

/// A call whose arguments are still arriving.
#[derive(Debug)]
struct Pending {
    name: String,
    args: Value,
    signature: Option<String>,
}

/// Turns the `functionCall` parts of an answer, in order, into whole calls with synthetic ids.
#[derive(Debug, Default)]
pub(crate) struct CallAssembler {
    turn: usize,
    made: usize,
    pending: Option<Pending>,
}

impl CallAssembler {
    /// An assembler for the answer that follows `turn` assistant messages.
    pub(crate) fn for_turn(turn: usize) -> Self {
        Self {
            turn,
            ..Self::default()
        }
    }

    /// How many calls were completed.
    pub(crate) fn made(&self) -> usize {
        self.made
    }

    /// Whether a call is still waiting for the rest of its arguments.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one `functionCall` part (with its part's `thoughtSignature`); returns the calls it
    /// completes (a new named call also completes one still pending).
    ///
    /// # Errors
    /// `malformed_answer` when a call has no name, its `args` are not an object, or a `jsonPath` cannot
    /// be followed.
    pub(crate) fn part(
        &mut self,
        call: FunctionCallPart,
        signature: Option<String>,
    ) -> Result<Vec<ToolCall>, Error> {
        let mut done = Vec::new();
        if call.name.is_some()
            && let Some(previous) = self.pending.take()
        {
            done.push(self.complete(previous));
        }
        let continues = call.will_continue == Some(true);
        let mut pending = match self.pending.take() {
            Some(pending) => pending,
            None if call.name.is_none() && call.partial_args.is_empty() && call.args.is_none() => {
                // A closing `{}` with nothing open: nothing to do.
                return Ok(done);
            }
            None => Pending {
                name: call.name.filter(|n| !n.is_empty()).ok_or_else(|| {
                    malformed("a functionCall part has no function name".to_owned())
                })?,
                args: call.args.unwrap_or_else(|| Value::Object(Map::new())),
                signature: None,
            },
        };
        if !pending.args.is_object() {
            return Err(malformed(format!(
                "the arguments of a call of `{}` are not a JSON object",
                pending.name
            )));
        }
        for piece in call.partial_args {
            apply(&mut pending.args, piece)?;
        }
        if pending.signature.is_none() {
            pending.signature = signature;
        }
        if continues {
            self.pending = Some(pending);
        } else {
            done.push(self.complete(pending));
        }
        Ok(done)
    }

    fn complete(&mut self, call: Pending) -> ToolCall {
        let id = llm_core::synthetic_call_id(self.turn, self.made);
        self.made += 1;
        ToolCall {
            signature: call.signature,
            ..ToolCall::new(id, call.name, call.args.to_string())
        }
    }
}

fn malformed(message: String) -> Error {
    Error::new(ErrorKind::MalformedAnswer, message)
}

/// One step of a `jsonPath`.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// `$.a.b[0]['c d']` as steps; `None` when it is not such a path.
fn steps(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']")?;
            steps.push(Step::Key(after[..end].to_owned()));
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(Step::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// Puts one piece of arguments at its path: a string piece is appended to the string already there.
fn apply(args: &mut Value, piece: PartialArg) -> Result<(), Error> {
    let bad_path = || {
        malformed(format!(
            "cannot follow the argument path `{}`",
            piece.json_path
        ))
    };
    let steps = steps(&piece.json_path).ok_or_else(bad_path)?;
    let mut slot = &mut *args;
    for step in steps {
        slot = match step {
            Step::Key(key) => {
                if !slot.is_object() {
                    *slot = Value::Object(Map::new());
                }
                slot.as_object_mut()
                    .ok_or_else(bad_path)?
                    .entry(key)
                    .or_insert(Value::Null)
            }
            Step::Index(index) => {
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                let items = slot.as_array_mut().ok_or_else(bad_path)?;
                if items.len() <= index {
                    items.resize(index + 1, Value::Null);
                }
                &mut items[index]
            }
        };
    }
    match (piece.string_value, slot) {
        (Some(more), Value::String(text)) => text.push_str(&more),
        (Some(text), slot) => *slot = Value::String(text),
        (None, slot) => {
            *slot = if let Some(number) = piece.number_value {
                Value::Number(number)
            } else if let Some(flag) = piece.bool_value {
                Value::Bool(flag)
            } else {
                // `nullValue` (or a piece without a value).
                Value::Null
            };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn part(value: Value) -> FunctionCallPart {
        serde_json::from_value(value).expect("a functionCall")
    }

    #[test]
    fn a_whole_call_gets_the_next_synthetic_id() {
        let mut calls = CallAssembler::for_turn(2);
        let done = calls
            .part(
                part(json!({"name": "f", "args": {"a": 1}})),
                Some("sig".into()),
            )
            .expect("call");
        assert_eq!(
            done,
            vec![ToolCall::new("call_2_0", "f", r#"{"a":1}"#).with_signature("sig")]
        );
        let done = calls.part(part(json!({"name": "g"})), None).expect("call");
        assert_eq!(done, vec![ToolCall::new("call_2_1", "g", "{}")]);
        assert_eq!(calls.made(), 2);
    }

    #[test]
    fn streamed_pieces_are_assembled() {
        let mut calls = CallAssembler::for_turn(0);
        assert!(
            calls
                .part(
                    part(json!({"name": "f", "willContinue": true})),
                    Some("s".into())
                )
                .expect("start")
                .is_empty()
        );
        for piece in [
            json!({"partialArgs": [{"jsonPath": "$.city", "stringValue": "San ", "willContinue": true}], "willContinue": true}),
            json!({"partialArgs": [{"jsonPath": "$.city", "stringValue": "Francisco"}, {"jsonPath": "$.days[1]", "numberValue": 3}, {"jsonPath": "$['opt in'].ok", "boolValue": true}], "willContinue": true}),
        ] {
            assert!(calls.part(part(piece), None).expect("piece").is_empty());
        }
        assert!(calls.is_pending());
        let done = calls.part(part(json!({})), None).expect("close");
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].signature.as_deref(), Some("s"));
        assert_eq!(
            done[0].arguments_json().expect("json"),
            json!({"city": "San Francisco", "days": [null, 3], "opt in": {"ok": true}})
        );
        assert!(!calls.is_pending());
    }

    #[test]
    fn bad_calls_are_malformed() {
        for bad in [
            json!({"args": {"a": 1}}),
            json!({"name": "f", "args": [1]}),
            json!({"name": "f", "partialArgs": [{"jsonPath": "city", "stringValue": "x"}]}),
        ] {
            let err = CallAssembler::default()
                .part(part(bad.clone()), None)
                .expect_err("malformed");
            assert_eq!(err.kind(), ErrorKind::MalformedAnswer, "{bad}");
        }
    }
}
