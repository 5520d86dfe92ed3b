//! What a cascade call tells its caller: the attempt record (on success too) and, when every provider
//! failed, a complete account with advice.

use std::fmt;
use std::time::Duration;

use llm_core::{Category, ChatResponse, Error, ErrorKind};
use serde::{Serialize, Serializer};

use crate::state::Skip;

/// The outcome of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The provider answered.
    Ok,
    /// The attempt failed with this kind.
    Failed(ErrorKind),
    /// The caller gave up on the attempt before it ended (a signal, a closed output, a dropped stream):
    /// neither the provider's success nor its failure.
    Cancelled,
    /// The provider was not called: its state said to skip it (the attempt's `skip` says why).
    Skipped,
}

impl Outcome {
    /// `"ok"`, `"cancelled"` or the kind's snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Cancelled => "cancelled",
            Outcome::Skipped => "skipped",
            Outcome::Failed(kind) => kind.as_str(),
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

fn as_millis<S: Serializer>(value: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(d) => serializer.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        None => serializer.serialize_none(),
    }
}

fn as_millis_required<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
}

/// One attempt at one provider. Built by the cascade ([`Attempt::ok`], [`Attempt::failed`]); it may
/// gain fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Attempt {
    /// Provider id.
    pub provider: String,
    /// 1 for the first attempt at this provider, 2 for its retry, …
    pub attempt: u32,
    /// What happened.
    pub outcome: Outcome,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// How long the provider asked us to wait, when it said.
    #[serde(rename = "retry_after_ms", serialize_with = "as_millis")]
    pub retry_after: Option<Duration>,
    /// How long the attempt took.
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis_required")]
    pub elapsed: Duration,
    /// The error message, for failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the cascade did next: `retry` (after `waited_ms`), `next_provider`, or `stop`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Why the provider was skipped without a call (`Outcome::Skipped`), and until when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip: Option<Skip>,
}

/// What the cascade did after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Decision {
    /// Tried the same provider again after waiting.
    Retry {
        /// The wait before the retry, in milliseconds.
        waited_ms: u64,
    },
    /// Moved on to the next provider.
    NextProvider {
        /// Why: the kind does not retry, attempts are used up, or the provider's wait hint was too long.
        reason: MoveReason,
    },
    /// Stopped: the deadline passed or fallback is disabled.
    Stop,
}

/// Why the cascade moved on from a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// This kind of error does not get better by trying again.
    NotRetryable,
    /// All attempts for this provider were used.
    AttemptsExhausted,
    /// The provider asked for a wait longer than `LLM_MAX_RETRY_WAIT` or the time left.
    WaitTooLong,
    /// The retry budget is spent: too many retries lately for the requests sent (a storm of failures).
    RetryBudget,
}

impl Attempt {
    /// A successful attempt.
    pub fn ok(provider: &str, attempt: u32, elapsed: Duration) -> Self {
        Self::ended(provider, attempt, elapsed, Outcome::Ok)
    }

    /// An attempt the caller cancelled (a signal, a closed stdout, a dropped stream) before it ended.
    pub fn cancelled(provider: &str, attempt: u32, elapsed: Duration) -> Self {
        Self::ended(provider, attempt, elapsed, Outcome::Cancelled)
    }

    fn ended(provider: &str, attempt: u32, elapsed: Duration, outcome: Outcome) -> Self {
        Self {
            provider: provider.to_owned(),
            attempt,
            outcome,
            status: None,
            retry_after: None,
            elapsed,
            message: None,
            decision: None,
            skip: None,
        }
    }

    /// A provider skipped without a network call (attempt 0: no attempt was made).
    pub fn skipped(provider: &str, skip: Skip) -> Self {
        Self {
            message: Some(format!("skipped: {skip}")),
            skip: Some(skip),
            ..Self::ended(provider, 0, Duration::ZERO, Outcome::Skipped)
        }
    }

    /// A failed attempt.
    pub fn failed(provider: &str, attempt: u32, elapsed: Duration, error: &Error) -> Self {
        Self {
            provider: provider.to_owned(),
            attempt,
            outcome: Outcome::Failed(error.kind()),
            status: error.status(),
            retry_after: error.retry_after(),
            elapsed,
            message: Some(error.message().to_owned()),
            decision: None,
            skip: None,
        }
    }
}

/// A successful cascade call. It may gain fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CascadeResponse {
    /// The answer.
    pub response: ChatResponse,
    /// Every attempt, the successful one last.
    pub attempts: Vec<Attempt>,
}

/// Every provider failed (or none was configured): the whole story and what to do.
///
/// The one error type a caller needs: a [`llm_core::Error`] from building a cascade (invalid settings, an
/// unknown provider id) converts into it with `?`, as a failure before any attempt. It may gain fields.
///
/// ```
/// use llm_cascade::{CascadeError, Error, ErrorKind};
/// let report = CascadeError::from(Error::config("LLM_MAX_ATTEMPTS must be at least 1"));
/// assert_eq!(report.kind, ErrorKind::Config);
/// assert!(report.attempts.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize)]
#[error("{message}")]
#[non_exhaustive]
pub struct CascadeError {
    /// The category the caller should act on.
    #[serde(rename = "error")]
    pub category: Category,
    /// The kind that decided the category.
    #[serde(skip)]
    pub kind: ErrorKind,
    /// One sentence.
    pub message: String,
    /// One line per attempt.
    pub details: Vec<String>,
    /// What to do, one piece of advice per kind seen.
    pub hint: String,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
    /// When every provider was skipped: how long until the first comes back (a gateway's
    /// `Retry-After`).
    #[serde(
        rename = "retry_after_ms",
        serialize_with = "as_millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after: Option<Duration>,
}

impl CascadeError {
    /// The failure of a call that could not start: no provider configured, invalid settings, an invalid
    /// request. `hint` says what to do.
    pub fn before_any_attempt(error: &Error, hint: impl Into<String>) -> Self {
        Self {
            category: error.kind().category(),
            kind: error.kind(),
            // The category says the kind; the message need not repeat it.
            message: error.message().to_owned(),
            details: Vec::new(),
            hint: hint.into(),
            attempts: Vec::new(),
            retry_after: None,
        }
    }

    /// The account of a call whose every attempt failed.
    pub fn exhausted(attempts: Vec<Attempt>, stopped_by: Option<&Error>) -> Self {
        let last_kind = attempts
            .iter()
            .rev()
            .find_map(|a| match a.outcome {
                Outcome::Failed(kind) => Some(kind),
                Outcome::Ok | Outcome::Cancelled | Outcome::Skipped => None,
            })
            .or(stopped_by.map(Error::kind))
            .unwrap_or(ErrorKind::Config);
        let providers: Vec<&str> = attempts.iter().fold(Vec::new(), |mut seen, a| {
            if !seen.contains(&a.provider.as_str()) {
                seen.push(a.provider.as_str());
            }
            seen
        });
        let mut message = format!(
            "all {} provider{} failed ({}); last error: {}",
            providers.len(),
            if providers.len() == 1 { "" } else { "s" },
            providers.join(", "),
            last_kind
        );
        if let Some(stop) = stopped_by {
            message = format!("{message}; stopped: {}", stop.message());
        }
        Self {
            category: last_kind.category(),
            kind: last_kind,
            message,
            details: attempts.iter().map(describe_attempt).collect(),
            hint: advice_for(&attempts),
            attempts,
            retry_after: None,
        }
    }

    /// The account of a call whose every provider was skipped by its state (cooling, open breaker,
    /// spent budget, failed key): when each comes back, and `retry_after` until the soonest.
    pub fn all_skipped(attempts: Vec<Attempt>, retry_after: Option<Duration>) -> Self {
        // Only failed keys: nothing comes back by waiting, the keys need fixing.
        let only_keys = attempts.iter().all(|a| {
            a.skip
                .as_ref()
                .is_some_and(|s| s.reason == crate::state::SkipReason::AuthFailed)
        });
        let kind = if only_keys {
            ErrorKind::Auth
        } else {
            ErrorKind::RateLimit
        };
        let reasons: Vec<String> = attempts
            .iter()
            .filter_map(|a| a.skip.as_ref().map(|s| format!("{} {s}", a.provider)))
            .collect();
        let mut hint = if only_keys {
            format!("{} Nothing was sent.", kind.advice())
        } else {
            String::from("Every provider is resting; nothing was sent.")
        };
        if let Some(wait) = retry_after {
            hint.push_str(&format!(" Try again in {} s.", wait.as_secs_f64().ceil()));
        }
        Self {
            category: kind.category(),
            kind,
            message: format!("every provider is skipped for now: {}", reasons.join("; ")),
            details: attempts.iter().map(describe_attempt).collect(),
            hint,
            attempts,
            retry_after,
        }
    }
}

impl CascadeResponse {
    /// The record of a successful call: the answer and every attempt that led to it.
    pub fn new(response: ChatResponse, attempts: Vec<Attempt>) -> Self {
        Self { response, attempts }
    }

    /// The answer's text.
    pub fn text(&self) -> &str {
        &self.response.content
    }
}

/// A cascade that could not be built (or a call that could not start) fails before any attempt; the
/// hint is the advice for its kind.
impl From<Error> for CascadeError {
    fn from(error: Error) -> Self {
        Self::before_any_attempt(&error, error.kind().advice())
    }
}

impl CascadeError {
    /// The account of a stream that failed after its first token (no fallback is possible once text
    /// was shown): the error's own category and advice, with the attempts so far.
    pub fn interrupted(attempts: Vec<Attempt>, error: &Error) -> Self {
        let provider = error.provider().unwrap_or("the provider");
        Self {
            category: error.kind().category(),
            kind: error.kind(),
            message: format!(
                "the answer from {provider} failed after it started: {}",
                error.message()
            ),
            details: attempts.iter().map(describe_attempt).collect(),
            hint: error.kind().advice().to_owned(),
            attempts,
            retry_after: None,
        }
    }
}

/// One line for an attempt: `groq attempt 1: rate_limit (HTTP 429, asked to wait 30000 ms): message`.
pub(crate) fn describe_attempt(attempt: &Attempt) -> String {
    if let Some(skip) = &attempt.skip {
        return format!("{}: skipped: {skip}", attempt.provider);
    }
    let mut line = format!(
        "{} attempt {}: {}",
        attempt.provider,
        attempt.attempt,
        attempt.outcome.as_str()
    );
    let mut facts = Vec::new();
    if let Some(status) = attempt.status {
        facts.push(format!("HTTP {status}"));
    }
    if let Some(wait) = attempt.retry_after {
        facts.push(format!("asked to wait {} ms", wait.as_millis()));
    }
    facts.push(format!("{} ms", attempt.elapsed.as_millis()));
    line.push_str(&format!(" ({})", facts.join(", ")));
    if let Some(message) = &attempt.message {
        line.push_str(&format!(": {message}"));
    }
    line
}

/// The advice for every kind seen, in order of first appearance, plus the longest wait hint.
fn advice_for(attempts: &[Attempt]) -> String {
    let mut kinds: Vec<ErrorKind> = Vec::new();
    for attempt in attempts {
        if let Outcome::Failed(kind) = attempt.outcome
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
    }
    let mut lines: Vec<String> = kinds.iter().map(|k| k.advice().to_owned()).collect();
    lines.extend(attempts.iter().filter_map(|a| {
        a.skip
            .as_ref()
            .map(|skip| format!("{} was skipped ({skip}).", a.provider))
    }));
    if let Some((provider, wait)) = attempts
        .iter()
        .filter_map(|a| a.retry_after.map(|w| (&a.provider, w)))
        .max_by_key(|(_, w)| *w)
    {
        lines.push(format!(
            "{provider} asked to wait {} s before trying again.",
            wait.as_secs_f64().ceil()
        ));
    }
    lines.join(" ")
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhausted_report_lists_every_attempt_and_each_kinds_advice() {
        let rate = Error::new(ErrorKind::RateLimit, "slow down")
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(30)));
        let auth = Error::new(ErrorKind::Auth, "bad key").with_status(401);
        let attempts = vec![
            Attempt::failed("groq", 1, Duration::from_millis(12), &rate),
            Attempt::failed("openai", 1, Duration::from_millis(8), &auth),
        ];
        let report = CascadeError::exhausted(attempts, None);
        assert_eq!(report.category, Category::Auth);
        assert_eq!(
            report.message,
            "all 2 providers failed (groq, openai); last error: auth"
        );
        assert_eq!(
            report.details[0],
            "groq attempt 1: rate_limit (HTTP 429, asked to wait 30000 ms, 12 ms): slow down"
        );
        assert!(report.hint.contains(ErrorKind::RateLimit.advice()));
        assert!(report.hint.contains(ErrorKind::Auth.advice()));
        assert!(
            report
                .hint
                .ends_with("groq asked to wait 30 s before trying again.")
        );
        let json = serde_json::to_value(&report).expect("json");
        assert_eq!(json["error"], "auth");
        assert_eq!(json["attempts"][0]["retry_after_ms"], 30000);
        assert_eq!(json["attempts"][1]["outcome"], "auth");
    }
}
