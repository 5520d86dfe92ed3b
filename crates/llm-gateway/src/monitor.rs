//! What the gateway knows about itself: Prometheus metrics and a per-provider board for `/v1/providers`
//! and the status page. Both are bounded: counters and histograms, the last error per provider, and a
//! ring of the most recent failures — never one entry per request.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_cascade::{
    CascadeEvent, Condition, ErrorKind, Observer, Outcome, ProviderStatus, StoreHealth,
};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

/// How many recent failures the status page keeps.
pub const RECENT_FAILURES: usize = 20;

/// Labels of the request and attempt counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Labels {
    provider: String,
    outcome: String,
}

/// Labels of the rejection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Labels of the provider-state gauge: one series per condition, 1 for the current one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    provider: String,
    state: &'static str,
}

/// Labels of the budget gauge: `rpm`, `rpd`, `tpm`, `tpd`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BudgetLabels {
    provider: String,
    budget: String,
}

/// Latency buckets in seconds, from 5 ms to 2 min.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// The Prometheus metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    attempts: Family<Labels, Counter>,
    rejected: Family<Reason, Counter>,
    latency: Histogram,
    ttft: Histogram,
    in_flight: Gauge,
    provider_state: Family<StateLabels, Gauge>,
    budget_remaining: Family<BudgetLabels, Gauge>,
    usage_dropped: Mirrored,
    store_reachable: Gauge,
    store_fallbacks: Mirrored,
    store_round_trips: Mirrored,
}

/// A counter that follows a total kept elsewhere (the usage writer's drops, the state store's
/// fallbacks), read at scrape time: it grows by the difference since the last scrape.
#[derive(Debug, Default)]
struct Mirrored {
    counter: Counter,
    seen: AtomicU64,
}

impl Mirrored {
    fn follow(&self, total: u64) {
        let seen = self.seen.fetch_max(total, Ordering::Relaxed);
        if total > seen {
            self.counter.inc_by(total - seen);
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `cascade_gateway` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cascade_gateway");
        let requests = Family::<Labels, Counter>::default();
        let attempts = Family::<Labels, Counter>::default();
        let rejected = Family::<Reason, Counter>::default();
        let latency = Histogram::new(BUCKETS);
        let ttft = Histogram::new(BUCKETS);
        let in_flight = Gauge::default();
        let provider_state = Family::<StateLabels, Gauge>::default();
        let budget_remaining = Family::<BudgetLabels, Gauge>::default();
        let usage_dropped = Mirrored::default();
        let store_reachable = Gauge::default();
        // Without a shared store nothing is unreachable: the gauge only drops to 0 during an outage.
        store_reachable.set(1);
        let store_fallbacks = Mirrored::default();
        let store_round_trips = Mirrored::default();
        registry.register(
            "requests",
            "Chat requests by the provider that answered (none when all failed) and outcome",
            requests.clone(),
        );
        registry.register(
            "attempts",
            "Provider attempts by provider and outcome (ok, cancelled or the error kind)",
            attempts.clone(),
        );
        registry.register(
            "rejected",
            "Requests refused before the cascade (unauthorized, overloaded, too_large, invalid)",
            rejected.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Chat request latency until the whole answer (streams: until their end)",
            latency.clone(),
        );
        registry.register(
            "time_to_first_token_seconds",
            "Streamed chat requests: time until the first content token",
            ttft.clone(),
        );
        registry.register("in_flight", "Chat requests being served", in_flight.clone());
        registry.register(
            "provider_state",
            "Provider state at scrape time: 1 for the current one of ready, cooling, circuit_open, \
             half_open, auth_failed",
            provider_state.clone(),
        );
        registry.register(
            "provider_budget_remaining",
            "What is left of each configured provider budget (<ID>_RPM, _RPD, _TPM, _TPD) in its window",
            budget_remaining.clone(),
        );
        registry.register(
            "usage_rows_dropped",
            "Usage log rows dropped because the writer's queue was full",
            usage_dropped.counter.clone(),
        );
        registry.register(
            "state_store_reachable",
            "0 while the shared state store (LLM_STATE_URL) is unreachable and provider state is kept \
             locally; 1 otherwise (also without a shared store)",
            store_reachable.clone(),
        );
        registry.register(
            "state_store_fallbacks",
            "State changes applied locally because the shared state store was unreachable, erroring \
             or too slow",
            store_fallbacks.counter.clone(),
        );
        registry.register(
            "state_store_round_trips",
            "Round trips to the shared state store (one per healthy attempt; background flushes \
             of deferred token counts included)",
            store_round_trips.counter.clone(),
        );
        Self {
            provider_state,
            budget_remaining,
            usage_dropped,
            store_reachable,
            store_fallbacks,
            store_round_trips,
            registry,
            requests,
            attempts,
            rejected,
            latency,
            ttft,
            in_flight,
        }
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Counts a finished chat request.
    pub fn request(&self, provider: &str, outcome: &str, elapsed: Duration) {
        self.requests
            .get_or_create(&Labels {
                provider: provider.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.latency.observe(elapsed.as_secs_f64());
    }

    /// Records a stream's time to its first token.
    pub fn first_token(&self, elapsed: Duration) {
        self.ttft.observe(elapsed.as_secs_f64());
    }

    /// Counts a request refused before the cascade.
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&Reason { reason }).inc();
    }

    /// Sets the state gauges of `provider` from its status (called at scrape time).
    pub fn provider_status(&self, provider: &str, status: &ProviderStatus) {
        let current = status.condition.as_str();
        for state in Condition::NAMES {
            let labels = StateLabels {
                provider: provider.to_owned(),
                state,
            };
            self.provider_state
                .get_or_create(&labels)
                .set(i64::from(state == current));
        }
        for left in &status.budget {
            let labels = BudgetLabels {
                provider: provider.to_owned(),
                budget: left.name.to_ascii_lowercase(),
            };
            self.budget_remaining
                .get_or_create(&labels)
                .set(i64::try_from(left.remaining).unwrap_or(i64::MAX));
        }
    }

    /// Brings the dropped-rows counter up to `total`, the observer's count so far.
    pub fn usage_dropped(&self, total: u64) {
        self.usage_dropped.follow(total);
    }

    /// Sets the shared state store's gauges from its health (called at scrape time).
    pub fn store_health(&self, health: &StoreHealth) {
        self.store_reachable.set(i64::from(health.reachable));
        self.store_fallbacks.follow(health.fallbacks);
        self.store_round_trips.follow(health.round_trips);
    }

    /// The in-flight gauge.
    pub fn in_flight(&self) -> &Gauge {
        &self.in_flight
    }

    fn attempt(&self, provider: &str, outcome: Outcome) {
        self.attempts
            .get_or_create(&Labels {
                provider: provider.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
    }
}

/// One provider's counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProviderBoard {
    /// Finished attempts.
    pub attempts: u64,
    /// Attempts that answered.
    pub successes: u64,
    /// Failed (or cancelled) attempts by kind.
    pub failures: BTreeMap<String, u64>,
    /// `successes / attempts`.
    pub success_rate: Option<f64>,
    /// Mean latency of successful attempts in milliseconds (streams: to the first token).
    pub mean_latency_ms: Option<u64>,
    /// The last failure.
    pub last_error: Option<Failure>,
    #[serde(skip)]
    latency_sum_ms: u64,
}

/// One failed attempt, as the status page shows it. Text is sanitized when recorded.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// Provider id.
    pub provider: String,
    /// The error kind (or `cancelled`).
    pub kind: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// The provider's message, sanitized.
    pub message: String,
    /// What to do about this kind.
    pub advice: String,
}

#[derive(Debug, Default)]
struct BoardState {
    providers: BTreeMap<String, ProviderBoard>,
    recent: VecDeque<Failure>,
}

/// Per-provider counts and recent failures, fed by the cascade's events.
#[derive(Debug, Default)]
pub struct Board {
    state: Mutex<BoardState>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Board {
    fn lock(&self) -> MutexGuard<'_, BoardState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A copy of one provider's counts.
    pub fn provider(&self, id: &str) -> ProviderBoard {
        self.lock().providers.get(id).cloned().unwrap_or_default()
    }

    /// The most recent failures, newest first.
    pub fn recent(&self) -> Vec<Failure> {
        self.lock().recent.iter().rev().cloned().collect()
    }

    fn record(&self, attempt: &llm_cascade::Attempt) {
        // A skip made no call (the provider was cooling, its circuit open or its budget spent): it is
        // not an attempt at the provider, as in `Stats`.
        if attempt.outcome == Outcome::Skipped {
            return;
        }
        let mut state = self.lock();
        // Looked up before inserting: the provider's name is copied once, not on every attempt.
        if !state.providers.contains_key(&attempt.provider) {
            state
                .providers
                .insert(attempt.provider.clone(), ProviderBoard::default());
        }
        let Some(board) = state.providers.get_mut(&attempt.provider) else {
            return;
        };
        board.attempts += 1;
        let failure = match attempt.outcome {
            Outcome::Ok => {
                board.successes += 1;
                board.latency_sum_ms += u64::try_from(attempt.elapsed.as_millis()).unwrap_or(0);
                None
            }
            Outcome::Failed(_) | Outcome::Cancelled | Outcome::Skipped => {
                *board
                    .failures
                    .entry(attempt.outcome.as_str().to_owned())
                    .or_default() += 1;
                Some(failure(attempt))
            }
        };
        board.success_rate = Some(board.successes as f64 / board.attempts as f64);
        board.mean_latency_ms = board.latency_sum_ms.checked_div(board.successes);
        if let Some(failure) = failure {
            board.last_error = Some(failure.clone());
            if state.recent.len() == RECENT_FAILURES {
                state.recent.pop_front();
            }
            state.recent.push_back(failure);
        }
    }
}

fn failure(attempt: &llm_cascade::Attempt) -> Failure {
    let advice = match attempt.outcome {
        Outcome::Failed(kind) => kind.advice(),
        Outcome::Ok | Outcome::Cancelled => "The client went away before the answer ended.",
        Outcome::Skipped => {
            "Skipped without a call: the provider is cooling, its circuit is open, or its budget is spent."
        }
    };
    Failure {
        at: now_secs(),
        provider: attempt.provider.clone(),
        kind: attempt.outcome.as_str().to_owned(),
        status: attempt.status,
        message: attempt
            .message
            .as_deref()
            .map(|m| llm_core::sanitize(m).into_owned())
            .unwrap_or_default(),
        advice: advice.to_owned(),
    }
}

/// The observer attached to every request's cascade: attempts into the metrics and the board.
#[derive(Debug, Default)]
pub struct Monitor {
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Per-provider board.
    pub board: Board,
}

impl Observer for Monitor {
    fn on_event(&self, event: &CascadeEvent) {
        if let CascadeEvent::AttemptFinished { attempt, .. } = event {
            self.metrics.attempt(&attempt.provider, attempt.outcome);
            self.board.record(attempt);
        }
    }
}

/// The outcome label of a failed request: its kind.
pub fn outcome_of(kind: ErrorKind) -> &'static str {
    kind.as_str()
}

#[cfg(test)]
mod tests {
    use llm_cascade::{Attempt, Error};

    use super::*;

    #[test]
    fn attempts_feed_the_metrics_and_a_bounded_board() {
        let monitor = Monitor::default();
        let ok = Attempt::ok("groq", 1, Duration::from_millis(40));
        let error = Error::new(ErrorKind::RateLimit, "slow down").with_status(429);
        let failed = Attempt::failed("groq", 1, Duration::from_millis(5), &error);
        let finished = |attempt: Attempt| CascadeEvent::AttemptFinished {
            attempt,
            model: "m".into(),
            usage: None,
        };
        monitor.on_event(&finished(ok));
        for _ in 0..RECENT_FAILURES + 5 {
            monitor.on_event(&finished(failed.clone()));
        }
        let board = monitor.board.provider("groq");
        assert_eq!(board.attempts, 1 + RECENT_FAILURES as u64 + 5);
        assert_eq!(board.mean_latency_ms, Some(40));
        assert_eq!(board.failures["rate_limit"], RECENT_FAILURES as u64 + 5);
        assert_eq!(monitor.board.recent().len(), RECENT_FAILURES);
        let text = monitor.metrics.encode();
        assert!(
            text.contains(
                r#"cascade_gateway_attempts_total{provider="groq",outcome="rate_limit"} 25"#
            ),
            "{text}"
        );
    }
}
