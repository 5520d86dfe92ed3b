//! Provider state that outlives one call: cooling after a long wait hint, a circuit breaker per
//! provider and model, auth failures that disable a key, and request/token budgets.
//!
//! The decisions are pure functions of a [`ProviderState`] and the time ([`ProviderState::check`],
//! [`ProviderState::record`]); where the state lives is a [`StateStore`] (in memory by default, a
//! SQLite table in the CLI, Redis shared by several processes with the `redis` feature). The engine
//! asks before an attempt and reports after it. Invariant: a skipped provider costs no network call,
//! and the store never fails a request.

mod memory;
#[cfg(feature = "redis")]
mod redis;
mod shared;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_core::{ChatRequest, EnvSource, Error, ErrorKind, Registry, Usage};
use serde::{Deserialize, Serialize};

pub use memory::MemoryStore;
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use shared::{
    STATE_CA_FILE_VAR, STATE_PREFIX_VAR, STATE_URL_VAR, StoreHealth, state_store_from_env,
};

/// A change to one provider's state, applied by a [`StateStore`].
pub type Change<'a> = dyn for<'s> FnMut(&'s mut ProviderState) + Send + 'a;

/// A change a store may apply later, and again when another instance changed the state first: owned,
/// and a pure function of the state it is given.
pub type Deferred = Arc<dyn Fn(&mut ProviderState) + Send + Sync>;

/// Where provider state lives. The one required method applies `change` to the state of `key`
/// atomically (for this store) and keeps the result. A store that cannot reach its backend applies
/// `change` to a local copy and never fails the caller.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// Applies `change` to the state stored under `key` (a default state when none is stored).
    async fn modify(&self, key: &str, change: &mut Change<'_>);

    /// Applies `change` (what an attempt did) to the state of `key`. A store shared by several
    /// processes may apply it to its own copy at once and write it with the next change of `key`
    /// (or within a bounded time) when it does not change what a check decides. The default applies
    /// it at once through [`StateStore::modify`].
    async fn defer(&self, key: &str, change: Deferred) {
        self.modify(key, &mut |state| change(state)).await;
    }

    /// Writes every change [`StateStore::defer`] kept back; a process awaits it before it exits.
    /// The default has nothing to write.
    async fn flush(&self) {}

    /// This process's copy of the state under `key`, when the store keeps one beside a shared backend
    /// (what it last read or wrote there, with its pending changes); `None` when it keeps none (the
    /// default: a store whose [`StateStore::modify`] costs no round trip). A check uses it to skip a
    /// provider this process already knows to be off, without a round trip ([`ProviderState::lasting_skip`]).
    async fn local_copy(&self, _key: &str) -> Option<ProviderState> {
        None
    }

    /// What is stored under each of `keys` now, for display (a status page, metrics): nothing is
    /// changed, and a shared store reads them all at once. The default reads each through
    /// [`StateStore::modify`].
    async fn read(&self, keys: &[String]) -> Vec<ProviderState> {
        let mut states = Vec::with_capacity(keys.len());
        for key in keys {
            let mut copy = ProviderState::default();
            self.modify(key, &mut |state| copy = state.clone()).await;
            states.push(copy);
        }
        states
    }

    /// How the store's backend is doing, for metrics; `None` for a store without one (memory).
    fn health(&self) -> Option<StoreHealth> {
        None
    }
}

/// Why a provider was skipped without a network call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// It asked for a wait longer than `LLM_MAX_RETRY_WAIT`, or its quota ran out.
    Cooling {
        /// What said so: `Retry-After`, `quota`, `x-ratelimit-remaining`.
        source: String,
    },
    /// Its circuit breaker is open after consecutive failures (or a probe is in flight).
    CircuitOpen,
    /// Its key failed authentication; it stays off until the key changes.
    AuthFailed,
    /// It is over a configured budget, named as its setting (`GROQ_RPM=30`).
    Budget {
        /// The setting that is spent.
        setting: String,
    },
}

/// A skip: why, and when the provider comes back (unknown for a disabled key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// Why.
    #[serde(flatten)]
    pub reason: SkipReason,
    /// When it comes back, in milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
}

impl fmt::Display for Skip {
    /// `cooling until 14:05:12 (Retry-After)`, `circuit open until 14:05:12`, `budget (GROQ_RPM=30)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let until = self
            .until_ms
            .map(|ms| format!(" until {}", clock_time(ms)))
            .unwrap_or_default();
        match &self.reason {
            SkipReason::Cooling { source } => write!(f, "cooling{until} ({source})"),
            SkipReason::CircuitOpen => write!(f, "circuit open{until}"),
            SkipReason::AuthFailed => write!(f, "auth failed: disabled until its key changes"),
            SkipReason::Budget { setting } => write!(f, "budget ({setting}){until}"),
        }
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
pub fn clock_time(unix_ms: u64) -> String {
    let secs = unix_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A fixed-window counter of requests and tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// The window's number (time / window length).
    pub index: u64,
    /// Requests started in it.
    pub requests: u64,
    /// Tokens used in it.
    pub tokens: u64,
}

impl Window {
    /// The counter for the window containing `now_ms`, reset when that is a new window.
    fn at(&mut self, now_ms: u64, length_ms: u64) -> &mut Self {
        let index = now_ms / length_ms;
        if self.index != index {
            *self = Window {
                index,
                ..Window::default()
            };
        }
        self
    }
}

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;

/// What is known about one provider and model. Plain data, so that stores can keep it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderState {
    /// Cooling until this Unix time (ms), and what said so.
    pub cooling_until_ms: Option<u64>,
    /// The source of the cooling (`Retry-After`, `quota`).
    pub cooling_source: Option<String>,
    /// Consecutive provider-health failures.
    pub failures: u32,
    /// How many times in a row the breaker opened (the cooldown doubles with each).
    pub opened: u32,
    /// The breaker is open until this Unix time (ms); after it, one probe goes through.
    pub open_until_ms: Option<u64>,
    /// A half-open probe is in flight until this time (ms): nobody else goes through meanwhile.
    pub probe_until_ms: Option<u64>,
    /// The fingerprint of a key that failed authentication.
    pub auth_failed_key: Option<u64>,
    /// This minute's requests and tokens.
    pub minute: Window,
    /// Today's (UTC) requests and tokens.
    pub day: Window,
    /// When the latest success happened (ms). A change applied in another order than it happened
    /// (a shared store re-applies this process's pending changes on top of another instance's
    /// newer write) cannot count an older failure after it.
    #[serde(default)]
    pub last_success_ms: Option<u64>,
    /// When the latest provider-health failure happened (ms): an older success applied after it
    /// closes nothing.
    #[serde(default)]
    pub last_failure_ms: Option<u64>,
}

/// Per-provider budgets (`<ID>_RPM`, `<ID>_RPD`, `<ID>_TPM`, `<ID>_TPD`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// The provider's env prefix (`GROQ`), to name a spent budget as its setting.
    pub prefix: String,
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Tokens per day.
    pub tpd: Option<u64>,
}

impl Budget {
    /// The budget of the provider with env prefix `prefix` (`GROQ`): `GROQ_RPM`, `GROQ_RPD`,
    /// `GROQ_TPM`, `GROQ_TPD`.
    ///
    /// # Errors
    /// A config error naming the variable when one is not a whole number.
    pub fn from_env(env: &dyn EnvSource, prefix: &str) -> Result<Self, Error> {
        Ok(Self {
            prefix: prefix.to_owned(),
            rpm: number(env, &format!("{prefix}_RPM"))?,
            rpd: number(env, &format!("{prefix}_RPD"))?,
            tpm: number(env, &format!("{prefix}_TPM"))?,
            tpd: number(env, &format!("{prefix}_TPD"))?,
        })
    }

    /// What is left of each set budget at `now_ms` (`RPM 28/30, TPD 990000/1000000`), or `None`
    /// when no budget is set.
    pub fn remaining(&self, state: &ProviderState, now_ms: u64) -> Option<String> {
        let parts: Vec<String> = self
            .left(state, now_ms)
            .iter()
            .map(|left| format!("{} {}/{}", left.name, left.remaining, left.limit))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// What is left of each set budget at `now_ms`, as numbers (a gateway's gauges), in the order
    /// RPM, RPD, TPM, TPD.
    pub fn left(&self, state: &ProviderState, now_ms: u64) -> Vec<BudgetLeft> {
        let (mut minute, mut day) = (state.minute, state.day);
        let (minute, day) = (*minute.at(now_ms, MINUTE_MS), *day.at(now_ms, DAY_MS));
        [
            ("RPM", self.rpm, minute.requests),
            ("RPD", self.rpd, day.requests),
            ("TPM", self.tpm, minute.tokens),
            ("TPD", self.tpd, day.tokens),
        ]
        .into_iter()
        .filter_map(|(name, limit, used)| {
            limit.map(|limit| BudgetLeft {
                name,
                limit,
                remaining: limit.saturating_sub(used),
            })
        })
        .collect()
    }
}

/// What is left of one budget in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetLeft {
    /// Which budget: `RPM`, `RPD`, `TPM` or `TPD`.
    pub name: &'static str,
    /// The configured limit.
    pub limit: u64,
    /// What is left of it.
    pub remaining: u64,
}

/// Whether a provider can be called now, as data: what [`ProviderState::describe`] says in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "condition", rename_all = "snake_case")]
pub enum Condition {
    /// Nothing keeps it from being called (its budgets aside).
    Ready,
    /// Cooling after a long wait hint or a spent quota.
    Cooling {
        /// Until when, in milliseconds since the Unix epoch.
        until_ms: u64,
        /// What said so: `Retry-After`, `quota`.
        source: String,
    },
    /// Its circuit breaker is open after consecutive failures.
    CircuitOpen {
        /// Until when (milliseconds since the Unix epoch); after it one probe goes through.
        until_ms: Option<u64>,
    },
    /// Its breaker's open period is over: the next call is the probe.
    HalfOpen,
    /// Its key failed authentication; it stays off until the key changes.
    AuthFailed,
}

impl Condition {
    /// Every condition's name, for a gauge with one series per condition.
    pub const NAMES: [&'static str; 5] = [
        "ready",
        "cooling",
        "circuit_open",
        "half_open",
        "auth_failed",
    ];

    /// Its name: `ready`, `cooling`, `circuit_open`, `half_open`, `auth_failed`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Cooling { .. } => "cooling",
            Self::CircuitOpen { .. } => "circuit_open",
            Self::HalfOpen => "half_open",
            Self::AuthFailed => "auth_failed",
        }
    }
}

/// What is remembered about one provider now, for display (a gateway's `/v1/providers`, its
/// metrics and status page): see [`crate::Cascade::provider_status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProviderStatus {
    /// Whether it can be called.
    #[serde(flatten)]
    pub condition: Condition,
    /// The condition in words, as `cascade providers` shows it (`cooling until 14:05:12
    /// (Retry-After)`, `ok (2 failures in a row)`).
    pub summary: String,
    /// Consecutive provider-health failures.
    pub failures: u32,
    /// What is left of each configured budget (empty when none is set).
    pub budget: Vec<BudgetLeft>,
}

impl ProviderStatus {
    /// The status of `state` at `now_ms`, for a provider whose key has fingerprint `key` and whose
    /// budget is `budget`.
    pub fn of(state: &ProviderState, now_ms: u64, key: u64, budget: Option<&Budget>) -> Self {
        Self {
            condition: state.condition(now_ms, key),
            summary: state.describe(now_ms, key),
            failures: state.failures,
            budget: budget.map(|b| b.left(state, now_ms)).unwrap_or_default(),
        }
    }
}

/// How the state reacts: breaker threshold and cooldowns, the cooling of a quota error with no reset.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StateSettings {
    /// Wait hints up to this long are retried, longer ones cool the provider (`LLM_MAX_RETRY_WAIT`).
    pub max_retry_wait: Duration,
    /// Consecutive provider-health failures that open the breaker (`LLM_BREAKER_FAILURES`, default 3).
    pub breaker_failures: u32,
    /// The first open period; it doubles while the provider keeps failing (`LLM_BREAKER_COOLDOWN`,
    /// default 30 s).
    pub breaker_cooldown: Duration,
    /// The longest open period (10 minutes).
    pub breaker_max_cooldown: Duration,
    /// How long a half-open probe holds the provider for itself before another may probe.
    pub probe_hold: Duration,
    /// How long a quota or credits error with no reset time cools the provider
    /// (`LLM_QUOTA_COOLDOWN`, default 1 h).
    pub quota_cooldown: Duration,
}

impl Default for StateSettings {
    fn default() -> Self {
        Self {
            max_retry_wait: Duration::from_secs(2),
            breaker_failures: 3,
            breaker_cooldown: Duration::from_secs(30),
            breaker_max_cooldown: Duration::from_secs(600),
            probe_hold: Duration::from_secs(120),
            quota_cooldown: Duration::from_secs(3600),
        }
    }
}

/// What the state says before an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead (a request slot is taken from the budgets).
    Go,
    /// Go ahead as the one half-open probe of an open breaker.
    Probe,
    /// Do not call it.
    Skip(Skip),
}

/// What an attempt did, as the state sees it.
#[derive(Debug, Clone, Copy)]
pub enum Report<'a> {
    /// It answered.
    Success,
    /// It failed.
    Failure(&'a Error),
    /// Tokens used by an answer.
    Tokens(u64),
    /// A successful answer whose headers said a rate limit is used up until this long from now
    /// (`x-ratelimit-remaining-*: 0`): cooling until then, before the next call is wasted.
    Spent(Duration),
    /// It was the half-open probe and was cancelled before it ended (it lost a hedge race): the
    /// probe is over without a verdict on the provider, so the next call probes again rather than
    /// wait out the probe's hold.
    ProbeCancelled,
}

/// What an attempt did, owned, so that a store may apply it later (and again, on a conflict).
#[derive(Debug, Clone, Copy)]
enum Fact {
    Success,
    Failure {
        kind: ErrorKind,
        retry_after: Option<Duration>,
    },
    Tokens(u64),
    Spent(Duration),
    ProbeCancelled,
}

impl From<Report<'_>> for Fact {
    fn from(report: Report<'_>) -> Self {
        match report {
            Report::Success => Self::Success,
            Report::Failure(error) => Self::Failure {
                kind: error.kind(),
                retry_after: error.retry_after(),
            },
            Report::Tokens(tokens) => Self::Tokens(tokens),
            Report::Spent(wait) => Self::Spent(wait),
            Report::ProbeCancelled => Self::ProbeCancelled,
        }
    }
}

/// The part of a [`ProviderState`] a check decides on, budgets aside: when it changes, other
/// instances must see it at once (see [`ProviderState::decisive`]). Only compared.
#[derive(Debug, PartialEq, Eq)]
pub struct Decisive<'a> {
    cooling_until_ms: Option<u64>,
    cooling_source: Option<&'a str>,
    opened: u32,
    open_until_ms: Option<u64>,
    probe_until_ms: Option<u64>,
    auth_failed_key: Option<u64>,
}

/// Kinds that say the provider is unwell (not the request's own fault).
fn is_health_failure(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ServerError
            | ErrorKind::Overloaded
            | ErrorKind::Timeout
            | ErrorKind::Network
            | ErrorKind::StreamTruncated
    )
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl ProviderState {
    /// The skip at `now_ms` that holds until its time whatever other instances do, for a provider
    /// whose key has fingerprint `key`: its key disabled, cooling, its breaker open before its time,
    /// a spent budget. Others can only lengthen these (a later cooling, more requests counted), so this
    /// process may skip on its own copy without asking a shared store. Not a probe in flight elsewhere:
    /// that one may end early. (A breaker that another instance's forced probe closed early, when its
    /// whole chain was skipped, is seen here when its open time runs out.)
    pub fn lasting_skip(&self, now_ms: u64, key: u64, budget: &Budget) -> Option<Skip> {
        // `check` on a copy: a skip changes nothing but the copy's windows.
        let verdict = self
            .clone()
            .check(now_ms, key, budget, &StateSettings::default(), false);
        let Verdict::Skip(skip) = verdict else {
            return None;
        };
        let probe_elsewhere = skip.reason == SkipReason::CircuitOpen
            && self.open_until_ms.is_some_and(|until| until <= now_ms);
        (!probe_elsewhere).then_some(skip)
    }

    /// The verdict at `now_ms` for a provider whose key has fingerprint `key`. `force` lets an open
    /// breaker through (the one probe of a fully open chain). Takes a request slot on `Go`/`Probe`.
    pub fn check(
        &mut self,
        now_ms: u64,
        key: u64,
        budget: &Budget,
        settings: &StateSettings,
        force: bool,
    ) -> Verdict {
        if let Some(failed) = self.auth_failed_key {
            if failed == key {
                return Verdict::Skip(Skip {
                    reason: SkipReason::AuthFailed,
                    until_ms: None,
                });
            }
            // A new key deserves a new chance.
            self.auth_failed_key = None;
        }
        if let Some(until) = self.cooling_until_ms.filter(|&u| u > now_ms) {
            let source = self.cooling_source.clone().unwrap_or_default();
            return Verdict::Skip(Skip {
                reason: SkipReason::Cooling { source },
                until_ms: Some(until),
            });
        }
        let probe = match self.breaker(now_ms, force) {
            Ok(probe) => probe,
            Err(skip) => return Verdict::Skip(skip),
        };
        if let Some(skip) = self.over_budget(now_ms, budget) {
            return Verdict::Skip(skip);
        }
        if probe {
            self.probe_until_ms = Some(now_ms + ms(settings.probe_hold));
        }
        self.minute.at(now_ms, MINUTE_MS).requests += 1;
        self.day.at(now_ms, DAY_MS).requests += 1;
        if probe { Verdict::Probe } else { Verdict::Go }
    }

    /// `Ok(false)` when closed, `Ok(true)` when this call is the half-open probe, else the skip.
    fn breaker(&self, now_ms: u64, force: bool) -> Result<bool, Skip> {
        let Some(open_until) = self.open_until_ms else {
            return Ok(false);
        };
        let open = Skip {
            reason: SkipReason::CircuitOpen,
            until_ms: Some(open_until),
        };
        if now_ms < open_until && !force {
            return Err(open);
        }
        match self.probe_until_ms {
            Some(until) if until > now_ms => Err(Skip {
                until_ms: Some(until),
                ..open
            }),
            _ => Ok(true),
        }
    }

    /// The first spent budget, with when its window ends.
    fn over_budget(&mut self, now_ms: u64, budget: &Budget) -> Option<Skip> {
        let minute_end = (now_ms / MINUTE_MS + 1) * MINUTE_MS;
        let day_end = (now_ms / DAY_MS + 1) * DAY_MS;
        let minute = *self.minute.at(now_ms, MINUTE_MS);
        let day = *self.day.at(now_ms, DAY_MS);
        let limits = [
            ("RPM", budget.rpm, minute.requests, minute_end),
            ("TPM", budget.tpm, minute.tokens, minute_end),
            ("RPD", budget.rpd, day.requests, day_end),
            ("TPD", budget.tpd, day.tokens, day_end),
        ];
        limits
            .into_iter()
            .find(|(_, limit, used, _)| limit.is_some_and(|l| *used >= l))
            .map(|(name, limit, _, end)| Skip {
                reason: SkipReason::Budget {
                    setting: format!("{}_{name}={}", budget.prefix, limit.unwrap_or(0)),
                },
                until_ms: Some(end),
            })
    }

    /// Takes in what an attempt did at `now_ms`, by a provider whose key has fingerprint `key`.
    pub fn record(&mut self, report: Report<'_>, now_ms: u64, key: u64, settings: &StateSettings) {
        self.take_in(Fact::from(report), now_ms, key, settings);
    }

    fn take_in(&mut self, fact: Fact, now_ms: u64, key: u64, settings: &StateSettings) {
        match fact {
            Fact::Success => {
                // Older than the latest failure (another instance's, written first): it says
                // nothing about the provider now.
                if self.last_failure_ms.is_some_and(|at| at > now_ms) {
                    return;
                }
                self.last_success_ms = self.last_success_ms.max(Some(now_ms));
                self.failures = 0;
                self.opened = 0;
                self.open_until_ms = None;
                self.probe_until_ms = None;
            }
            Fact::Tokens(tokens) => {
                self.minute.at(now_ms, MINUTE_MS).tokens += tokens;
                self.day.at(now_ms, DAY_MS).tokens += tokens;
            }
            Fact::Failure { kind, retry_after } => {
                self.record_failure(kind, retry_after, now_ms, key, settings);
            }
            Fact::Spent(wait) => self.cool(now_ms + ms(wait), "x-ratelimit-remaining"),
            Fact::ProbeCancelled => self.probe_until_ms = None,
        }
    }

    /// What a check decides on, budgets aside: cooling, the breaker and its probe, a disabled key.
    /// A change that leaves it as it was (token counts, failures below the breaker's threshold)
    /// need not reach other instances at once: a shared store's [`StateStore::defer`] decides so.
    pub fn decisive(&self) -> Decisive<'_> {
        Decisive {
            cooling_until_ms: self.cooling_until_ms,
            cooling_source: self.cooling_source.as_deref(),
            opened: self.opened,
            open_until_ms: self.open_until_ms,
            probe_until_ms: self.probe_until_ms,
            auth_failed_key: self.auth_failed_key,
        }
    }

    fn record_failure(
        &mut self,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        now_ms: u64,
        key: u64,
        settings: &StateSettings,
    ) {
        // Older than the latest success (written late): the provider has answered since, so it
        // counts against nothing and ends no probe. Its wait hint still holds.
        let stale = self.last_success_ms.is_some_and(|at| at > now_ms);
        let probing = !stale && self.probe_until_ms.take().is_some();
        match (kind, retry_after) {
            (ErrorKind::RateLimit | ErrorKind::QuotaExhausted, Some(wait))
                if wait > settings.max_retry_wait =>
            {
                self.cool(now_ms + ms(wait), "Retry-After");
            }
            (ErrorKind::QuotaExhausted, None) => {
                self.cool(now_ms + ms(settings.quota_cooldown), "quota");
            }
            (ErrorKind::Auth, _) => self.auth_failed_key = Some(key),
            _ => {}
        }
        if !is_health_failure(kind) || stale {
            return;
        }
        self.last_failure_ms = self.last_failure_ms.max(Some(now_ms));
        self.failures = self.failures.saturating_add(1);
        // An open breaker grows only when its probe fails, not with each late failure of calls that
        // were already in flight when it opened.
        let closed = self.open_until_ms.is_none();
        if probing || (closed && self.failures >= settings.breaker_failures) {
            let doubling = 1_u32 << self.opened.min(16);
            let cooldown = settings
                .breaker_cooldown
                .saturating_mul(doubling)
                .min(settings.breaker_max_cooldown);
            self.opened = self.opened.saturating_add(1);
            self.open_until_ms = Some(now_ms + ms(cooldown));
        }
    }

    fn cool(&mut self, until_ms: u64, source: &str) {
        if self.cooling_until_ms.is_none_or(|u| u < until_ms) {
            self.cooling_until_ms = Some(until_ms);
            self.cooling_source = Some(source.to_owned());
        }
    }

    /// One line for `cascade providers`: `ok`, `cooling until 14:05:12 (Retry-After)`,
    /// `circuit open until …`, `circuit half-open`, `auth failed: …` (for the key with fingerprint
    /// `key`).
    pub fn describe(&self, now_ms: u64, key: u64) -> String {
        let skip = |reason, until_ms| Skip { reason, until_ms }.to_string();
        match self.condition(now_ms, key) {
            Condition::AuthFailed => skip(SkipReason::AuthFailed, None),
            Condition::Cooling { until_ms, source } => {
                skip(SkipReason::Cooling { source }, Some(until_ms))
            }
            Condition::CircuitOpen { until_ms } => skip(SkipReason::CircuitOpen, until_ms),
            Condition::HalfOpen => "circuit half-open (the next call probes)".to_owned(),
            Condition::Ready if self.failures > 0 => {
                format!("ok ({} failures in a row)", self.failures)
            }
            Condition::Ready => "ok".to_owned(),
        }
    }

    /// Whether the provider can be called at `now_ms` (for the key with fingerprint `key`), as
    /// data; the first that applies of: auth failed, cooling, circuit open, half-open, ready.
    pub fn condition(&self, now_ms: u64, key: u64) -> Condition {
        if self.auth_failed_key == Some(key) {
            return Condition::AuthFailed;
        }
        if let Some(until_ms) = self.cooling_until_ms.filter(|&u| u > now_ms) {
            let source = self.cooling_source.clone().unwrap_or_default();
            return Condition::Cooling { until_ms, source };
        }
        match (self.breaker_state(now_ms), self.open_until_ms) {
            ("open", until_ms) => Condition::CircuitOpen { until_ms },
            ("half-open", _) => Condition::HalfOpen,
            _ => Condition::Ready,
        }
    }

    /// Whether the breaker is open at `now_ms` (`closed`, `open`, `half-open`), for display.
    pub fn breaker_state(&self, now_ms: u64) -> &'static str {
        match self.open_until_ms {
            None => "closed",
            Some(until) if until > now_ms => "open",
            Some(_) => "half-open",
        }
    }
}

/// The time the state runs on: the wall clock at start plus tokio's monotonic time since (so tests on a
/// paused clock are deterministic), plus an offset.
#[derive(Debug, Clone, Copy)]
pub struct StateClock {
    start_ms: u64,
    start: tokio::time::Instant,
}

impl StateClock {
    /// The system clock shifted by `offset_ms` (the CLI's test-only `LLM_STATE_CLOCK_OFFSET`).
    pub fn with_offset(offset_ms: i64) -> Self {
        let wall = ms(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default());
        Self {
            start_ms: wall.saturating_add_signed(offset_ms),
            start: tokio::time::Instant::now(),
        }
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.start_ms + ms(self.start.elapsed())
    }
}

impl Default for StateClock {
    fn default() -> Self {
        Self::with_offset(0)
    }
}

/// The engine's view of provider state: the store, the settings, each provider's budget and key
/// fingerprint, and the clock.
#[derive(Clone)]
pub(crate) struct States {
    store: Arc<dyn StateStore>,
    settings: Arc<StateSettings>,
    budgets: Arc<HashMap<String, Budget>>,
    keys: Arc<HashMap<String, u64>>,
    clock: StateClock,
}

impl Default for States {
    fn default() -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            settings: Arc::default(),
            budgets: Arc::default(),
            keys: Arc::default(),
            clock: StateClock::default(),
        }
    }
}

/// The store key of a provider and model.
pub(crate) fn state_key(provider: &str, model: &str) -> String {
    format!("{provider}/{model}")
}

impl States {
    /// The state of the providers in `registry`, configured from `env`.
    pub(crate) fn from_env(
        env: &dyn EnvSource,
        registry: &Registry,
        max_retry_wait: Duration,
    ) -> Result<Self, Error> {
        let mut settings = StateSettings {
            max_retry_wait,
            ..StateSettings::default()
        };
        if let Some(n) = number(env, "LLM_BREAKER_FAILURES")? {
            settings.breaker_failures = u32::try_from(n).unwrap_or(u32::MAX);
        }
        if let Some(secs) = number(env, "LLM_BREAKER_COOLDOWN_SECS")? {
            settings.breaker_cooldown = Duration::from_secs(secs);
        }
        if let Some(secs) = number(env, "LLM_QUOTA_COOLDOWN_SECS")? {
            settings.quota_cooldown = Duration::from_secs(secs);
        }
        let mut budgets = HashMap::new();
        let mut keys = HashMap::new();
        for registration in registry.iter() {
            let budget = Budget::from_env(env, registration.env_prefix)?;
            budgets.insert(registration.id.to_owned(), budget);
            let key = registration
                .key_env
                .iter()
                .find_map(|name| env.non_empty(name).ok().flatten());
            keys.insert(registration.id.to_owned(), fingerprint(key.as_deref()));
        }
        let mut states = Self {
            settings: Arc::new(settings),
            budgets: Arc::new(budgets),
            keys: Arc::new(keys),
            ..Self::default()
        };
        if let Some(store) = state_store_from_env(env)? {
            states.store = store;
        }
        Ok(states)
    }

    /// Replaces the store.
    pub(crate) fn set_store(&mut self, store: Arc<dyn StateStore>) {
        self.store = store;
    }

    /// How the store's backend is doing (`None` for memory).
    pub(crate) fn health(&self) -> Option<StoreHealth> {
        self.store.health()
    }

    /// Replaces the clock.
    pub(crate) fn set_clock(&mut self, clock: StateClock) {
        self.clock = clock;
    }

    /// Sets the longest honoured wait hint (shorter hints are retried, not remembered).
    pub(crate) fn set_max_retry_wait(&mut self, wait: Duration) {
        Arc::make_mut(&mut self.settings).max_retry_wait = wait;
    }

    /// The clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The verdict for `provider`/`model` now; `force` lets an open breaker through as a probe.
    pub(crate) async fn check(&self, provider: &str, model: &str, force: bool) -> Verdict {
        let now = self.clock.now_ms();
        let key = self.keys.get(provider).copied().unwrap_or_default();
        let empty = Budget::default();
        let budget = self.budgets.get(provider).unwrap_or(&empty);
        let settings = &self.settings;
        let stored_as = state_key(provider, model);
        if !force
            && let Some(copy) = self.store.local_copy(&stored_as).await
            && let Some(skip) = copy.lasting_skip(now, key, budget)
        {
            return Verdict::Skip(skip);
        }
        let mut verdict = Verdict::Go;
        self.store
            .modify(&stored_as, &mut |state| {
                verdict = state.check(now, key, budget, settings, force);
            })
            .await;
        verdict
    }

    /// Takes in what an attempt at `provider`/`model` did (its outcome and tokens together: one
    /// change), deferred as the store sees fit.
    pub(crate) async fn report(&self, provider: &str, model: &str, reports: &[Report<'_>]) {
        let now = self.clock.now_ms();
        let key = self.keys.get(provider).copied().unwrap_or_default();
        let settings = self.settings.clone();
        let facts: Vec<Fact> = reports.iter().map(|&report| Fact::from(report)).collect();
        let change: Deferred = Arc::new(move |state: &mut ProviderState| {
            for &fact in &facts {
                state.take_in(fact, now, key, &settings);
            }
        });
        self.store.defer(&state_key(provider, model), change).await;
    }

    /// Writes what the store kept back (see [`StateStore::flush`]).
    pub(crate) async fn flush(&self) {
        self.store.flush().await;
    }

    /// The fingerprint of `provider`'s key (0 when unknown, as for a builder chain).
    pub(crate) fn key(&self, provider: &str) -> u64 {
        self.keys.get(provider).copied().unwrap_or_default()
    }

    /// What is remembered about `provider`/`model` now, for display.
    pub(crate) async fn status(&self, provider: &str, model: &str) -> ProviderStatus {
        let state = self.get(provider, model).await;
        self.status_of(provider, &state)
    }

    /// What is remembered about each `(provider, model)` now, for display: one read of the store.
    pub(crate) async fn statuses(&self, providers: &[(&str, &str)]) -> Vec<ProviderStatus> {
        let keys: Vec<String> = providers
            .iter()
            .map(|(provider, model)| state_key(provider, model))
            .collect();
        let mut states = self.store.read(&keys).await.into_iter();
        providers
            .iter()
            .map(|(provider, _)| self.status_of(provider, &states.next().unwrap_or_default()))
            .collect()
    }

    fn status_of(&self, provider: &str, state: &ProviderState) -> ProviderStatus {
        let now = self.clock.now_ms();
        ProviderStatus::of(state, now, self.key(provider), self.budget(provider))
    }

    /// A copy of the state of `provider`/`model`.
    pub(crate) async fn get(&self, provider: &str, model: &str) -> ProviderState {
        let key = [state_key(provider, model)];
        self.store.read(&key).await.pop().unwrap_or_default()
    }

    /// The budget of `provider`, when one is set.
    pub(crate) fn budget(&self, provider: &str) -> Option<&Budget> {
        self.budgets.get(provider)
    }
}

/// Bytes of text per token in an estimate: the usual rule of thumb for English text and BPE
/// tokenizers (OpenAI's "about 4 characters per token").
const BYTES_PER_TOKEN: usize = 4;

/// The tokens an exchange used, for the budgets: the provider's count when it gave one, else an
/// estimate of one token per [`BYTES_PER_TOKEN`] bytes (rounded up) of the request's messages plus
/// the `answer_bytes` of text the provider sent.
pub(crate) fn tokens_used(usage: Option<Usage>, request: &ChatRequest, answer_bytes: usize) -> u64 {
    if let Some(usage) = usage {
        return usage.input_tokens + usage.output_tokens;
    }
    let estimate =
        |bytes: usize| u64::try_from(bytes.div_ceil(BYTES_PER_TOKEN)).unwrap_or(u64::MAX);
    let prompt: usize = request.messages.iter().map(|m| m.content.len()).sum();
    estimate(prompt) + estimate(answer_bytes)
}

/// A fingerprint of a key (a hash: the key itself is never stored). 0 for no key.
///
/// The first 8 bytes of the key's SHA-256: the same in every build, so processes built with
/// different toolchains (a fleet mid-upgrade) agree on which key failed (std's `DefaultHasher` may
/// change between releases).
pub fn fingerprint(key: Option<&str>) -> u64 {
    use sha2::Digest as _;
    let Some(key) = key else { return 0 };
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

fn number(env: &dyn EnvSource, name: &str) -> Result<Option<u64>, Error> {
    env.non_empty(name)?
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::config(format!("{name}: `{v}` is not a whole number (e.g. `30`)"))
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests;
