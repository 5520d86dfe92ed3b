//! The [`Provider`] implementation.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use llm_core::{Capabilities, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, Provider};
use llm_protocol::error_map::{LimitHeaders, rate_limit_spent};
use llm_protocol::header::{ACCEPT, HeaderMap, HeaderValue};
use llm_protocol::sse::SseDecoder;
use llm_protocol::{HttpClient, decode_stream, led_by_rate_limit};

use crate::config::AnthropicConfig;
use crate::stream::StreamDecoder;
use crate::{ID, wire};

/// Anthropic's rate-limit headers: what is left of each bucket, and when it resets (RFC 3339).
const LIMIT_HEADERS: &[LimitHeaders] = &[
    LimitHeaders {
        remaining: "anthropic-ratelimit-requests-remaining",
        reset: "anthropic-ratelimit-requests-reset",
    },
    LimitHeaders {
        remaining: "anthropic-ratelimit-tokens-remaining",
        reset: "anthropic-ratelimit-tokens-reset",
    },
    LimitHeaders {
        remaining: "anthropic-ratelimit-input-tokens-remaining",
        reset: "anthropic-ratelimit-input-tokens-reset",
    },
    LimitHeaders {
        remaining: "anthropic-ratelimit-output-tokens-remaining",
        reset: "anthropic-ratelimit-output-tokens-reset",
    },
];

/// The Messages API version we speak.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Anthropic's Messages API as a [`Provider`].
#[derive(Debug, Clone)]
pub struct Anthropic {
    config: AnthropicConfig,
    http: HttpClient,
    headers: HeaderMap,
}

impl Anthropic {
    /// A provider for `config`. Does no network I/O.
    ///
    /// # Errors
    /// A config error when the key cannot be sent as a header or the HTTP client cannot be built.
    pub fn new(config: AnthropicConfig) -> Result<Self, Error> {
        let http = HttpClient::new(ID, false, wire::parse_error)?;
        let mut key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| {
            Error::config("ANTHROPIC_API_KEY contains characters not allowed in an HTTP header")
                .with_provider(ID)
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", key);
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        Ok(Self {
            config,
            http,
            headers,
        })
    }

    /// A provider configured from `env` (see [`AnthropicConfig::from_env`]).
    ///
    /// # Errors
    /// As [`AnthropicConfig::from_env`] and [`Anthropic::new`].
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        Self::new(AnthropicConfig::from_env(env)?)
    }

    fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        request.model.as_deref().unwrap_or(&self.config.model)
    }

    fn messages_url(&self) -> String {
        format!("{}/messages", self.config.base_url)
    }
}

#[async_trait]
impl Provider for Anthropic {
    fn id(&self) -> &str {
        ID
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn base_url(&self) -> &str {
        &self.config.base_url
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    /// Everything, on every model: tools and parallel tool calls natively; a JSON schema through
    /// `output_config.format` on Claude 4.5 and later, through a forced answer tool on older models;
    /// a JSON object through the forced answer tool (the API has no schema-less JSON mode).
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }

    /// A final assistant turn is continued by every Messages API model (the encoder sends it as the
    /// last message); a model that refuses it answers 400, which the cascade takes as "no prefill".
    fn supports_prefill(&self, _model: &str) -> bool {
        true
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let model = self.model_for(request);
        let body = wire::encode_request(request, model, false).map_err(|e| e.with_provider(ID))?;
        tracing::debug!(provider = ID, model, "sending a Messages API request");
        let builder = self
            .http
            .post(self.messages_url())
            .headers(self.headers.clone())
            .json(&body);
        let response = self.http.send(builder).await?;
        let spent = rate_limit_spent(response.headers(), LIMIT_HEADERS, SystemTime::now());
        let response_body = self.http.read_body(response).await?;
        let decoded: wire::MessagesResponse = self.http.decode_json(&response_body)?;
        let mut answer =
            wire::decode_response(decoded, model, &body.plan).map_err(|e| e.with_provider(ID))?;
        answer.rate_limit = spent;
        Ok(answer)
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let model = self.model_for(request);
        let body = wire::encode_request(request, model, true).map_err(|e| e.with_provider(ID))?;
        tracing::debug!(
            provider = ID,
            model,
            "sending a streamed Messages API request"
        );
        let builder = self
            .http
            .post(self.messages_url())
            .headers(self.headers.clone())
            .header(ACCEPT, "text/event-stream")
            .json(&body);
        let response = self.http.send(builder).await?;
        let spent = rate_limit_spent(response.headers(), LIMIT_HEADERS, SystemTime::now());
        let events = decode_stream(
            ID,
            self.http.body_stream(response),
            SseDecoder::new(),
            StreamDecoder::new(body.plan.clone()),
        );
        Ok(led_by_rate_limit(events, spent))
    }

    async fn check_available(&self) -> Result<(), Error> {
        let request = self
            .http
            .get(&format!("{}/models?limit=1", self.config.base_url))
            .headers(self.headers.clone());
        let response = self.http.send(request).await?;
        let body = self.http.read_body(response).await?;
        // An error object in a 200 (a proxy, an outage page in JSON) is not a model list.
        match serde_json::from_slice::<wire::ErrorBody>(&body) {
            Ok(error) => Err(wire::error_from_object(&error.error, None).with_provider(ID)),
            Err(_) => Ok(()),
        }
    }
}
