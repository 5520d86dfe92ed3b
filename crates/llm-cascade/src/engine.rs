//! The cascade: providers in order, one retry policy, one deadline, one attempt record.
//!
//! Wrapper order (outermost first): the request deadline (`LLM_DEADLINE`) bounds everything; inside
//! it, each provider gets up to `max_attempts` attempts with backoff; each attempt is bounded by the
//! provider's own timeout (and, for streams, the first-token timeout). Providers never retry.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use llm_core::{
    ChatRequest, ChatResponse, EnvSource, Error, ErrorKind, FinishReason, ProcessEnv, Provider,
    RateLimitSpent, Registry,
};
use tokio::time::Instant;
use tracing::{Instrument, Span, error, info, info_span, warn};

use crate::chain::Pool;
use crate::config::{CascadeConfig, LocalPull, provider_order, resolve_provider};
use crate::observer::{CascadeEvent, Observer};
use crate::policy::RetryPolicy;
use crate::report::{Attempt, CascadeError, CascadeResponse, Decision, Outcome};
use crate::state::{Report, Skip, SkipReason, StateClock, StateStore, States, Verdict};

/// An ordered chain of providers with the retry and deadline policy around them. Cheap to clone.
#[derive(Clone)]
pub struct Cascade {
    providers: Vec<Arc<dyn Provider>>,
    config: CascadeConfig,
    /// The retry decision and its budget (shared by clones).
    policy: RetryPolicy,
    observers: Vec<Arc<dyn Observer>>,
    /// What is remembered about each provider between calls (cooling, breaker, budgets).
    states: States,
    /// What to tell a user whose chain is empty: the variables that would configure a provider.
    /// Shared, like every field but the chain, so that deriving a per-call chain copies no text.
    setup_hint: Arc<str>,
    /// Where those variables are read from ("the environment"), when the chain was built from one.
    config_source: Option<Arc<str>>,
    /// Every provider [`Cascade::restricted`] may choose from.
    pool: Arc<Pool>,
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
        let mut states = States::default();
        states.set_max_retry_wait(self.config.max_retry_wait);
        Cascade {
            pool: Arc::new(Pool::of(&self.providers)),
            providers: self.providers,
            states,
            policy: RetryPolicy::new(self.config.clone()),
            config: self.config,
            observers: self.observers,
            setup_hint: ErrorKind::Config.advice().into(),
            config_source: None,
        }
    }
}

pub(crate) type AttemptFuture<T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send>>;

/// The state of one cascade call: its deadline and its record.
pub(crate) struct Call {
    started: Instant,
    /// When the call must end.
    pub(crate) deadline: Instant,
    pub(crate) attempts: Vec<Attempt>,
    /// A stream: an attempt that produced its first token is not yet a success for the provider's
    /// state (the stream reports how it ends).
    pub(crate) streaming: bool,
    /// Providers (by place in the chain) whose first attempt ran as a hedge and failed: their turn
    /// goes on from that failure.
    hedged: Vec<(usize, Error)>,
    /// Providers whose check in this call made them the half-open probe of their open breaker.
    probing: Vec<String>,
}

impl Call {
    /// The state of a call that goes on after its stream started (resuming a cut stream): `deadline`
    /// and the record so far.
    pub(crate) fn continuing(deadline: Instant, attempts: Vec<Attempt>) -> Self {
        Self {
            started: Instant::now(),
            deadline,
            attempts,
            streaming: true,
            hedged: Vec::new(),
            probing: Vec::new(),
        }
    }

    /// Remembers that `provider` is its breaker's half-open probe when `verdict` says so: if the
    /// attempt is cancelled, the probe is handed back (see [`Report::ProbeCancelled`]).
    fn note_probe(&mut self, provider: &str, verdict: &Verdict) {
        if matches!(verdict, Verdict::Probe) {
            self.probing.push(provider.to_owned());
        }
    }

    /// How long this call has been running.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Cascade {
    /// A builder for a chain of explicit providers, without the environment or the registry.
    pub fn builder() -> CascadeBuilder {
        CascadeBuilder::new()
    }

    /// Builds the chain from the process environment and the compiled-in providers. A `.env` file is
    /// not read: see [`Cascade::from_env_with_dotenv`].
    ///
    /// # Errors
    /// A config error for invalid settings or an unknown provider id in the order.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_source(&ProcessEnv)
    }

    /// Builds the chain from the process environment over `./.env` (the process wins; the file is read
    /// into a map, never into the process environment), as the `cascade` CLI does.
    ///
    /// # Errors
    /// A config error when `.env` exists but cannot be parsed, for invalid settings, or for an unknown
    /// provider id in the order.
    pub fn from_env_with_dotenv() -> Result<Self, Error> {
        let env = crate::dotenv::env_with_dotenv(".env")?;
        Ok(Self::from_env_source(&env)?.configured_in(crate::dotenv::DOTENV_SOURCE))
    }

    /// Names where this chain's settings came from, for the hint a call on an empty chain gives
    /// ("set at least one provider's API key … in {source}"). The default is "the environment".
    #[must_use]
    pub fn configured_in(mut self, source: impl Into<String>) -> Self {
        self.config_source = Some(source.into().into());
        self
    }

    /// What to tell a user whose chain is empty.
    fn setup_hint(&self) -> String {
        match &self.config_source {
            Some(source) => format!("{}, in {source}.", self.setup_hint),
            None => self.setup_hint.to_string(),
        }
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
    /// A config error for invalid settings (see [`provider_order`]), an unknown id, a pinned provider
    /// that is not configured, or an empty registry ("no provider is compiled in").
    pub fn from_registry(
        env: &dyn EnvSource,
        registry: &Registry,
        pin: Option<&str>,
    ) -> Result<Self, Error> {
        if registry.ids().is_empty() {
            return Err(crate::config::nothing_compiled_in());
        }
        let config = CascadeConfig::from_env(env)?;
        // The order is read (and so checked) even when pinned: wrong configuration is an error
        // whichever command meets it first.
        let order = provider_order(env, registry)?;
        let order = match pin {
            Some(id) => vec![pinned_id(registry, env, id)?],
            None => order,
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
        let states = States::from_env(env, registry, config.max_retry_wait)?;
        Ok(Self {
            pool: Arc::new(Pool::from_registry(env, registry, &providers)),
            providers,
            states,
            policy: RetryPolicy::new(config.clone()),
            config,
            observers: Vec::new(),
            setup_hint: setup_hint.into(),
            config_source: Some("the environment".into()),
        })
    }

    /// Adds an observer.
    #[must_use]
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Keeps provider state in `store` (the default is this process's memory): a SQLite table in
    /// the CLI, or a store shared by several instances.
    #[must_use]
    pub fn with_state_store(mut self, store: Arc<dyn StateStore>) -> Self {
        self.states.set_store(store);
        self
    }

    /// How the state store's backend is doing (fallbacks to local state, outages, round trips), for
    /// metrics; `None` when the store has no backend (memory).
    pub fn state_health(&self) -> Option<crate::state::StoreHealth> {
        self.states.health()
    }

    /// Runs provider state on `clock` (tests shift it).
    #[must_use]
    pub fn with_state_clock(mut self, clock: StateClock) -> Self {
        self.states.set_clock(clock);
        self
    }

    /// What is remembered about `provider` (its state for its own model), for display.
    pub async fn provider_state(&self, provider: &dyn Provider) -> crate::state::ProviderState {
        self.states.get(provider.id(), provider.model()).await
    }

    /// What is remembered about `provider` now, for display: whether it can be called (ready,
    /// cooling until when, circuit open, auth failed) in data and in words, and what is left of its
    /// budgets. Reads the state store (one read per call); changes nothing.
    pub async fn provider_status(&self, provider: &dyn Provider) -> crate::state::ProviderStatus {
        self.states.status(provider.id(), provider.model()).await
    }

    /// What is remembered about each of `providers` now, in their order: one read of the state
    /// store (with Redis, one round trip for them all), for a status page or metrics.
    pub async fn provider_statuses(
        &self,
        providers: &[Arc<dyn Provider>],
    ) -> Vec<crate::state::ProviderStatus> {
        let id_models: Vec<(&str, &str)> = providers.iter().map(|p| (p.id(), p.model())).collect();
        self.states.statuses(&id_models).await
    }

    /// The budget configured for `provider` (`<ID>_RPM`, …), when the chain came from an environment.
    pub fn provider_budget(&self, provider: &str) -> Option<&crate::state::Budget> {
        self.states.budget(provider)
    }

    /// Now, on the state's clock (milliseconds since the Unix epoch).
    pub fn state_now_ms(&self) -> u64 {
        self.states.now_ms()
    }

    /// The chain, in order.
    pub fn providers(&self) -> &[Arc<dyn Provider>] {
        &self.providers
    }

    /// The settings.
    pub fn config(&self) -> &CascadeConfig {
        &self.config
    }

    /// Every provider [`Cascade::restricted`] may choose from.
    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// This cascade (settings, observers, state, retry budget, pool) with `providers` as its chain.
    /// Copies no text and builds nothing: a gateway derives one per request.
    pub(crate) fn with_chain(&self, providers: Vec<Arc<dyn Provider>>) -> Self {
        Self {
            providers,
            config: self.config.clone(),
            policy: self.policy.clone(),
            observers: self.observers.clone(),
            states: self.states.clone(),
            setup_hint: self.setup_hint.clone(),
            config_source: self.config_source.clone(),
            pool: self.pool.clone(),
        }
    }

    /// The retry decision and its budget.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
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
                Box::pin(async move {
                    // Runs inside the attempt's `gen_ai.chat` span.
                    let span = tracing::Span::current();
                    crate::spans::record_request(&span, &request);
                    // Tools are never dropped: a provider without them is skipped (Unsupported).
                    let adapted = crate::structured::adapt(provider.as_ref(), &request)?;
                    let mut response = provider.chat(&adapted).await.and_then(non_empty)?;
                    // Calls that are dropped anyway are not checked (nor retried for).
                    crate::structured::first_call_only(&request, &mut response);
                    crate::structured::check_tool_calls(&request, &response)?;
                    // A structured answer that does not validate is retried, then falls over.
                    crate::structured::check_response_format(&request, &response)?;
                    crate::spans::record_response(&span, &response);
                    Ok(response)
                })
            })
            .instrument(span)
            .await?;
        let (provider, response) = response;
        self.answered(&call, provider.as_ref(), &request, &response)
            .await;
        info!(
            provider = provider.id(),
            attempts = call.attempts.len(),
            "success with {}",
            provider.id()
        );
        Ok(CascadeResponse::new(response, call.attempts))
    }

    /// After a whole answer from `provider`: its success and its tokens (the provider's count, else
    /// an estimate) go to its state as one change (with a rate limit its headers said is used up),
    /// and its successful attempt, the last of `call`, goes to the observers.
    pub(crate) async fn answered(
        &self,
        call: &Call,
        provider: &dyn Provider,
        request: &ChatRequest,
        response: &ChatResponse,
    ) {
        let tokens = crate::state::tokens_used(response.usage, request, response.content.len());
        let mut reports = vec![Report::Success, Report::Tokens(tokens)];
        if let Some(spent) = &response.rate_limit {
            log_spent(provider, spent);
            reports.push(Report::Spent(spent.reset_after));
        }
        self.report_state(provider, &reports).await;
        if let Some(last) = call.attempts.last() {
            self.emit(&CascadeEvent::AttemptFinished {
                attempt: last.clone(),
                model: response.model.clone(),
                usage: response.usage,
            });
        }
    }

    /// A successful answer from `provider` used up a rate limit: it cools until the limit resets.
    pub(crate) async fn spent(&self, provider: &dyn Provider, spent: &RateLimitSpent) {
        log_spent(provider, spent);
        self.report_state(provider, &[Report::Spent(spent.reset_after)])
            .await;
    }

    /// Takes in what an attempt at `provider` did (one change), for its state.
    pub(crate) async fn report_state(&self, provider: &dyn Provider, reports: &[Report<'_>]) {
        self.states
            .report(provider.id(), provider.model(), reports)
            .await;
    }

    /// Writes the provider state changes the store kept back (a shared store writes token counts
    /// with the next check, or within a second): a process that ends awaits this first.
    pub async fn flush_state(&self) {
        self.states.flush().await;
    }

    /// Fills settings defaults into the request and rejects requests no provider could answer.
    pub(crate) fn prepare_request(
        &self,
        mut request: ChatRequest,
    ) -> Result<ChatRequest, CascadeError> {
        if self.providers.is_empty() {
            let error = Error::config("no provider is configured");
            return Err(CascadeError::before_any_attempt(&error, self.setup_hint()));
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
            streaming: false,
            hedged: Vec::new(),
            probing: Vec::new(),
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
    /// caller, which knows the model and usage. Three steps: each provider in order
    /// ([`Cascade::try_provider`]), then the last resort (providers that can prepare themselves), then
    /// the report of every attempt.
    pub(crate) async fn run<T>(
        &self,
        call: &mut Call,
        attempt_fn: impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Result<(Arc<dyn Provider>, T), CascadeError> {
        let mut preparable: Vec<Arc<dyn Provider>> = Vec::new();
        let mut stop: Option<Error> = None;
        // When every provider is skipped: first one probe through an open breaker, then one wait for
        // the soonest to come back, then a report of when each does.
        let mut probe: Option<String> = None;
        let mut waited = false;
        loop {
            let first = call.attempts.len();
            for (index, provider) in self.providers.iter().enumerate() {
                if index > 0 {
                    self.announce_fallback(index);
                }
                let force = probe.as_deref() == Some(provider.id());
                match self
                    .try_provider(call, index, &attempt_fn, &mut preparable, force)
                    .await
                {
                    ProviderOutcome::Answered(answering, value) => return Ok((answering, value)),
                    ProviderOutcome::MoveOn => {}
                    ProviderOutcome::Stop(error) => {
                        stop = Some(error);
                        break;
                    }
                }
            }
            let pass = &call.attempts[first..];
            if stop.is_some() || pass.iter().any(|a| a.outcome != Outcome::Skipped) {
                break;
            }
            if probe.is_none()
                && let Some(open) = pass.iter().find(|a| {
                    a.skip
                        .as_ref()
                        .is_some_and(|s| s.reason == SkipReason::CircuitOpen)
                })
            {
                probe = Some(open.provider.clone());
                continue;
            }
            let soonest = self.soonest(pass);
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            match soonest {
                Some(wait) if !waited && wait < remaining => {
                    waited = true;
                    info!(
                        wait_ms = wait.as_millis(),
                        "every provider is skipped: waiting {wait:?} for the soonest"
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => {
                    let report =
                        CascadeError::all_skipped(std::mem::take(&mut call.attempts), soonest);
                    error!(category = %report.category, "{}", report.message);
                    return Err(report);
                }
            }
        }
        if stop.is_none()
            && let Some(answer) = self.last_resort(call, preparable, &attempt_fn).await
        {
            return Ok(answer);
        }
        Err(self.exhausted(call, stop.as_ref()))
    }

    /// How long until the first of `skipped` comes back (none when none says when).
    fn soonest(&self, skipped: &[Attempt]) -> Option<Duration> {
        let now = self.states.now_ms();
        skipped
            .iter()
            .filter_map(|a| a.skip.as_ref()?.until_ms)
            .min()
            .map(|until| Duration::from_millis(until.saturating_sub(now)))
    }

    /// Asks the state whether `provider` may be called now. A spent budget whose slot opens within
    /// `LLM_MAX_RETRY_WAIT` (and the time left) is waited for; otherwise the skip is recorded.
    async fn admit(
        &self,
        call: &mut Call,
        provider: &Arc<dyn Provider>,
        force: bool,
    ) -> Result<(), Skip> {
        let (id, model) = (provider.id(), provider.model());
        let mut verdict = self.states.check(id, model, force).await;
        if let Verdict::Skip(skip) = &verdict
            && matches!(skip.reason, SkipReason::Budget { .. })
            && let Some(until) = skip.until_ms
        {
            let wait = Duration::from_millis(until.saturating_sub(self.states.now_ms()));
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            if wait <= self.config.max_retry_wait && wait < remaining {
                self.wait_before_retry(
                    provider,
                    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                )
                .await;
                verdict = self.states.check(id, model, force).await;
            }
        }
        let Verdict::Skip(skip) = verdict else {
            call.note_probe(id, &verdict);
            return Ok(());
        };
        warn!(provider = id, "skipping {id}: {skip}");
        let record = Attempt::skipped(id, skip.clone());
        call.attempts.push(record.clone());
        self.emit(&CascadeEvent::AttemptFinished {
            attempt: record,
            model: model.to_owned(),
            usage: None,
        });
        Err(skip)
    }

    /// One provider's attempts: retried as the policy decides. A provider that can fix the failure by
    /// preparing itself (Ollama pulling its model) does so now (`eager`) or is kept in `preparable` for
    /// the last resort.
    async fn try_provider<T>(
        &self,
        call: &mut Call,
        index: usize,
        attempt_fn: &impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
        preparable: &mut Vec<Arc<dyn Provider>>,
        force: bool,
    ) -> ProviderOutcome<T> {
        let provider = &self.providers[index];
        // A hedge already made (and failed) this provider's first attempt: its turn goes on from there.
        let mut hedged = call
            .hedged
            .iter()
            .position(|(at, _)| *at == index)
            .map(|at| call.hedged.swap_remove(at).1);
        if hedged.is_none() {
            // A skipped provider costs no network call (and pays nothing into the retry budget).
            if self.admit(call, provider, force).await.is_err() {
                return ProviderOutcome::MoveOn;
            }
            // A first attempt is a request: it pays into the retry budget.
            self.policy.budget().deposit();
        }
        let mut attempt = 1;
        // A provider prepares at most once per call: a server that still reports the model missing
        // after a successful pull must not make the cascade pull again and again.
        let mut prepared = false;
        loop {
            let error = match hedged.take() {
                Some(error) => error,
                None => match self.attempt_hedged(call, index, attempt, attempt_fn).await {
                    Raced::Answered(value) => {
                        return ProviderOutcome::Answered(provider.clone(), value);
                    }
                    Raced::HedgeWon(at, value) => {
                        return ProviderOutcome::Answered(self.providers[at].clone(), value);
                    }
                    Raced::Failed(error) => error,
                },
            };
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
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            let decision = self.policy.decide(&error, attempt, remaining);
            // A hedge may have ended after this attempt: the decision goes on this provider's record.
            if let Some(record) = call
                .attempts
                .iter_mut()
                .rev()
                .find(|a| a.provider == provider.id())
            {
                record.decision = Some(decision);
            }
            match decision {
                Decision::Retry { waited_ms } => {
                    self.wait_before_retry(provider, waited_ms).await;
                    attempt += 1;
                }
                Decision::NextProvider { .. } => return ProviderOutcome::MoveOn,
                Decision::Stop => return ProviderOutcome::Stop(error),
            }
        }
    }

    pub(crate) async fn wait_before_retry(&self, provider: &Arc<dyn Provider>, waited_ms: u64) {
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
    }

    /// After every provider failed: the providers that can prepare themselves do so, one at a time,
    /// and each gets one more attempt with a fresh deadline.
    async fn last_resort<T>(
        &self,
        call: &mut Call,
        preparable: Vec<Arc<dyn Provider>>,
        attempt_fn: &impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Option<(Arc<dyn Provider>, T)> {
        for provider in preparable {
            if self.prepare(&provider).await.is_err() {
                continue;
            }
            // A fresh budget: the user asked to wait for the download and then be answered.
            call.deadline = Instant::now() + self.config.deadline;
            let next = call
                .attempts
                .iter()
                .filter(|a| a.provider == provider.id())
                .count()
                + 1;
            let attempt = u32::try_from(next).unwrap_or(u32::MAX);
            if let Ok(value) = self.attempt(call, &provider, attempt, attempt_fn).await {
                return Some((provider, value));
            }
        }
        None
    }

    /// The report of a call whose every attempt failed.
    fn exhausted(&self, call: &mut Call, stop: Option<&Error>) -> CascadeError {
        let mut report = CascadeError::exhausted(std::mem::take(&mut call.attempts), stop);
        // A local server that is not running, or the embedded model with no file to load: nothing on
        // this machine can answer and no cloud key is set.
        let cannot_run = |a: &Attempt| {
            a.outcome == Outcome::Failed(ErrorKind::NotRunning)
                || (a.outcome == Outcome::Failed(ErrorKind::Config) && self.is_local(&a.provider))
        };
        if report.attempts.iter().all(cannot_run) {
            self.nothing_runs(&mut report);
        } else if self.only_local_failed(&report) {
            // Only local providers were tried (the embedded model among them) and none answered: a
            // fresh machine with no keys, so say how to add one.
            report.hint = format!("{} {}", report.hint, self.setup_hint());
        }
        if self.config.private {
            report.message.push_str(
                " (privacy mode is on: LLM_PRIVATE=true, so only local providers were tried)",
            );
        }
        error!(category = %report.category, attempts = report.attempts.len(), "{}", report.message);
        report
    }

    /// Whether `id` is a local provider of this chain.
    fn is_local(&self, id: &str) -> bool {
        self.providers.iter().any(|p| p.id() == id && p.is_local())
    }

    /// Whether every attempt in `report` was at a local provider.
    fn only_local_failed(&self, report: &CascadeError) -> bool {
        report.attempts.iter().all(|a| self.is_local(&a.provider))
    }

    /// Only local servers were in the chain and none runs (a fresh machine with no keys): the problem
    /// to act on is configuration, not the network. The attempts stay in the report.
    fn nothing_runs(&self, report: &mut CascadeError) {
        let servers: Vec<&str> = self.providers.iter().map(|p| p.id()).collect();
        report.kind = ErrorKind::Config;
        report.category = ErrorKind::Config.category();
        report.message = format!(
            "no provider is configured: only local servers are in the chain ({}) and none is running",
            servers.join(", ")
        );
        report.hint = format!("{} {}", self.setup_hint(), report.hint);
    }

    pub(crate) fn announce_fallback(&self, index: usize) {
        let (from, to) = (self.providers[index - 1].id(), self.providers[index].id());
        warn!(from, to, "falling back from {from} to {to}");
        self.emit(&CascadeEvent::Fallback {
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }

    /// One attempt at one provider, bounded by the provider's timeout and the request deadline.
    pub(crate) async fn attempt<T>(
        &self,
        call: &mut Call,
        provider: &Arc<dyn Provider>,
        attempt: u32,
        attempt_fn: &impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Result<T, Error> {
        let running = self.start_attempt(call, provider, attempt);
        let result = running.bounded(attempt_fn(provider.clone())).await;
        self.finish_attempt(call, running, result).await
    }

    /// Announces an attempt and opens its span; [`Running::bounded`] runs it,
    /// [`Cascade::finish_attempt`] records it.
    fn start_attempt(&self, call: &Call, provider: &Arc<dyn Provider>, attempt: u32) -> Running {
        let id = provider.id();
        let started = Instant::now();
        let remaining = call.deadline.saturating_duration_since(started);
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
            gen_ai.response.model = tracing::field::Empty,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            attempt,
            error.r#type = tracing::field::Empty,
        );
        Running {
            provider: provider.clone(),
            attempt,
            started,
            limit: provider.timeout().min(remaining),
            span,
        }
    }

    /// Records how an attempt ended: in the provider's state (a stream's first token waits for the
    /// stream's end), in the call's record, and to the observers (a success's event is left to the
    /// caller, which knows the model and usage).
    async fn finish_attempt<T>(
        &self,
        call: &mut Call,
        running: Running,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let Running {
            provider,
            attempt,
            started,
            span,
            ..
        } = running;
        let (id, elapsed) = (provider.id(), started.elapsed());
        // A success goes to the state with its tokens, when the answer is whole: from
        // `Cascade::answered`, or when a stream ends.
        if let Err(error) = &result {
            self.states
                .report(id, provider.model(), &[Report::Failure(error)])
                .await;
        }
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

    /// Records an attempt that lost a hedge race to `winner`: cancelled (its future was dropped, so
    /// its connection is closed), neither a success nor a failure of its provider.
    async fn record_lost(&self, call: &mut Call, running: Running, winner: &str) {
        let id = running.provider.id();
        info!(provider = id, "{id} lost the hedge to {winner}: cancelled");
        if call.probing.iter().any(|p| p == id) {
            let model = running.provider.model();
            self.states
                .report(id, model, &[Report::ProbeCancelled])
                .await;
        }
        let mut record = Attempt::cancelled(id, running.attempt, running.started.elapsed());
        record.message = Some(format!("hedged: lost to {winner}"));
        call.attempts.push(record.clone());
        self.emit(&CascadeEvent::AttemptFinished {
            attempt: record,
            model: running.provider.model().to_owned(),
            usage: None,
        });
    }

    /// The attempt `attempt` at provider `index`, hedged when `LLM_HEDGE_AFTER` is set: once it has
    /// produced nothing for that long, the first attempt at the next provider the state admits runs
    /// beside it. The first to succeed wins and the other's future is dropped. A failure while the
    /// other still runs is recorded as usual and the other is awaited; the hedge's failure waits in
    /// `call.hedged` for its provider's turn.
    async fn attempt_hedged<T>(
        &self,
        call: &mut Call,
        index: usize,
        attempt: u32,
        attempt_fn: &impl Fn(Arc<dyn Provider>) -> AttemptFuture<T>,
    ) -> Raced<T> {
        let provider = &self.providers[index];
        let Some(after) = self
            .config
            .hedge_after
            .filter(|_| self.config.auto_fallback)
        else {
            return Raced::from(self.attempt(call, provider, attempt, attempt_fn).await);
        };
        let running = self.start_attempt(call, provider, attempt);
        let mut first = Box::pin(running.bounded(attempt_fn(provider.clone())));
        let early = tokio::select! {
            result = &mut first => Some(result),
            () = tokio::time::sleep(after) => None,
        };
        if let Some(result) = early {
            return Raced::from(self.finish_attempt(call, running, result).await);
        }
        let Some(at) = self.hedge_partner(call, index).await else {
            let result = first.await;
            return Raced::from(self.finish_attempt(call, running, result).await);
        };
        let partner = &self.providers[at];
        warn!(
            provider = provider.id(),
            hedge = partner.id(),
            "nothing from {} after {after:?}: hedging with {}",
            provider.id(),
            partner.id()
        );
        let hedge = self.start_attempt(call, partner, 1);
        let second = Box::pin(hedge.bounded(attempt_fn(partner.clone())));
        self.race(call, (running, first), (hedge, second), at).await
    }

    /// An attempt (`first`) and its hedge (`second`, at place `at` in the chain) side by side: the
    /// first to succeed wins and the other's future is dropped (recorded as lost); a failure is
    /// recorded at once and the other awaited.
    async fn race<T, F, H>(
        &self,
        call: &mut Call,
        (running, mut first): (Running, F),
        (hedge, mut second): (Running, H),
        at: usize,
    ) -> Raced<T>
    where
        F: Future<Output = Result<T, Error>> + Unpin,
        H: Future<Output = Result<T, Error>> + Unpin,
    {
        let (id, hedge_id) = (running.provider.clone(), hedge.provider.clone());
        tokio::select! {
            result = &mut first => match result {
                Ok(value) => {
                    drop(second);
                    self.record_lost(call, hedge, id.id()).await;
                    Raced::from(self.finish_attempt(call, running, Ok(value)).await)
                }
                Err(error) => {
                    let error = self.finish_attempt(call, running, Err::<T, _>(error)).await;
                    let result = second.await;
                    match self.finish_attempt(call, hedge, result).await {
                        Ok(value) => Raced::HedgeWon(at, value),
                        Err(hedge_error) => {
                            call.hedged.push((at, hedge_error));
                            Raced::from(error)
                        }
                    }
                }
            },
            result = &mut second => match result {
                Ok(value) => {
                    drop(first);
                    self.record_lost(call, running, hedge_id.id()).await;
                    let value = self.finish_attempt(call, hedge, Ok(value)).await;
                    value.map_or_else(Raced::Failed, |value| Raced::HedgeWon(at, value))
                }
                Err(error) => {
                    if let Err(error) = self.finish_attempt(call, hedge, Err::<T, _>(error)).await {
                        call.hedged.push((at, error));
                    }
                    let result = first.await;
                    Raced::from(self.finish_attempt(call, running, result).await)
                }
            },
        }
    }

    /// The provider to hedge the attempt at `index` with: the next one in the chain not yet tried in
    /// this call that its state admits (taking its request slot), when the retry budget can pay for
    /// a hedge (a second request in flight is extra load, like a retry).
    async fn hedge_partner(&self, call: &mut Call, index: usize) -> Option<usize> {
        if !self.policy.budget().can_withdraw() || Instant::now() >= call.deadline {
            return None;
        }
        for (at, provider) in self.providers.iter().enumerate().skip(index + 1) {
            let (id, model) = (provider.id(), provider.model());
            if call.attempts.iter().any(|a| a.provider == id) {
                continue;
            }
            let verdict = self.states.check(id, model, false).await;
            if let Verdict::Skip(skip) = verdict {
                info!(provider = id, "not hedging with {id}: {skip}");
                continue;
            }
            call.note_probe(id, &verdict);
            return self.policy.budget().withdraw().then_some(at);
        }
        None
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

/// An attempt under way: its provider and number, when it started, its bound and its span.
struct Running {
    provider: Arc<dyn Provider>,
    attempt: u32,
    started: Instant,
    /// The provider's timeout, or the time left before the deadline when that is shorter.
    limit: Duration,
    span: Span,
}

impl Running {
    /// `future` bounded by the attempt's limit, in its span. Borrows nothing, so that two attempts
    /// can run side by side (a hedge) while the call records either.
    fn bounded<T>(
        &self,
        future: AttemptFuture<T>,
    ) -> impl Future<Output = Result<T, Error>> + use<T> {
        let (provider, limit) = (self.provider.clone(), self.limit);
        tokio::time::timeout(limit, future)
            .instrument(self.span.clone())
            .map(move |outcome| {
                outcome.unwrap_or_else(|_| {
                    Err(timeout_error(
                        provider.as_ref(),
                        limit,
                        limit < provider.timeout(),
                    ))
                })
            })
    }
}

/// How a (possibly hedged) attempt ended.
enum Raced<T> {
    /// The attempt's own provider answered.
    Answered(T),
    /// The hedge, at this place in the chain, answered first.
    HedgeWon(usize, T),
    /// The attempt failed (and so did its hedge, if one started).
    Failed(Error),
}

impl<T> From<Result<T, Error>> for Raced<T> {
    fn from(result: Result<T, Error>) -> Self {
        result.map_or_else(Raced::Failed, Raced::Answered)
    }
}

/// How one provider's turn ended.
enum ProviderOutcome<T> {
    /// It (or the provider that hedged it) answered.
    Answered(Arc<dyn Provider>, T),
    /// It failed; the next provider's turn.
    MoveOn,
    /// It failed and the call stops here (deadline, fallback disabled).
    Stop(Error),
}

/// Notes on the last attempt what the cascade did next.
pub(crate) fn set_decision(call: &mut Call, decision: Decision) {
    if let Some(last) = call.attempts.last_mut() {
        last.decision = Some(decision);
    }
}

/// An answer with no text that is not a tool call is not an answer: a classified failure of the
/// attempt (retried, then the next provider), never an empty success.
/// Says that `provider` has used up a rate limit (its headers said 0 left): it is skipped until then.
fn log_spent(provider: &dyn Provider, spent: &RateLimitSpent) {
    info!(
        provider = provider.id(),
        header = spent.header,
        "{} has used up a rate limit ({}: 0): skipped for {:?}",
        provider.id(),
        spent.header,
        spent.reset_after
    );
}

fn non_empty(response: ChatResponse) -> Result<ChatResponse, Error> {
    // Calls without text are an answer, whatever reason the provider gave (Ollama says `stop`).
    if response.content.is_empty()
        && response.tool_calls.is_empty()
        && let Some(error) = empty_answer(&response.finish_reason)
    {
        return Err(error.with_provider(response.provider));
    }
    Ok(response)
}

/// The error for an answer that ended (`reason`) before any text, or `None` when ending without text
/// is an answer (a tool call). A filtered answer keeps its kind ([`ErrorKind::ContentFilter`]: another
/// provider may answer, the same one will not); anything else is [`ErrorKind::MalformedAnswer`].
pub(crate) fn empty_answer(reason: &FinishReason) -> Option<Error> {
    match reason {
        FinishReason::ToolCalls => None,
        FinishReason::ContentFilter => Some(Error::new(
            ErrorKind::ContentFilter,
            "the provider filtered the answer and returned no text",
        )),
        FinishReason::Length => Some(Error::new(
            ErrorKind::MalformedAnswer,
            "the provider returned an empty answer (the token limit was reached before any text)",
        )),
        FinishReason::Stop | FinishReason::Other(_) => Some(Error::new(
            ErrorKind::MalformedAnswer,
            "the provider returned an empty answer",
        )),
    }
}

pub(crate) fn timeout_error(provider: &dyn Provider, limit: Duration, by_deadline: bool) -> Error {
    let message = if by_deadline {
        format!("the request deadline (LLM_DEADLINE) ran out after this attempt had {limit:?}")
    } else {
        format!("no answer within {limit:?} (the provider's timeout)")
    };
    Error::new(ErrorKind::Timeout, message).with_provider(provider.id())
}

fn pinned_id(registry: &Registry, env: &dyn EnvSource, name: &str) -> Result<&'static str, Error> {
    let id = resolve_provider(name, registry)?;
    let Some(registration) = registry.get(id) else {
        return Err(Error::config(format!("unknown provider `{id}`")));
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
    hint
}
