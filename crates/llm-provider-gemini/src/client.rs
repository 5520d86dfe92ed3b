//! The [`Provider`] implementation.

use std::time::Duration;

use async_trait::async_trait;
use llm_core::{
    Capabilities, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, Provider, Role,
};
use llm_protocol::header::{ACCEPT, HeaderMap, HeaderValue};
use llm_protocol::sse::SseDecoder;
use llm_protocol::{HttpClient, decode_stream};

use crate::config::GeminiConfig;
use crate::{ID, request, wire};

/// Google's Gemini API (`generateContent`) as a [`Provider`].
#[derive(Debug, Clone)]
pub struct Gemini {
    config: GeminiConfig,
    http: HttpClient,
    headers: HeaderMap,
}

impl Gemini {
    /// A provider for `config`. Does no network I/O.
    ///
    /// # Errors
    /// A config error when the key cannot be sent as a header or the HTTP client cannot be built.
    pub fn new(config: GeminiConfig) -> Result<Self, Error> {
        let http = HttpClient::new(ID, false, wire::parse_error)?;
        let mut key = HeaderValue::from_str(config.api_key.expose()).map_err(|_| {
            Error::config("the Gemini API key contains characters not allowed in an HTTP header")
                .with_provider(ID)
        })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", key);
        Ok(Self {
            config,
            http,
            headers,
        })
    }

    /// A provider configured from `env` (see [`GeminiConfig::from_env`]).
    ///
    /// # Errors
    /// As [`GeminiConfig::from_env`] and [`Gemini::new`].
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        Self::new(GeminiConfig::from_env(env)?)
    }

    fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        request.model.as_deref().unwrap_or(&self.config.model)
    }

    /// The body for `request` to `model`.
    fn body<'a>(
        request: &'a ChatRequest,
        model: &str,
    ) -> Result<request::GenerateRequest<'a>, Error> {
        request::encode(request, model).map_err(|e| e.with_provider(ID))
    }

    /// `{base}/models/{model}:{method}`; the key never goes into the URL.
    fn url(&self, model: &str, method: &str) -> Result<String, Error> {
        let model = wire::model_segment(model).map_err(|e| e.with_provider(ID))?;
        Ok(format!("{}/models/{model}:{method}", self.config.base_url))
    }
}

#[async_trait]
impl Provider for Gemini {
    fn id(&self) -> &str {
        ID
    }

    fn model(&self) -> &str {
        &self.config.model
    }

    fn base_url(&self) -> &str {
        &self.config.base_url
    }

    /// Gemini models take a JSON schema (`responseJsonSchema`), JSON mode and (parallel) function
    /// calls; Gemma models served by the same API take none of them.
    fn capabilities(&self) -> Capabilities {
        capabilities_of(&self.config.model)
    }

    fn timeout(&self) -> Duration {
        self.config.timeout
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let model = self.model_for(request);
        let url = self.url(model, "generateContent")?;
        tracing::debug!(provider = ID, model, "sending a generateContent request");
        let builder = self
            .http
            .post(&url)
            .headers(self.headers.clone())
            .json(&Self::body(request, model)?);
        let response = self.http.send(builder).await?;
        let body = self.http.read_body(response).await?;
        let decoded: wire::OneOrMany = self.http.decode_json(&body)?;
        wire::decode_response(decoded, model, answer_turn(request)).map_err(|e| e.with_provider(ID))
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let model = self.model_for(request);
        let url = self.url(model, "streamGenerateContent?alt=sse")?;
        tracing::debug!(
            provider = ID,
            model,
            "sending a streamGenerateContent request"
        );
        let builder = self
            .http
            .post(&url)
            .headers(self.headers.clone())
            .header(ACCEPT, "text/event-stream")
            .json(&Self::body(request, model)?);
        let response = self.http.send(builder).await?;
        Ok(decode_stream(
            ID,
            self.http.body_stream(response),
            SseDecoder::new(),
            wire::StreamDecoder::for_turn(answer_turn(request)),
        ))
    }

    async fn check_available(&self) -> Result<(), Error> {
        let request = self
            .http
            .get(&format!("{}/models?pageSize=1", self.config.base_url))
            .headers(self.headers.clone());
        let response = self.http.send(request).await?;
        self.http.read_body(response).await.map(|_| ())
    }
}

/// What `model` can do beyond text: every Gemini model takes `responseJsonSchema`, JSON mode and
/// parallel function calls; Gemma models on the same API answer "Function calling is not enabled"
/// (and take no JSON mode), so they are text only. A model that still refuses a feature answers with
/// a 400 read as `unsupported`, and the cascade moves on.
fn capabilities_of(model: &str) -> Capabilities {
    let id = model.strip_prefix("models/").unwrap_or(model);
    if id.starts_with("gemma-") {
        Capabilities::TEXT
    } else {
        Capabilities::ALL
    }
}

/// The turn of the answer's call ids: how many assistant messages come before it.
fn answer_turn(request: &ChatRequest) -> usize {
    request
        .messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma_models_are_text_only() {
        assert_eq!(capabilities_of("gemini-2.5-flash"), Capabilities::ALL);
        assert_eq!(capabilities_of("models/gemma-3-27b-it"), Capabilities::TEXT);
    }
}
