//! The one error type of the workspace and its closed taxonomy.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// What went wrong, closed and small: each kind answers "try the same provider again?" and "move on to
/// the next provider?", and maps to a user-facing [`Category`] with an HTTP status and one line of advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Too many requests for now (HTTP 429 and friends).
    RateLimit,
    /// The account's quota or credits are used up (OpenAI's 429 `insufficient_quota`, OpenRouter's 402).
    QuotaExhausted,
    /// The key is missing, wrong, revoked or lacks permission.
    Auth,
    /// The provider did not answer in time (per-attempt timeout, first token or stalled stream).
    Timeout,
    /// The connection failed or was reset.
    Network,
    /// A local provider is not running (nothing listens at its address).
    NotRunning,
    /// The provider failed on its side (HTTP 5xx).
    ServerError,
    /// The provider is overloaded (Anthropic 529, "model overloaded").
    Overloaded,
    /// The provider's answer could not be read: not decodable, or not a valid answer.
    MalformedAnswer,
    /// A streamed answer ended before its terminator: it was cut short.
    StreamTruncated,
    /// The model does not exist or is not available to this account.
    ModelNotFound,
    /// The conversation is longer than the model's context window.
    ContextLength,
    /// The provider refused to answer for content reasons.
    ContentFilter,
    /// The provider rejected the request as malformed or unsupported.
    InvalidRequest,
    /// Our own configuration is invalid or missing.
    Config,
    /// The provider cannot serve what the request needs (tools, a JSON schema): it is skipped, or its
    /// 400 said so ("does not support tools"). Another provider may serve it.
    Unsupported,
    /// The model declined to answer (OpenAI `message.refusal`): an answer, but not the data asked for.
    Refused,
}

impl ErrorKind {
    /// Every kind, in declaration order (for tables and docs).
    pub const ALL: [ErrorKind; 17] = [
        ErrorKind::RateLimit,
        ErrorKind::QuotaExhausted,
        ErrorKind::Auth,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::NotRunning,
        ErrorKind::ServerError,
        ErrorKind::Overloaded,
        ErrorKind::MalformedAnswer,
        ErrorKind::StreamTruncated,
        ErrorKind::ModelNotFound,
        ErrorKind::ContextLength,
        ErrorKind::ContentFilter,
        ErrorKind::InvalidRequest,
        ErrorKind::Config,
        ErrorKind::Unsupported,
        ErrorKind::Refused,
    ];

    /// The snake_case name used in attempt records and JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Auth => "auth",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::NotRunning => "not_running",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::MalformedAnswer => "malformed_answer",
            ErrorKind::StreamTruncated => "stream_truncated",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::ContentFilter => "content_filter",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Config => "config",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Refused => "refused",
        }
    }

    /// The kind whose [`ErrorKind::as_str`] is `name` (for reading attempt records back). The old name
    /// `validation` of [`ErrorKind::MalformedAnswer`] is still read, so older usage logs stay readable.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        if name == "validation" {
            return Some(ErrorKind::MalformedAnswer);
        }
        ErrorKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }

    /// Whether trying the same provider again can help.
    ///
    /// Timeouts are not retried: a provider that stayed silent past its timeout rarely answers a second
    /// time, and a retry doubles the wait; the next provider is the better bet.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit
                | ErrorKind::Network
                | ErrorKind::ServerError
                | ErrorKind::Overloaded
                | ErrorKind::MalformedAnswer
                | ErrorKind::StreamTruncated
        )
    }

    /// The user-facing category.
    pub fn category(self) -> Category {
        match self {
            ErrorKind::RateLimit | ErrorKind::QuotaExhausted => Category::RateLimit,
            ErrorKind::Auth => Category::Auth,
            ErrorKind::Timeout => Category::Timeout,
            ErrorKind::Network
            | ErrorKind::NotRunning
            | ErrorKind::ServerError
            | ErrorKind::Overloaded
            | ErrorKind::StreamTruncated => Category::Network,
            ErrorKind::MalformedAnswer
            | ErrorKind::ContextLength
            | ErrorKind::InvalidRequest
            | ErrorKind::Unsupported
            | ErrorKind::Refused => Category::Validation,
            ErrorKind::ContentFilter => Category::ContentFilter,
            ErrorKind::ModelNotFound | ErrorKind::Config => Category::Config,
        }
    }

    /// One line that tells the user what to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => {
                "Rate limited: wait a moment, lower the request rate, or add another provider's key so the cascade can move on."
            }
            ErrorKind::QuotaExhausted => {
                "Quota or credits exhausted: add credits or raise the plan's limit with this provider; retrying will not help."
            }
            ErrorKind::Auth => {
                "Authentication failed: check that the provider's API key is set, current and allowed to use this model."
            }
            ErrorKind::Timeout => {
                "Timed out: the provider is slow or stuck; raise <ID>_TIMEOUT or LLM_DEADLINE, or put a faster provider first."
            }
            ErrorKind::Network => {
                "Network error: check the connection, proxy and the provider's base URL."
            }
            ErrorKind::NotRunning => {
                "Local server not running: start it (e.g. `ollama serve`, or LM Studio's server) or fix its base URL."
            }
            ErrorKind::ServerError => {
                "The provider failed on its side: usually temporary; try again later or rely on another provider."
            }
            ErrorKind::Overloaded => {
                "The provider is overloaded: usually temporary; try again later or rely on another provider."
            }
            ErrorKind::MalformedAnswer => {
                "The provider's answer could not be read: usually temporary; if it persists, report it with the provider's id."
            }
            ErrorKind::StreamTruncated => {
                "The streamed answer was cut short: the connection dropped mid-answer; try again."
            }
            ErrorKind::ModelNotFound => {
                "Model not found: check <ID>_MODEL against the provider's model list, or unset it to use the default."
            }
            ErrorKind::ContextLength => {
                "The conversation is too long for the model: shorten it or choose a model with a larger context window."
            }
            ErrorKind::ContentFilter => {
                "The provider refused the content: rephrase the request (no other provider is tried unless LLM_CONTENT_FILTER_FALLBACK=true)."
            }
            ErrorKind::InvalidRequest => {
                "The provider rejected the request: check the options (model, max tokens, stop sequences) it supports."
            }
            ErrorKind::Unsupported => {
                "No provider in the chain supports what the request needs (tools, a JSON schema): add one that does."
            }
            ErrorKind::Refused => {
                "The model declined to answer: rephrase the request or use another provider."
            }
            ErrorKind::Config => {
                "Configuration problem: set at least one provider's API key (e.g. GROQ_API_KEY) or run a local server, and check LLM_* settings."
            }
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seven user-facing error categories, with the HTTP status a server reports for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Rate or quota limits (429).
    RateLimit,
    /// Credentials (503: the service is unavailable to this caller).
    Auth,
    /// Nothing answered in time (504).
    Timeout,
    /// Connection or upstream failures (503).
    Network,
    /// The request or the answer was not valid (500).
    Validation,
    /// Our configuration (503).
    Config,
    /// A provider refused the request's content (400): the request, not the provider, is the problem.
    ContentFilter,
}

impl Category {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::RateLimit => "rate_limit",
            Category::Auth => "auth",
            Category::Timeout => "timeout",
            Category::Network => "network",
            Category::Validation => "validation",
            Category::Config => "config",
            Category::ContentFilter => "content_filter",
        }
    }

    /// The HTTP status a server (such as `cascade serve`) reports for this category.
    pub fn http_status(self) -> u16 {
        match self {
            Category::RateLimit => 429,
            Category::Timeout => 504,
            Category::Validation => 500,
            Category::ContentFilter => 400,
            Category::Auth | Category::Network | Category::Config => 503,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every llm-cascade crate.
///
/// It carries the classified [`ErrorKind`], the provider that produced it, the HTTP status, the provider's
/// wait hint and a short message. Messages never contain keys or prompts.
#[derive(thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    provider: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind` with a short message.
    ///
    /// The message passes [`crate::sanitize`]: a registered secret in it becomes `[REDACTED]` and
    /// control characters are escaped, whoever built the text (provider text quoted into a message
    /// cannot leak a key or drive the terminal).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = match crate::sanitize(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(clean) => clean,
        };
        Self {
            kind,
            provider: None,
            status: None,
            retry_after: None,
            message,
            source: None,
        }
    }

    /// Shorthand for a [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Names the provider that produced the error.
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Records the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records how long the provider asked us to wait.
    #[must_use]
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The classified kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The provider that produced the error, if any.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The HTTP status, if the error came from an HTTP response.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How long the provider asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The short message, without the provider or kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying the same provider again can help (see [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(provider) = &self.provider {
            write!(f, "{provider}: ")?;
        }
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, " (retry after {} ms)", wait.as_millis())?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("provider", &self.provider)
            .field("status", &self.status)
            .field("retry_after", &self.retry_after)
            .field("message", &self.message)
            .field(
                "source",
                &self.source.as_ref().map(|source| Redacted(source.as_ref())),
            )
            .finish()
    }
}

/// Debug-prints an error's source chain with every registered secret redacted: a source (an I/O error,
/// a decoder's error) may quote text that came from a provider.
struct Redacted<'a>(&'a (dyn std::error::Error + Send + Sync));

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::redact(&format!("{:?}", self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_sources_never_show_a_secret_or_a_control_character() {
        crate::register_secret("canary-error-0000-DO-NOT-LEAK");
        let source = std::io::Error::other("server said: canary-error-0000-DO-NOT-LEAK");
        let err = Error::new(
            ErrorKind::Auth,
            "bad key canary-error-0000-DO-NOT-LEAK\x1b[2J\nnext",
        )
        .with_source(source);
        assert_eq!(err.message(), "bad key [REDACTED]\\u{1b}[2J\\nnext");
        let debug = format!("{err:?}");
        assert!(!debug.contains("canary-error"), "{debug}");
        assert!(debug.contains("server said: [REDACTED]"), "{debug}");
        assert!(!err.to_string().contains("canary-error"));
    }

    #[test]
    fn quota_is_not_retried_but_rate_limit_is() {
        assert!(ErrorKind::RateLimit.is_retryable());
        assert!(!ErrorKind::QuotaExhausted.is_retryable());
        assert_eq!(ErrorKind::QuotaExhausted.category(), Category::RateLimit);
    }

    #[test]
    fn timeouts_and_auth_move_on_without_retry() {
        for kind in [
            ErrorKind::Timeout,
            ErrorKind::Auth,
            ErrorKind::NotRunning,
            ErrorKind::ModelNotFound,
        ] {
            assert!(!kind.is_retryable(), "{kind}");
        }
    }

    #[test]
    fn categories_carry_the_users_statuses() {
        let statuses: Vec<(Category, u16)> = [
            Category::RateLimit,
            Category::Auth,
            Category::Timeout,
            Category::Network,
            Category::Validation,
            Category::Config,
        ]
        .into_iter()
        .map(|c| (c, c.http_status()))
        .collect();
        assert_eq!(
            statuses,
            vec![
                (Category::RateLimit, 429),
                (Category::Auth, 503),
                (Category::Timeout, 504),
                (Category::Network, 503),
                (Category::Validation, 500),
                (Category::Config, 503),
            ]
        );
    }

    #[test]
    fn kind_names_are_unique_snake_case() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert!(
            names
                .iter()
                .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        );
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::from_name("ok"), None);
    }

    #[test]
    fn display_names_provider_kind_and_status() {
        let err = Error::new(ErrorKind::RateLimit, "slow down")
            .with_provider("groq")
            .with_status(429)
            .with_retry_after(Some(Duration::from_millis(1500)));
        assert_eq!(
            err.to_string(),
            "groq: rate_limit: slow down (HTTP 429) (retry after 1500 ms)"
        );
    }
}
