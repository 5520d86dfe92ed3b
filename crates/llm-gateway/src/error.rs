//! Errors as HTTP responses: the status from the category, the body in OpenAI's envelope.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llm_cascade::{Attempt, CascadeError};
use serde_json::{Value, json};

/// An error the gateway answers with.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `type` in the envelope: the category (or the gateway's own: `invalid_request`, `overloaded`).
    pub kind: &'static str,
    /// `code` in the envelope: the error kind.
    pub code: &'static str,
    /// One sentence.
    pub message: String,
    /// One line per attempt.
    pub details: Vec<String>,
    /// What to do.
    pub hint: String,
    /// Every attempt, sanitized.
    pub attempts: Vec<Attempt>,
    /// The `Retry-After` header, when there is one.
    pub retry_after: Option<Duration>,
}

impl ApiError {
    /// A request the gateway will not serve (400).
    pub fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::gateway(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "invalid_request",
            message,
            hint,
        )
    }

    /// An error the gateway itself raises, before any provider is asked.
    pub fn gateway(
        status: StatusCode,
        kind: &'static str,
        code: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            status,
            kind,
            code,
            message: message.into(),
            details: Vec::new(),
            hint: hint.into(),
            attempts: Vec::new(),
            retry_after: None,
        }
    }

    /// The cascade's failure: status from its category, and when it is a rate limit `Retry-After`:
    /// the soonest a provider comes back, whether it announced a wait in this call or was skipped
    /// because it is still resting from an earlier one. `now_ms` is now on the cascade's state clock
    /// ([`llm_cascade::Cascade::state_now_ms`]), which a skip's comeback time is measured on. A chain
    /// where no provider can serve the request (every attempt `unsupported`) is a 400.
    pub fn from_cascade(error: &CascadeError, now_ms: u64) -> Self {
        // A request no provider in the chain can serve (tools, a schema) is the request's 400.
        if let Some(unsupported) = crate::tools::unsupported(error) {
            return unsupported;
        }
        let status = StatusCode::from_u16(error.category.http_status())
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let retry_after = if status == StatusCode::TOO_MANY_REQUESTS {
            error
                .retry_after
                .into_iter()
                .chain(soonest_wait(&error.attempts, now_ms))
                .min()
        } else {
            None
        };
        Self {
            status,
            kind: error.category.as_str(),
            code: error.kind.as_str(),
            message: clean(&error.message),
            details: error.details.iter().map(|d| clean(d)).collect(),
            hint: clean(&error.hint),
            attempts: sanitize_attempts(&error.attempts),
            retry_after,
        }
    }

    /// The envelope: `{"error": {message, type, code, param, details, hint, attempts}}`.
    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "code": self.code,
                "param": null,
                "details": self.details,
                "hint": self.hint,
                "attempts": self.attempts,
            }
        })
    }
}

/// Provider text made safe for a response: keys redacted, control characters escaped.
pub fn clean(text: &str) -> String {
    llm_core::sanitize(text).into_owned()
}

/// The attempt record with every provider message sanitized.
pub fn sanitize_attempts(attempts: &[Attempt]) -> Vec<Attempt> {
    attempts
        .iter()
        .map(|a| {
            let mut attempt = a.clone();
            attempt.message = a.message.as_deref().map(clean);
            attempt
        })
        .collect()
}

/// The soonest wait in `attempts` at `now_ms` (on the state clock, milliseconds since the Unix
/// epoch): a wait a provider announced, or the time until a skipped provider comes back. A skip whose
/// time has passed says nothing any more (the cascade waited for it and asked that provider again).
pub fn soonest_wait(attempts: &[Attempt], now_ms: u64) -> Option<Duration> {
    let skipped = attempts
        .iter()
        .filter_map(|a| a.skip.as_ref()?.until_ms)
        .filter(|&until| until > now_ms)
        .map(|until| Duration::from_millis(until - now_ms));
    attempts
        .iter()
        .filter_map(|a| a.retry_after)
        .chain(skipped)
        .min()
}

fn retry_after_header(wait: Duration) -> HeaderValue {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    HeaderValue::from(secs.max(1))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_header(wait));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use llm_cascade::{Error, ErrorKind, Skip, SkipReason};

    use super::*;

    #[test]
    fn a_rate_limit_is_429_with_the_soonest_announced_wait() {
        let slow = Error::new(ErrorKind::RateLimit, "slow down")
            .with_status(429)
            .with_retry_after(Some(Duration::from_millis(30_500)));
        let sooner = Error::new(ErrorKind::RateLimit, "slow down")
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(7)));
        let attempts = vec![
            Attempt::failed("groq", 1, Duration::from_millis(3), &slow),
            Attempt::failed("openai", 1, Duration::from_millis(3), &sooner),
        ];
        let error = ApiError::from_cascade(&CascadeError::exhausted(attempts, None), 0);
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
        let response = error.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn a_skipped_provider_counts_by_when_it_comes_back() {
        let cooling = |until_ms| Skip {
            reason: SkipReason::Cooling {
                source: "Retry-After".into(),
            },
            until_ms: Some(until_ms),
        };
        let now = 1_000_000;
        let slow = Error::new(ErrorKind::RateLimit, "slow down")
            .with_status(429)
            .with_retry_after(Some(Duration::from_secs(40)));
        // A provider cooling for 20 more minutes, one that asked for 40 s in this call, one back in
        // 12.5 s: the soonest is the last, rounded up.
        let attempts = vec![
            Attempt::skipped("groq", cooling(now + 1_200_000)),
            Attempt::failed("openai", 1, Duration::from_millis(3), &slow),
            Attempt::skipped("mistral", cooling(now + 12_500)),
        ];
        let error = ApiError::from_cascade(&CascadeError::exhausted(attempts, None), now);
        assert_eq!(error.retry_after, Some(Duration::from_millis(12_500)));
        assert_eq!(error.into_response().headers()[header::RETRY_AFTER], "13");
        // A comeback already past is no wait.
        let attempts = vec![
            Attempt::skipped("groq", cooling(now - 1)),
            Attempt::failed("openai", 1, Duration::from_millis(3), &slow),
        ];
        let error = ApiError::from_cascade(&CascadeError::exhausted(attempts, None), now);
        assert_eq!(error.retry_after, Some(Duration::from_secs(40)));
        // Every provider skipped: the engine's own soonest counts as well.
        let attempts = vec![Attempt::skipped("groq", cooling(now + 1_200_000))];
        let all = CascadeError::all_skipped(attempts, Some(Duration::from_secs(9)));
        let error = ApiError::from_cascade(&all, now);
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.retry_after, Some(Duration::from_secs(9)));
    }

    #[test]
    fn the_envelope_names_category_and_kind() {
        let auth = Error::new(ErrorKind::Auth, "bad key\u{1b}[2J").with_status(401);
        let attempts = vec![Attempt::failed("groq", 1, Duration::from_millis(3), &auth)];
        let error = ApiError::from_cascade(&CascadeError::exhausted(attempts, None), 0);
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        let body = error.body();
        assert_eq!(body["error"]["type"], "auth");
        assert_eq!(body["error"]["code"], "auth");
        assert_eq!(body["error"]["attempts"][0]["provider"], "groq");
        let message = body["error"]["attempts"][0]["message"]
            .as_str()
            .expect("message");
        assert!(!message.contains('\u{1b}'), "{message}");
        assert!(error.retry_after.is_none());
    }
}
