//! The Messages API event stream, decoded into [`StreamEvent`]s.
//!
//! Text arrives as `text_delta`s. A `tool_use` block opens with `content_block_start` (id, name) and
//! its input arrives as `input_json_delta` fragments; the call is whole at its `content_block_stop`
//! and is emitted as one [`StreamEvent::ToolCall`] at `message_stop`, just before `Usage` and
//! `Finish`, so a stream cut anywhere before the end yields no call at all. A call of the plan's
//! answer tool is the answer itself: its fragments are streamed as text (an answer wrapped in
//! [`WRAPPED_PROPERTY`](crate::structured::WRAPPED_PROPERTY) as one delta when its block closes).

use std::collections::BTreeMap;

use llm_core::{Error, ErrorKind, StreamEvent, ToolCall, Usage};
use llm_protocol::FrameDecoder;
use llm_protocol::error_map::decode_frame;
use llm_protocol::sse::SseEvent;
use serde::Deserialize;

use crate::structured::Plan;
use crate::wire::{
    ContentBlock, ErrorObject, MessagesResponse, WireUsage, arguments, complete, error_from_object,
};

/// One SSE event's payload.
#[derive(Debug, Deserialize)]
struct StreamFrame {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    message: Option<MessagesResponse>,
    #[serde(default)]
    content_block: Option<ContentBlock>,
    #[serde(default)]
    delta: Option<FrameDelta>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Debug, Deserialize)]
struct FrameDelta {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    stop_reason: Option<String>,
}

/// A `tool_use` block still receiving its input.
#[derive(Debug)]
struct OpenCall {
    id: String,
    name: String,
    json: String,
    /// A call of the plan's answer tool.
    answer: bool,
    /// Some of its input already went out as text.
    streamed: bool,
}

/// Decodes a Messages API event stream. The stream is complete only at `message_stop` after a
/// `message_delta` gave the `stop_reason`; a body that ends before `message_stop` is truncated (the
/// driver reports it, since [`FrameDecoder::end`] yields no `Finish`), and so is a `message_stop` with
/// no `stop_reason` seen or with a tool call still open.
#[derive(Debug, Default)]
pub(crate) struct StreamDecoder {
    plan: Plan,
    model: Option<String>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    stop_reason: Option<String>,
    open: BTreeMap<usize, OpenCall>,
    calls: Vec<ToolCall>,
    answered: bool,
}

impl StreamDecoder {
    /// A decoder for a request encoded with `plan`.
    pub(crate) fn new(plan: Plan) -> Self {
        Self {
            plan,
            ..Self::default()
        }
    }

    fn note_usage(&mut self, usage: &WireUsage) {
        if let Some(input) = usage.input() {
            self.input_tokens = Some(input);
        }
        if let Some(output) = usage.output_tokens {
            self.output_tokens = Some(output);
        }
    }

    /// Whether answer-tool fragments can be streamed as they come (not when they must be unwrapped).
    fn streams_answer(&self) -> bool {
        self.plan
            .answer_tool
            .as_ref()
            .is_some_and(|tool| !tool.wrapped)
    }

    fn open_block(&mut self, index: Option<usize>, block: Option<ContentBlock>) {
        let (Some(index), Some(block)) = (index, block) else {
            return;
        };
        if block.kind != "tool_use" {
            return;
        }
        let name = block.name.unwrap_or_default();
        let answer = self.plan.answer(&name, "{}").is_some();
        self.open.insert(
            index,
            OpenCall {
                id: block.id.unwrap_or_default(),
                name,
                json: String::new(),
                answer,
                streamed: false,
            },
        );
    }

    fn delta(&mut self, index: Option<usize>, delta: FrameDelta) -> Vec<StreamEvent> {
        match delta.kind.as_deref() {
            Some("text_delta") => delta
                .text
                .filter(|text| !text.is_empty())
                .map(|text| StreamEvent::Delta { text })
                .into_iter()
                .collect(),
            Some("input_json_delta") => {
                let streams_answer = self.streams_answer();
                let (Some(call), Some(fragment)) = (
                    index.and_then(|i| self.open.get_mut(&i)),
                    delta.partial_json.filter(|f| !f.is_empty()),
                ) else {
                    return vec![];
                };
                call.json.push_str(&fragment);
                if call.answer && streams_answer {
                    call.streamed = true;
                    return vec![StreamEvent::Delta { text: fragment }];
                }
                vec![]
            }
            // thinking_delta, signature_delta and later kinds carry no answer text.
            _ => vec![],
        }
    }

    fn close_block(&mut self, index: Option<usize>) -> Vec<StreamEvent> {
        let Some(call) = index.and_then(|i| self.open.remove(&i)) else {
            return vec![];
        };
        let json = if call.json.trim().is_empty() {
            arguments(None)
        } else {
            call.json
        };
        if !call.answer {
            self.calls.push(ToolCall::new(call.id, call.name, json));
            return vec![];
        }
        self.answered = true;
        if call.streamed {
            return vec![];
        }
        let text = self.plan.answer(&call.name, &json).unwrap_or(json);
        vec![StreamEvent::Delta { text }]
    }

    fn stop(&mut self) -> Result<Vec<StreamEvent>, Error> {
        if let Some(call) = self.open.values().next() {
            return Err(Error::new(
                ErrorKind::StreamTruncated,
                format!(
                    "the stream ended with tool call `{}` still open: its arguments are incomplete",
                    call.name
                ),
            ));
        }
        let reason = complete(
            self.stop_reason.as_deref(),
            &self.plan,
            self.answered,
            self.calls.len(),
            "",
        )?;
        let mut events: Vec<StreamEvent> = self
            .calls
            .drain(..)
            .map(|call| StreamEvent::ToolCall { call })
            .collect();
        if self.input_tokens.is_some() || self.output_tokens.is_some() {
            events.push(StreamEvent::Usage {
                usage: Usage {
                    input_tokens: self.input_tokens.unwrap_or(0),
                    output_tokens: self.output_tokens.unwrap_or(0),
                },
            });
        }
        events.push(StreamEvent::Finish {
            reason,
            model: self.model.clone(),
        });
        Ok(events)
    }
}

impl FrameDecoder<SseEvent> for StreamDecoder {
    fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
        let parsed: StreamFrame = decode_frame(&frame.data, "stream event")?;
        let kind = if parsed.kind.is_empty() {
            frame.event.unwrap_or_default()
        } else {
            parsed.kind
        };
        match kind.as_str() {
            "message_start" => {
                if let Some(message) = parsed.message {
                    if message.model.is_some() {
                        self.model = message.model;
                    }
                    if let Some(usage) = &message.usage {
                        self.note_usage(usage);
                    }
                }
                Ok(vec![])
            }
            "content_block_start" => {
                self.open_block(parsed.index, parsed.content_block);
                Ok(vec![])
            }
            "content_block_delta" => Ok(parsed
                .delta
                .map(|delta| self.delta(parsed.index, delta))
                .unwrap_or_default()),
            "content_block_stop" => Ok(self.close_block(parsed.index)),
            "message_delta" => {
                if let Some(reason) = parsed.delta.and_then(|delta| delta.stop_reason) {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = &parsed.usage {
                    self.note_usage(usage);
                }
                Ok(vec![])
            }
            "message_stop" => self.stop(),
            "error" => Err(match &parsed.error {
                Some(error) => error_from_object(error, None),
                None => Error::new(ErrorKind::ServerError, "error event without details"),
            }),
            // ping and event types added later carry no text.
            _ => Ok(vec![]),
        }
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        Ok(vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structured::AnswerTool;
    use llm_core::FinishReason;

    fn sse(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: Some(event.to_owned()),
            data: data.to_owned(),
        }
    }

    #[test]
    fn stream_events_in_order() {
        let mut decoder = StreamDecoder::default();
        let frames = [
            sse(
                "message_start",
                r#"{"type":"message_start","message":{"model":"m1","content":[],"usage":{"input_tokens":5,"output_tokens":1}}}"#,
            ),
            sse("ping", r#"{"type": "ping"}"#),
            sse(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
            ),
            sse(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}   }"#,
            ),
            sse(
                "content_block_delta",
                r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{"}}"#,
            ),
            sse(
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}"#,
            ),
        ];
        let mut events = Vec::new();
        for frame in frames {
            events.extend(decoder.frame(frame).expect("frame"));
        }
        assert_eq!(events, vec![StreamEvent::Delta { text: "Hi".into() }]);
        assert_eq!(decoder.end().expect("end"), vec![], "no message_stop yet");
        let closing = decoder
            .frame(sse("message_stop", r#"{"type":"message_stop"}"#))
            .expect("stop");
        assert_eq!(
            closing,
            vec![
                StreamEvent::Usage {
                    usage: Usage {
                        input_tokens: 5,
                        output_tokens: 9
                    }
                },
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: Some("m1".into())
                }
            ]
        );
    }

    #[test]
    fn stream_error_event_is_classified() {
        let mut decoder = StreamDecoder::default();
        let err = decoder
            .frame(sse(
                "error",
                r#"{"type":"error","error":{"details":null,"type":"overloaded_error","message":"Overloaded"}    }"#,
            ))
            .expect_err("error event");
        assert_eq!(err.kind(), ErrorKind::Overloaded);
        let err = decoder
            .frame(sse("content_block_delta", "not json"))
            .expect_err("garbage");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
    }

    fn run(
        decoder: &mut StreamDecoder,
        frames: &[(&str, &str)],
    ) -> Result<Vec<StreamEvent>, Error> {
        let mut events = Vec::new();
        for (event, data) in frames {
            events.extend(decoder.frame(sse(event, data))?);
        }
        Ok(events)
    }

    const START: (&str, &str) = (
        "message_start",
        r#"{"type":"message_start","message":{"model":"m","content":[],"usage":{"input_tokens":5}}}"#,
    );
    const TOOL_START: (&str, &str) = (
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
    );
    const STOP: (&str, &str) = (
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    );
    const TOOL_USE: (&str, &str) = (
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
    );
    const END: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

    fn fragment(json: &str) -> String {
        serde_json::json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "input_json_delta", "partial_json": json}})
        .to_string()
    }

    #[test]
    fn message_stop_without_stop_reason_is_truncated() {
        let mut decoder = StreamDecoder::default();
        let err = run(&mut decoder, &[START, END]).expect_err("no stop_reason");
        assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    }

    #[test]
    fn tool_input_fragments_become_one_call_before_finish() {
        let (a, b, empty) = (fragment(r#"{"q": "#), fragment(r#""x"}"#), fragment(""));
        let mut decoder = StreamDecoder::default();
        let frames = [
            START,
            TOOL_START,
            ("content_block_delta", empty.as_str()),
            ("content_block_delta", a.as_str()),
            ("content_block_delta", b.as_str()),
            STOP,
            TOOL_USE,
        ];
        assert_eq!(run(&mut decoder, &frames).expect("frames"), vec![]);
        let closing = run(&mut decoder, &[END]).expect("stop");
        assert_eq!(
            closing[0],
            StreamEvent::ToolCall {
                call: ToolCall::new("toolu_1", "f", r#"{"q": "x"}"#)
            }
        );
        assert!(matches!(
            closing.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                ..
            })
        ));
    }

    #[test]
    fn a_call_without_input_has_empty_object_arguments() {
        let mut decoder = StreamDecoder::default();
        let events = run(&mut decoder, &[START, TOOL_START, STOP, TOOL_USE, END]).expect("ok");
        assert_eq!(
            events[0],
            StreamEvent::ToolCall {
                call: ToolCall::new("toolu_1", "f", "{}")
            }
        );
    }

    #[test]
    fn a_call_still_open_at_message_stop_is_truncated_not_half_a_call() {
        let a = fragment(r#"{"q": "#);
        let mut decoder = StreamDecoder::default();
        let frames = [
            START,
            TOOL_START,
            ("content_block_delta", a.as_str()),
            TOOL_USE,
        ];
        assert_eq!(run(&mut decoder, &frames).expect("frames"), vec![]);
        let err = run(&mut decoder, &[END]).expect_err("open call");
        assert_eq!(err.kind(), ErrorKind::StreamTruncated);
    }

    fn answer_plan(wrapped: bool) -> Plan {
        Plan {
            answer_tool: Some(AnswerTool {
                name: "f".into(),
                wrapped,
            }),
            wants_json: true,
        }
    }

    #[test]
    fn the_answer_tool_streams_as_text_and_finishes_normally() {
        let (a, b) = (fragment(r#"{"q": "#), fragment(r#""x"}"#));
        let mut decoder = StreamDecoder::new(answer_plan(false));
        let frames = [
            START,
            TOOL_START,
            ("content_block_delta", a.as_str()),
            ("content_block_delta", b.as_str()),
            STOP,
            TOOL_USE,
            END,
        ];
        let events = run(&mut decoder, &frames).expect("ok");
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::Delta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(text, r#"{"q": "x"}"#);
        assert!(
            !events
                .iter()
                .any(|e| matches!(e, StreamEvent::ToolCall { .. }))
        );
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::Stop,
                ..
            })
        ));
    }

    #[test]
    fn a_wrapped_answer_is_one_delta_when_its_block_closes() {
        let whole = fragment(r#"{"value": [1, 2]}"#);
        let mut decoder = StreamDecoder::new(answer_plan(true));
        let frames = [START, TOOL_START, ("content_block_delta", whole.as_str())];
        assert_eq!(run(&mut decoder, &frames).expect("frames"), vec![]);
        assert_eq!(
            run(&mut decoder, &[STOP]).expect("stop"),
            vec![StreamEvent::Delta {
                text: "[1,2]".into()
            }]
        );
    }

    #[test]
    fn a_refusal_of_a_json_request_is_refused() {
        let refusal = (
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"refusal"}}"#,
        );
        let mut decoder = StreamDecoder::new(answer_plan(false));
        let err = run(&mut decoder, &[START, refusal, END]).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Refused);
        let mut plain = StreamDecoder::default();
        let events = run(&mut plain, &[START, refusal, END]).expect("filtered text is an answer");
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::ContentFilter,
                ..
            })
        ));
    }
}
