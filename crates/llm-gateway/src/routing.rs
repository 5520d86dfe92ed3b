//! Which providers a request goes to: `model` and `models` resolved against the configured chain.
//!
//! - absent or `cascade`: the whole chain;
//! - a provider id (`groq`): that provider alone;
//! - `id/model` (`openrouter/openai/gpt-4o`): that provider asked for that model;
//! - any other name (an app's hard-coded `gpt-4o-mini`): the whole chain, or a 400 with
//!   `LLM_GATEWAY_STRICT_MODELS=true`;
//! - `models: [...]`: this request's order, each entry one of the forms above (`cascade` adds the rest
//!   of the chain); unknown entries are a 400, since a list is a deliberate choice.

use std::sync::Arc;

use async_trait::async_trait;
use llm_cascade::{ChatRequest, ChatResponse, ChatStream, Error, ProgressSink, Provider};

use crate::error::ApiError;

/// The chain's name in `model`.
pub const CASCADE: &str = "cascade";

/// What `model` named.
enum Target {
    Chain,
    One(Arc<dyn Provider>),
    Unknown,
}

fn lookup(chain: &[Arc<dyn Provider>], name: &str) -> Target {
    if name == CASCADE {
        return Target::Chain;
    }
    if let Some(p) = chain.iter().find(|p| p.id() == name) {
        return Target::One(p.clone());
    }
    if let Some((id, model)) = name.split_once('/')
        && !model.is_empty()
        && let Some(p) = chain.iter().find(|p| p.id() == id)
    {
        return Target::One(Arc::new(WithModel {
            inner: p.clone(),
            model: model.to_owned(),
        }));
    }
    Target::Unknown
}

/// The valid `model` values, for error messages and `/v1/models`.
pub fn valid_models(chain: &[Arc<dyn Provider>]) -> Vec<String> {
    let mut names = vec![CASCADE.to_owned()];
    for p in chain {
        names.push(p.id().to_owned());
        names.push(format!("{}/{}", p.id(), p.model()));
    }
    names
}

fn unknown(chain: &[Arc<dyn Provider>], name: &str) -> ApiError {
    ApiError::invalid(
        format!("unknown model `{}`", llm_core::sanitize(name)),
        format!("Use one of: {}.", valid_models(chain).join(", ")),
    )
}

/// Where one request goes.
pub enum Route {
    /// The whole configured chain: the gateway's own cascade serves it as it is.
    Chain,
    /// These providers, in this order.
    Providers(Vec<Arc<dyn Provider>>),
}

/// The providers for this request, in order.
///
/// # Errors
/// A 400 for an unknown name in `models`, or in `model` with `strict`.
pub fn route(
    chain: &[Arc<dyn Provider>],
    model: Option<&str>,
    models: &[String],
    strict: bool,
) -> Result<Route, ApiError> {
    if !models.is_empty() {
        let mut order: Vec<Arc<dyn Provider>> = Vec::new();
        for name in models {
            match lookup(chain, name) {
                Target::Chain => order.extend(chain.iter().cloned()),
                Target::One(p) => order.push(p),
                Target::Unknown => return Err(unknown(chain, name)),
            }
        }
        return Ok(Route::Providers(order));
    }
    match model.map_or(Target::Chain, |name| lookup(chain, name)) {
        Target::Chain => Ok(Route::Chain),
        Target::One(p) => Ok(Route::Providers(vec![p])),
        Target::Unknown if strict => Err(unknown(chain, model.unwrap_or_default())),
        Target::Unknown => Ok(Route::Chain),
    }
}

/// A provider asked for a given model (`id/model`), whatever the request says.
#[derive(Debug)]
struct WithModel {
    inner: Arc<dyn Provider>,
    model: String,
}

impl WithModel {
    fn request(&self, request: &ChatRequest) -> ChatRequest {
        ChatRequest {
            model: Some(self.model.clone()),
            ..request.clone()
        }
    }
}

#[async_trait]
impl Provider for WithModel {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn base_url(&self) -> &str {
        self.inner.base_url()
    }
    fn is_local(&self) -> bool {
        self.inner.is_local()
    }
    fn timeout(&self) -> std::time::Duration {
        self.inner.timeout()
    }
    // Without these, `id/model` would read as text only (every tools request would skip the
    // provider) and a cut stream could not be continued by prefill: they answer for the named model.
    fn capabilities(&self) -> llm_cascade::Capabilities {
        self.inner.capabilities_for(&self.model)
    }
    fn capabilities_for(&self, model: &str) -> llm_cascade::Capabilities {
        self.inner.capabilities_for(model)
    }
    fn supports_prefill(&self, model: &str) -> bool {
        self.inner.supports_prefill(model)
    }
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        self.inner.chat(&self.request(request)).await
    }
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        self.inner.chat_stream(&self.request(request)).await
    }
    async fn check_available(&self) -> Result<(), Error> {
        self.inner.check_available().await
    }
    fn can_prepare(&self, error: &Error) -> bool {
        self.inner.can_prepare(error)
    }
    async fn prepare(&self, progress: ProgressSink<'_>) -> Result<(), Error> {
        self.inner.prepare(progress).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug)]
    struct Fake(&'static str);

    #[async_trait]
    impl Provider for Fake {
        fn id(&self) -> &str {
            self.0
        }
        fn model(&self) -> &str {
            "default-model"
        }
        fn base_url(&self) -> &str {
            "http://127.0.0.1:1"
        }
        fn timeout(&self) -> Duration {
            Duration::from_secs(1)
        }
        async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, Error> {
            Err(Error::config("fake"))
        }
        async fn chat_stream(&self, _: &ChatRequest) -> Result<ChatStream, Error> {
            Err(Error::config("fake"))
        }
        async fn check_available(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    fn chain() -> Vec<Arc<dyn Provider>> {
        vec![Arc::new(Fake("groq")), Arc::new(Fake("openrouter"))]
    }

    fn ids(route: Route) -> Vec<String> {
        let providers = match route {
            Route::Chain => chain(),
            Route::Providers(providers) => providers,
        };
        providers
            .iter()
            .map(|p| format!("{}:{}", p.id(), p.model()))
            .collect()
    }

    #[test]
    fn names_resolve_to_the_chain_one_provider_or_a_model() {
        let chain = chain();
        let all = ["groq:default-model", "openrouter:default-model"];
        assert_eq!(ids(route(&chain, None, &[], false).expect("none")), all);
        assert_eq!(
            ids(route(&chain, Some("cascade"), &[], false).expect("c")),
            all
        );
        assert_eq!(
            ids(route(&chain, Some("gpt-4o-mini"), &[], false).expect("x")),
            all
        );
        assert_eq!(
            ids(route(&chain, Some("openrouter"), &[], false).expect("id")),
            ["openrouter:default-model"]
        );
        assert_eq!(
            ids(route(&chain, Some("openrouter/openai/gpt-4o"), &[], false).expect("m")),
            ["openrouter:openai/gpt-4o"]
        );
    }

    #[test]
    fn strict_mode_and_models_lists_refuse_unknown_names() {
        let chain = chain();
        let error = route(&chain, Some("gpt-4o-mini"), &[], true)
            .map(|_| ())
            .expect_err("strict");
        assert!(error.hint.contains("groq/default-model"), "{}", error.hint);
        let order = route(
            &chain,
            Some("ignored"),
            &["openrouter".into(), "groq/fast".into()],
            true,
        )
        .expect("list");
        assert_eq!(ids(order), ["openrouter:default-model", "groq:fast"]);
        let bad = route(&chain, None, &["nope".into()], false)
            .map(|_| ())
            .expect_err("unknown");
        assert!(bad.message.contains("nope"));
    }
}
