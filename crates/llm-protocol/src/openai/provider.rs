//! [`OpenAiCompatible`]: the one [`Provider`] implementation behind every provider of the dialect,
//! configured by a `const` [`CompatSpec`] per provider crate.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use llm_core::{
    Capabilities, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind, Provider,
    Secret,
};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use tokio::sync::OnceCell;

use super::errors::embedded_error;
use super::ids::{ToolCallIds, with_tool_call_ids};
use super::stream::ChunkDecoder;
use super::wire::{decode_response, encode_request_bytes, error_in};
use crate::error_map::rate_limit_spent;
use crate::settings::validate_base_url;
use crate::sse::SseDecoder;
use crate::{
    HttpClient, ParseError, ProviderSettings, SettingsSpec, decode_stream, led_by_rate_limit,
};

/// An optional header a provider sends, its value read from the environment.
#[derive(Debug, Clone, Copy)]
pub struct EnvHeader {
    /// The header's name.
    pub name: &'static str,
    /// Variables holding its value; the first one set wins.
    pub env: &'static [&'static str],
    /// The value when none of them is set; `None` sends no header then.
    pub default: Option<&'static str>,
}

/// What one provider of the dialect declares: its settings plus its quirks. A `const`.
#[derive(Debug, Clone, Copy)]
pub struct CompatSpec {
    /// Id, env prefix, key variables, defaults, priority.
    pub settings: SettingsSpec,
    /// The chat path below the base URL.
    pub chat_path: &'static str,
    /// The models-list path below the base URL (the availability check and model discovery).
    pub models_path: &'static str,
    /// Whether a streamed request may carry `stream_options: {"include_usage": true}`.
    pub stream_usage: bool,
    /// Extra headers read from the environment (OpenRouter's attribution headers).
    pub headers: &'static [EnvHeader],
    /// The provider's error classification: [`super::parse_error`] or a wrapper of
    /// [`super::parse_error_with`] with the provider's overrides.
    pub parse_error: ParseError,
    /// Key variables read when the provider needs no key but accepts one (LM Studio).
    pub optional_key_env: &'static [&'static str],
    /// A variable that may hold the full chat URL (`…/v1/chat/completions`); the base URL is derived by
    /// removing [`CompatSpec::chat_path`]. `<PREFIX>_BASE_URL` wins when both are set.
    pub chat_url_env: Option<&'static str>,
    /// Without `<PREFIX>_MODEL`, use the first model the server lists (LM Studio's loaded model).
    pub discover_model: bool,
    /// Whether the provider continues a final assistant message marked `"prefix": true` (Mistral):
    /// such a message is then sent with that mark, and [`Provider::supports_prefill`] says `true`.
    pub prefix_prefill: bool,
    /// What the provider can do beyond text (JSON schema, JSON mode, tools); every capability unless
    /// the provider says otherwise (DeepSeek: JSON mode only).
    pub capabilities: Capabilities,
    /// What a given model can do, from [`CompatSpec::capabilities`]: where the provider's models differ
    /// (DeepSeek's reasoner, OpenAI's o1-mini). [`same_for_every_model`] unless the provider says so.
    pub model_capabilities: fn(model: &str, provider: Capabilities) -> Capabilities,
    /// The tool-call ids the provider accepts: foreign ones are mapped to them
    /// ([`super::with_tool_call_ids`]).
    pub tool_call_ids: ToolCallIds,
    /// Whether the provider documents `parallel_tool_calls` (OpenAI, Groq, Mistral, OpenRouter): a
    /// request's setting is sent only then (elsewhere an unknown field may be refused, and the
    /// cascade keeps one call of an answer when the request asked for one at a time).
    pub parallel_tool_calls: bool,
}

/// The provider's capabilities, whatever the model: [`CompatSpec::model_capabilities`]' default.
pub fn same_for_every_model(_model: &str, provider: Capabilities) -> Capabilities {
    provider
}

impl CompatSpec {
    /// The plain dialect for `settings`: `/chat/completions`, `/models`, usage in streams, the dialect's
    /// `parse_error`, no extra headers, no discovery.
    pub const fn new(settings: SettingsSpec) -> Self {
        Self {
            settings,
            chat_path: "/chat/completions",
            models_path: "/models",
            stream_usage: true,
            headers: &[],
            parse_error: super::parse_error,
            optional_key_env: &[],
            chat_url_env: None,
            discover_model: false,
            prefix_prefill: false,
            capabilities: Capabilities::ALL,
            model_capabilities: same_for_every_model,
            tool_call_ids: ToolCallIds::AsIs,
            parallel_tool_calls: false,
        }
    }
}

/// Ties a provider crate's marker type to its [`CompatSpec`]; the generic [`OpenAiCompatible`] and
/// [`CompatConfig`] read everything from it.
pub trait CompatProvider: Send + Sync + 'static {
    /// The provider's spec.
    const SPEC: CompatSpec;
}

/// A provider's configuration, read from an [`EnvSource`]. `Debug` never shows the key.
pub struct CompatConfig<P> {
    /// Key, model, base URL and timeout.
    pub settings: ProviderSettings,
    /// Whether `<PREFIX>_MODEL` was set (otherwise a discovering provider asks the server).
    pub model_configured: bool,
    /// Extra headers and their values.
    pub headers: Vec<(&'static str, String)>,
    marker: PhantomData<fn() -> P>,
}

impl<P> Clone for CompatConfig<P> {
    fn clone(&self) -> Self {
        Self {
            settings: self.settings.clone(),
            model_configured: self.model_configured,
            headers: self.headers.clone(),
            marker: PhantomData,
        }
    }
}

impl<P: CompatProvider> fmt::Debug for CompatConfig<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        f.debug_struct("CompatConfig")
            .field("provider", &P::SPEC.settings.id)
            .field("settings", &self.settings)
            .field("model_configured", &self.model_configured)
            .field("headers", &header_names)
            .finish_non_exhaustive()
    }
}

impl<P: CompatProvider> CompatConfig<P> {
    /// Reads the configuration from `env`.
    ///
    /// # Errors
    /// A [`ErrorKind::Config`] error naming the variable that is missing or invalid.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let spec = &P::SPEC;
        let mut settings = ProviderSettings::from_env(&spec.settings, env)?;
        if settings.api_key.is_none() {
            settings.api_key = env
                .first_of(spec.optional_key_env)?
                .map(|(_, key)| Secret::new(key));
        }
        if let Some(var) = spec.chat_url_env {
            let base_set = env.non_empty(&spec.settings.var("BASE_URL"))?.is_some();
            if let Some(url) = env.non_empty(var)?.filter(|_| !base_set) {
                let url = validate_base_url(&spec.settings, var, &url)?;
                settings.base_url = url.strip_suffix(spec.chat_path).unwrap_or(&url).to_owned();
            }
        }
        let mut headers = Vec::new();
        for header in spec.headers {
            let value = env.first_of(header.env)?.map(|(_, value)| value);
            if let Some(value) = value.or_else(|| header.default.map(str::to_owned)) {
                headers.push((header.name, value));
            }
        }
        Ok(Self {
            model_configured: env.non_empty(&spec.settings.var("MODEL"))?.is_some(),
            settings,
            headers,
            marker: PhantomData,
        })
    }
}

/// The generic provider of the dialect; each provider crate names it `type <X> = OpenAiCompatible<…>`.
pub struct OpenAiCompatible<P> {
    config: CompatConfig<P>,
    http: HttpClient,
    headers: HeaderMap,
    /// The chat endpoint, parsed once (`None` when the base URL does not parse: each request then
    /// reports why).
    chat_url: Option<reqwest::Url>,
    discovered: OnceCell<String>,
}

impl<P: CompatProvider> fmt::Debug for OpenAiCompatible<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field("config", &self.config)
            .field("discovered", &self.discovered.get())
            .finish_non_exhaustive()
    }
}

/// Builds the boxed provider for the registry. Does no network I/O.
///
/// # Errors
/// As [`OpenAiCompatible::from_env`].
pub fn build_boxed<P: CompatProvider>(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(OpenAiCompatible::<P>::from_env(env)?))
}

impl<P: CompatProvider> OpenAiCompatible<P> {
    /// The provider for `config`. Does no network I/O.
    ///
    /// # Errors
    /// A [`ErrorKind::Config`] error when the key or a header value cannot be sent in a header, or the
    /// HTTP client cannot be built.
    pub fn new(config: CompatConfig<P>) -> Result<Self, Error> {
        let spec = &P::SPEC;
        let id = spec.settings.id;
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.settings.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                Error::config(format!(
                    "the API key contains characters that cannot be sent in a header (check {})",
                    spec.settings.key_env.first().or(spec.optional_key_env.first()).unwrap_or(&"the key")
                ))
                .with_provider(id)
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        for (name, value) in &config.headers {
            let invalid = || {
                Error::config(format!("header {name}: the value cannot be sent")).with_provider(id)
            };
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid())?;
            headers.insert(header, value);
        }
        let chat_url =
            reqwest::Url::parse(&format!("{}{}", config.settings.base_url, spec.chat_path)).ok();
        Ok(Self {
            http: HttpClient::new(id, spec.settings.local, spec.parse_error)?,
            config,
            headers,
            chat_url,
            discovered: OnceCell::new(),
        })
    }

    /// The provider configured from `env`.
    ///
    /// # Errors
    /// As [`CompatConfig::from_env`] and [`OpenAiCompatible::new`].
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        Self::new(CompatConfig::from_env(env)?)
    }

    /// The configuration in use.
    pub fn config(&self) -> &CompatConfig<P> {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.settings.base_url)
    }

    fn discovers(&self) -> bool {
        P::SPEC.discover_model && !self.config.model_configured
    }

    /// The model a request goes to: its own, the configured one, or the one the server has loaded.
    async fn model_for(&self, request: &ChatRequest) -> Result<String, Error> {
        match &request.model {
            Some(model) => Ok(model.clone()),
            None if self.discovers() => self.discovered_model().await.cloned(),
            None => Ok(self.config.settings.model.clone()),
        }
    }

    /// Asks the server which models it has and keeps the first (embedding models skipped).
    async fn discovered_model(&self) -> Result<&String, Error> {
        self.discovered
            .get_or_try_init(|| async {
                let value = self.list_models().await?;
                let ids = value
                    .get("data")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                let mut ids = ids.filter_map(|model| model.get("id").and_then(Value::as_str));
                ids.find(|id| !id.contains("embed"))
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        self.http.error(
                            ErrorKind::ModelNotFound,
                            format!(
                                "the server reports no loaded model: load one in {} (or set {})",
                                P::SPEC.settings.display_name,
                                P::SPEC.settings.var("MODEL")
                            ),
                        )
                    })
            })
            .await
    }

    /// `GET {base}/models`, as JSON; an error object in a 200 body is an error.
    async fn list_models(&self) -> Result<Value, Error> {
        let request = self
            .http
            .get(&self.url(P::SPEC.models_path))
            .headers(self.headers.clone());
        let response = self.http.send(request).await?;
        let value: Value = self.http.read_json(response).await?;
        if error_in(&value) {
            return Err(
                embedded_error(&value, 200, P::SPEC.parse_error).with_provider(P::SPEC.settings.id)
            );
        }
        Ok(value)
    }

    async fn post_chat(
        &self,
        request: &ChatRequest,
        stream: bool,
    ) -> Result<reqwest::Response, Error> {
        let model = self.model_for(request).await?;
        let mut request = with_tool_call_ids(request, P::SPEC.tool_call_ids, &model);
        if !P::SPEC.parallel_tool_calls && request.parallel_tool_calls.is_some() {
            request.to_mut().parallel_tool_calls = None;
        }
        let body = encode_request_bytes(
            &request,
            &model,
            stream,
            P::SPEC.stream_usage,
            P::SPEC.prefix_prefill,
        );
        let post = match &self.chat_url {
            Some(url) => self.http.post(url.clone()),
            None => self.http.post(self.url(P::SPEC.chat_path)),
        };
        let post = post
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.http.send(post).await
    }
}

#[async_trait]
impl<P: CompatProvider> Provider for OpenAiCompatible<P> {
    fn id(&self) -> &str {
        P::SPEC.settings.id
    }

    fn model(&self) -> &str {
        match self.discovered.get() {
            Some(model) if self.discovers() => model,
            _ => &self.config.settings.model,
        }
    }

    fn base_url(&self) -> &str {
        &self.config.settings.base_url
    }

    fn is_local(&self) -> bool {
        P::SPEC.settings.local
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities_for(self.model())
    }

    fn capabilities_for(&self, model: &str) -> Capabilities {
        (P::SPEC.model_capabilities)(model, P::SPEC.capabilities)
    }

    fn timeout(&self) -> Duration {
        self.config.settings.timeout
    }

    fn supports_prefill(&self, _model: &str) -> bool {
        P::SPEC.prefix_prefill
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let response = self.post_chat(request, false).await?;
        let spent = rate_limit_spent(response.headers(), super::LIMIT_HEADERS, SystemTime::now());
        let body = self.http.read_body(response).await?;
        let mut answer = decode_response(self.id(), &body, P::SPEC.parse_error)?;
        answer.rate_limit = spent;
        Ok(answer)
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let response = self.post_chat(request, true).await?;
        let spent = rate_limit_spent(response.headers(), super::LIMIT_HEADERS, SystemTime::now());
        let events = decode_stream(
            self.id(),
            self.http.body_stream(response),
            SseDecoder::new(),
            ChunkDecoder::new(P::SPEC.parse_error),
        );
        Ok(led_by_rate_limit(events, spent))
    }

    async fn check_available(&self) -> Result<(), Error> {
        if self.discovers() {
            self.discovered_model().await.map(|_| ())
        } else {
            self.list_models().await.map(|_| ())
        }
    }
}
