//! Turning a streamed body into a [`ChatStream`], with one guarantee for every dialect: the stream ends
//! with exactly one `Finish` event, or with an error. A body that ends before the dialect's terminator
//! becomes [`ErrorKind::StreamTruncated`]; it never looks like a complete answer.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use llm_core::{ChatStream, Error, ErrorKind, RateLimitSpent, StreamEvent};

use crate::lines::LineBuffer;
use crate::sse::{SseDecoder, SseEvent};

/// Splits bytes into a dialect's frames (SSE events, NDJSON lines).
pub trait Framer: Send + 'static {
    /// One frame.
    type Frame;
    /// Adds bytes, returns the frames they completed.
    ///
    /// # Errors
    /// Malformed framing (over-long or non-UTF-8 lines).
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<Self::Frame>, Error>;
    /// The last frame at the end of the body, if one is pending.
    ///
    /// # Errors
    /// Malformed framing.
    fn finish(&mut self) -> Result<Option<Self::Frame>, Error>;
}

impl Framer for SseDecoder {
    type Frame = SseEvent;
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, Error> {
        SseDecoder::push(self, chunk)
    }
    fn finish(&mut self) -> Result<Option<SseEvent>, Error> {
        SseDecoder::finish(self)
    }
}

/// Newline-delimited JSON framing (Ollama): one non-blank line per frame.
#[derive(Debug, Default)]
pub struct NdjsonFramer(LineBuffer);

impl Framer for NdjsonFramer {
    type Frame = String;
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, Error> {
        Ok(self
            .0
            .push(chunk)?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect())
    }
    fn finish(&mut self) -> Result<Option<String>, Error> {
        self.0.finish()
    }
}

/// A dialect's stream decoder: frames in, [`StreamEvent`]s out. Sans-IO and unit-testable.
pub trait FrameDecoder<F>: Send + 'static {
    /// Decodes one frame. `Err` ends the stream with that error (an error event, a malformed chunk).
    ///
    /// # Errors
    /// A classified error for error frames and undecodable frames.
    fn frame(&mut self, frame: F) -> Result<Vec<StreamEvent>, Error>;

    /// Called when the body ends. Returns the closing events (a `Finish` where the dialect's rules say
    /// the answer is complete); returning no `Finish` makes the stream a truncation error.
    ///
    /// # Errors
    /// A classified error when the end itself is an error.
    fn end(&mut self) -> Result<Vec<StreamEvent>, Error>;
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

struct Driver<R: Framer, D> {
    provider: String,
    bytes: ByteStream,
    framer: R,
    decoder: D,
    queue: VecDeque<Result<StreamEvent, Error>>,
    done: bool,
}

impl<R: Framer, D: FrameDecoder<R::Frame>> Driver<R, D> {
    /// Feeds frames to the decoder, stopping at the first error or `Finish`.
    fn decode_frames(&mut self, frames: Vec<R::Frame>) {
        for frame in frames {
            let decoded = self.decoder.frame(frame);
            if self.queue_result(decoded) {
                return;
            }
        }
    }

    /// Queues decoded events; true when the stream is over (an error or a `Finish` was queued).
    fn queue_result(&mut self, result: Result<Vec<StreamEvent>, Error>) -> bool {
        match result {
            Ok(events) => {
                for event in events {
                    let is_finish = matches!(event, StreamEvent::Finish { .. });
                    self.queue.push_back(Ok(event));
                    if is_finish {
                        self.done = true;
                        return true;
                    }
                }
                false
            }
            Err(error) => {
                self.queue.push_back(Err(error));
                self.done = true;
                true
            }
        }
    }

    fn end_of_body(&mut self) {
        let last = match self.framer.finish() {
            Ok(last) => last,
            Err(error) => {
                self.queue_result(Err(error));
                return;
            }
        };
        if let Some(frame) = last {
            let decoded = self.decoder.frame(frame);
            if self.queue_result(decoded) {
                return;
            }
        }
        let closing = self.decoder.end();
        if !self.queue_result(closing) {
            self.queue_result(Err(Error::new(
                ErrorKind::StreamTruncated,
                "the stream ended before its terminator: the answer is incomplete",
            )));
        }
    }

    async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Some(item.map_err(|e| e.with_provider(self.provider.clone())));
            }
            if self.done {
                return None;
            }
            match self.bytes.next().await {
                Some(Ok(chunk)) => match self.framer.push(&chunk) {
                    Ok(frames) => self.decode_frames(frames),
                    Err(error) => {
                        self.queue_result(Err(error));
                    }
                },
                Some(Err(error)) => {
                    self.queue_result(Err(error));
                }
                None => self.end_of_body(),
            }
        }
    }
}

/// `events` led by a [`StreamEvent::RateLimit`] when the response's headers said a rate limit is used
/// up (see [`crate::error_map::rate_limit_spent`]).
pub fn led_by_rate_limit(events: ChatStream, spent: Option<RateLimitSpent>) -> ChatStream {
    match spent {
        Some(spent) => {
            let first = stream::once(async { Ok(StreamEvent::RateLimit { spent }) });
            Box::pin(first.chain(events))
        }
        None => events,
    }
}

/// Drives `bytes` through `framer` and `decoder` into a [`ChatStream`] whose errors name `provider`.
///
/// The stream stops after the first `Finish` or error, and a body that ends without the decoder
/// producing a `Finish` yields [`ErrorKind::StreamTruncated`].
pub fn decode_stream<R, D>(
    provider: &str,
    bytes: impl Stream<Item = Result<Bytes, Error>> + Send + 'static,
    framer: R,
    decoder: D,
) -> ChatStream
where
    R: Framer,
    R::Frame: Send,
    D: FrameDecoder<R::Frame>,
{
    let driver = Driver {
        provider: provider.to_owned(),
        bytes: Box::pin(bytes),
        framer,
        decoder,
        queue: VecDeque::new(),
        done: false,
    };
    Box::pin(stream::unfold(driver, |mut driver| async move {
        driver.next().await.map(|item| (item, driver))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::FinishReason;

    /// A toy dialect: `data: text` is a delta, `data: END` finishes, `data: ERR` is an error frame.
    struct Toy;

    impl FrameDecoder<SseEvent> for Toy {
        fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
            match frame.data.as_str() {
                "END" => Ok(vec![StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: None,
                }]),
                "ERR" => Err(Error::new(ErrorKind::Overloaded, "error frame")),
                text => Ok(vec![StreamEvent::Delta {
                    text: text.to_owned(),
                }]),
            }
        }
        fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
            Ok(vec![])
        }
    }

    async fn run(chunks: &[&'static str]) -> Vec<Result<StreamEvent, ErrorKind>> {
        let bytes = stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                .collect::<Vec<_>>(),
        );
        decode_stream("toy", bytes, SseDecoder::new(), Toy)
            .map(|item| {
                item.map_err(|e| {
                    assert_eq!(e.provider(), Some("toy"));
                    e.kind()
                })
            })
            .collect()
            .await
    }

    fn delta(text: &str) -> Result<StreamEvent, ErrorKind> {
        Ok(StreamEvent::Delta {
            text: text.to_owned(),
        })
    }

    #[tokio::test]
    async fn complete_stream_ends_at_finish_and_ignores_the_rest() {
        let events = run(&["data: a\n\ndata: b\n", "\ndata: END\n\ndata: after\n\n"]).await;
        assert_eq!(
            events,
            vec![
                delta("a"),
                delta("b"),
                Ok(StreamEvent::Finish {
                    reason: FinishReason::Stop,
                    model: None
                })
            ]
        );
    }

    #[tokio::test]
    async fn body_ending_without_terminator_is_truncated() {
        let events = run(&["data: a\n\n", "data: b"]).await;
        assert_eq!(
            events,
            vec![delta("a"), delta("b"), Err(ErrorKind::StreamTruncated)]
        );
    }

    #[tokio::test]
    async fn error_frame_ends_the_stream() {
        let events = run(&["data: a\n\ndata: ERR\n\ndata: b\n\n"]).await;
        assert_eq!(events, vec![delta("a"), Err(ErrorKind::Overloaded)]);
    }

    #[tokio::test]
    async fn transport_error_mid_body_is_reported() {
        let bytes = stream::iter(vec![
            Ok(Bytes::from_static(b"data: a\n\n")),
            Err(Error::new(ErrorKind::StreamTruncated, "connection reset")),
        ]);
        let events: Vec<_> = decode_stream("toy", bytes, SseDecoder::new(), Toy)
            .collect()
            .await;
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1].as_ref().expect_err("error").kind(),
            ErrorKind::StreamTruncated
        );
    }
}
