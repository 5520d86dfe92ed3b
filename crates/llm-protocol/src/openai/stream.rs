//! Decoding `chat.completion.chunk` server-sent events into [`StreamEvent`]s.
//!
//! - `choices[0].delta.content` is text (a string, or Mistral's typed parts); reasoning deltas
//!   (`delta.reasoning`, `delta.reasoning_content`, Mistral `thinking` parts) are not.
//! - Usage arrives in its own chunk (`choices: []` with `usage`, the answer to `include_usage`), on the
//!   last chunk, or as Groq's `x_groq.usage`; each chunk's counts become one `Usage` event.
//! - The finish reason is remembered (later chunks often carry `null`) and `Finish` is emitted at
//!   `data: [DONE]`. The answer is complete only if a finish reason was seen: `[DONE]` without one is
//!   [`ErrorKind::StreamTruncated`], and so is a body that ends without one (Together's streams end at
//!   the chunk with `finish_reason` and send no `[DONE]`: complete).
//! - Tool calls arrive as `delta.tool_calls` fragments keyed by `index` (the first with `id` and
//!   `function.name`, later ones with pieces of `function.arguments`); they are assembled and emitted as
//!   whole [`StreamEvent::ToolCall`]s just before `Finish`. `delta.refusal` fragments make the stream
//!   end in [`ErrorKind::Refused`].
//! - `event: error`, or a chunk with a top-level `error` (Groq's `tool_use_failed`, OpenRouter's "Token
//!   limit reached" inside a 200 stream), ends the stream with the classified error.

use llm_core::{Error, ErrorKind, FinishReason, StreamEvent, ToolCall};
use serde_json::Value;

use super::errors::embedded_error;
use super::wire::{WireUsage, content_text, error_in, finish_reason};
use crate::ParseError;
use crate::sse::SseEvent;
use crate::stream::FrameDecoder;

/// The dialect's stream decoder; one per response.
#[derive(Debug)]
pub struct ChunkDecoder {
    parse_error: ParseError,
    finish: Option<FinishReason>,
    model: Option<String>,
    /// Tool calls being assembled, in `index` order.
    calls: Vec<ToolCall>,
    refusal: String,
}

impl ChunkDecoder {
    /// A decoder that classifies error frames with `parse_error` (the provider's).
    pub fn new(parse_error: ParseError) -> Self {
        Self {
            parse_error,
            finish: None,
            model: None,
            calls: Vec::new(),
            refusal: String::new(),
        }
    }

    /// Adds one `delta.tool_calls` fragment to the call at its `index`.
    fn tool_call_fragment(&mut self, fragment: &Value) {
        let index = fragment
            .get("index")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .unwrap_or(self.calls.len().saturating_sub(1));
        while self.calls.len() <= index {
            let id = llm_core::synthetic_call_id(0, self.calls.len());
            self.calls.push(ToolCall::new(id, "", ""));
        }
        let call = &mut self.calls[index];
        if let Some(id) = fragment
            .get("id")
            .and_then(Value::as_str)
            .filter(|i| !i.is_empty())
        {
            call.id = id.to_owned();
        }
        let function = fragment.get("function");
        if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
            call.name.push_str(name);
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(piece)) => call.arguments.push_str(piece),
            Some(Value::Null) | None => {}
            Some(object) => call.arguments.push_str(&object.to_string()),
        }
    }

    fn delta(&mut self, delta: &Value, events: &mut Vec<StreamEvent>) {
        let text = content_text(delta.get("content"));
        if !text.is_empty() {
            events.push(StreamEvent::Delta { text });
        }
        if let Some(piece) = delta.get("refusal").and_then(Value::as_str) {
            self.refusal.push_str(piece);
        }
        for fragment in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.tool_call_fragment(fragment);
        }
    }

    /// The closing `Finish`, or a truncation error when no chunk carried a finish reason: only the
    /// provider can say an answer is complete.
    fn finish_events(&mut self) -> Result<Vec<StreamEvent>, Error> {
        if !self.refusal.is_empty() {
            return Err(super::wire::refused(&self.refusal));
        }
        let finish = self.finish_event()?;
        let mut events: Vec<StreamEvent> = std::mem::take(&mut self.calls)
            .into_iter()
            .map(|mut call| {
                if call.arguments.is_empty() {
                    call.arguments = "{}".to_owned();
                }
                StreamEvent::ToolCall { call }
            })
            .collect();
        events.push(finish);
        Ok(events)
    }

    fn finish_event(&mut self) -> Result<StreamEvent, Error> {
        let reason = self.finish.take().ok_or_else(|| {
            Error::new(
                ErrorKind::StreamTruncated,
                "the stream ended ([DONE]) without a finish_reason: the answer may be incomplete",
            )
        })?;
        Ok(StreamEvent::Finish {
            reason,
            model: self.model.take(),
        })
    }

    fn chunk(&mut self, chunk: &Value) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if let Some(model) = chunk
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
        {
            self.model = Some(model.to_owned());
        }
        let first = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| {
                choices.iter().find(|c| {
                    c.get("index")
                        .and_then(Value::as_u64)
                        .is_none_or(|i| i == 0)
                })
            });
        if let Some(choice) = first {
            if let Some(delta) = choice.get("delta") {
                self.delta(delta, &mut events);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(finish_reason(reason));
            }
        }
        let usage = chunk
            .get("usage")
            .filter(|u| !u.is_null())
            .or_else(|| chunk.get("x_groq").and_then(|x| x.get("usage")))
            .and_then(|u| serde_json::from_value::<WireUsage>(u.clone()).ok());
        if let Some(usage) = usage {
            events.push(StreamEvent::Usage {
                usage: usage.to_usage(),
            });
        }
        events
    }
}

impl FrameDecoder<SseEvent> for ChunkDecoder {
    fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
        let data = frame.data.trim();
        if data == "[DONE]" {
            return self.finish_events();
        }
        let parsed = serde_json::from_str::<Value>(data);
        if frame.event.as_deref() == Some("error") {
            let value =
                parsed.unwrap_or_else(|_| serde_json::json!({ "error": { "message": data } }));
            return Err(embedded_error(&value, 200, self.parse_error));
        }
        let chunk = parsed.map_err(|e| {
            Error::new(
                ErrorKind::MalformedAnswer,
                format!("a stream chunk is not valid JSON ({e}); the answer cannot be read"),
            )
        })?;
        if error_in(&chunk) {
            return Err(embedded_error(&chunk, 200, self.parse_error));
        }
        Ok(self.chunk(&chunk))
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        // Without a finish reason the driver reports the body as truncated.
        if self.finish.is_some() {
            self.finish_events()
        } else {
            Ok(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::parse_error;
    use llm_core::Usage;

    /// The `data:` frames of a recorded SSE body in `fixtures/openai/`.
    fn recorded(name: &str) -> Vec<SseEvent> {
        let path = format!(
            "{}/../../fixtures/openai/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read_to_string(&path).expect("fixture");
        body.lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .map(data)
            .collect()
    }

    #[test]
    fn parallel_tool_call_fragments_are_assembled() {
        let (events, error) = run(recorded("chat.stream.parallel_tool_calls.sse"));
        assert!(error.is_none(), "{error:?}");
        let calls: Vec<&ToolCall> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCall { call } => Some(call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "GetWeatherArgs");
        assert_eq!(calls[1].name, "get_stock_price");
        for call in &calls {
            assert!(call.arguments_json().is_ok(), "{call:?}");
            assert!(call.id.starts_with("call_"), "{call:?}");
        }
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                ..
            })
        ));
    }

    #[test]
    fn a_streamed_refusal_is_refused() {
        let (_, error) = run(recorded("chat.stream.refusal.sse"));
        assert_eq!(error.map(|e| e.kind()), Some(ErrorKind::Refused));
    }

    fn data(json: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: json.to_owned(),
        }
    }

    fn run(frames: Vec<SseEvent>) -> (Vec<StreamEvent>, Option<Error>) {
        let mut decoder = ChunkDecoder::new(parse_error);
        let mut events = Vec::new();
        for frame in frames {
            match decoder.frame(frame) {
                Ok(more) => events.extend(more),
                Err(error) => return (events, Some(error)),
            }
        }
        events.extend(decoder.end().expect("end"));
        (events, None)
    }

    fn delta(text: &str) -> StreamEvent {
        StreamEvent::Delta { text: text.into() }
    }

    #[test]
    fn deltas_usage_chunk_and_done() {
        let (events, error) = run(vec![
            data(
                r#"{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            ),
            data(
                r#"{"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            ),
            data(
                r#"{"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            ),
            data(r#"{"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#),
            data("[DONE]"),
        ]);
        assert!(error.is_none());
        assert_eq!(
            events,
            vec![
                delta("Hi"),
                StreamEvent::Usage {
                    usage: Usage {
                        input_tokens: 5,
                        output_tokens: 1
                    }
                },
                StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: Some("m".into())
                },
            ]
        );
    }

    #[test]
    fn reasoning_is_not_content_and_groq_usage_counts_once() {
        let (events, _) = run(vec![
            data(r#"{"choices":[{"delta":{"reasoning":"think","channel":"analysis"}}]}"#),
            data(r#"{"choices":[{"delta":{"content":null,"reasoning_content":"more"}}]}"#),
            data(
                r#"{"choices":[{"delta":{"content":[{"type":"thinking","thinking":[{"type":"text","text":"x"}]}]}}]}"#,
            ),
            data(
                r#"{"choices":[{"delta":{"content":"A"},"finish_reason":"length"}],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":2}},"usage":{"prompt_tokens":1,"completion_tokens":2}}"#,
            ),
            data("[DONE]"),
        ]);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0], delta("A"));
        assert!(matches!(
            &events[2],
            StreamEvent::Finish {
                reason: FinishReason::Length,
                model: None
            }
        ));
        let (events, _) = run(vec![data(
            r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"x_groq":{"usage":{"prompt_tokens":1,"completion_tokens":2}}}"#,
        )]);
        assert!(matches!(events[0], StreamEvent::Usage { .. }));
    }

    #[test]
    fn finish_reason_survives_later_null_chunks() {
        let (events, _) = run(vec![
            data(r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#),
            data(
                r#"{"choices":[{"delta":{"content":""},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
            ),
            data("[DONE]"),
        ]);
        assert!(matches!(
            events.last(),
            Some(StreamEvent::Finish {
                reason: FinishReason::Stop,
                ..
            })
        ));
    }

    #[test]
    fn end_without_done_finishes_only_after_a_finish_reason() {
        let (events, _) = run(vec![data(
            r#"{"choices":[{"delta":{"content":"x"},"finish_reason":"stop"}]}"#,
        )]);
        assert!(matches!(events.last(), Some(StreamEvent::Finish { .. })));
        let (events, _) = run(vec![data(
            r#"{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#,
        )]);
        assert_eq!(events, vec![delta("x")]);
    }

    #[test]
    fn done_without_a_finish_reason_is_truncated() {
        let (events, error) = run(vec![
            data(r#"{"choices":[{"delta":{"content":"x"},"finish_reason":null}]}"#),
            data("[DONE]"),
        ]);
        assert_eq!(events, vec![delta("x")]);
        assert_eq!(
            error.expect("no finish reason").kind(),
            ErrorKind::StreamTruncated
        );
        let (events, error) = run(vec![
            data(r#"{"choices":[{"delta":{"content":""}}]}"#),
            data("[DONE]"),
        ]);
        assert!(events.is_empty());
        assert_eq!(error.expect("empty").kind(), ErrorKind::StreamTruncated);
    }

    #[test]
    fn error_event_and_error_chunk_are_errors() {
        let (events, error) = run(vec![
            data(r#"{"choices":[{"delta":{"content":"x"}}]}"#),
            SseEvent {
                event: Some("error".into()),
                data: r#"{"error":{"message":"Tool call validation failed","code":"tool_use_failed","status_code":400}}"#.into(),
            },
        ]);
        assert_eq!(events, vec![delta("x")]);
        let error = error.expect("error event");
        assert_eq!(
            (error.kind(), error.status()),
            (ErrorKind::InvalidRequest, Some(400))
        );

        let (_, error) = run(vec![data(
            r#"{"error":{"code":402,"message":"Insufficient credits"},"choices":[{"delta":{"content":""}}]}"#,
        )]);
        assert_eq!(
            error.expect("error chunk").kind(),
            ErrorKind::QuotaExhausted
        );
    }

    #[test]
    fn malformed_chunk_is_a_validation_error() {
        let (_, error) = run(vec![data(r#"{"choices":[{"delta":"#)]);
        assert_eq!(error.expect("malformed").kind(), ErrorKind::MalformedAnswer);
    }
}
