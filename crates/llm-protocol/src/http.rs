//! The HTTP layer every provider shares: one pooled client, sending, capped body reads and the
//! classification of transport failures.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use llm_core::{Error, ErrorKind};
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
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .user_agent(concat!("llm-cascade/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::config(format!("cannot build the HTTP client: {}", error_chain(&e))))
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
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
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
        let headers = response.headers().clone();
        let body = self.read_body(response).await?;
        Err(self.classify(&HttpFailure {
            status,
            headers,
            body,
        }))
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
    /// # Errors
    /// Transport failures while reading, or a validation error for an oversized body.
    pub async fn read_body(&self, mut response: reqwest::Response) -> Result<Bytes, Error> {
        let mut body = BytesMut::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(self.error(
                    ErrorKind::MalformedAnswer,
                    format!(
                        "response body exceeds {} MiB; refusing to read it",
                        MAX_BODY_BYTES / (1024 * 1024)
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
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
    pub fn body_stream(
        &self,
        response: reqwest::Response,
    ) -> impl Stream<Item = Result<Bytes, Error>> + Send + 'static {
        let provider = self.provider.clone();
        response.bytes_stream().map(move |chunk| {
            chunk.map_err(|e| {
                Error::new(
                    ErrorKind::StreamTruncated,
                    format!("connection dropped mid-stream: {}", error_chain(&e)),
                )
                .with_provider(provider.as_ref())
            })
        })
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
        // Bind then drop a listener: the port is free, so connecting is refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
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
