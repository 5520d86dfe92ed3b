//! Streaming through the cascade.
//!
//! A provider is chosen when it produces its first token: until then every failure (an error, a
//! stream that ends or stalls, no first token within `LLM_FIRST_TOKEN_TIMEOUT`) falls over to the next
//! provider invisibly to the caller. A stream that finishes before any text is an empty answer, a
//! failure like any other (unless it is a tool call). After the first token, a failure (a cut, an
//! event that does not decode, a stream quiet for `LLM_STREAM_IDLE_TIMEOUT`) is a recovery point: the
//! answer is continued within the deadline (see [`crate::recovery`]) and the stream says so with
//! [`StreamEvent::Resumed`]; with `LLM_STREAM_RECOVERY=off`, or when continuing fails, it is an error
//! in the stream. One whose text passes `LLM_MAX_ANSWER_BYTES` ends with an error (memory stays
//! bounded).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt, stream};
use llm_core::{
    ChatRequest, ChatStream, Error, ErrorKind, Provider, ResumeMode, StreamEvent, StreamRedactor,
    Usage,
};
use tokio::time::Instant;
use tracing::{Instrument, Span, info, info_span, warn};

use crate::config::StreamRecovery;
use crate::engine::{Call, Cascade, empty_answer};
use crate::observer::CascadeEvent;
use crate::recovery::{
    Skip, diverged, first_token_wait, not_continued, start_after_cut, with_prefill,
};
use crate::report::{Attempt, CascadeError, Outcome};
use crate::state::Report;

/// A stream that has produced its first token, and the events that came with it.
struct Started {
    buffered: Vec<StreamEvent>,
    rest: ChatStream,
    /// The attempt's `gen_ai.chat` span, kept open until the stream ends to record its usage.
    span: Span,
}

/// A streamed answer from the provider that produced the first token.
///
/// Yields the provider's [`StreamEvent`]s, plus [`StreamEvent::Resumed`] when a failed stream was
/// continued (by another attempt or provider; the text goes on without repeating); ends after
/// `Finish`, or after one error (a failure past the first token that could not be continued, the
/// deadline).
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
    /// The provider answering (after a [`StreamEvent::Resumed`], the one that continues the answer).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model asked (after a [`StreamEvent::Resumed`], of the provider that continues the answer).
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
        let next = self.inner.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(StreamEvent::Resumed {
            provider, model, ..
        }))) = &next
        {
            self.provider.clone_from(provider);
            self.model.clone_from(model);
        }
        next
    }
}

/// Whether `event` is the first token: a non-empty delta. A `Finish` before any text is not a first
/// token but an empty answer (an error, see [`empty_answer`]), unless the answer is a tool call.
fn is_first_token(event: &StreamEvent) -> Result<bool, Error> {
    match event {
        StreamEvent::Delta { text } => Ok(!text.is_empty()),
        StreamEvent::Finish { reason, .. } => empty_answer(reason).map_or(Ok(true), Err),
        StreamEvent::ToolCall { .. } => Ok(true),
        StreamEvent::Usage { .. } | StreamEvent::Resumed { .. } | StreamEvent::RateLimit { .. } => {
            Ok(false)
        }
    }
}

/// Opens a stream and waits for its first token (within `first_token`). A continuation of a cut
/// answer may also finish at once (the answer was complete when it was cut): that `Finish` counts.
async fn open_until_first_token(
    provider: Arc<dyn Provider>,
    request: Arc<ChatRequest>,
    first_token: Duration,
    continuation: bool,
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
                // A call with invalid arguments fails the attempt while nothing went out yet.
                if matches!(event, StreamEvent::ToolCall { .. }) {
                    crate::structured::check_stream_event(&request, &event, "")
                        .map_err(|e| e.with_provider(provider.id()))?;
                }
                let first = (continuation && matches!(event, StreamEvent::Finish { .. }))
                    || is_first_token(&event).map_err(|e| e.with_provider(provider.id()))?;
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
/// timeout and the deadline; after a failure, the continuation of the answer.
struct Guarded {
    cascade: Cascade,
    /// The request as prepared (continuations build on it).
    request: Arc<ChatRequest>,
    provider: String,
    model: String,
    /// The answering provider's place in the chain and its attempt number.
    index: usize,
    attempt: u32,
    buffered: VecDeque<StreamEvent>,
    rest: ChatStream,
    idle: Duration,
    deadline: Instant,
    attempts: Arc<Mutex<Vec<Attempt>>>,
    usage: Option<Usage>,
    /// Bytes of text the answering provider sent (repeats included), for a token estimate when it
    /// reports no usage.
    received: usize,
    span: Span,
    /// The text the caller has received, in full (continuations start from it).
    delivered: String,
    /// What a continued stream repeats of `delivered` and is not passed on.
    skip: Skip,
    max_answer_bytes: usize,
    done: bool,
    /// A continuation is being opened: the last attempt in `attempts` is the cut one, already reported.
    resuming: bool,
    /// Tool calls read so far (a continuation's repeat of one included).
    tool_calls: usize,
}

/// One item read from the provider, before it is passed on.
enum Read {
    /// Pass it on (an event, or an error that may be continued).
    Item(Result<StreamEvent, Error>),
    /// Text the caller already has: nothing to pass on.
    Repeated,
    /// A tool call past the first when the request asked for one at a time: not passed on.
    Dropped,
    /// An error that ends the answer whatever the settings (our own bound, a diverged restart).
    Final(Error),
}

impl Guarded {
    async fn next(&mut self) -> Option<Result<StreamEvent, Error>> {
        loop {
            if self.done {
                return None;
            }
            let item = match self.read().await {
                Read::Repeated | Read::Dropped => continue,
                Read::Final(error) => Err(error),
                Read::Item(Err(error)) if self.may_continue() => match self.resume(error).await {
                    Ok(()) => continue,
                    Err(error) => Err(error),
                },
                Read::Item(item) => item,
            };
            // While a continuation is being opened, the cut attempt was already settled.
            let resuming = self.resuming;
            let item = self.pass_on(item);
            if let Ok(StreamEvent::RateLimit { spent }) = &item {
                let provider = self.cascade.providers()[self.index].clone();
                self.cascade.spent(provider.as_ref(), spent).await;
            }
            if self.done && !resuming {
                self.settle(item.as_ref().err()).await;
            }
            return Some(item);
        }
    }

    /// Tells the answering provider's state how its stream ended, as one change: the tokens it used (its usage, else
    /// an estimate) and its success (closing a half-open breaker) or failure (a cut, a stall or a bad
    /// event counts against its breaker when its kind says the provider is unwell).
    async fn settle(&mut self, error: Option<&Error>) {
        let provider = self.cascade.providers()[self.index].clone();
        let tokens = crate::state::tokens_used(self.usage, &self.request, self.received);
        let outcome = error.map_or(Report::Success, Report::Failure);
        self.cascade
            .report_state(provider.as_ref(), &[Report::Tokens(tokens), outcome])
            .await;
    }

    /// The next item from the buffer or the provider, with repeated text dropped and the answer bound
    /// applied.
    async fn read(&mut self) -> Read {
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
        if let Ok(StreamEvent::Delta { text }) = &item {
            self.received += text.len();
        }
        if let Ok(StreamEvent::ToolCall { .. }) = &item {
            self.tool_calls += 1;
            if self.request.parallel_tool_calls == Some(false) && self.tool_calls > 1 {
                crate::structured::log_dropped_calls(&self.provider, 1);
                return Read::Dropped;
            }
        }
        match item {
            Ok(StreamEvent::Delta { text }) => match self.skip.take(text) {
                Ok(text) if text.is_empty() => Read::Repeated,
                Ok(text) => match self.bounded(text) {
                    Ok(text) => Read::Item(Ok(StreamEvent::Delta { text })),
                    Err(error) => Read::Final(error),
                },
                Err(at) => Read::Final(diverged(&self.provider, self.delivered.len(), Some(at))),
            },
            Ok(StreamEvent::Finish { .. }) if self.skip.pending() => {
                Read::Final(diverged(&self.provider, self.delivered.len(), None))
            }
            // Structured output: tool arguments as they come, the JSON answer when it ends.
            Ok(event) => {
                match crate::structured::check_stream_event(&self.request, &event, &self.delivered)
                {
                    Ok(()) => Read::Item(Ok(event)),
                    Err(error) => Read::Final(error.with_provider(self.provider.clone())),
                }
            }
            other => Read::Item(other),
        }
    }

    /// Records what `item` means for the answer and the attempt record, and returns it.
    fn pass_on(&mut self, item: Result<StreamEvent, Error>) -> Result<StreamEvent, Error> {
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
            Ok(StreamEvent::Delta { text }) => self.delivered.push_str(text),
            Ok(
                StreamEvent::Resumed { .. }
                | StreamEvent::ToolCall { .. }
                | StreamEvent::RateLimit { .. },
            ) => {}
            Err(error) => {
                self.done = true;
                if !self.resuming {
                    self.report_end(Some(error));
                }
                // Hang up at once: nothing more is read (or paid for) from the provider.
                self.rest = Box::pin(stream::empty());
            }
        }
        self.resuming = false;
        item
    }

    /// Whether a failure now may be continued: recovery is on and text was delivered (before it, the
    /// failure belongs to the attempt that is still being chosen).
    fn may_continue(&self) -> bool {
        self.cascade.config().stream_recovery == StreamRecovery::Continue
            && !self.delivered.is_empty()
    }

    /// Continues the answer after `error`: the cut attempt is recorded as failed with the policy's
    /// decision, then the chain is asked from where the policy says. On success the next events are a
    /// `Resumed` and the continuation; otherwise the error that ends the answer.
    async fn resume(&mut self, error: Error) -> Result<(), Error> {
        warn!(provider = %self.provider, kind = error.kind().as_str(), "stream from {} failed after the first token: continuing the answer", self.provider);
        self.rest = Box::pin(stream::empty());
        self.settle(Some(&error)).await;
        let mut call = Call::continuing(self.deadline, self.attempts());
        let start = start_after_cut(&self.cascade, &mut call, &error, self.index, self.attempt);
        self.mark_failed(&mut call, &error);
        self.resuming = true;
        let Some((index, attempt, wait)) = start else {
            return Err(error);
        };
        if !wait.is_zero()
            && let Some(provider) = self.cascade.providers().get(index).cloned()
        {
            self.cascade
                .wait_before_retry(
                    &provider,
                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                )
                .await;
        }
        let (request, delivered) = (
            self.request.clone(),
            Arc::<str>::from(self.delivered.as_str()),
        );
        let (cascade, deadline) = (self.cascade.clone(), self.deadline);
        let continued = self
            .cascade
            .continue_stream(
                &mut call,
                &request.model,
                index,
                attempt,
                |provider, mode| {
                    let (request, delivered, cascade) =
                        (request.clone(), delivered.clone(), cascade.clone());
                    Box::pin(async move {
                        let request = match mode {
                            ResumeMode::Prefill => Arc::new(with_prefill(&request, &delivered).0),
                            ResumeMode::Restart => request,
                        };
                        let wait = cascade.first_token_wait(&provider, deadline);
                        open_until_first_token(provider, request, wait, true).await
                    })
                },
            )
            .await;
        *self.attempts.lock().unwrap_or_else(PoisonError::into_inner) = call.attempts;
        let Some(continued) = continued else {
            return Err(not_continued(&error));
        };
        let provider = self.cascade.providers()[continued.index].clone();
        self.provider = provider.id().to_owned();
        self.model = self
            .request
            .model
            .clone()
            .unwrap_or_else(|| provider.model().to_owned());
        self.index = continued.index;
        self.attempt = continued.attempt;
        self.skip = match continued.mode {
            ResumeMode::Prefill => Skip::prefill(with_prefill(&self.request, &self.delivered).1),
            ResumeMode::Restart => Skip::restart(&self.delivered),
        };
        self.usage = None;
        self.received = 0;
        self.span = continued.value.span;
        self.rest = continued.value.rest;
        self.buffered = continued.value.buffered.into();
        let event = StreamEvent::Resumed {
            provider: self.provider.clone(),
            model: self.model.clone(),
            mode: continued.mode,
        };
        info!(provider = %self.provider, mode = continued.mode.as_str(), "the answer goes on with {}", self.provider);
        self.cascade.emit(&CascadeEvent::Resumed {
            provider: self.provider.clone(),
            model: self.model.clone(),
            mode: continued.mode,
        });
        self.buffered.push_front(event);
        Ok(())
    }

    fn attempts(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the cut attempt (the last of `call`) as failed, and reports it.
    fn mark_failed(&self, call: &mut Call, error: &Error) {
        self.end_last(&mut call.attempts, Some(error));
        *self.attempts.lock().unwrap_or_else(PoisonError::into_inner) = call.attempts.clone();
    }

    /// Ends the last of `attempts` (the answering one): failed with `error`, or as it is (ok), and
    /// reports it to the observers.
    fn end_last(&self, attempts: &mut [Attempt], error: Option<&Error>) {
        let Some(last) = attempts.last_mut() else {
            return;
        };
        if let Some(error) = error {
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

    /// Counts `text`; past `max_answer_bytes` the answer is an error instead, so that memory stays
    /// bounded whatever the provider sends and an over-long answer is never passed off as whole.
    fn bounded(&self, text: String) -> Result<String, Error> {
        if self.delivered.len().saturating_add(text.len()) > self.max_answer_bytes {
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
        Ok(text)
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
        if let Some(error) = error {
            warn!(provider = %self.provider, kind = error.kind().as_str(), "stream from {} failed after the first token", self.provider);
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        self.end_last(&mut attempts, error);
    }
}

/// A stream dropped before its end (the caller stopped reading: Ctrl-C, a closed pipe) is recorded as
/// a `cancelled` attempt, so that every started attempt is reported exactly once. While a continuation
/// is being opened, the last attempt recorded is the cut one (already reported): it stays as it is.
impl Drop for Guarded {
    fn drop(&mut self) {
        if self.done || self.resuming {
            return;
        }
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(last) = attempts.last_mut() else {
            return;
        };
        info!(provider = %self.provider, "the caller dropped the stream from {} before its end", self.provider);
        // The tokens sent so far are billed all the same: they count into the budgets.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cascade = self.cascade.clone();
            let provider = cascade.providers()[self.index].clone();
            let tokens = crate::state::tokens_used(self.usage, &self.request, self.received);
            runtime.spawn(async move {
                cascade
                    .report_state(provider.as_ref(), &[Report::Tokens(tokens)])
                    .await;
            });
        }
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
    /// The first-token wait for `provider` with the call ending at `deadline`: `LLM_FIRST_TOKEN_TIMEOUT`,
    /// and at most half the time left while a later provider is in the chain.
    fn first_token_wait(&self, provider: &Arc<dyn Provider>, deadline: Instant) -> Duration {
        let position = self
            .providers()
            .iter()
            .position(|p| Arc::ptr_eq(p, provider));
        let later = position.is_some_and(|at| at + 1 < self.providers().len());
        let remaining = deadline.saturating_duration_since(Instant::now());
        first_token_wait(self.config().first_token_timeout, remaining, later)
    }

    /// Asks the chain for a streamed answer. Returns once a provider produced its first token.
    ///
    /// # Errors
    /// A [`CascadeError`] when no provider produced a first token (every failure before the first
    /// token falls over to the next provider), or when the chain is empty or the request invalid.
    pub async fn chat_stream(&self, request: ChatRequest) -> Result<CascadeStream, CascadeError> {
        let request = Arc::new(self.prepare_request(request)?);
        let mut call = self.start_call();
        call.streaming = true;
        let deadline = call.deadline;
        let span = info_span!("cascade.chat_stream", providers = self.providers().len());
        let (provider, started) = self
            .run(&mut call, |provider| {
                let wait = self.first_token_wait(&provider, deadline);
                Box::pin(open_until_first_token(
                    provider,
                    request.clone(),
                    wait,
                    false,
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
        let index = self
            .providers()
            .iter()
            .position(|p| Arc::ptr_eq(p, &provider))
            .unwrap_or(0);
        let attempt = call.attempts.last().map_or(1, |a| a.attempt);
        let attempts = Arc::new(Mutex::new(std::mem::take(&mut call.attempts)));
        let guarded = Guarded {
            cascade: self.clone(),
            request,
            provider: provider.id().to_owned(),
            model: model.clone(),
            index,
            attempt,
            buffered: started.buffered.into(),
            rest: started.rest,
            idle: self.config().stream_idle_timeout,
            deadline: call.deadline,
            attempts: attempts.clone(),
            usage: None,
            received: 0,
            span: started.span,
            delivered: String::new(),
            skip: Skip::default(),
            max_answer_bytes: self.config().max_answer_bytes,
            done: false,
            resuming: false,
            tool_calls: 0,
        };
        let inner = stream::unfold(guarded, |mut state| async move {
            state.next().await.map(|item| (item, state))
        });
        Ok(CascadeStream {
            provider: provider.id().to_owned(),
            model,
            attempts,
            inner: Box::pin(redacted_deltas(inner)),
        })
    }
}

/// `events` with every registered secret scrubbed from the answer's text, also one that a provider
/// echoes piece by piece across deltas (each piece in its own event, so the wire's byte-level
/// redaction never sees it whole). A delta's tail that could be the start of a secret is held back
/// until the next delta shows it is not, and goes out before any other event; on an error it is
/// dropped (it may be the start of a key, and the answer is cut anyway).
fn redacted_deltas<S>(events: S) -> impl Stream<Item = Result<StreamEvent, Error>> + Send + 'static
where
    S: Stream<Item = Result<StreamEvent, Error>> + Send + 'static,
{
    let delta = |bytes: Vec<u8>| StreamEvent::Delta {
        text: String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    };
    let state = (Box::pin(events.fuse()), StreamRedactor::new(), None);
    stream::unfold(
        state,
        move |(mut events, mut redactor, queued)| async move {
            if let Some(event) = queued {
                return Some((event, (events, redactor, None)));
            }
            loop {
                let (now, later) = match events.next().await {
                    Some(Ok(StreamEvent::Delta { text })) => match redactor.push(text.as_bytes()) {
                        None => (Ok(StreamEvent::Delta { text }), None),
                        Some(clean) if clean.is_empty() => continue,
                        Some(clean) => (Ok(delta(clean)), None),
                    },
                    Some(Err(error)) => {
                        redactor = StreamRedactor::new();
                        (Err(error), None)
                    }
                    Some(Ok(event)) => match redactor.finish() {
                        held if held.is_empty() => (Ok(event), None),
                        held => (Ok(delta(held)), Some(Ok(event))),
                    },
                    None => match redactor.finish() {
                        held if held.is_empty() => return None,
                        held => (Ok(delta(held)), None),
                    },
                };
                return Some((now, (events, redactor, later)));
            }
        },
    )
}
