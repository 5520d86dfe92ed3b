//! The HTTP layer every provider shares: one pooled client, sending, capped body reads and the
//! classification of transport failures.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use llm_core::{Error, ErrorKind, StreamRedactor};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error_map;

/// The largest non-streamed body we read (16 MiB); a larger one is an error, never a truncated read.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// How long establishing a connection may take. A refused connection fails at once regardless.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A non-success HTTP response, read in full (up to [`MAX_BODY_BYTES`]), for a provider's `parse_error`.
#[derive(Debug, Clone)]
pub struct HttpFailure {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Bytes,
}

/// A provider's one function that turns a failed response into a classified error.
pub type ParseError = fn(&HttpFailure) -> Error;

/// The client a provider sends with: its connection pool plus what the provider needs to
/// classify failures (its id, whether it is local, its `parse_error`).
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    provider: Arc<str>,
    local: bool,
    parse_error: ParseError,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("provider", &self.provider)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// A client with its own connection pool. One per provider: providers talk to different hosts, and a
/// pool shared across them would only add the chance of reusing a connection to a server that is gone.
fn build_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .redirect(same_origin_redirects())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .user_agent(concat!("llm-cascade/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {}", error_chain(&e))))
}

/// How many same-origin redirects a request follows before the last one is reported as an error.
const MAX_REDIRECTS: usize = 5;

/// Follows a redirect only when it stays on the same origin (scheme, host and port): a request carries
/// the provider's key in a header (`authorization`, `x-api-key`, `x-goog-api-key`), and reqwest strips
/// only some of those when it crosses hosts. A redirect that is not followed comes back as the 3xx
/// response itself, which [`HttpClient::send`] turns into an error naming its target.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .last()
            .is_some_and(|from| from.origin() == attempt.url().origin());
        if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// The host (and port) a redirect points to, as the `location` header spells it, cut short and
/// sanitized: it is provider text quoted into a message. Taken from the raw header rather than a parsed
/// URL, which would lowercase the host and so hide a key from redaction by value.
fn redirect_target(headers: &HeaderMap) -> String {
    let Some(location) = headers
        .get(reqwest::header::LOCATION)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
    else {
        return "no location given".to_owned();
    };
    let location = location.trim();
    let after_scheme = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    let authority = if location.contains("://") {
        after_scheme
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default()
    } else {
        // A relative location stays on this host; reqwest only stops it when it loops too long.
        "the same host"
    };
    let host = authority.rsplit('@').next().unwrap_or(authority);
    error_map::one_line(&llm_core::sanitize(host), 80)
}

/// `body` with every registered secret replaced (the same bytes when it holds none).
fn redacted(body: Bytes) -> Bytes {
    match llm_core::redact_bytes(&body) {
        std::borrow::Cow::Borrowed(_) => body,
        std::borrow::Cow::Owned(clean) => Bytes::from(clean),
    }
}

/// Response headers with every registered secret scrubbed from their values, so that a `parse_error`
/// that quotes a header (or a wait hint read from one) never carries a key.
fn redact_headers(headers: &HeaderMap) -> HeaderMap {
    let mut clean = headers.clone();
    for value in clean.values_mut() {
        if let std::borrow::Cow::Owned(redacted) = llm_core::redact_bytes(value.as_bytes())
            && let Ok(redacted) = reqwest::header::HeaderValue::from_bytes(&redacted)
        {
            *value = redacted;
        }
    }
    clean
}

impl HttpClient {
    /// A client for provider `provider`.
    ///
    /// # Errors
    /// A config error when the TLS backend cannot be initialised.
    pub fn new(provider: &str, local: bool, parse_error: ParseError) -> Result<Self, Error> {
        Ok(Self {
            client: build_client()?,
            provider: provider.into(),
            local,
            parse_error,
        })
    }

    /// The provider id errors are tagged with.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Starts a POST request.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Starts a GET request.
    pub fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    /// Sends `request`; a 2xx response is returned unread, anything else becomes the provider's
    /// classified error (with status and wait hint).
    ///
    /// # Errors
    /// Transport failures and non-2xx responses, classified.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let headers = redact_headers(response.headers());
        if response.status().is_redirection() {
            return Err(self.redirect_error(status, &headers));
        }
        let body = self.read_body(response).await?;
        Err(self.classify(&HttpFailure {
            status,
            headers,
            body,
        }))
    }

    /// A redirect that was not followed (it leaves the provider's origin, or loops): a config error, since
    /// the base URL is what points at the wrong place; never a silent success.
    fn redirect_error(&self, status: u16, headers: &HeaderMap) -> Error {
        self.error(
            ErrorKind::Config,
            format!(
                "redirect to {} not followed (HTTP {status}): a redirect to another origin would \
                 carry the key to another host; point the base URL at the final address",
                redirect_target(headers)
            ),
        )
        .with_status(status)
    }

    /// Runs the provider's `parse_error` and fills in what every error carries: the provider, the
    /// status, and the wait hint (from the headers, else from the body).
    pub fn classify(&self, failure: &HttpFailure) -> Error {
        let error = (self.parse_error)(failure);
        // Headers are the machine-readable contract; a hint in the body or message is the fallback.
        let retry_after =
            error_map::retry_after_from_headers(&failure.headers).or(error.retry_after());
        let status = error.status().unwrap_or(failure.status);
        error
            .with_provider(self.provider.as_ref())
            .with_status(status)
            .with_retry_after(retry_after)
    }

    /// Reads a whole body, refusing one larger than [`MAX_BODY_BYTES`].
    ///
    /// Every registered secret in it is replaced by [`llm_core::REDACTED`] here, where each provider's
    /// bytes enter, so no decoder, `parse_error` or message downstream ever sees a key the provider
    /// echoed.
    ///
    /// # Errors
    /// Transport failures while reading, or a validation error for an oversized body.
    pub async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, Error> {
        // Most bodies arrive in one chunk: kept as it is, without a copy.
        let first = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
            .unwrap_or_default();
        let mut body = BytesMut::new();
        let mut chunk = Some(first);
        while let Some(part) = chunk {
            if body.len() + part.len() > MAX_BODY_BYTES {
                return Err(self.error(
                    ErrorKind::MalformedAnswer,
                    format!(
                        "response body exceeds {} MiB; refusing to read it",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                ));
            }
            let next = response
                .chunk()
                .await
                .map_err(|e| self.transport_error(e))?;
            if body.is_empty() && next.is_none() {
                return Ok(redacted(part));
            }
            body.extend_from_slice(&part);
            chunk = next;
        }
        Ok(redacted(body.freeze()))
    }

    /// Reads and decodes a JSON body.
    ///
    /// # Errors
    /// As [`HttpClient::read_body`], plus a validation error naming what could not be decoded.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, Error> {
        let body = self.read_body(response).await?;
        self.decode_json(&body)
    }

    /// Decodes a JSON body already read; an HTML page or other text is described, not dumped.
    ///
    /// # Errors
    /// A validation error naming what could not be decoded.
    pub fn decode_json<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, Error> {
        serde_json::from_slice(body).map_err(|e| {
            let what = if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
                format!("unexpected JSON shape: {e}")
            } else {
                format!(
                    "not JSON ({}): {e}",
                    error_map::describe_unparsed_body(body)
                )
            };
            self.error(
                ErrorKind::MalformedAnswer,
                format!("could not decode the response: {what}"),
            )
        })
    }

    /// The body of a streamed response as chunks; a failure mid-body is [`ErrorKind::StreamTruncated`].
    ///
    /// The chunks are scrubbed of registered secrets (as [`HttpClient::read_body`] does), including a
    /// secret split across two chunks: a tail that could start one is held back until the next chunk
    /// shows whether it does, and passed on when the body ends.
    pub fn body_stream(
        &self,
        response: reqwest::Response,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        let provider = self.provider.clone();
        let chunks = response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| {
                Error::new(
                    ErrorKind::StreamTruncated,
                    format!("connection dropped mid-stream: {}", error_chain(&e)),
                )
                .with_provider(provider.as_ref())
            })
        });
        redacted_stream(chunks)
    }

    /// An error of `kind` tagged with this provider.
    pub fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).with_provider(self.provider.as_ref())
    }

    /// Classifies a failure to send or read: timeout, a local server that is not running (connection
    /// refused), or another network failure.
    pub fn transport_error(&self, error: reqwest::Error) -> Error {
        let error = error.without_url();
        let kind = if error.is_timeout() {
            ErrorKind::Timeout
        } else if self.local && is_connection_refused(&error) {
            ErrorKind::NotRunning
        } else {
            ErrorKind::Network
        };
        let message = match kind {
            ErrorKind::NotRunning => {
                format!("nothing listens at its address ({})", error_chain(&error))
            }
            _ => error_chain(&error),
        };
        self.error(kind, message)
    }
}

/// `chunks` scrubbed by a [`StreamRedactor`]: held-back bytes go out before the end of the stream, and
/// are dropped if the stream fails (they may be the start of a key, and the answer is cut anyway).
fn redacted_stream<S>(chunks: S) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, Error>> + Send + 'static,
{
    let state = (Box::pin(chunks), StreamRedactor::new(), false);
    futures_util::stream::unfold(state, |(mut chunks, mut redactor, ended)| async move {
        if ended {
            return None;
        }
        loop {
            match chunks.next().await {
                Some(Ok(chunk)) => match redactor.push(&chunk) {
                    None => return Some((Ok(chunk), (chunks, redactor, false))),
                    Some(clean) if clean.is_empty() => {}
                    Some(clean) => {
                        return Some((Ok(Bytes::from(clean)), (chunks, redactor, false)));
                    }
                },
                Some(Err(error)) => return Some((Err(error), (chunks, redactor, true))),
                None => {
                    let rest = redactor.finish();
                    if rest.is_empty() {
                        return None;
                    }
                    return Some((Ok(Bytes::from(rest)), (chunks, redactor, true)));
                }
            }
        }
    })
}

/// Whether any error in the chain is an I/O "connection refused".
fn is_connection_refused(error: &(dyn StdError + 'static)) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        current = err.source();
    }
    false
}

/// An error and its sources on one line, skipping sources that repeat their parent's text.
pub fn error_chain(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut current = error.source();
    while let Some(err) = current {
        let text = err.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_as_rate_limit(failure: &HttpFailure) -> Error {
        Error::new(
            error_map::kind_for_status(failure.status),
            "from parse_error",
        )
    }

    #[tokio::test]
    async fn refused_connection_of_a_local_provider_is_not_running() {
        let port = llm_test_support::refused_port();
        let local = HttpClient::new("lmstudio", true, parse_as_rate_limit).expect("client");
        let err = local
            .send(local.get(&format!("http://127.0.0.1:{port}/v1/models")))
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::NotRunning);
        assert_eq!(err.provider(), Some("lmstudio"));

        let cloud = HttpClient::new("groq", false, parse_as_rate_limit).expect("client");
        let err = cloud
            .send(cloud.get(&format!("http://127.0.0.1:{port}/")))
            .await
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::Network);
    }

    #[tokio::test]
    async fn failures_carry_status_and_header_hint() {
        use wiremock::matchers::any;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "3")
                    .set_body_string("{}"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = HttpClient::new("groq", false, parse_as_rate_limit).expect("client");
        let err = client
            .send(client.get(&server.uri()))
            .await
            .expect_err("429");
        assert_eq!(
            (err.kind(), err.status(), err.retry_after()),
            (
                ErrorKind::RateLimit,
                Some(429),
                Some(Duration::from_secs(3))
            )
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_not_cut() {
        use wiremock::matchers::any;
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; MAX_BODY_BYTES + 1]))
            .expect(1)
            .mount(&server)
            .await;
        let client = HttpClient::new("openai", false, parse_as_rate_limit).expect("client");
        let response = client.send(client.get(&server.uri())).await.expect("200");
        let err = client.read_body(response).await.expect_err("too big");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
        assert!(err.message().contains("exceeds"), "{}", err.message());
    }

    /// A `parse_error` that quotes the body whole, as a careless one would, and says so if it was handed
    /// the key itself (`Error`'s own sanitizing would otherwise hide that from the test).
    fn quote_body(failure: &HttpFailure) -> Error {
        let body = String::from_utf8_lossy(&failure.body);
        let header = failure
            .headers
            .get("x-echo")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        if body.contains(ECHOED) || header.contains(ECHOED) {
            return Error::new(ErrorKind::Auth, "parse_error was handed the key");
        }
        Error::new(ErrorKind::Auth, format!("{body} / {header}"))
    }

    const ECHOED: &str = "canary-http-0000-DO-NOT-LEAK";

    #[tokio::test]
    async fn an_echoed_key_is_scrubbed_before_parse_error_or_a_decoder_sees_it() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        llm_core::register_secret(ECHOED);
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/fail"))
            .respond_with(
                ResponseTemplate::new(401)
                    .insert_header("x-echo", format!("key={ECHOED}").as_str())
                    .set_body_string(format!("invalid key {ECHOED}")),
            )
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/ok"))
            .respond_with(
                ResponseTemplate::new(200).set_body_string(format!("{{\"k\":\"{ECHOED}\"}}")),
            )
            .expect(1)
            .mount(&server)
            .await;
        let client = HttpClient::new("anthropic", false, quote_body).expect("client");
        let err = client
            .send(client.get(&format!("{}/fail", server.uri())))
            .await
            .expect_err("401");
        assert_eq!(err.message(), "invalid key [REDACTED] / key=[REDACTED]");
        let response = client
            .send(client.get(&format!("{}/ok", server.uri())))
            .await
            .expect("200");
        let body = client.read_body(response).await.expect("body");
        assert_eq!(body.as_ref(), b"{\"k\":\"[REDACTED]\"}");
    }

    #[test]
    fn failure_headers_are_scrubbed() {
        llm_core::register_secret(ECHOED);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-echo",
            reqwest::header::HeaderValue::from_str(&format!("k {ECHOED}")).expect("value"),
        );
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("3"),
        );
        let clean = redact_headers(&headers);
        assert_eq!(clean["x-echo"], "k [REDACTED]");
        assert_eq!(clean["retry-after"], "3");
    }

    #[tokio::test]
    async fn a_key_split_across_stream_chunks_is_scrubbed() {
        llm_core::register_secret(ECHOED);
        let event = format!("data: {{\"error\":\"bad key {ECHOED}\"}}\n\n");
        let (head, tail) = event.split_at(event.find("0000").expect("inside the key"));
        let chunks = futures_util::stream::iter([
            Ok(Bytes::from(head.to_owned())),
            Ok(Bytes::from(tail.to_owned())),
        ]);
        let out: Vec<Bytes> = redacted_stream(chunks)
            .map(|chunk| chunk.expect("chunk"))
            .collect()
            .await;
        assert_eq!(
            out.concat(),
            b"data: {\"error\":\"bad key [REDACTED]\"}\n\n".to_vec()
        );
    }

    #[tokio::test]
    async fn a_redirect_to_another_origin_is_an_error_and_sends_nothing_there() {
        use wiremock::matchers::{any, method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let provider = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat"))
            .respond_with(
                ResponseTemplate::new(307)
                    .insert_header("location", format!("{}/steal", elsewhere.uri()).as_str()),
            )
            .expect(1)
            .mount(&provider)
            .await;
        let client = HttpClient::new("openai", false, parse_as_rate_limit).expect("client");
        let err = client
            .send(
                client
                    .post(format!("{}/v1/chat", provider.uri()))
                    .header("x-api-key", ECHOED),
            )
            .await
            .expect_err("not followed");
        assert_eq!((err.kind(), err.status()), (ErrorKind::Config, Some(307)));
        let host = elsewhere.uri().trim_start_matches("http://").to_owned();
        assert!(err.message().contains(&host), "{}", err.message());
    }

    #[tokio::test]
    async fn a_redirect_on_the_same_origin_is_followed() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/models"))
            .respond_with(ResponseTemplate::new(301).insert_header("location", "/v1/models/"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/models/"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .expect(1)
            .mount(&server)
            .await;
        let client = HttpClient::new("openai", false, parse_as_rate_limit).expect("client");
        let response = client
            .send(client.get(&format!("{}/v1/models", server.uri())))
            .await
            .expect("followed");
        assert_eq!(response.status(), 200);
    }

    #[test]
    fn redirect_targets_name_the_host_only_and_keep_its_case() {
        llm_core::register_secret(ECHOED);
        let target = |location: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                reqwest::header::LOCATION,
                reqwest::header::HeaderValue::from_str(location).expect("value"),
            );
            redirect_target(&headers)
        };
        assert_eq!(
            target("https://Other.example:8443/v1?key=abc"),
            "Other.example:8443"
        );
        assert_eq!(target("https://user:pw@evil.example/x"), "evil.example");
        assert_eq!(
            target(&format!("http://{ECHOED}.example/")),
            "[REDACTED].example"
        );
        assert_eq!(target("/elsewhere"), "the same host");
        assert_eq!(redirect_target(&HeaderMap::new()), "no location given");
    }

    #[test]
    fn json_decode_errors_describe_html() {
        let client = HttpClient::new("openai", false, parse_as_rate_limit).expect("client");
        let err = client
            .decode_json::<serde_json::Value>(b"<html><title>Cloudflare error</title></html>")
            .expect_err("html");
        assert_eq!(err.kind(), ErrorKind::MalformedAnswer);
        assert!(
            err.message().contains("HTML error page (Cloudflare error)"),
            "{}",
            err.message()
        );
    }
}
