//! The [`Provider`] implementation: chat over `/api/chat`, model presence over `/api/tags`, pulls over
//! `/api/pull`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use llm_core::{
    ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind, ProgressSink, Provider,
};
use llm_protocol::stream::{Framer, NdjsonFramer};
use llm_protocol::{HttpClient, decode_stream};
use tokio::sync::Mutex;

use crate::ID;
use crate::config::OllamaConfig;
use crate::wire::{
    self, CallIds, ChatChunk, ChatStreamDecoder, OllamaFramer, PullStep, PullTracker,
};

/// How long the list of installed models is trusted before `/api/tags` is asked again.
const TAGS_TTL: Duration = Duration::from_secs(30);

/// The marker every failed-pull message carries; errors with it are never "preparable" again.
const PULL_ADVICE: &str = "pull it by hand:";

/// The Ollama provider (native API).
///
/// Before a chat it checks `/api/tags` (cached for 30 s) and fails fast with
/// [`ErrorKind::ModelNotFound`] when the model is not installed; [`Ollama::pull`] (and
/// [`Provider::prepare`]) installs it.
#[derive(Clone)]
pub struct Ollama {
    config: OllamaConfig,
    http: HttpClient,
    tags: Arc<Mutex<Option<TagsCache>>>,
}

/// The installed models as `/api/tags` listed them, and when.
#[derive(Debug)]
struct TagsCache {
    fetched: Instant,
    installed: Vec<String>,
}

impl fmt::Debug for Ollama {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ollama")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Ollama {
    /// A provider with this configuration. Does no network I/O.
    ///
    /// # Errors
    /// A config error when the HTTP client cannot be built.
    pub fn new(config: OllamaConfig) -> Result<Self, Error> {
        Ok(Self {
            config,
            http: HttpClient::new(ID, true, wire::parse_error)?,
            tags: Arc::new(Mutex::new(None)),
        })
    }

    /// A provider configured from `env` (see [`OllamaConfig::from_env`]). Does no network I/O.
    ///
    /// # Errors
    /// A config error naming the variable that does not parse.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        Self::new(OllamaConfig::from_env(env)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &OllamaConfig {
        &self.config
    }

    /// Pulls `model` (the configured model when `None`) with `POST /api/pull`, reporting progress:
    /// `completed`/`total` are summed over the model's layers. Bounded by `OLLAMA_PULL_TIMEOUT`.
    /// On success the cached list of installed models is dropped, so the next request sees the model.
    ///
    /// # Errors
    /// A classified error when the pull fails, is interrupted, ends without `success`, or runs out of
    /// time; its message says how to pull the model by hand.
    pub async fn pull(&self, model: Option<&str>, progress: ProgressSink<'_>) -> Result<(), Error> {
        let model = model
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.config.model);
        tracing::info!(
            gen_ai.provider.name = ID,
            gen_ai.request.model = model,
            "pulling model"
        );
        let outcome =
            match tokio::time::timeout(self.config.pull_timeout, self.pull_stream(model, progress))
                .await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(self.http.error(
                    ErrorKind::Timeout,
                    format!(
                        "the pull did not finish within {} s (OLLAMA_PULL_TIMEOUT)",
                        self.config.pull_timeout.as_secs_f64()
                    ),
                )),
            };
        match outcome {
            Ok(()) => {
                self.invalidate_tags().await;
                tracing::info!(
                    gen_ai.provider.name = ID,
                    gen_ai.request.model = model,
                    "model pulled"
                );
                Ok(())
            }
            Err(error) => {
                let message = format!(
                    "pulling model '{model}' failed: {}; {PULL_ADVICE} `ollama pull {model}`",
                    error.message()
                );
                Err(remessage(&error, error.kind(), message))
            }
        }
    }

    async fn pull_stream(&self, model: &str, progress: ProgressSink<'_>) -> Result<(), Error> {
        let request = self
            .authorize(self.http.post(self.url("/api/pull")))
            .json(&wire::encode_pull(model));
        let response = self.http.send(request).await?;
        let mut body = Box::pin(self.http.body_stream(response));
        let mut framer = NdjsonFramer::default();
        let mut tracker = PullTracker::default();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                self.http.error(
                    ErrorKind::Network,
                    format!("the pull was interrupted ({})", e.message()),
                )
            })?;
            for line in framer.push(&chunk)? {
                if pull_line(&mut tracker, &line, progress)? {
                    return Ok(());
                }
            }
        }
        if let Some(line) = framer.finish()?
            && pull_line(&mut tracker, &line, progress)?
        {
            return Ok(());
        }
        Err(self.http.error(
            ErrorKind::Network,
            "the pull stream ended before Ollama reported success",
        ))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url)
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.config.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// The installed models, from the cache when it is fresh, else from `GET /api/tags`. The lock is
    /// held during the fetch so that concurrent requests ask once.
    async fn installed_models(&self) -> Result<Vec<String>, Error> {
        let mut cache = self.tags.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached.fetched.elapsed() < TAGS_TTL
        {
            return Ok(cached.installed.clone());
        }
        let response = self
            .http
            .send(self.authorize(self.http.get(&self.url("/api/tags"))))
            .await?;
        let tags: wire::TagsResponse = self.http.read_json(response).await?;
        if let Some(error) = tags.error() {
            return Err(error.with_provider(ID));
        }
        let installed = wire::installed_models(tags);
        *cache = Some(TagsCache {
            fetched: Instant::now(),
            installed: installed.clone(),
        });
        Ok(installed)
    }

    async fn invalidate_tags(&self) {
        *self.tags.lock().await = None;
    }

    fn not_installed(&self, model: &str) -> Error {
        self.http.error(
            ErrorKind::ModelNotFound,
            format!(
                "model '{model}' is not installed on this Ollama server; it can be pulled \
                 (`ollama pull {model}`, `cascade pull`, or LLM_LOCAL_PULL)"
            ),
        )
    }

    /// Fails fast when `/api/tags` says `model` is not installed. A server that is not running fails
    /// here too; any other trouble with `/api/tags` (a proxy that hides it) leaves the decision to the
    /// chat request itself.
    async fn ensure_installed(&self, model: &str) -> Result<(), Error> {
        match self.installed_models().await {
            Ok(installed) if wire::is_installed(&installed, model) => Ok(()),
            Ok(_) => Err(self.not_installed(model)),
            Err(error) if error.kind() == ErrorKind::NotRunning => Err(error),
            Err(error) => {
                tracing::debug!(gen_ai.provider.name = ID, error = %error, "cannot list models; sending the chat anyway");
                Ok(())
            }
        }
    }

    async fn send_chat(
        &self,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<reqwest::Response, Error> {
        self.ensure_installed(model).await?;
        let builder = self
            .authorize(self.http.post(self.url("/api/chat")))
            .json(&wire::encode_chat(request, model, stream));
        match self.http.send(builder).await {
            Ok(response) => Ok(response),
            Err(error) if error.kind() == ErrorKind::ModelNotFound => {
                // The cache said installed, the server says not: it was removed meanwhile.
                self.invalidate_tags().await;
                let message = format!(
                    "model '{model}' is not installed on this Ollama server ({}); it can be pulled \
                     (`ollama pull {model}`, `cascade pull`, or LLM_LOCAL_PULL)",
                    error.message()
                );
                Err(remessage(&error, ErrorKind::ModelNotFound, message))
            }
            Err(error) => Err(error),
        }
    }

    fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        request
            .model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or(&self.config.model)
    }
}

/// Feeds one pull line to the tracker and the progress sink; true on the final `success`.
fn pull_line(
    tracker: &mut PullTracker,
    line: &str,
    progress: ProgressSink<'_>,
) -> Result<bool, Error> {
    match tracker.line(line)? {
        PullStep::Progress(step) => {
            progress(step);
            Ok(false)
        }
        PullStep::Success(step) => {
            progress(step);
            Ok(true)
        }
    }
}

/// `error` with another kind and message, keeping its provider, status and wait hint.
fn remessage(error: &Error, kind: ErrorKind, message: String) -> Error {
    let mut rebuilt = Error::new(kind, message)
        .with_provider(error.provider().unwrap_or(ID))
        .with_retry_after(error.retry_after());
    if let Some(status) = error.status() {
        rebuilt = rebuilt.with_status(status);
    }
    rebuilt
}

#[async_trait]
impl Provider for Ollama {
    fn id(&self) -> &str {
        ID
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// `format` takes a schema or `"json"`; `tools` are native. Whether a model calls tools depends on
    /// its template: one that cannot answers 400 "… does not support tools", which is
    /// [`ErrorKind::Unsupported`] (the cascade moves on).
    fn capabilities(&self) -> llm_core::Capabilities {
        llm_core::Capabilities::ALL
    }

    fn is_local(&self) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// `/api/chat` continues a conversation's final assistant message (the chat template leaves that
    /// turn open); the encoder sends it as the last message.
    fn supports_prefill(&self, _model: &str) -> bool {
        true
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let model = self.model_for(request);
        let response = self.send_chat(request, model, false).await?;
        let chunk: ChatChunk = self.http.read_json(response).await?;
        wire::decode_chat(chunk, model, CallIds::for_request(request))
            .map_err(|e| e.with_provider(ID))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let model = self.model_for(request);
        let response = self.send_chat(request, model, true).await?;
        Ok(decode_stream(
            ID,
            self.http.body_stream(response),
            OllamaFramer::default(),
            ChatStreamDecoder::new(request),
        ))
    }

    async fn check_available(&self) -> Result<(), Error> {
        let installed = self.installed_models().await?;
        if wire::is_installed(&installed, &self.config.model) {
            Ok(())
        } else {
            Err(self.not_installed(&self.config.model))
        }
    }

    /// True for this provider's "model not installed" errors about the configured model (the one
    /// [`Provider::prepare`] pulls); false for errors of a failed pull, so a pull is not retried in a loop.
    fn can_prepare(&self, error: &Error) -> bool {
        error.provider() == Some(ID)
            && error.kind() == ErrorKind::ModelNotFound
            && !error.message().contains(PULL_ADVICE)
            && wire::quoted_model(error.message()).is_none_or(|named| {
                wire::normalize_model(named) == wire::normalize_model(&self.config.model)
            })
    }

    async fn prepare(&self, progress: ProgressSink<'_>) -> Result<(), Error> {
        self.pull(None, progress).await
    }
}
