//! The `Provider` impl: requests go to one model thread per model file, through a bounded queue.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use llm_core::{
    ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason, Message, ProgressSink,
    Provider, StreamEvent, Usage,
};
use tokio::sync::mpsc;

use crate::ID;
use crate::config::LocalConfig;
use crate::download::{self, ModelDownload};
use crate::model::{Engine, Params};

/// Events buffered between the model thread and the caller's stream.
const EVENT_BUFFER: usize = 64;

/// The embedded model provider.
#[derive(Debug, Clone)]
pub struct Local {
    config: LocalConfig,
}

/// One request for the model thread.
struct Job {
    /// Only load the model (then finish with no text).
    load_only: bool,
    messages: Vec<Message>,
    params: Params,
    events: mpsc::Sender<Result<StreamEvent, Error>>,
}

/// The process-wide model threads, one per model file: the model loads once and is shared by every
/// `Local` built for that file.
fn queues() -> &'static Mutex<HashMap<PathBuf, SyncSender<Job>>> {
    static QUEUES: OnceLock<Mutex<HashMap<PathBuf, SyncSender<Job>>>> = OnceLock::new();
    QUEUES.get_or_init(Mutex::default)
}

impl Local {
    /// The provider for `config`. Does no I/O: the model loads on the first request.
    pub fn new(config: LocalConfig) -> Self {
        Self { config }
    }

    /// Reads the configuration from `env` (see [`LocalConfig`]).
    ///
    /// # Errors
    /// A config error naming the variable when a setting is invalid.
    pub fn from_env(env: &dyn llm_core::EnvSource) -> Result<Self, Error> {
        Ok(Self::new(LocalConfig::from_env(env)?))
    }

    /// The configuration.
    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// Whether the model file is where it is expected.
    pub fn is_present(&self) -> bool {
        self.config.model_path.as_deref().is_some_and(Path::is_file)
    }

    /// The model file's size in bytes, when it is present.
    pub fn file_size(&self) -> Option<u64> {
        let path = self.config.model_path.as_deref()?;
        std::fs::metadata(path).ok().map(|m| m.len())
    }

    /// Downloads the model file (see the README: resume, sha256, free space), reporting progress.
    ///
    /// # Errors
    /// `config` when the file cannot be downloaded (`LOCAL_MODEL_PATH` names it); `network`,
    /// `server_error`, `timeout` or `malformed_answer` (wrong sha256) when the download fails. The
    /// message names the file and how to place it by hand.
    pub async fn pull(&self, progress: ProgressSink<'_>) -> Result<(), Error> {
        let (Some(url), Some(dest)) = (&self.config.url, &self.config.model_path) else {
            return Err(self.missing());
        };
        let job = ModelDownload {
            url: url.clone(),
            dest: dest.clone(),
            sha256: self.config.sha256.clone(),
            space_limit: None,
        };
        match tokio::time::timeout(self.config.pull_timeout, download::fetch(&job, progress)).await
        {
            Ok(result) => result,
            Err(_) => Err(download::failed(
                &job,
                ErrorKind::Timeout,
                &format!(
                    "it did not finish within {} s (LOCAL_PULL_TIMEOUT)",
                    self.config.pull_timeout.as_secs()
                ),
            )),
        }
    }

    fn missing(&self) -> Error {
        let Some(path) = &self.config.model_path else {
            return Error::config(
                "the local model has no place to live (no data directory: HOME is unset); set \
                 LOCAL_MODEL_PATH to a GGUF file or LOCAL_MODEL_DIR to a directory",
            )
            .with_provider(ID);
        };
        // What to do comes first: tables cut the message (`cascade providers --check`).
        let message = if self.config.path_given {
            format!(
                "the model file {} is not there: check LOCAL_MODEL_PATH",
                path.display()
            )
        } else {
            format!(
                "not downloaded yet: run `cascade pull local` (it goes to {}), or set \
                 LOCAL_MODEL_PATH to a GGUF file (source: {})",
                path.display(),
                self.config.url.as_deref().unwrap_or_default()
            )
        };
        Error::new(ErrorKind::ModelNotFound, message).with_provider(ID)
    }

    /// Loads the model now rather than on the first request (it stays loaded for the process).
    ///
    /// # Errors
    /// As a request would fail: the file is missing, unreadable, or not a model this provider runs.
    pub async fn preload(&self) -> Result<(), Error> {
        let mut receiver = self.submit(&ChatRequest::default(), true)?;
        while let Some(event) = receiver.recv().await {
            event?;
        }
        Ok(())
    }

    /// Puts a request on the model thread's queue.
    fn submit(
        &self,
        request: &ChatRequest,
        load_only: bool,
    ) -> Result<mpsc::Receiver<Result<StreamEvent, Error>>, Error> {
        let Some(path) = self.config.model_path.as_ref().filter(|p| p.is_file()) else {
            return Err(self.missing());
        };
        let (events, receiver) = mpsc::channel(EVENT_BUFFER);
        let job = Job {
            load_only,
            messages: request.messages.clone(),
            params: Params {
                max_tokens: request.max_tokens.unwrap_or(self.config.max_tokens),
                temperature: request.temperature.map(f64::from),
                seed: self.config.seed,
                stop: request.stop.clone(),
            },
            events,
        };
        let mut queues = queues()
            .lock()
            .map_err(|_| overloaded("the model's queue is unusable"))?;
        let sender = queues.entry(path.clone()).or_insert_with(|| {
            spawn_model_thread(path.clone(), self.config.queue, self.config.threads)
        });
        match sender.try_send(job) {
            Ok(()) => Ok(receiver),
            Err(TrySendError::Full(_)) => Err(overloaded(&format!(
                "{} requests are already waiting for the local model (LOCAL_QUEUE)",
                self.config.queue
            ))),
            Err(TrySendError::Disconnected(_)) => {
                queues.remove(path);
                Err(
                    Error::new(ErrorKind::ServerError, "the local model's thread stopped")
                        .with_provider(ID),
                )
            }
        }
    }
}

fn overloaded(message: &str) -> Error {
    Error::new(ErrorKind::Overloaded, message).with_provider(ID)
}

/// Starts the thread that owns the model for `path`: it loads the model on its first request and
/// answers requests one at a time; at most `queue` more wait.
fn spawn_model_thread(path: PathBuf, queue: usize, threads: usize) -> SyncSender<Job> {
    let (sender, jobs) = std::sync::mpsc::sync_channel(queue);
    let spawned = std::thread::Builder::new()
        .name("llm-local-model".to_owned())
        .spawn(move || {
            // candle parallelises with rayon: a pool of our own bounds the model's threads.
            match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                Ok(pool) => pool.install(move || model_thread(&path, &jobs)),
                Err(_) => model_thread(&path, &jobs),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "could not start the local model's thread");
    }
    sender
}

fn model_thread(path: &Path, jobs: &Receiver<Job>) {
    let mut engine: Option<Engine> = None;
    for job in jobs {
        if engine.is_none() {
            let started = std::time::Instant::now();
            match Engine::load(path) {
                Ok(loaded) => {
                    tracing::info!(
                        gen_ai.provider.name = ID,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "local model loaded"
                    );
                    engine = Some(loaded);
                }
                Err(error) => {
                    let _ = job.events.blocking_send(Err(error));
                    continue;
                }
            }
        }
        let Some(loaded) = engine.as_mut() else {
            continue;
        };
        if job.load_only {
            continue;
        }
        let events = job.events.clone();
        let mut emit = |text: &str| {
            events
                .blocking_send(Ok(StreamEvent::Delta {
                    text: text.to_owned(),
                }))
                .is_ok()
        };
        // A panic inside the numeric code must not take the process down with it: the request fails
        // and the model is reloaded for the next one.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            loaded.generate(&job.messages, &job.params, &mut emit)
        }));
        let result = result.unwrap_or_else(|_| {
            engine = None;
            Err(Error::new(ErrorKind::ServerError, "the local model panicked").with_provider(ID))
        });
        finish(&job.events, result);
    }
}

fn finish(
    events: &mpsc::Sender<Result<StreamEvent, Error>>,
    result: Result<crate::model::Outcome, Error>,
) {
    match result {
        Ok(outcome) => {
            let usage = Usage {
                input_tokens: outcome.input_tokens,
                output_tokens: outcome.output_tokens,
            };
            let _ = events.blocking_send(Ok(StreamEvent::Usage { usage }));
            let _ = events.blocking_send(Ok(StreamEvent::Finish {
                reason: outcome.reason,
                model: None,
            }));
        }
        Err(error) => {
            let _ = events.blocking_send(Err(error));
        }
    }
}

/// The receiver as a [`ChatStream`] that ends in exactly one `Finish` or an error: a model thread
/// that stops without either is reported, never taken for a complete answer.
fn into_stream(receiver: mpsc::Receiver<Result<StreamEvent, Error>>, model: String) -> ChatStream {
    let stream = futures_util::stream::unfold(Some(receiver), move |state| {
        let model = model.clone();
        async move {
            let mut receiver = state?;
            match receiver.recv().await {
                Some(Ok(StreamEvent::Finish { reason, .. })) => Some((
                    Ok(StreamEvent::Finish {
                        reason,
                        model: Some(model),
                    }),
                    None,
                )),
                Some(Err(error)) => Some((Err(error), None)),
                Some(Ok(event)) => Some((Ok(event), Some(receiver))),
                None => Some((
                    Err(Error::new(
                        ErrorKind::StreamTruncated,
                        "the local model stopped before finishing its answer",
                    )
                    .with_provider(ID)),
                    None,
                )),
            }
        }
    });
    Box::pin(stream)
}

#[async_trait]
impl Provider for Local {
    fn id(&self) -> &str {
        ID
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn base_url(&self) -> &str {
        // No server: where the model comes from is the closest thing to an address.
        self.config
            .model_path
            .as_deref()
            .and_then(Path::to_str)
            .unwrap_or("(no model file)")
    }

    fn is_local(&self) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let mut stream = self.chat_stream(request).await?;
        let mut content = String::new();
        let mut usage = None;
        let mut finish_reason = FinishReason::Stop;
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Delta { text } => content.push_str(&text),
                StreamEvent::Usage { usage: counted } => usage = Some(counted),
                StreamEvent::Finish { reason, .. } => finish_reason = reason,
                // The model is offered no tools (its capabilities are text only), its own stream
                // never resumes and it has no rate limits: none of these events comes from it.
                StreamEvent::ToolCall { .. }
                | StreamEvent::Resumed { .. }
                | StreamEvent::RateLimit { .. } => {}
            }
        }
        Ok(ChatResponse {
            content,
            provider: ID.to_owned(),
            model: self.config.model.clone(),
            finish_reason,
            usage,
            tool_calls: Vec::new(),
            rate_limit: None,
        })
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let receiver = self.submit(request, false)?;
        Ok(into_stream(receiver, self.config.model.clone()))
    }

    async fn check_available(&self) -> Result<(), Error> {
        if self.is_present() {
            Ok(())
        } else {
            Err(self.missing())
        }
    }

    fn can_prepare(&self, error: &Error) -> bool {
        error.provider() == Some(ID)
            && error.kind() == ErrorKind::ModelNotFound
            && self.config.url.is_some()
            && self.config.model_path.is_some()
            && !self.is_present()
    }

    async fn prepare(&self, progress: ProgressSink<'_>) -> Result<(), Error> {
        self.pull(progress).await
    }
}
