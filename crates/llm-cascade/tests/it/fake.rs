//! A provider that follows a script, for testing the engine's decisions without a network.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream;
use llm_cascade::{
    Capabilities, CascadeConfig, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind,
    FinishReason, Provider, StreamEvent, ToolCall,
};

/// What one call to the fake does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Answer with this text.
    Reply(&'static str),
    /// Answer with this text and finish reason.
    Answer(&'static str, FinishReason),
    /// Fail with this kind, status and wait hint.
    Fail(ErrorKind, Option<u16>, Option<Duration>),
    /// Never answer.
    Hang,
    /// Stream these items; `Stall` inside a stream never sends the next item.
    Stream(Vec<Item>),
    /// Wait this long, then do the step.
    Later(Duration, Box<Step>),
    /// Answer with this text, saying a rate limit is used up until this long from now.
    Spent(&'static str, Duration),
}

/// One item of a scripted stream.
#[derive(Debug, Clone)]
pub enum Item {
    Text(&'static str),
    Finish,
    /// A `Finish` with this reason.
    FinishWith(FinishReason),
    Error(ErrorKind),
    Stall,
    /// A `Usage` event with these input and output tokens.
    Usage(u64, u64),
    /// A rate limit used up until this long from now.
    Spent(Duration),
    /// A whole tool call: name and JSON arguments (its id is `call_<name>`).
    Call(&'static str, &'static str),
}

/// Counts a call dropped before it ended (its future, or its stream before the last item): what a
/// cancelled HTTP request is, a closed connection.
struct Ends {
    dropped: Arc<AtomicU32>,
    ended: bool,
}

impl Ends {
    fn end(&mut self) {
        self.ended = true;
    }
}

impl Drop for Ends {
    fn drop(&mut self) {
        if !self.ended {
            self.dropped.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[derive(Debug)]
pub struct Fake {
    id: &'static str,
    script: Mutex<VecDeque<Step>>,
    calls: Mutex<u32>,
    timeout: Duration,
    /// Whether `model_not_found` errors can be fixed by `prepare` (like Ollama's pull).
    preparable: bool,
    prepares: Mutex<u32>,
    /// What `check_available` does (`Reply` for success, `Fail`, `Hang`).
    probe: Step,
    /// Whether it continues a final assistant message (an assistant prefill).
    prefill: bool,
    /// Every streamed request, in order.
    requests: Mutex<Vec<ChatRequest>>,
    /// Calls dropped before they ended.
    dropped: Arc<AtomicU32>,
    /// What it declares it can do (text only unless told).
    capabilities: Capabilities,
}

impl Fake {
    pub fn new(id: &'static str, script: Vec<Step>) -> Self {
        Self {
            id,
            script: Mutex::new(script.into()),
            calls: Mutex::new(0),
            timeout: Duration::from_secs(5),
            preparable: false,
            prepares: Mutex::new(0),
            probe: Step::Reply("ok"),
            prefill: false,
            requests: Mutex::new(Vec::new()),
            dropped: Arc::default(),
            capabilities: Capabilities::TEXT,
        }
    }

    /// How many calls were dropped before they ended (cancelled: for HTTP, a closed connection).
    pub fn dropped(&self) -> u32 {
        self.dropped.load(Ordering::SeqCst)
    }

    fn ends(&self) -> Ends {
        Ends {
            dropped: self.dropped.clone(),
            ended: false,
        }
    }

    /// The next step, after the waits of `Later` steps.
    async fn next_step_now(&self) -> Step {
        let mut step = self.next_step();
        while let Step::Later(wait, next) = step {
            tokio::time::sleep(wait).await;
            step = *next;
        }
        step
    }

    /// Declares these capabilities.
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// Says it continues a final assistant message.
    pub fn with_prefill(mut self) -> Self {
        self.prefill = true;
        self
    }

    /// The streamed requests it received.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().expect("lock").clone()
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What each probe (`check_available`) does.
    pub fn probing(mut self, step: Step) -> Self {
        self.probe = step;
        self
    }

    pub fn preparable(mut self) -> Self {
        self.preparable = true;
        self
    }

    pub fn prepares(&self) -> u32 {
        *self.prepares.lock().expect("lock")
    }

    pub fn calls(&self) -> u32 {
        *self.calls.lock().expect("lock")
    }

    fn next_step(&self) -> Step {
        *self.calls.lock().expect("lock") += 1;
        self.script
            .lock()
            .expect("lock")
            .pop_front()
            .expect("the script ran out: unexpected extra call")
    }

    fn answer(&self, text: &str, finish_reason: FinishReason) -> ChatResponse {
        ChatResponse {
            tool_calls: Vec::new(),
            content: text.to_owned(),
            provider: self.id.to_owned(),
            model: "fake-model".to_owned(),
            finish_reason,
            usage: None,
            rate_limit: None,
        }
    }

    fn error(&self, kind: ErrorKind, status: Option<u16>, wait: Option<Duration>) -> Error {
        let mut error = Error::new(kind, format!("scripted {kind}"))
            .with_provider(self.id)
            .with_retry_after(wait);
        if let Some(status) = status {
            error = error.with_status(status);
        }
        error
    }
}

/// The requests bucket used up until `reset_after` from now.
fn spent(reset_after: Duration) -> llm_cascade::RateLimitSpent {
    llm_cascade::RateLimitSpent {
        header: "x-ratelimit-remaining-requests".to_owned(),
        reset_after,
    }
}

/// A registration's factory (`ProviderRegistration::build`), for registries of fakes.
pub type Build = fn(&dyn llm_cascade::EnvSource) -> Result<Box<dyn Provider>, Error>;

/// Settings for fast tests: small backoff, no jitter.
pub fn fast_config() -> CascadeConfig {
    CascadeConfig::default()
        .with_backoff(Duration::from_millis(5))
        .with_jitter(false)
}

#[async_trait]
impl Provider for Fake {
    fn id(&self) -> &str {
        self.id
    }
    fn model(&self) -> &str {
        "fake-model"
    }
    fn base_url(&self) -> &str {
        "http://127.0.0.1:0"
    }
    fn timeout(&self) -> Duration {
        self.timeout
    }
    fn supports_prefill(&self, _model: &str) -> bool {
        self.prefill
    }
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, Error> {
        let mut ends = self.ends();
        let result = match self.next_step_now().await {
            Step::Reply(text) => Ok(self.answer(text, FinishReason::Stop)),
            Step::Answer(text, reason) => Ok(self.answer(text, reason)),
            Step::Spent(text, reset_after) => Ok(ChatResponse {
                rate_limit: Some(spent(reset_after)),
                ..self.answer(text, FinishReason::Stop)
            }),
            Step::Fail(kind, status, wait) => Err(self.error(kind, status, wait)),
            Step::Hang => std::future::pending().await,
            Step::Stream(_) | Step::Later(..) => panic!("a stream step in a chat call"),
        };
        ends.end();
        result
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        self.requests.lock().expect("lock").push(request.clone());
        let mut ends = self.ends();
        match self.next_step_now().await {
            Step::Stream(items) => {
                let id = self.id;
                let state = (items.into_iter(), ends);
                let events = stream::unfold(state, move |(mut items, mut ends)| async move {
                    let Some(item) = items.next() else {
                        ends.end();
                        return None;
                    };
                    ends.ended =
                        matches!(item, Item::Finish | Item::FinishWith(_) | Item::Error(_));
                    let item = match item {
                        Item::Text(text) => Ok(StreamEvent::Delta {
                            text: text.to_owned(),
                        }),
                        Item::Finish => Ok(StreamEvent::Finish {
                            reason: FinishReason::Stop,
                            model: None,
                        }),
                        Item::FinishWith(reason) => Ok(StreamEvent::Finish {
                            reason,
                            model: None,
                        }),
                        Item::Error(kind) => {
                            Err(Error::new(kind, "scripted stream error").with_provider(id))
                        }
                        Item::Stall => std::future::pending().await,
                        Item::Spent(reset_after) => Ok(StreamEvent::RateLimit {
                            spent: spent(reset_after),
                        }),
                        Item::Usage(input_tokens, output_tokens) => Ok(StreamEvent::Usage {
                            usage: llm_cascade::Usage {
                                input_tokens,
                                output_tokens,
                            },
                        }),
                        Item::Call(name, arguments) => Ok(StreamEvent::ToolCall {
                            call: ToolCall::new(format!("call_{name}"), name, arguments),
                        }),
                    };
                    Some((item, (items, ends)))
                });
                Ok(Box::pin(events))
            }
            Step::Fail(kind, status, wait) => {
                ends.end();
                Err(self.error(kind, status, wait))
            }
            Step::Hang => std::future::pending().await,
            Step::Reply(_) | Step::Answer(..) | Step::Later(..) | Step::Spent(..) => {
                panic!("a reply step in a stream call")
            }
        }
    }

    async fn check_available(&self) -> Result<(), Error> {
        match self.probe.clone() {
            Step::Fail(kind, status, wait) => Err(self.error(kind, status, wait)),
            Step::Hang => std::future::pending().await,
            _ => Ok(()),
        }
    }

    fn can_prepare(&self, error: &Error) -> bool {
        self.preparable && error.kind() == ErrorKind::ModelNotFound
    }

    async fn prepare(&self, _progress: llm_cascade::ProgressSink<'_>) -> Result<(), Error> {
        *self.prepares.lock().expect("lock") += 1;
        Ok(())
    }
}

/// A cascade of `providers`, in order, with `config`.
pub fn cascade(
    providers: Vec<std::sync::Arc<Fake>>,
    config: llm_cascade::CascadeConfig,
) -> llm_cascade::Cascade {
    providers
        .into_iter()
        .fold(llm_cascade::CascadeBuilder::new().config(config), |b, p| {
            b.provider_arc(p)
        })
        .build()
}

/// Each attempt as (provider, attempt number, outcome).
pub fn outcomes(attempts: &[llm_cascade::Attempt]) -> Vec<(String, u32, llm_cascade::Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.attempt, a.outcome))
        .collect()
}
