//! Pieces every provider's `parse_error` uses: the default kind of a status, wait hints from headers
//! and from message text, and a safe snippet of a body that is not JSON.

use std::time::{Duration, SystemTime};

use llm_core::{Error, ErrorKind, RateLimitSpent};
use reqwest::header::HeaderMap;

/// The kind an HTTP status means when the body says nothing more specific.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExhausted,
        404 => ErrorKind::ModelNotFound,
        408 | 504 => ErrorKind::Timeout,
        413 => ErrorKind::ContextLength,
        429 => ErrorKind::RateLimit,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::ServerError,
        400..=499 => ErrorKind::InvalidRequest,
        // A success or redirect status that still reached error handling: the answer was unusable.
        _ => ErrorKind::MalformedAnswer,
    }
}

/// How long the response asks us to wait, from its headers.
///
/// Reads `retry-after-ms`, then `retry-after` (seconds or an HTTP date), then the OpenAI-style
/// `x-ratelimit-reset-{requests,tokens}` durations (`6ms`, `7.66s`, `2m59.56s`) of the buckets whose
/// `x-ratelimit-remaining-*` is zero (or unknown), taking the longest.
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    if let Some(value) = text("retry-after") {
        if let Some(wait) = value
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            return Some(wait);
        }
        if let Ok(when) = httpdate::parse_http_date(value) {
            return Some(
                when.duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO),
            );
        }
    }
    ["requests", "tokens"]
        .iter()
        .filter(|bucket| {
            text(&format!("x-ratelimit-remaining-{bucket}")).is_none_or(|left| left == "0")
        })
        .filter_map(|bucket| {
            text(&format!("x-ratelimit-reset-{bucket}")).and_then(parse_go_duration)
        })
        .max()
}

/// Parses a Go-style duration as rate-limit headers and messages spell it: `6ms`, `0s`, `7.66s`,
/// `2m59.56s`, `1h2m3s`. A bare number is seconds.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).ok()
}

/// A rate-limit bucket as response headers describe it: the header with what is left, and the one
/// with when it fills again (a duration like `2m59.56s`, or an RFC 3339 time like
/// `2025-06-02T15:15:48Z`). Each dialect names its own headers; this code knows no vendor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitHeaders {
    /// What is left (`x-ratelimit-remaining-requests`).
    pub remaining: &'static str,
    /// When it resets (`x-ratelimit-reset-requests`).
    pub reset: &'static str,
}

/// The limit a successful response says is used up: of `buckets`, those whose `remaining` header is
/// `0` and whose reset lies ahead; the latest reset wins. A reset time is counted from the response's
/// `Date` (the provider's clock, so a skewed local clock does not matter), else from `now`.
pub fn rate_limit_spent(
    headers: &HeaderMap,
    buckets: &[LimitHeaders],
    now: SystemTime,
) -> Option<RateLimitSpent> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let sent = text("date")
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .unwrap_or(now);
    buckets
        .iter()
        .filter(|bucket| text(bucket.remaining) == Some("0"))
        .filter_map(|bucket| {
            let reset = text(bucket.reset)?;
            let reset_after = match parse_rfc3339(reset) {
                Some(at) => at.duration_since(sent).ok()?,
                None => parse_go_duration(reset)?,
            };
            Some(RateLimitSpent {
                header: bucket.remaining.to_owned(),
                reset_after,
            })
        })
        .filter(|spent| !spent.reset_after.is_zero())
        .max_by_key(|spent| spent.reset_after)
}

/// Parses an RFC 3339 time (`2025-06-02T15:15:48Z`, `2025-06-02T17:15:48.5+02:00`).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (date, time) = text.trim().split_once(['T', 't'])?;
    let mut ymd = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (ymd.next()?.ok()?, ymd.next()?.ok()?, ymd.next()?.ok()?);
    let (clock, offset) = match time.strip_suffix(['Z', 'z']) {
        Some(clock) => (clock, 0),
        None => {
            let at = time.rfind(['+', '-'])?;
            let (clock, zone) = time.split_at(at);
            let (hours, minutes) = zone[1..].split_once(':')?;
            let offset = hours.parse::<i64>().ok()? * 3600 + minutes.parse::<i64>().ok()? * 60;
            (
                clock,
                if zone.starts_with('-') {
                    -offset
                } else {
                    offset
                },
            )
        }
    };
    let mut hms = clock.splitn(3, ':');
    let (hour, minute) = (
        hms.next()?.parse::<i64>().ok()?,
        hms.next()?.parse::<i64>().ok()?,
    );
    let second: f64 = hms.next()?.parse().ok()?;
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0.0..61.0).contains(&second);
    if !valid {
        return None;
    }
    let whole = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 - offset;
    let since_epoch = Duration::from_secs(u64::try_from(whole).ok()?)
        + Duration::try_from_secs_f64(second).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(since_epoch)
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A wait hint inside an error message, as Groq and OpenAI write it: "Please try again in 5.289s",
/// "try again in 1m30.5s", "try again in 20ms".
pub fn retry_after_from_message(message: &str) -> Option<Duration> {
    const MARKER: &str = "try again in ";
    let lower = message.to_ascii_lowercase();
    let start = lower.find(MARKER)? + MARKER.len();
    let token: String = message[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    parse_go_duration(token.trim_end_matches('.'))
}

/// Whether a body is an HTML page (a proxy's or gateway's error page) rather than the provider's JSON.
pub fn looks_like_html(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let head = &body[start..body.len().min(start + 64)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.starts_with("<!doctype html") || head.starts_with("<html") || head.starts_with("<head")
}

/// Decodes one stream frame (an SSE event's data, an NDJSON line) as `T`; `what` names it in the
/// error ("stream event", "pull progress line").
///
/// # Errors
/// [`ErrorKind::MalformedAnswer`] quoting the start of the frame (see [`describe_unparsed_body`]).
pub fn decode_frame<T: serde::de::DeserializeOwned>(data: &str, what: &str) -> Result<T, Error> {
    serde_json::from_str(data).map_err(|e| {
        Error::new(
            ErrorKind::MalformedAnswer,
            format!(
                "could not decode a {what} ({}): {e}",
                describe_unparsed_body(data.as_bytes())
            ),
        )
    })
}

/// A short, printable description of a body that is not the provider's JSON error, for messages.
///
/// HTML pages are summarised by their `<title>` (their markup is noise); other text is cut to 200
/// characters on one line.
pub fn describe_unparsed_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if looks_like_html(body) {
        let lower = text.to_ascii_lowercase();
        let title = lower
            .find("<title>")
            .and_then(|open| {
                lower[open..]
                    .find("</title>")
                    .map(|len| &text[open + 7..open + len])
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => format!(
                "HTML error page ({}) instead of JSON, likely from a proxy or gateway",
                one_line(title, 120)
            ),
            None => "HTML error page instead of JSON, likely from a proxy or gateway".to_owned(),
        };
    }
    if text.trim().is_empty() {
        return "empty body".to_owned();
    }
    one_line(text.trim(), 200)
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Whether an error's message says the model cannot do what the request asked (structured output or
/// tools): DeepSeek's "This response_format type is unavailable now", Ollama's "… does not support
/// tools", "json_schema is not supported", OpenRouter's 404 "No endpoints found that support tool
/// use". Another provider may serve the request:
/// [`ErrorKind::Unsupported`].
pub fn capability_mismatch(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    let feature = [
        "response_format",
        "json_schema",
        "json mode",
        "tools",
        "tool use",
        "function calling",
    ]
    .iter()
    .any(|f| message.contains(f));
    let refusal = [
        "unavailable",
        "not support",
        "unsupported",
        "not available",
        "no endpoints found that support",
    ]
    .iter()
    .any(|r| message.contains(r));
    feature && refusal
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).expect("name"),
                    HeaderValue::from_str(v).expect("value"),
                )
            })
            .collect()
    }

    #[test]
    fn retry_after_seconds_ms_and_date() {
        assert_eq!(
            retry_after_from_headers(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after_from_headers(&headers(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "9")
            ])),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after_from_headers(&headers(&[("retry-after", &later)])).expect("date");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(30));
        assert_eq!(
            retry_after_from_headers(&headers(&[("retry-after", &past)])),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn reset_headers_count_only_exhausted_buckets() {
        // Groq's documented 429 headers: requests left, tokens exhausted → the token reset matters.
        let groq = headers(&[
            ("x-ratelimit-remaining-requests", "14370"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "2m59.56s"),
            ("x-ratelimit-reset-tokens", "7.66s"),
        ]);
        assert_eq!(
            retry_after_from_headers(&groq),
            Some(Duration::from_millis(7660))
        );
        let fine = headers(&[
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-reset-requests", "6ms"),
        ]);
        assert_eq!(retry_after_from_headers(&fine), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("2m59.56s"),
            Some(Duration::from_millis(179_560))
        );
        assert_eq!(parse_go_duration("6ms"), Some(Duration::from_millis(6)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("0s"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn hints_inside_messages() {
        let groq = "Rate limit reached for model `llama3-70b-8192` on tokens per minute (TPM): Limit 6000, Used 5764, Requested 1085. Please try again in 8.49s. Visit https://console.groq.com/docs/rate-limits";
        assert_eq!(
            retry_after_from_message(groq),
            Some(Duration::from_millis(8490))
        );
        assert_eq!(
            retry_after_from_message("Please try again in 1m30.5s."),
            Some(Duration::from_millis(90_500))
        );
        assert_eq!(
            retry_after_from_message("Try again in 20ms"),
            Some(Duration::from_millis(20))
        );
        assert_eq!(retry_after_from_message("try again later"), None);
    }

    #[test]
    fn html_pages_are_named_not_dumped() {
        let page = b"\n<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";
        assert!(looks_like_html(page));
        assert_eq!(
            describe_unparsed_body(page),
            "HTML error page (502 Bad Gateway) instead of JSON, likely from a proxy or gateway"
        );
        assert_eq!(describe_unparsed_body(b"  "), "empty body");
        assert_eq!(describe_unparsed_body(&[b'x'; 500]).chars().count(), 201);
    }

    #[test]
    fn statuses_without_a_body_hint() {
        assert_eq!(kind_for_status(429), ErrorKind::RateLimit);
        assert_eq!(kind_for_status(529), ErrorKind::Overloaded);
        assert_eq!(kind_for_status(502), ErrorKind::ServerError);
        assert_eq!(kind_for_status(401), ErrorKind::Auth);
        assert_eq!(kind_for_status(422), ErrorKind::InvalidRequest);
    }

    /// The response headers of a committed fixture (real captures; see each fixture's `meta`).
    fn fixture_headers(json: &str) -> HeaderMap {
        let fixture: serde_json::Value = serde_json::from_str(json).expect("fixture");
        let pairs = fixture["response"]["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().expect("text").to_owned()))
            .collect::<Vec<_>>();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers(&pairs)
    }

    const OPENAI: &[LimitHeaders] = crate::openai::LIMIT_HEADERS;

    const ANTHROPIC: &[LimitHeaders] = &[
        LimitHeaders {
            remaining: "anthropic-ratelimit-requests-remaining",
            reset: "anthropic-ratelimit-requests-reset",
        },
        LimitHeaders {
            remaining: "anthropic-ratelimit-input-tokens-remaining",
            reset: "anthropic-ratelimit-input-tokens-reset",
        },
    ];

    #[test]
    fn a_spent_limit_is_read_from_real_rate_limit_headers() {
        // Anthropic's captured headers: input tokens at 0 until 15:15:48. The capture has no `Date`;
        // its full buckets reset at 15:14:45, the moment of the response.
        let anthropic = fixture_headers(include_str!(
            "../../../fixtures/anthropic/error.429.rate_limit.json"
        ));
        let at = parse_rfc3339("2025-06-02T15:14:45Z").expect("time");
        let spent = rate_limit_spent(&anthropic, ANTHROPIC, at).expect("spent");
        assert_eq!(spent.header, "anthropic-ratelimit-input-tokens-remaining");
        assert_eq!(spent.reset_after, Duration::from_secs(63));
        // A `Date` header is the provider's clock and wins over ours.
        let mut dated = anthropic.clone();
        dated.insert(
            "date",
            "Mon, 02 Jun 2025 15:15:00 GMT".parse().expect("value"),
        );
        let spent = rate_limit_spent(&dated, ANTHROPIC, SystemTime::now()).expect("spent");
        assert_eq!(spent.reset_after, Duration::from_secs(48));
        // Groq's documented headers and OpenAI's captured stream: something left of every bucket.
        let groq = fixture_headers(include_str!(
            "../../../fixtures/groq/error.429.rate_limit.json"
        ));
        assert_eq!(rate_limit_spent(&groq, OPENAI, SystemTime::now()), None);
        let openai = fixture_headers(include_str!("../../../fixtures/openai/chat.stream.json"));
        assert_eq!(rate_limit_spent(&openai, OPENAI, SystemTime::now()), None);
        // The same Groq headers after the last request of the window: the reset is a duration.
        let mut last = groq;
        last.insert(
            "x-ratelimit-remaining-requests",
            "0".parse().expect("value"),
        );
        let spent = rate_limit_spent(&last, OPENAI, SystemTime::now()).expect("spent");
        assert_eq!(spent.header, "x-ratelimit-remaining-requests");
        assert_eq!(spent.reset_after, Duration::from_millis(179_560));
    }

    #[test]
    fn rfc3339_times() {
        let http = |text| httpdate::parse_http_date(text).expect("http date");
        assert_eq!(
            parse_rfc3339("2025-06-02T15:15:48Z"),
            Some(http("Mon, 02 Jun 2025 15:15:48 GMT"))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T01:00:00.5+02:00"),
            Some(http("Wed, 28 Feb 2024 23:00:00 GMT") + Duration::from_millis(500))
        );
        assert_eq!(parse_rfc3339("2025-13-02T15:15:48Z"), None);
        assert_eq!(parse_rfc3339("7.66s"), None);
    }
}
