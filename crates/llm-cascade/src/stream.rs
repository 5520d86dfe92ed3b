//! Streaming through the cascade.
//!
//! A provider is chosen when it produces its first token: until then every failure (an error, a
//! stream that ends or stalls, no first token within `LLM_FIRST_TOKEN_TIMEOUT`) falls over to the next
//! provider invisibly to the caller. A stream that finishes before any text is an empty answer, a
//! failure like any other (unless it is a tool call). After the first token, failures are errors in the
//! stream, a stream that goes quiet for `LLM_STREAM_IDLE_TIMEOUT` is reported as stalled, and one whose
//! text passes `LLM_MAX_ANSWER_BYTES` ends with an error (memory stays bounded).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt, stream};
use llm_core::{ChatRequest, ChatStream, Error, ErrorKind, Provider, StreamEvent, Usage};
use tokio::time::Instant;
use tracing::{Instrument, Span, info, info_span, warn};

use crate::engine::{Cascade, empty_answer};
use crate::observer::CascadeEvent;
use crate::report::{Attempt, CascadeError, Outcome};

/// A stream that has produced its first token, and the events that came with it.
struct Started {
    buffered: Vec<StreamEvent>,
    rest: ChatStream,
    /// The attempt's `gen_ai.chat` span, kept open until the stream ends to record its usage.
    span: Span,
}

/// A streamed answer from the provider that produced the first token.
///
/// Yields the provider's [`StreamEvent`]s; ends after `Finish`, or after one error (a failure past the
/// first token, a stalled stream, the deadline).
pub struct CascadeStream {
    provider: String,
    model: String,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    inner: Pin<Box<dyn Stream<Item = Result<StreamEvent, Error>> + Send>>,
}

impl std::fmt::Debug for CascadeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CascadeStream")
            .field("provider", &self.provider)
            .finish_non_exhaustive()
    }
}

impl CascadeStream {
    /// The provider answering.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The attempt record so far; the last attempt's outcome changes if the stream fails later.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Stream for CascadeStream {
    type Item = Result<StreamEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Whether `event` is the first token: a non-empty delta. A `Finish` before any text is not a first
/// token but an empty answer (an error, see [`empty_answer`]), unless the answer is a tool call.
fn is_first_token(event: &StreamEvent) -> Result<bool, Error> {
    match event {
        StreamEvent::Delta { text } => Ok(!text.is_empty()),
        StreamEvent::Finish { reason, .. } => empty_answer(reason).map_or(Ok(true), Err),
        StreamEvent::ToolCall { .. } => Ok(true),
        StreamEvent::Usage { .. } => Ok(false),
    }
}

/// Opens a stream and waits for its first token (within `first_token`).
async fn open_until_first_token(
    provider: Arc<dyn Provider>,
    request: Arc<ChatRequest>,
    first_token: Duration,
) -> Result<Started, Error> {
    let deadline = Instant::now() + first_token;
    // Runs inside the attempt's `gen_ai.chat` span.
    let span = Span::current();
    crate::spans::record_request(&span, &request);
    let no_first_token = || {
        Error::new(
            ErrorKind::Timeout,
            format!("no first token within {first_token:?} (LLM_FIRST_TOKEN_TIMEOUT)"),
        )
        .with_provider(provider.id())
    };
    // Tools are never dropped: a provider without them is skipped (Unsupported).
    let request = crate::structured::adapt(provider.as_ref(), &request)?;
    let mut rest = tokio::time::timeout_at(deadline, provider.chat_stream(&request))
        .await
        .map_err(|_| no_first_token())??;
    let mut buffered = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, rest.next()).await {
            Err(_) => return Err(no_first_token()),
            Ok(None) => {
                return Err(Error::new(
                    ErrorKind::StreamTruncated,
                    "the stream ended before any content",
                )
                .with_provider(provider.id()));
            }
            Ok(Some(Err(error))) => return Err(error),
            Ok(Some(Ok(event))) => {
                let first = is_first_token(&event).map_err(|e| e.with_provider(provider.id()))?;
                buffered.push(event);
                if first {
                    return Ok(Started {
                        buffered,
                        rest,
                        span,
                    });
                }
            }
        }
    }
}

/// The state of a started stream: buffered events first, then the provider's stream under the idle
/// timeout and the deadline.
struct Guarded {
    cascade: Cascade,
    provider: String,
    model: String,
    buffered: VecDeque<StreamEvent>,
    rest: ChatStream,
    idle: Duration,
    deadline: Instant,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    usage: Option<Usage>,
    span: Span,
    /// Bytes of text received so far, and the bound (`LLM_MAX_ANSWER_BYTES`).
    answer_bytes: usize,
    max_answer_bytes: usize,
    done: bool,
}

impl Guarded {
    async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        if self.done {
            return None;
        }
        let item = match self.buffered.pop_front() {
            Some(event) => Ok(event),
            // A provider stream must end with `Finish` or an error; one that just stops was cut short.
            None => self.next_from_provider().await.unwrap_or_else(|| {
                Err(Error::new(
                    ErrorKind::StreamTruncated,
                    "the stream ended without a finish: the answer is incomplete",
                )
                .with_provider(self.provider.clone()))
            }),
        };
        let item = self.bounded(item);
        match &item {
            Ok(StreamEvent::Usage { usage }) => {
                self.usage = Some(*usage);
                crate::spans::record_usage(&self.span, *usage);
            }
            Ok(StreamEvent::Finish { model, .. }) => {
                if let Some(model) = model {
                    self.span.record("gen_ai.response.model", model.as_str());
                }
                self.done = true;
                self.report_end(None);
            }
            Ok(StreamEvent::Delta { .. } | StreamEvent::ToolCall { .. }) => {}
            Err(error) => {
                self.done = true;
                self.report_end(Some(error));
                // Hang up at once: nothing more is read (or paid for) from the provider.
                self.rest = Box::pin(stream::empty());
            }
        }
        Some(item)
    }

    /// Counts the text of `item`; past `max_answer_bytes` the answer is an error instead, so that memory
    /// stays bounded whatever the provider sends and an over-long answer is never passed off as whole.
    fn bounded(&mut self, item: Result<StreamEvent, Error>) -> Result<StreamEvent, Error> {
        if let Ok(StreamEvent::Delta { text }) = &item {
            self.answer_bytes = self.answer_bytes.saturating_add(text.len());
            if self.answer_bytes > self.max_answer_bytes {
                return Err(Error::new(
                    ErrorKind::MalformedAnswer,
                    format!(
                        "the streamed answer passed the limit of {} bytes (LLM_MAX_ANSWER_BYTES): \
                         stopped reading; raise LLM_MAX_ANSWER_BYTES if answers this long are expected",
                        self.max_answer_bytes
                    ),
                )
                .with_provider(self.provider.clone()));
            }
        }
        item
    }

    async fn next_from_provider(&mut self) -> Option<Result<StreamEvent, Error>> {
        let idle_limit = Instant::now() + self.idle;
        let limit = idle_limit.min(self.deadline);
        match tokio::time::timeout_at(limit, self.rest.next()).await {
            Ok(next) => next,
            Err(_) => {
                let message = if limit < idle_limit {
                    "the request deadline (LLM_DEADLINE) ran out mid-stream".to_owned()
                } else {
                    format!(
                        "the stream stalled: no data for {:?} (LLM_STREAM_IDLE_TIMEOUT)",
                        self.idle
                    )
                };
                Some(Err(
                    Error::new(ErrorKind::Timeout, message).with_provider(self.provider.clone())
                ))
            }
        }
    }

    /// Records how the stream ended: success keeps the attempt as ok; a failure after the first token
    /// turns it into that failure.
    fn report_end(&self, error: Option<&Error>) {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = attempts.last_mut() else {
            return;
        };
        if let Some(error) = error {
            warn!(provider = %self.provider, kind = error.kind().as_str(), "stream from {} failed after the first token", self.provider);
            last.outcome = Outcome::Failed(error.kind());
            last.status = error.status();
            last.message = Some(error.message().to_owned());
        }
        self.cascade.emit(&CascadeEvent::AttemptFinished {
            attempt: last.clone(),
            model: self.model.clone(),
            usage: self.usage,
        });
    }
}

/// A stream dropped before its end (the caller stopped reading: Ctrl-C, a closed pipe) is recorded as
/// a `cancelled` attempt, so that every started attempt is reported exactly once.
impl Drop for Guarded {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = attempts.last_mut() else {
            return;
        };
        info!(provider = %self.provider, "the caller dropped the stream from {} before its end", self.provider);
        last.outcome = Outcome::Cancelled;
        last.message = Some("the caller stopped reading before the answer ended".to_owned());
        self.cascade.emit(&CascadeEvent::AttemptFinished {
            attempt: last.clone(),
            model: self.model.clone(),
            usage: self.usage,
        });
    }
}

impl Cascade {
    /// Asks the chain for a streamed answer. Returns once a provider produced its first token.
    ///
    /// # Errors
    /// A [`CascadeError`] when no provider produced a first token (every failure before the first
    /// token falls over to the next provider), or when the chain is empty or the request invalid.
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<CascadeStream, CascadeError> {
        let request = Arc::new(self.prepare_request(request)?);
        let mut call = self.start_call();
        let first_token = self.config().first_token_timeout;
        let span = info_span!("cascade.chat_stream", providers = self.providers().len());
        let (provider, started) = self
            .run(&mut call, |provider| {
                Box::pin(open_until_first_token(
                    provider,
                    request.clone(),
                    first_token,
                ))
            })
            .instrument(span)
            .await?;
        info!(
            provider = provider.id(),
            elapsed_ms = u64::try_from(call.elapsed().as_millis()).unwrap_or(u64::MAX),
            "streaming from {}",
            provider.id()
        );
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| provider.model().to_owned());
        let attempts = Arc::new(Mutex::new(std::mem::take(&mut call.attempts)));
        let guarded = Guarded {
            cascade: self.clone(),
            provider: provider.id().to_owned(),
            model: model.clone(),
            buffered: started.buffered.into(),
            rest: started.rest,
            idle: self.config().stream_idle_timeout,
            deadline: call.deadline,
            attempts: attempts.clone(),
            usage: None,
            span: started.span,
            answer_bytes: 0,
            max_answer_bytes: self.config().max_answer_bytes,
            done: false,
        };
        let inner = stream::unfold(guarded, |mut state| async move {
            state.next().await.map(|item| (item, state))
        });
        Ok(CascadeStream {
            provider: provider.id().to_owned(),
            model,
            attempts,
            inner: Box::pin(inner),
        })
    }
}
