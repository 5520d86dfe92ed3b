//! Server-sent events (`text/event-stream`), decoded sans-IO.
//!
//! Follows the WHATWG rules that matter for LLM APIs: `data:` lines accumulate (joined by `\n`),
//! `event:` names the event, lines starting with `:` are comments (OpenRouter's keep-alives), a blank
//! line dispatches the event, and an event with no data is dropped. `id:` and `retry:` are ignored.

use llm_core::Error;

use crate::lines::LineBuffer;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Turns bytes into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseDecoder {
    lines: LineBuffer,
    event: Option<String>,
    data: Option<String>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `chunk` and returns the events it completed.
    ///
    /// # Errors
    /// A validation error for an over-long or non-UTF-8 line.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, Error> {
        let lines = self.lines.push(chunk)?;
        Ok(lines.iter().filter_map(|line| self.line(line)).collect())
    }

    /// Ends the stream. Servers usually end with a blank line; when the last event lacks it but its data
    /// is complete, it is still returned (whether the stream as a whole was complete is the dialect's
    /// question, answered by its terminator).
    ///
    /// # Errors
    /// A validation error for a non-UTF-8 tail.
    pub fn finish(&mut self) -> Result<Option<SseEvent>, Error> {
        if let Some(line) = self.lines.finish()?
            && let Some(event) = self.line(&line)
        {
            return Ok(Some(event));
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        self.data.take().map(|data| SseEvent { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::new();
        let mut events: Vec<SseEvent> = chunks
            .iter()
            .flat_map(|c| decoder.push(c).expect("decode"))
            .collect();
        events.extend(decoder.finish().expect("finish"));
        events
    }

    #[test]
    fn events_comments_and_multiline_data() {
        let events = decode_all(&[
            b": OPENROUTER PROCESSING\n\nevent: message_start\ndata: {\"a\":",
            b"1}\n\ndata: line1\ndata: line2\n\n",
            b"data: [DONE]\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into()
                },
                SseEvent {
                    event: None,
                    data: "line1\nline2".into()
                },
                SseEvent {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn crlf_and_no_space_after_colon() {
        let events = decode_all(&[b"data:{\"x\":1}\r\n\r\n"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: None,
                data: "{\"x\":1}".into()
            }]
        );
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        let events = decode_all(&[b"data: {\"done\":true}"]);
        assert_eq!(
            events,
            vec![SseEvent {
                event: None,
                data: "{\"done\":true}".into()
            }]
        );
    }

    #[test]
    fn events_without_data_are_dropped() {
        assert!(decode_all(&[b"event: ping\n\n"]).is_empty());
    }
}
