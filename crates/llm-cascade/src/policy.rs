//! The retry decision as a small policy object (tower's `Policy` is the model): given a failed attempt,
//! it says "again after this wait", "next provider" or "stop". A retry budget caps retries relative to
//! requests, so that a storm of failures cannot multiply the load on a struggling provider.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use llm_core::{Error, ErrorKind};

use crate::config::CascadeConfig;
use crate::report::{Decision, MoveReason};

/// The budget counts in thousandths of a retry, so that the arithmetic is exact.
const RETRY: u32 = 1000;
/// Retries allowed per request sent, once the reserve is spent (tower's default: 20 %).
const PER_REQUEST: u32 = RETRY / 5;
/// Retries allowed before any request paid for them (10), and the most a calm period can save up: a few
/// failing calls still get their retries, a storm gets at most these plus 20 %.
const RESERVE: u32 = 10 * RETRY;

/// A shared account of retries: every first attempt at a provider deposits a fifth of a retry, every
/// retry withdraws one. Shared by the clones of a cascade (and all its providers).
#[derive(Debug, Clone)]
pub(crate) struct RetryBudget {
    balance: Arc<Mutex<u32>>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            balance: Arc::new(Mutex::new(RESERVE)),
        }
    }
}

impl RetryBudget {
    /// A request was sent (a first attempt at a provider).
    pub(crate) fn deposit(&self) {
        let mut balance = self.balance.lock().unwrap_or_else(PoisonError::into_inner);
        *balance = (*balance + PER_REQUEST).min(RESERVE);
    }

    /// Whether one retry could be paid for now (a hedge checks before it looks for a provider).
    pub(crate) fn can_withdraw(&self) -> bool {
        *self.balance.lock().unwrap_or_else(PoisonError::into_inner) >= RETRY
    }

    /// Takes one retry from the budget; false when it is spent. A hedge pays like a retry: a second
    /// request in flight is extra load on the providers, as a retry is.
    pub(crate) fn withdraw(&self) -> bool {
        let mut balance = self.balance.lock().unwrap_or_else(PoisonError::into_inner);
        if *balance >= RETRY {
            *balance -= RETRY;
            true
        } else {
            false
        }
    }
}

/// What to do after a failed attempt: the settings of a cascade plus its retry budget.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    config: CascadeConfig,
    budget: RetryBudget,
}

impl RetryPolicy {
    /// The policy of `config`, with a fresh budget.
    pub(crate) fn new(config: CascadeConfig) -> Self {
        Self {
            config,
            budget: RetryBudget::default(),
        }
    }

    /// The budget, for depositing a request.
    pub(crate) fn budget(&self) -> &RetryBudget {
        &self.budget
    }

    /// The decision after `error` on attempt number `attempt`, with `remaining` time before the
    /// deadline. A `Retry` has already been paid for from the budget.
    pub(crate) fn decide(&self, error: &Error, attempt: u32, remaining: Duration) -> Decision {
        let auto_fallback = self.config.auto_fallback;
        if remaining.is_zero() || (!auto_fallback && !error.is_retryable()) {
            return Decision::Stop;
        }
        // A refusal is about the request, not the provider: another provider is not asked unless the
        // user chose so (`LLM_CONTENT_FILTER_FALLBACK`).
        if error.kind() == ErrorKind::ContentFilter && !self.config.content_filter_fallback {
            return Decision::Stop;
        }
        let move_on = |reason| {
            if auto_fallback {
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
        // Checked last, so that only a retry that would really happen spends the budget.
        if !self.budget.withdraw() {
            return move_on(MoveReason::RetryBudget);
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy::new(CascadeConfig {
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            jitter: false,
            ..CascadeConfig::default()
        })
    }

    const PLENTY: Duration = Duration::from_secs(60);

    #[test]
    fn retryable_errors_back_off_exponentially_until_attempts_run_out() {
        let policy = policy();
        let error = Error::new(ErrorKind::ServerError, "500");
        assert_eq!(
            policy.decide(&error, 1, PLENTY),
            Decision::Retry { waited_ms: 100 }
        );
        assert_eq!(
            policy.decide(&error, 2, PLENTY),
            Decision::Retry { waited_ms: 200 }
        );
        assert_eq!(
            policy.decide(&error, 3, PLENTY),
            Decision::NextProvider {
                reason: MoveReason::AttemptsExhausted
            }
        );
    }

    #[test]
    fn hints_not_retryable_kinds_and_the_deadline() {
        let policy = policy();
        let limited = |wait| Error::new(ErrorKind::RateLimit, "429").with_retry_after(Some(wait));
        assert_eq!(
            policy.decide(&limited(Duration::from_millis(700)), 1, PLENTY),
            Decision::Retry { waited_ms: 700 }
        );
        assert_eq!(
            policy.decide(&limited(Duration::from_secs(30)), 1, PLENTY),
            Decision::NextProvider {
                reason: MoveReason::WaitTooLong
            }
        );
        assert_eq!(
            policy.decide(&Error::new(ErrorKind::Auth, "401"), 1, PLENTY),
            Decision::NextProvider {
                reason: MoveReason::NotRetryable
            }
        );
        let error = Error::new(ErrorKind::ServerError, "500");
        assert_eq!(
            policy.decide(&error, 1, Duration::from_millis(50)),
            Decision::NextProvider {
                reason: MoveReason::WaitTooLong
            }
        );
        assert_eq!(policy.decide(&error, 1, Duration::ZERO), Decision::Stop);
    }

    #[test]
    fn the_budget_caps_retries_relative_to_requests() {
        let policy = policy();
        let error = Error::new(ErrorKind::ServerError, "500");
        // The reserve: ten retries with no request paid for them.
        for _ in 0..10 {
            assert!(matches!(
                policy.decide(&error, 1, PLENTY),
                Decision::Retry { .. }
            ));
        }
        assert_eq!(
            policy.decide(&error, 1, PLENTY),
            Decision::NextProvider {
                reason: MoveReason::RetryBudget
            }
        );
        // Then one retry per five requests.
        for _ in 0..4 {
            policy.budget().deposit();
        }
        assert!(matches!(
            policy.decide(&error, 1, PLENTY),
            Decision::NextProvider { .. }
        ));
        policy.budget().deposit();
        assert!(matches!(
            policy.decide(&error, 1, PLENTY),
            Decision::Retry { .. }
        ));
        // A calm period saves up no more than the reserve.
        for _ in 0..1000 {
            policy.budget().deposit();
        }
        let retries = (0..100)
            .filter(|_| matches!(policy.decide(&error, 1, PLENTY), Decision::Retry { .. }))
            .count();
        assert_eq!(retries, 10);
    }
}
