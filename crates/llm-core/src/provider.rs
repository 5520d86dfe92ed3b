//! The object-safe trait every provider implements.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures_core::Stream;

use crate::{Capabilities, ChatRequest, ChatResponse, Error, ErrorKind, StreamEvent};

/// Progress of a long preparation step (Ollama pulling a model), for callers to show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// The provider preparing.
    pub provider: String,
    /// What it is doing, as the provider says it ("pulling manifest", "downloading", "success").
    pub status: String,
    /// Bytes done so far, summed over all parts, when known.
    pub completed: Option<u64>,
    /// Bytes in all, summed over all parts, when known.
    pub total: Option<u64>,
}

/// Receives [`Progress`] events.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// A streamed answer: [`StreamEvent`]s ending in exactly one `Finish`, or an error.
///
/// A provider's stream yields an error (never a silent end) when the connection drops, when the bytes
/// cannot be decoded, or when the provider's terminator never arrives.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, Error>> + Send>>;

/// One LLM provider, as the cascade sees it.
///
/// Implementations make exactly one attempt per call: retries, backoff and deadlines belong to the
/// cascade, which also applies [`Provider::timeout`] around each attempt.
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// The provider's id (`groq`, `openai`, …).
    fn id(&self) -> &str;

    /// The model used when a request names none.
    fn model(&self) -> &str;

    /// Where requests go (for display; never contains a key).
    fn base_url(&self) -> &str;

    /// Whether the provider runs on this machine or network (Ollama, LM Studio): a refused connection
    /// then means "not running" and costs no retry.
    fn is_local(&self) -> bool {
        false
    }

    /// What the provider can do beyond text with its configured model: JSON schema, JSON mode, tools.
    /// The cascade serves a request the provider cannot natively in a checked degraded mode (JSON by
    /// instruction, then validated) or skips the provider (tools); the default is text only.
    fn capabilities(&self) -> Capabilities {
        Capabilities::TEXT
    }

    /// What the provider can do with `model`, the model a request will use (its own
    /// [`ChatRequest::model`], else [`Provider::model`]): the cascade decides with this, so a request
    /// naming a model without tools skips the provider even when its configured model has them. The
    /// default is [`Provider::capabilities`] whatever the model; a provider whose models differ
    /// overrides this (and answers `capabilities()` for its configured model).
    fn capabilities_for(&self, model: &str) -> Capabilities {
        let _ = model;
        self.capabilities()
    }

    /// How long one attempt may take before the cascade gives up on it.
    fn timeout(&self) -> Duration;

    /// Whether `model` continues a final assistant message (an assistant prefill) instead of starting
    /// a new answer: the cascade then resumes a cut stream by sending the text delivered so far as that
    /// message and streaming only the remainder. A provider that says `true` must encode a trailing
    /// assistant message in its dialect's prefill form (Mistral's `prefix: true`, Anthropic's final
    /// assistant turn, Ollama's final assistant message). The default is `false`: the cascade restarts
    /// the answer instead and drops the part already delivered.
    fn supports_prefill(&self, model: &str) -> bool {
        let _ = model;
        false
    }

    /// Sends one chat request and waits for the whole answer.
    ///
    /// # Errors
    /// A classified [`Error`] naming this provider.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error>;

    /// Sends one chat request and returns the answer as a stream.
    ///
    /// # Errors
    /// A classified [`Error`] when the request fails before the stream starts; later failures arrive
    /// inside the stream.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error>;

    /// A cheap check that the provider answers and accepts our credentials (e.g. listing its models).
    ///
    /// # Errors
    /// A classified [`Error`] saying why the provider is not usable.
    async fn check_available(&self) -> Result<(), Error>;

    /// Whether [`Provider::prepare`] would fix `error` (Ollama: the model is not installed yet and may
    /// be pulled). The cascade decides *when* to prepare (see its local-pull policy); the provider only
    /// says whether it can.
    fn can_prepare(&self, error: &Error) -> bool {
        let _ = error;
        false
    }

    /// Makes the provider ready to answer (Ollama: pulls its model), reporting progress. Slow: minutes.
    ///
    /// # Errors
    /// A classified error when preparing failed; the default has nothing to prepare.
    async fn prepare(&self, progress: ProgressSink<'_>) -> Result<(), Error> {
        let _ = progress;
        Err(
            Error::new(ErrorKind::Config, "this provider has nothing to prepare")
                .with_provider(self.id()),
        )
    }
}
