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
    /// Latencies of successful attempts (for streams: time to the first token).
    latency: Histogram,
    input_tokens: u64,
    output_tokens: u64,
    fallbacks: u64,
}

/// A summary of every provider seen, by id.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// One entry per provider that was attempted (or fallen back from), sorted by id.
    pub providers: BTreeMap<String, ProviderSummary>,
    /// Every provider together.
    pub total: ProviderSummary,
}

/// What one provider did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[non_exhaustive]
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
    /// 95th percentile (nearest rank) latency of successful attempts, in milliseconds: exact below 64 ms,
    /// within 1/64 (1.6 %) above (a bounded histogram, not every latency, is kept).
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
        // A skip sent nothing: it is not a request.
        if outcome == Outcome::Skipped {
            return;
        }
        let mut providers = self.lock();
        let stats = entry(&mut providers, provider);
        stats.requests += 1;
        match outcome {
            Outcome::Ok => {
                stats.successes += 1;
                stats
                    .latency
                    .record(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX));
                if let Some(usage) = usage {
                    stats.input_tokens += usage.input_tokens;
                    stats.output_tokens += usage.output_tokens;
                }
            }
            Outcome::Failed(kind) => *stats.failures.entry(kind.as_str()).or_default() += 1,
            // Counted with the failures under its own name: the attempt gave no answer.
            Outcome::Cancelled => {
                *stats
                    .failures
                    .entry(Outcome::Cancelled.as_str())
                    .or_default() += 1
            }
            Outcome::Skipped => {}
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
            total.latency.merge(&stats.latency);
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
                entry(&mut self.lock(), from).fallbacks += 1;
            }
            _ => {}
        }
    }
}

/// The counts of `id`, created on first sight; the id is copied only then (`record` is on the request
/// path).
fn entry<'a>(
    providers: &'a mut BTreeMap<String, ProviderStats>,
    id: &str,
) -> &'a mut ProviderStats {
    if !providers.contains_key(id) {
        providers.insert(id.to_owned(), ProviderStats::default());
    }
    providers
        .get_mut(id)
        .expect("the entry was inserted just above")
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn summarize(stats: &ProviderStats) -> ProviderSummary {
    ProviderSummary {
        requests: stats.requests,
        successes: stats.successes,
        failures: stats
            .failures
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), *count))
            .collect(),
        success_rate: rate(stats.successes, stats.requests),
        mean_latency_ms: stats.latency.mean(),
        p95_latency_ms: stats.latency.percentile(95),
        input_tokens: stats.input_tokens,
        output_tokens: stats.output_tokens,
        fallbacks: stats.fallbacks,
    }
}

/// Each power of two above the exact range is split into `2^SUB_BITS` = 32 buckets.
const SUB_BITS: u32 = 5;
const SUB: usize = 1 << SUB_BITS;
/// Latencies above `u32::MAX` ms (49 days) share the last bucket.
const MAX_MS: u64 = u32::MAX as u64;
/// Values below `2 × SUB` have a bucket each; each power of two from 2^6 to 2^31 has `SUB` buckets.
const BUCKETS: usize = (32 - SUB_BITS as usize + 1) * SUB;

/// A log-linear histogram of milliseconds in a fixed number of buckets (896, 7 KiB), so a long-running
/// process keeps bounded memory however many latencies it records.
///
/// Values below 64 ms are exact; above, each power of two is split into 32 buckets, so a bucket spans at
/// most 1/32 of its lower bound and a percentile (reported at the bucket's middle) is within 1/64
/// (1.6 %) of the exact value. The mean is exact (a running sum).
#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    counts: Box<[u64; BUCKETS]>,
    count: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: Box::new([0; BUCKETS]),
            count: 0,
            sum: 0,
        }
    }
}

impl Histogram {
    fn record(&mut self, ms: u64) {
        self.counts[bucket_of(ms.min(MAX_MS))] += 1;
        self.count += 1;
        self.sum += u128::from(ms);
    }

    fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    fn mean(&self) -> Option<u64> {
        (self.count > 0)
            .then(|| u64::try_from(self.sum / u128::from(self.count)).unwrap_or(u64::MAX))
    }

    /// The nearest-rank `p`th percentile: the bucket holding the smallest value with at least `p`% of
    /// the values at or below it, reported at its middle.
    fn percentile(&self, p: u8) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = (self.count * u64::from(p.min(100))).div_ceil(100).max(1);
        let mut seen = 0;
        let index = self.counts.iter().position(|&n| {
            seen += n;
            seen >= rank
        })?;
        let (low, width) = bucket_range(index);
        Some(low + width / 2)
    }
}

/// The bucket of `ms` (at most `MAX_MS`).
fn bucket_of(ms: u64) -> usize {
    let exact = 2 * SUB as u64;
    if ms < exact {
        return ms as usize;
    }
    // ms in [2^power, 2^(power+1)): its top SUB_BITS + 1 bits pick one of SUB buckets.
    let shift = ms.ilog2() - SUB_BITS;
    let index = shift as usize * SUB + (ms >> shift) as usize;
    index.min(BUCKETS - 1)
}

/// The lowest value of bucket `index` and how many values it spans.
fn bucket_range(index: usize) -> (u64, u64) {
    if index < 2 * SUB {
        return (index as u64, 1);
    }
    let shift = (index / SUB - 1) as u32;
    let low = ((index % SUB + SUB) as u64) << shift;
    (low, 1 << shift)
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

    /// The exact nearest-rank percentile of `values`.
    fn exact_percentile(values: &[u64], p: u8) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = (sorted.len() * usize::from(p)).div_ceil(100).max(1);
        sorted[rank - 1]
    }

    fn histogram_of(values: &[u64]) -> Histogram {
        let mut histogram = Histogram::default();
        for &ms in values {
            histogram.record(ms);
        }
        histogram
    }

    #[test]
    fn percentiles_below_64_ms_are_exact_nearest_ranks() {
        assert_eq!(Histogram::default().percentile(95), None);
        assert_eq!(histogram_of(&[7]).percentile(95), Some(7));
        let fifty: Vec<u64> = (1..=50).collect();
        assert_eq!(histogram_of(&fifty).percentile(95), Some(48));
        assert_eq!(histogram_of(&fifty).percentile(50), Some(25));
        assert_eq!(histogram_of(&[1, 2, 3]).percentile(95), Some(3));
        assert_eq!(histogram_of(&[1, 2, 3]).percentile(0), Some(1));
    }

    #[test]
    fn every_bucket_holds_exactly_the_values_it_claims() {
        for ms in (0..5_000).chain([u64::from(u32::MAX) - 1, u64::from(u32::MAX)]) {
            let (low, width) = bucket_range(bucket_of(ms));
            assert!(low <= ms && ms < low + width, "{ms} outside {low}+{width}");
            assert!(width == 1 || width * 32 <= low, "{ms}: bucket too wide");
        }
        let mut huge = Histogram::default();
        huge.record(u64::MAX);
        assert_eq!(huge.counts[BUCKETS - 1], 1);
    }

    #[test]
    fn p95_is_within_one_64th_of_the_exact_value() {
        let mut rng = fastrand::Rng::with_seed(95);
        for _ in 0..50 {
            // Log-uniform latencies from 1 ms to about 17 minutes: every bucket width is exercised.
            let values: Vec<u64> = (0..rng.usize(1..2_000))
                .map(|_| (1_u64 << rng.u32(0..20)) | (rng.u64(0..1 << 20) >> rng.u32(0..21)))
                .collect();
            let exact = exact_percentile(&values, 95);
            let estimate = histogram_of(&values).percentile(95).expect("p95");
            assert!(
                estimate.abs_diff(exact) * 64 <= exact,
                "p95 {estimate} vs exact {exact}"
            );
            let sum: u64 = values.iter().sum();
            assert_eq!(
                histogram_of(&values).mean(),
                Some(sum / values.len() as u64)
            );
        }
    }

    #[test]
    fn memory_stays_bounded_however_many_latencies_are_recorded() {
        let stats = Stats::new();
        let footprint = |stats: &Stats| {
            let providers = stats.lock();
            let groq = &providers["groq"];
            (
                std::mem::size_of_val(groq),
                std::mem::size_of_val(&*groq.latency.counts),
                groq.failures.len(),
            )
        };
        stats.record("groq", Outcome::Ok, Duration::from_millis(1), None);
        let before = footprint(&stats);
        for ms in 0..200_000 {
            stats.record("groq", Outcome::Ok, Duration::from_millis(ms * 7), None);
        }
        assert_eq!(footprint(&stats), before);
        assert!(before.1 <= 8 * 1024, "{} bytes of buckets", before.1);
        assert_eq!(stats.snapshot().providers["groq"].successes, 200_001);
    }

    #[test]
    fn an_empty_snapshot_has_no_rates() {
        let snapshot = Stats::new().snapshot();
        assert!(snapshot.providers.is_empty());
        let total = &snapshot.total;
        assert_eq!((total.requests, total.success_rate), (0, None));
    }
}
