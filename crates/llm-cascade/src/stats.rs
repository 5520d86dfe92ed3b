//! Per-process statistics: an [`Observer`] that counts attempts per provider.
//!
//! Attach one [`Stats`] to any number of cascades (`cascade.with_observer(stats.clone())`) and read a
//! [`StatsSnapshot`] at any time. Everything stays in memory; nothing is written anywhere. The same
//! aggregation serves persisted records too: feed them to [`Stats::record`].

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use llm_core::Usage;
use serde::Serialize;

use crate::observer::{CascadeEvent, Observer};
use crate::report::Outcome;

/// Counts per provider, updated from [`CascadeEvent`]s. Cheap to share (`Arc<Stats>`).
#[derive(Debug, Default)]
pub struct Stats {
    providers: Mutex<BTreeMap<String, ProviderStats>>,
}

/// The raw counts of one provider.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProviderStats {
    requests: u64,
    successes: u64,
    failures: BTreeMap<&'static str, u64>,
    /// Latencies of successful attempts, in milliseconds (for streams: time to the first token).
    latencies_ms: Vec<u64>,
    input_tokens: u64,
    output_tokens: u64,
    fallbacks: u64,
}

/// A summary of every provider seen, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// One entry per provider that was attempted (or fallen back from), sorted by id.
    pub providers: BTreeMap<String, ProviderSummary>,
    /// Every provider together.
    pub total: ProviderSummary,
}

/// What one provider did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProviderSummary {
    /// Attempts that finished (each retry counts).
    pub requests: u64,
    /// Attempts that answered.
    pub successes: u64,
    /// Failed attempts, by error kind (`rate_limit`, `auth`, …).
    pub failures: BTreeMap<String, u64>,
    /// `successes / requests`, from 0 to 1; `None` before any request.
    pub success_rate: Option<f64>,
    /// Mean latency of successful attempts, in milliseconds.
    pub mean_latency_ms: Option<u64>,
    /// 95th percentile (nearest rank) latency of successful attempts, in milliseconds.
    pub p95_latency_ms: Option<u64>,
    /// Prompt tokens reported by successful attempts.
    pub input_tokens: u64,
    /// Generated tokens reported by successful attempts.
    pub output_tokens: u64,
    /// How many times the cascade moved on from this provider to the next.
    pub fallbacks: u64,
}

impl Stats {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one finished attempt. `usage` counts only for successes.
    pub fn record(
        &self,
        provider: &str,
        outcome: Outcome,
        latency: Duration,
        usage: Option<Usage>,
    ) {
        let mut providers = self.lock();
        let stats = providers.entry(provider.to_owned()).or_default();
        stats.requests += 1;
        match outcome {
            Outcome::Ok => {
                stats.successes += 1;
                stats
                    .latencies_ms
                    .push(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
                if let Some(usage) = usage {
                    stats.input_tokens += usage.input_tokens;
                    stats.output_tokens += usage.output_tokens;
                }
            }
            Outcome::Failed(kind) => *stats.failures.entry(kind.as_str()).or_default() += 1,
            // Not the provider's failure, but counted so that requests = successes + the rest.
            Outcome::Cancelled => *stats.failures.entry("cancelled").or_default() += 1,
        }
    }

    /// The summary of everything counted so far.
    pub fn snapshot(&self) -> StatsSnapshot {
        let providers = self.lock();
        let mut total = ProviderStats::default();
        for stats in providers.values() {
            total.requests += stats.requests;
            total.successes += stats.successes;
            for (kind, count) in &stats.failures {
                *total.failures.entry(kind).or_default() += count;
            }
            total.latencies_ms.extend(&stats.latencies_ms);
            total.input_tokens += stats.input_tokens;
            total.output_tokens += stats.output_tokens;
            total.fallbacks += stats.fallbacks;
        }
        StatsSnapshot {
            providers: providers
                .iter()
                .map(|(id, stats)| (id.clone(), summarize(stats)))
                .collect(),
            total: summarize(&total),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, ProviderStats>> {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Observer for Stats {
    fn on_event(&self, event: &CascadeEvent) {
        match event {
            CascadeEvent::AttemptFinished { attempt, usage, .. } => {
                self.record(&attempt.provider, attempt.outcome, attempt.elapsed, *usage);
            }
            CascadeEvent::Fallback { from, .. } => {
                self.lock().entry(from.clone()).or_default().fallbacks += 1;
            }
            _ => {}
        }
    }
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn summarize(stats: &ProviderStats) -> ProviderSummary {
    let mut sorted = stats.latencies_ms.clone();
    sorted.sort_unstable();
    let count = u64::try_from(sorted.len()).unwrap_or(u64::MAX);
    let sum: u128 = sorted.iter().map(|&ms| u128::from(ms)).sum();
    ProviderSummary {
        requests: stats.requests,
        successes: stats.successes,
        failures: stats
            .failures
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), *count))
            .collect(),
        success_rate: rate(stats.successes, stats.requests),
        mean_latency_ms: (count > 0)
            .then(|| u64::try_from(sum / u128::from(count)).unwrap_or(u64::MAX)),
        p95_latency_ms: percentile(&sorted, 95),
        input_tokens: stats.input_tokens,
        output_tokens: stats.output_tokens,
        fallbacks: stats.fallbacks,
    }
}

/// The nearest-rank `p`th percentile of `sorted` (ascending): the smallest value with at least `p`% of
/// the values at or below it.
pub fn percentile(sorted: &[u64], p: u8) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() * usize::from(p.min(100)))
        .div_ceil(100)
        .max(1);
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Attempt;
    use llm_core::{Error, ErrorKind};

    fn finished(attempt: Attempt, usage: Option<Usage>) -> CascadeEvent {
        CascadeEvent::AttemptFinished {
            attempt,
            model: "m".to_owned(),
            usage,
        }
    }

    #[test]
    fn counts_successes_failures_by_kind_tokens_and_fallbacks() {
        let stats = Stats::new();
        let limited = Error::new(ErrorKind::RateLimit, "slow down").with_status(429);
        let auth = Error::new(ErrorKind::Auth, "bad key").with_status(401);
        for event in [
            finished(
                Attempt::failed("groq", 1, Duration::from_millis(5), &limited),
                None,
            ),
            finished(
                Attempt::failed("groq", 2, Duration::from_millis(7), &limited),
                None,
            ),
            CascadeEvent::Fallback {
                from: "groq".to_owned(),
                to: "openai".to_owned(),
            },
            finished(
                Attempt::failed("openai", 1, Duration::from_millis(3), &auth),
                None,
            ),
            finished(
                Attempt::ok("openai", 1, Duration::from_millis(100)),
                Some(Usage {
                    input_tokens: 10,
                    output_tokens: 4,
                }),
            ),
            finished(Attempt::ok("openai", 1, Duration::from_millis(300)), None),
            CascadeEvent::AttemptStarted {
                provider: "mistral".to_owned(),
                model: "m".to_owned(),
                attempt: 1,
            },
        ] {
            stats.on_event(&event);
        }
        let snapshot = stats.snapshot();
        assert_eq!(
            snapshot.providers.keys().collect::<Vec<_>>(),
            ["groq", "openai"]
        );
        let groq = &snapshot.providers["groq"];
        assert_eq!((groq.requests, groq.successes, groq.fallbacks), (2, 0, 1));
        assert_eq!(
            groq.failures,
            BTreeMap::from([("rate_limit".to_owned(), 2)])
        );
        assert_eq!(groq.success_rate, Some(0.0));
        assert_eq!((groq.mean_latency_ms, groq.p95_latency_ms), (None, None));

        let openai = &snapshot.providers["openai"];
        assert_eq!((openai.requests, openai.successes), (3, 2));
        assert_eq!(openai.failures, BTreeMap::from([("auth".to_owned(), 1)]));
        assert_eq!(openai.success_rate, Some(2.0 / 3.0));
        assert_eq!(openai.mean_latency_ms, Some(200));
        assert_eq!(openai.p95_latency_ms, Some(300));
        assert_eq!((openai.input_tokens, openai.output_tokens), (10, 4));

        let total = &snapshot.total;
        assert_eq!(
            (total.requests, total.successes, total.fallbacks),
            (5, 2, 1)
        );
        assert_eq!(total.success_rate, Some(0.4));
        assert_eq!(
            (total.mean_latency_ms, total.p95_latency_ms),
            (Some(200), Some(300))
        );
        assert_eq!(total.failures.values().sum::<u64>(), 3);

        let json = serde_json::to_value(&snapshot).expect("json");
        assert_eq!(json["providers"]["openai"]["failures"]["auth"], 1);
    }

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 95), None);
        assert_eq!(percentile(&[7], 95), Some(7));
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&hundred, 95), Some(95));
        assert_eq!(percentile(&hundred, 50), Some(50));
        assert_eq!(percentile(&hundred, 100), Some(100));
        assert_eq!(percentile(&[1, 2, 3], 95), Some(3));
        assert_eq!(percentile(&[1, 2, 3], 0), Some(1));
    }

    #[test]
    fn an_empty_snapshot_has_no_rates() {
        let snapshot = Stats::new().snapshot();
        assert!(snapshot.providers.is_empty());
        let total = &snapshot.total;
        assert_eq!((total.requests, total.success_rate), (0, None));
    }
}
