//! The cascade: providers in order, one retry policy, one deadline, one attempt record.
//!
//! Wrapper order (outermost first): the request deadline (`LLM_DEADLINE`) bounds everything; inside
//! it, each provider gets up to `max_attempts` attempts with backoff; each attempt is bounded by the
//! provider's own timeout (and, for streams, the first-token timeout). Providers never retry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use llm_core::{ChatRequest, EnvSource, Error, ErrorKind, ProcessEnv, Provider, Registry};
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::{CascadeConfig, LocalPull, provider_order};
use crate::observer::{CascadeEvent, Observer};
use crate::report::{Attempt, CascadeError, CascadeResponse, Decision, MoveReason, Outcome};

/// An ordered chain of providers with the retry and deadline policy around them. Cheap to clone.
#[derive(Clone)]
pub struct Cascade {
    providers: Vec<Arc<dyn Provider>>,
    config: CascadeConfig,
    observers: Vec<Arc<dyn Observer>>,
    /// What to tell a user whose chain is empty: the variables that would configure a provider.
    setup_hint: String,
}

impl std::fmt::Debug for Cascade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cascade")
            .field(
                "providers",
                &self.providers.iter().map(|p| p.id()).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Cascade`] from explicit providers, without the environment or the registry.
#[derive(Default)]
pub struct CascadeBuilder {
    providers: Vec<Arc<dyn Provider>>,
    config: CascadeConfig,
    observers: Vec<Arc<dyn Observer>>,
}

impl CascadeBuilder {
    /// An empty chain with default settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider to the chain.
    #[must_use]
    pub fn provider(mut self, provider: impl Provider + 'static) -> Self {
        self.providers.push(Arc::new(provider));
        self
    }

    /// Appends a shared provider to the chain.
    #[must_use]
    pub fn provider_arc(mut self, provider: Arc<dyn Provider>) -> Self {
        self.providers.push(provider);
        self
    }

    /// Replaces the settings.
    #[must_use]
    pub fn config(mut self, config: CascadeConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds an observer.
    #[must_use]
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The cascade.
    pub fn build(self) -> Cascade {
        Cascade {
            providers: self.providers,
            config: self.config,
            observers: self.observers,
            setup_hint: ErrorKind::Config.advice().to_owned(),
        }
    }
}

type AttemptFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// The state of one cascade call: its deadline and its record.
pub(crate) struct Call {
    started: Instant,
    /// When the call must end.
    pub(crate) deadline: Instant,
    pub(crate) attempts: Vec<Attempt>,
}

impl Call {
    /// How long this call has been running.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Cascade {
    /// Builds the chain from the process environment and the compiled-in providers.
    ///
    /// # Errors
    /// A config error for invalid settings or an unknown provider id in the order.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Builds the chain from `env` and the compiled-in providers. Does no network I/O.
    ///
    /// # Errors
    /// A config error for invalid settings or an unknown provider id in the order.
    pub fn from_env_source(env: &dyn EnvSource) -> Result<Self, Error> {
        Self::from_registry(env, &crate::registry()?, None)
    }

    /// Builds a chain of exactly one provider, `id`, whatever the configured order says (`--provider`).
    ///
    /// # Errors
    /// A config error when `id` is unknown, not compiled in, or not configured (naming its variables).
    pub fn pinned(env: &dyn EnvSource, id: &str) -> Result<Self, Error> {
        Self::from_registry(env, &crate::registry()?, Some(id))
    }

    /// Builds the chain from `env` and `registry`, optionally pinned to one provider.
    ///
    /// # Errors
    /// A config error for invalid settings, an unknown id, or a pinned provider that is not configured.
    pub fn from_registry(
        env: &dyn EnvSource,
        registry: &Registry,
        pin: Option<&str>,
    ) -> Result<Self, Error> {
        let config = CascadeConfig::from_env(env)?;
        let order = match pin {
            Some(id) => vec![pinned_id(registry, env, id)?],
            None => provider_order(env, registry)?,
        };
        let mut providers: Vec<Arc<dyn Provider>> = Vec::new();
        for id in order {
            let Some(registration) = registry.get(id) else {
                continue;
            };
            if !registration.is_configured(env) {
                continue;
            }
            providers.push(Arc::from((registration.build)(env)?));
            if !config.auto_fallback {
                break;
            }
        }
        let setup_hint = setup_hint(registry);
        Ok(Self {
            providers,
            config,
            observers: Vec::new(),
            setup_hint,
        })
    }

    /// Adds an observer.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The chain, in order.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// The settings.
    pub fn config(&self) -> &CascadeConfig {
        &self.config
    }

    /// Asks the chain for a complete answer.
    ///
    /// # Errors
    /// A [`CascadeError`] with every attempt and advice when no provider answered, or when the chain
    /// is empty or the request invalid.
    pub async fn chat(&self, request: ChatRequest) -> Result<CascadeResponse, CascadeError> {
        let request = Arc::new(self.prepare_request(request)?);
        let mut call = self.start_call();
        let span = info_span!("cascade.chat", providers = self.providers.len());
        let response = self
            .run(&mut call, |provider| {
                let request = request.clone();
                Box::pin(async move { provider.chat(&request).await })
            })
            .instrument(span)
            .await?;
        let (provider, response) = response;
        if let Some(last) = call.attempts.last() {
            self.emit(&CascadeEvent::AttemptFinished {
                attempt: last.clone(),
                model: response.model.clone(),
                usage: response.usage,
            });
        }
        info!(
            provider = provider.id(),
            attempts = call.attempts.len(),
            "success with {}",
            provider.id()
        );
        Ok(CascadeResponse {
            response,
            attempts: call.attempts,
        })
    }

    /// Fills settings defaults into the request and rejects requests no provider could answer.
    pub(crate) fn prepare_request(
        &self,
        mut request: ChatRequest,
    ) -> Result<ChatRequest, CascadeError> {
        if self.providers.is_empty() {
            let error = Error::config("no provider is configured");
            return Err(CascadeError::before_any_attempt(
                &error,
                self.setup_hint.clone(),
            ));
        }
        if request.messages.is_empty() {
            let error = Error::new(ErrorKind::InvalidRequest, "the request has no messages");
            return Err(CascadeError::before_any_attempt(&error, "Give a prompt."));
        }
        request.temperature = request.temperature.or(self.config.temperature);
        request.max_tokens = request.max_tokens.or(self.config.max_tokens);
        Ok(request)
    }

    pub(crate) fn start_call(&self) -> Call {
        let started = Instant::now();
        Call {
            started,
            deadline: started + self.config.deadline,
            attempts: Vec::new(),
        }
    }

    pub(crate) fn emit(&self, event: &CascadeEvent) {
        for observer in &self.observers {
            observer.on_event(event);
        }
    }

    /// Tries the chain with `attempt_fn` until one attempt succeeds; returns the provider that answered.
    ///
    /// The successful attempt is recorded in `call` but its `AttemptFinished` event is left to the
    /// caller, which knows the model and usage.
    pub(crate) async fn run<T>(
        &self,
        call: &mut Call,
        attempt_fn: impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Result<(Arc<dyn Provider>, T), CascadeError> {
        let mut preparable: Vec<Arc<dyn Provider>> = Vec::new();
        let mut stop: Option<Error> = None;
        'providers: for (index, provider) in self.providers.iter().enumerate() {
            if index > 0 {
                self.announce_fallback(index);
            }
            let mut attempt = 1;
            // A provider prepares at most once per call: a server that still reports the model
            // missing after a successful pull must not make the cascade pull again and again.
            let mut prepared = false;
            loop {
                match self.attempt(call, provider, attempt, &attempt_fn).await {
                    Ok(value) => return Ok((provider.clone(), value)),
                    Err(error) => {
                        if !prepared && provider.can_prepare(&error) {
                            prepared = true;
                            match self.config.local_pull {
                                LocalPull::Eager => {
                                    if self.prepare(provider).await.is_ok() {
                                        attempt += 1;
                                        continue;
                                    }
                                }
                                LocalPull::LastResort => preparable.push(provider.clone()),
                                LocalPull::Never => {}
                            }
                        }
                        match self.decide(call, &error, attempt) {
                            Decision::Retry { waited_ms } => {
                                self.set_decision(call, Decision::Retry { waited_ms });
                                let wait = Duration::from_millis(waited_ms);
                                info!(
                                    provider = provider.id(),
                                    wait_ms = waited_ms,
                                    "waiting {wait:?}"
                                );
                                self.emit(&CascadeEvent::Waiting {
                                    provider: provider.id().to_owned(),
                                    wait,
                                });
                                tokio::time::sleep(wait).await;
                                attempt += 1;
                            }
                            decision @ Decision::NextProvider { .. } => {
                                self.set_decision(call, decision);
                                continue 'providers;
                            }
                            Decision::Stop => {
                                self.set_decision(call, Decision::Stop);
                                stop = Some(error);
                                break 'providers;
                            }
                        }
                    }
                }
            }
        }
        if stop.is_none() {
            for provider in preparable {
                if self.prepare(&provider).await.is_ok() {
                    // A fresh budget: the user asked to wait for the download and then be answered.
                    call.deadline = Instant::now() + self.config.deadline;
                    let next = call
                        .attempts
                        .iter()
                        .filter(|a| a.provider == provider.id())
                        .count()
                        + 1;
                    let attempt = u32::try_from(next).unwrap_or(u32::MAX);
                    if let Ok(value) = self.attempt(call, &provider, attempt, &attempt_fn).await {
                        return Ok((provider, value));
                    }
                }
            }
        }
        let mut report = CascadeError::exhausted(std::mem::take(&mut call.attempts), stop.as_ref());
        let local = |id: &str| self.providers.iter().any(|p| p.id() == id && p.is_local());
        if report
            .attempts
            .iter()
            .all(|a| a.outcome == Outcome::Failed(ErrorKind::NotRunning) || local(&a.provider))
        {
            // Only local providers were in the chain and none answered: a fresh machine with no keys.
            report.hint = format!("{} {}", report.hint, self.setup_hint);
        }
        if self.config.private {
            report.message.push_str(
                " (privacy mode is on: LLM_PRIVATE=true, so only local providers were tried)",
            );
        }
        error!(category = %report.category, attempts = report.attempts.len(), "{}", report.message);
        Err(report)
    }

    fn announce_fallback(&self, index: usize) {
        let (from, to) = (self.providers[index - 1].id(), self.providers[index].id());
        warn!(from, to, "falling back from {from} to {to}");
        self.emit(&CascadeEvent::Fallback {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }

    /// One attempt at one provider, bounded by the provider's timeout and the request deadline.
    async fn attempt<T>(
        &self,
        call: &mut Call,
        provider: &Arc<dyn Provider>,
        attempt: u32,
        attempt_fn: &impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Result<T, Error> {
        let id = provider.id();
        let now = Instant::now();
        let remaining = call.deadline.saturating_duration_since(now);
        let limit = provider.timeout().min(remaining);
        info!(
            provider = id,
            attempt,
            max_attempts = self.config.max_attempts,
            "trying {id}"
        );
        self.emit(&CascadeEvent::AttemptStarted {
            provider: id.to_owned(),
            model: provider.model().to_owned(),
            attempt,
        });
        let span = info_span!(
            "gen_ai.chat",
            gen_ai.provider.name = id,
            gen_ai.request.model = provider.model(),
            attempt,
            error.r#type = tracing::field::Empty,
        );
        let outcome = tokio::time::timeout(limit, attempt_fn(provider.clone()))
            .instrument(span.clone())
            .await;
        let elapsed = now.elapsed();
        let result = outcome.unwrap_or_else(|_| {
            Err(timeout_error(
                provider.as_ref(),
                limit,
                limit < provider.timeout(),
            ))
        });
        match &result {
            Ok(_) => call.attempts.push(Attempt::ok(id, attempt, elapsed)),
            Err(error) => {
                let error_kind = error.kind().as_str();
                span.record("error.type", error_kind);
                warn!(
                    provider = id,
                    attempt,
                    kind = error_kind,
                    status = error.status(),
                    "{id} attempt {attempt}/{} failed: {error_kind}",
                    self.config.max_attempts
                );
                let record = Attempt::failed(id, attempt, elapsed, error);
                call.attempts.push(record.clone());
                self.emit(&CascadeEvent::AttemptFinished {
                    attempt: record,
                    model: provider.model().to_owned(),
                    usage: None,
                });
            }
        }
        result
    }

    /// What to do after `error` on attempt number `attempt`.
    fn decide(&self, call: &Call, error: &Error, attempt: u32) -> Decision {
        let remaining = call.deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || (!self.config.auto_fallback && !error.is_retryable()) {
            return Decision::Stop;
        }
        let move_on = |reason| {
            if self.config.auto_fallback {
                Decision::NextProvider { reason }
            } else {
                Decision::Stop
            }
        };
        if !error.is_retryable() {
            return move_on(MoveReason::NotRetryable);
        }
        if attempt >= self.config.max_attempts {
            return move_on(MoveReason::AttemptsExhausted);
        }
        let wait = match error.retry_after() {
            // Another provider can answer sooner than a long wait.
            Some(hint) if hint > self.config.max_retry_wait => {
                return move_on(MoveReason::WaitTooLong);
            }
            Some(hint) => hint,
            None => self.backoff(attempt),
        };
        if wait >= remaining {
            return move_on(MoveReason::WaitTooLong);
        }
        Decision::Retry {
            waited_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// `backoff × 2^(attempt-1)`, plus up to a quarter of that as jitter so that clients do not retry
    /// in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .backoff
            .saturating_mul(1_u32 << (attempt - 1).min(16));
        if !self.config.jitter {
            return base;
        }
        let quarter = u64::try_from(base.as_millis() / 4).unwrap_or(0);
        base + Duration::from_millis(fastrand::u64(0..=quarter))
    }

    fn set_decision(&self, call: &mut Call, decision: Decision) {
        if let Some(last) = call.attempts.last_mut() {
            last.decision = Some(decision);
        }
    }

    async fn prepare(&self, provider: &Arc<dyn Provider>) -> Result<(), Error> {
        info!(
            provider = provider.id(),
            "preparing {} (downloading its model)",
            provider.id()
        );
        let progress = |event: llm_core::Progress| self.emit(&CascadeEvent::Progress(event));
        let result = provider.prepare(&progress).await;
        if let Err(error) = &result {
            warn!(
                provider = provider.id(),
                "preparing {} failed: {error}",
                provider.id()
            );
        }
        result
    }
}

fn timeout_error(provider: &dyn Provider, limit: Duration, by_deadline: bool) -> Error {
    let message = if by_deadline {
        format!("the request deadline (LLM_DEADLINE) ran out after this attempt had {limit:?}")
    } else {
        format!("no answer within {limit:?} (the provider's timeout)")
    };
    Error::new(ErrorKind::Timeout, message).with_provider(provider.id())
}

fn pinned_id(registry: &Registry, env: &dyn EnvSource, id: &str) -> Result<&'static str, Error> {
    let Some(registration) = registry.get(id) else {
        return Err(Error::config(format!(
            "unknown provider `{id}`; compiled-in providers are: {}",
            registry.ids().join(", ")
        )));
    };
    if !registration.local && crate::config::private_mode(env)? {
        return Err(Error::config(format!(
            "privacy mode is on (LLM_PRIVATE=true): {id} is a cloud provider and is never called"
        ))
        .with_provider(id));
    }
    if !registration.is_configured(env) {
        return Err(Error::config(format!(
            "{id} is not configured: set {}",
            registration.key_env.join(" or ")
        ))
        .with_provider(id));
    }
    Ok(registration.id)
}

fn setup_hint(registry: &Registry) -> String {
    let keys: Vec<&str> = registry
        .iter()
        .filter_map(|r| r.key_env.first().copied())
        .collect();
    let local: Vec<&str> = registry
        .iter()
        .filter(|r| r.local)
        .map(|r| r.display_name)
        .collect();
    let mut hint = String::from("Set at least one provider's API key");
    if !keys.is_empty() {
        hint.push_str(&format!(" ({})", keys.join(", ")));
    }
    if !local.is_empty() {
        hint.push_str(&format!(", or start a local server ({})", local.join(", ")));
    }
    hint.push_str(", in the environment or a .env file.");
    hint
}
