//! The dialect's one `parse_error`: classifies every error body its members send, by the error's code
//! or type first, then its message, then the HTTP status.
//!
//! Shapes understood: OpenAI's `{"error": {"message", "type", "code", "param"}}` (also Groq, Together,
//! DeepSeek), OpenRouter's numeric `error.code` with `metadata.provider_name`/`metadata.raw`, LM Studio's
//! `{"error": "text"}`, Mistral's flat `{"object": "error", "message", "type", "code"}`, `{"detail": …}`
//! and `{"message": …}` (with a message that is sometimes itself JSON). Anything else (an HTML page
//! from a proxy, plain text) is classified by status and described, never dumped.

use bytes::Bytes;
use llm_core::{Error, ErrorKind};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::error_map::{
    capability_mismatch, describe_unparsed_body, kind_for_status, one_line,
    retry_after_from_message,
};
use crate::{HttpFailure, ParseError};

/// The longest provider message we keep, in characters.
const MAX_MESSAGE: usize = 300;

/// What an error body says, as far as the dialect could read it; given to a provider's
/// [`KindOverride`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFacts {
    /// The HTTP status (or the status embedded in an error inside a 200 body or stream).
    pub status: u16,
    /// `error.code`, lowercased; numbers (OpenRouter) as text.
    pub code: Option<String>,
    /// `error.type`, lowercased.
    pub error_type: Option<String>,
    /// The provider's message, on one line (empty when the body had none).
    pub message: String,
    /// Whether the body was JSON at all.
    pub json: bool,
}

/// A provider's own classification rules, consulted before the dialect's: `Some(kind)` decides.
pub type KindOverride = fn(&ErrorFacts) -> Option<ErrorKind>;

/// Classifies a failed response of any provider of the dialect.
pub fn parse_error(failure: &HttpFailure) -> Error {
    parse_error_with(failure, |_| None)
}

/// Classifies a failed response, asking `overrides` first.
pub fn parse_error_with(failure: &HttpFailure, overrides: KindOverride) -> Error {
    let facts = read_facts(failure.status, &failure.body);
    let kind = overrides(&facts).unwrap_or_else(|| classify(&facts));
    let mut message = if facts.message.is_empty() {
        describe_unparsed_body(&failure.body)
    } else {
        redact_key_echo(&facts.message)
    };
    if kind == ErrorKind::Config && message.to_ascii_lowercase().contains("unexpected endpoint") {
        message.push_str(" (check the base URL: it usually ends in /v1)");
    }
    // A refusal is final: the caller sees the provider's own code with its message.
    if kind == ErrorKind::ContentFilter
        && let Some(code) = facts.code.as_deref().or(facts.error_type.as_deref())
        && !message.contains(code)
    {
        message = format!("{code}: {message}");
    }
    let retry_after = retry_after_from_message(&facts.message);
    Error::new(kind, message).with_retry_after(retry_after)
}

/// Masks the key a provider echoes in an auth message ("Incorrect API key provided: sk-ab***cd.",
/// DeepSeek's "Your api key: ****6eA3 is invalid"): even a partly masked key does not belong in logs.
fn redact_key_echo(message: &str) -> String {
    const MARKERS: [&str; 2] = ["api key provided: ", "api key: "];
    let lower = message.to_ascii_lowercase();
    let Some(start) = MARKERS
        .iter()
        .find_map(|marker| lower.find(marker).map(|at| at + marker.len()))
    else {
        return message.to_owned();
    };
    let rest = &message[start..];
    let token_len = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let token = rest[..token_len].trim_end_matches(['.', ',', ';']);
    format!("{}***{}", &message[..start], &rest[token.len()..])
}

/// The dialect's rules, after a provider's overrides.
fn classify(facts: &ErrorFacts) -> ErrorKind {
    if !facts.json {
        return kind_for_status(facts.status);
    }
    let is = |names: &[&str]| {
        names.iter().any(|name| {
            facts.code.as_deref() == Some(name) || facts.error_type.as_deref() == Some(name)
        })
    };
    let says = |needles: &[&str]| {
        let message = facts.message.to_ascii_lowercase();
        needles.iter().any(|needle| message.contains(needle))
    };
    if is(&["insufficient_quota"]) {
        ErrorKind::QuotaExhausted
    } else if is(&["rate_limit_exceeded", "rate_limited", "rate_limit_error"]) {
        // Groq answers 413 `rate_limit_exceeded` for a request larger than the whole per-minute budget:
        // waiting never helps.
        if facts.status == 413 {
            ErrorKind::ContextLength
        } else {
            ErrorKind::RateLimit
        }
    } else if is(&[
        "invalid_api_key",
        "authentication_error",
        "unauthorized",
        "permission_denied",
    ]) {
        ErrorKind::Auth
    } else if is(&["model_not_found", "invalid_model", "model_not_available"]) {
        ErrorKind::ModelNotFound
    } else if is(&["context_length_exceeded"]) {
        ErrorKind::ContextLength
    } else if is(&["content_filter", "content_policy_violation"]) {
        ErrorKind::ContentFilter
    } else if matches!(facts.status, 401 | 403) {
        ErrorKind::Auth
    } else if says(&[
        "maximum context length",
        "context length",
        "context_length",
        "context window",
        "prompt is too long",
    ]) {
        ErrorKind::ContextLength
    } else if says(&[
        "insufficient balance",
        "insufficient credits",
        "exceeded your current quota",
    ]) {
        ErrorKind::QuotaExhausted
    } else if says(&["overloaded"]) {
        ErrorKind::Overloaded
    } else if says(&["unexpected endpoint"]) {
        ErrorKind::Config
    } else if matches!(facts.status, 400 | 404) && capability_mismatch(&facts.message) {
        ErrorKind::Unsupported
    } else if says(&["model not found", "no endpoints found"])
        || (says(&["does not exist"]) && says(&["model"]))
    {
        ErrorKind::ModelNotFound
    } else {
        kind_for_status(facts.status)
    }
}

/// Reads what the body says; `json: false` when it is not JSON.
fn read_facts(status: u16, body: &[u8]) -> ErrorFacts {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return ErrorFacts {
            status,
            ..ErrorFacts::default()
        };
    };
    let mut facts = ErrorFacts {
        status,
        json: true,
        ..ErrorFacts::default()
    };
    fill_facts(&mut facts, &value, 0);
    facts.message = one_line(&facts.message, MAX_MESSAGE);
    facts
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Fills `facts` from one error value; `depth` bounds the JSON-inside-a-message recursion.
fn fill_facts(facts: &mut ErrorFacts, value: &Value, depth: u8) {
    let object = match value.get("error") {
        Some(Value::String(message)) => {
            facts.message = message.clone();
            return;
        }
        Some(inner @ Value::Object(_)) => inner,
        _ => value,
    };
    facts.code = facts
        .code
        .take()
        .or_else(|| text(object.get("code")).map(|c| c.to_ascii_lowercase()));
    facts.error_type = facts
        .error_type
        .take()
        .or_else(|| text(object.get("type")).map(|t| t.to_ascii_lowercase()));
    let message = text(object.get("message")).or_else(|| detail(object.get("detail")));
    let Some(message) = message else { return };
    // Mistral sometimes sends the upstream error as a JSON string inside `message`.
    if depth < 2
        && message.starts_with('{')
        && let Ok(inner) = serde_json::from_str::<Value>(&message)
    {
        fill_facts(facts, &inner, depth + 1);
        if !facts.message.is_empty() {
            return;
        }
    }
    facts.message = match upstream(object.get("metadata")) {
        Some(upstream) => format!("{message} ({upstream})"),
        None => message,
    };
}

/// `detail` as text: a string, or (validation errors) a list of `{msg}` objects.
fn detail(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Array(items) => {
            let messages: Vec<&str> = items
                .iter()
                .filter_map(|item| item.get("msg").and_then(Value::as_str))
                .collect();
            (!messages.is_empty()).then(|| messages.join("; "))
        }
        other => text(Some(other)),
    }
}

/// OpenRouter's `metadata`: which upstream provider failed, and its own message.
fn upstream(metadata: Option<&Value>) -> Option<String> {
    let metadata = metadata?;
    let name = text(metadata.get("provider_name"));
    let raw = match metadata.get("raw") {
        Some(Value::String(raw)) => Some(raw.clone()),
        Some(other @ Value::Object(_)) => Some(other.to_string()),
        _ => None,
    };
    match (name, raw) {
        (Some(name), Some(raw)) => Some(format!("{name}: {raw}")),
        (Some(name), None) => Some(format!("from {name}")),
        (None, Some(raw)) => Some(raw),
        (None, None) => None,
    }
}

/// Classifies an error object found inside a 200 body or a stream chunk. The status is the one the
/// object embeds (`error.status_code`, a numeric `error.code`, Mistral's `raw_status_code`), else
/// `fallback`; it is recorded on the error.
pub(crate) fn embedded_error(value: &Value, fallback: u16, parse_error: ParseError) -> Error {
    let object = value
        .get("error")
        .filter(|e| e.is_object())
        .unwrap_or(value);
    let embedded = ["status_code", "code", "raw_status_code"]
        .iter()
        .filter_map(|key| object.get(*key).and_then(Value::as_u64))
        .find_map(|n| u16::try_from(n).ok().filter(|n| (400..600).contains(n)));
    let status = embedded.unwrap_or(fallback);
    let failure = HttpFailure {
        status,
        headers: HeaderMap::new(),
        body: Bytes::from(value.to_string()),
    };
    parse_error(&failure).with_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn failure(status: u16, body: &str) -> HttpFailure {
        HttpFailure {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    fn kind(status: u16, body: &str) -> ErrorKind {
        parse_error(&failure(status, body)).kind()
    }

    #[test]
    fn codes_decide_before_statuses() {
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert_eq!(kind(429, quota), ErrorKind::QuotaExhausted);
        let limit = r#"{"error":{"message":"Rate limit reached. Please try again in 26.604s.","type":"tokens","code":"rate_limit_exceeded"}}"#;
        let err = parse_error(&failure(429, limit));
        assert_eq!(err.kind(), ErrorKind::RateLimit);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(26_604)));
        // The same code on a 413 can never succeed.
        assert_eq!(kind(413, limit), ErrorKind::ContextLength);
        let key = r#"{"error":{"message":"Invalid API Key","type":"invalid_request_error","code":"invalid_api_key"}}"#;
        assert_eq!(kind(401, key), ErrorKind::Auth);
        let model =
            r#"{"error":{"message":"The model `x` does not exist","code":"model_not_found"}}"#;
        assert_eq!(kind(404, model), ErrorKind::ModelNotFound);
        let context = r#"{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}}"#;
        assert_eq!(kind(400, context), ErrorKind::ContextLength);
        let filter = r#"{"error":{"message":"no","code":"content_policy_violation"}}"#;
        assert_eq!(kind(400, filter), ErrorKind::ContentFilter);
        assert_eq!(
            parse_error(&failure(400, filter)).message(),
            "content_policy_violation: no"
        );
    }

    #[test]
    fn messages_decide_before_statuses() {
        // DeepSeek: the context overflow carries only a generic code.
        let deepseek = r#"{"error":{"message":"This model's maximum context length is 131072 tokens.","type":"invalid_request_error","code":"invalid_request_error"}}"#;
        assert_eq!(kind(400, deepseek), ErrorKind::ContextLength);
        let overloaded = r#"{"error":{"message":"That model is currently overloaded with other requests.","type":"server_error","code":null}}"#;
        assert_eq!(kind(503, overloaded), ErrorKind::Overloaded);
        let server =
            r#"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#;
        assert_eq!(kind(500, server), ErrorKind::ServerError);
        assert_eq!(
            kind(402, r#"{"error":{"message":"Insufficient Balance"}}"#),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            kind(403, r#"{"error":{"message":"forbidden"}}"#),
            ErrorKind::Auth
        );
    }

    #[test]
    fn openrouter_numeric_codes_and_upstream_metadata() {
        let body = r#"{"error":{"code":429,"message":"Provider returned error","metadata":{"provider_name":"Google","raw":"rate-limited upstream"}}}"#;
        let err = parse_error(&failure(429, body));
        assert_eq!(err.kind(), ErrorKind::RateLimit);
        assert_eq!(
            err.message(),
            "Provider returned error (Google: rate-limited upstream)"
        );
        let credits = r#"{"error":{"message":"Insufficient credits.","code":402}}"#;
        assert_eq!(kind(402, credits), ErrorKind::QuotaExhausted);
    }

    #[test]
    fn mistral_shapes() {
        assert_eq!(kind(401, r#"{"detail":"Unauthorized"}"#), ErrorKind::Auth);
        assert_eq!(
            kind(401, r#"{"message":"Unauthorized","request_id":"r"}"#),
            ErrorKind::Auth
        );
        let model = r#"{"object":"error","message":"Invalid model: m","type":"invalid_model","param":null,"code":"1500"}"#;
        assert_eq!(kind(400, model), ErrorKind::ModelNotFound);
        let limited = r#"{"object":"error","message":"Rate limit exceeded","type":"rate_limited","code":"1300"}"#;
        assert_eq!(kind(429, limited), ErrorKind::RateLimit);
        let nested = r#"{"object":"error","message":"{\"object\":\"error\",\"message\":\"Prompt contains 40000 tokens, too large for model with 32768 maximum context length\",\"type\":\"invalid_request_error\"}","type":"invalid_request_error"}"#;
        let err = parse_error(&failure(400, nested));
        assert_eq!(err.kind(), ErrorKind::ContextLength);
        assert!(
            err.message().starts_with("Prompt contains"),
            "{}",
            err.message()
        );
        let detail =
            r#"{"detail":[{"loc":["body","model"],"msg":"field required","type":"missing"}]}"#;
        let err = parse_error(&failure(422, detail));
        assert_eq!(
            (err.kind(), err.message()),
            (ErrorKind::InvalidRequest, "field required")
        );
    }

    #[test]
    fn html_and_text_bodies_are_described_by_status() {
        let page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        let err = parse_error(&failure(502, page));
        assert_eq!(err.kind(), ErrorKind::ServerError);
        assert!(
            err.message().contains("HTML error page (502 Bad Gateway)"),
            "{}",
            err.message()
        );
        assert_eq!(kind(429, "slow down"), ErrorKind::RateLimit);
        assert_eq!(parse_error(&failure(500, "")).message(), "empty body");
    }

    #[test]
    fn capability_mismatches_are_unsupported() {
        // wire-samples/deepseek/error.400.response_format_unavailable.json
        let deepseek = r#"{"error":{"message":"This response_format type is unavailable now","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}"#;
        assert_eq!(kind(400, deepseek), ErrorKind::Unsupported);
        let other = r#"{"error":{"message":"'messages' must contain the word 'json'","type":"invalid_request_error"}}"#;
        assert_eq!(kind(400, other), ErrorKind::InvalidRequest);
        // OpenRouter: no endpoint serves the request's tools (a capability), or the model has none
        // at all (the model is wrong; that message as the wire sample's notes in SOURCES.md give it).
        let no_tools =
            r#"{"error":{"message":"No endpoints found that support tool use.","code":404}}"#;
        assert_eq!(kind(404, no_tools), ErrorKind::Unsupported);
        let no_model = r#"{"error":{"message":"No endpoints found for acme/none.","code":404}}"#;
        assert_eq!(kind(404, no_model), ErrorKind::ModelNotFound);
    }

    #[test]
    fn overrides_come_first() {
        fn forbidden_is_context(facts: &ErrorFacts) -> Option<ErrorKind> {
            (facts.status == 403).then_some(ErrorKind::ContextLength)
        }
        let err = parse_error_with(
            &failure(403, r#"{"error":{"message":"too many tokens"}}"#),
            forbidden_is_context,
        );
        assert_eq!(err.kind(), ErrorKind::ContextLength);
    }

    #[test]
    fn echoed_keys_are_masked() {
        let openai = r#"{"error":{"message":"Incorrect API key provided: sk-PMafP***E873. You can find your API key at https://x.","code":"invalid_api_key"}}"#;
        assert_eq!(
            parse_error(&failure(401, openai)).message(),
            "Incorrect API key provided: ***. You can find your API key at https://x."
        );
        let deepseek =
            r#"{"error":{"message":"Authentication Fails, Your api key: ****6eA3 is invalid"}}"#;
        assert_eq!(
            parse_error(&failure(401, deepseek)).message(),
            "Authentication Fails, Your api key: *** is invalid"
        );
    }

    #[test]
    fn messages_are_one_bounded_line() {
        let long = format!(
            r#"{{"error":{{"message":"line one\nline two {}"}}}}"#,
            "x".repeat(500)
        );
        let err = parse_error(&failure(400, &long));
        assert!(!err.message().contains('\n'));
        assert!(err.message().chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn embedded_errors_take_their_own_status() {
        let groq: Value = serde_json::from_str(
            r#"{"error":{"message":"Tool call validation failed","type":"invalid_request_error","code":"tool_use_failed","status_code":400}}"#,
        )
        .expect("json");
        let err = embedded_error(&groq, 200, parse_error);
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::InvalidRequest, Some(400))
        );
        let bare: Value =
            serde_json::from_str(r#"{"error":{"message":"something broke"}}"#).expect("json");
        let err = embedded_error(&bare, 200, parse_error);
        assert_eq!(
            (err.kind(), err.status()),
            (ErrorKind::MalformedAnswer, Some(200))
        );
    }
}
