//! Configuration read from the environment.

use std::fmt;
use std::time::Duration;

use llm_core::{EnvSource, Error, Secret};
use llm_protocol::ProviderSettings;

use crate::SPEC;

/// How to reach Anthropic: key, default model, base URL and per-attempt timeout.
///
/// Built from `ANTHROPIC_API_KEY` (required), `ANTHROPIC_MODEL`, `ANTHROPIC_BASE_URL` and
/// `ANTHROPIC_TIMEOUT`. `Debug` never shows the key.
#[derive(Clone)]
pub struct AnthropicConfig {
    /// The API key, sent in the `x-api-key` header.
    pub api_key: Secret,
    /// The model used when a request names none.
    pub model: String,
    /// The API root without a trailing slash (`https://api.anthropic.com/v1`).
    pub base_url: String,
    /// How long one attempt may take (the cascade applies it).
    pub timeout: Duration,
}

impl AnthropicConfig {
    /// A configuration with `api_key` and every other setting at its default.
    pub fn new(api_key: Secret) -> Self {
        Self {
            api_key,
            model: SPEC.default_model.to_owned(),
            base_url: SPEC.default_base_url.to_owned(),
            timeout: SPEC.default_timeout,
        }
    }

    /// Reads the configuration from `env`.
    ///
    /// # Errors
    /// A config error naming the variable when the key is missing, the timeout does not parse or the
    /// base URL is not an http(s) URL.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let (api_key, settings) = ProviderSettings::from_env_with_key(&SPEC, env)?;
        Ok(Self {
            api_key,
            model: settings.model,
            base_url: settings.base_url,
            timeout: settings.timeout,
        })
    }
}

impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::{ErrorKind, MapEnv};

    #[test]
    fn defaults_overrides_and_redaction() {
        let config =
            AnthropicConfig::from_env(&MapEnv::new().with("ANTHROPIC_API_KEY", "sk-ant-secret"))
                .expect("config");
        assert_eq!(config.model, "claude-sonnet-4-5-20250929");
        assert_eq!(config.base_url, "https://api.anthropic.com/v1");
        assert!(!format!("{config:?}").contains("sk-ant-secret"));

        let env = MapEnv::new()
            .with("ANTHROPIC_API_KEY", "k")
            .with("ANTHROPIC_MODEL", "claude-haiku-4-5")
            .with("ANTHROPIC_BASE_URL", "http://127.0.0.1:1/v1/")
            .with("ANTHROPIC_TIMEOUT", "5s");
        let config = AnthropicConfig::from_env(&env).expect("config");
        assert_eq!(
            (
                config.model.as_str(),
                config.base_url.as_str(),
                config.timeout
            ),
            (
                "claude-haiku-4-5",
                "http://127.0.0.1:1/v1",
                Duration::from_secs(5)
            )
        );
    }

    #[test]
    fn missing_key_is_a_config_error() {
        let err = AnthropicConfig::from_env(&MapEnv::new()).expect_err("no key");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("ANTHROPIC_API_KEY"), "{err}");
    }
}
