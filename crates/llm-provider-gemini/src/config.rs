//! Configuration read from the environment.

use std::fmt;
use std::time::Duration;

use llm_core::{EnvSource, Error, Secret};
use llm_protocol::ProviderSettings;

use crate::SPEC;

/// How to reach Gemini: key, default model, base URL and per-attempt timeout.
///
/// Built from `GEMINI_API_KEY` (or `GOOGLE_GEMINI_API_KEY`, or `GOOGLE_API_KEY`: the first set wins),
/// `GEMINI_MODEL`, `GEMINI_BASE_URL` and `GEMINI_TIMEOUT`. `Debug` never shows the key.
#[derive(Clone)]
pub struct GeminiConfig {
    /// The API key, sent in the `x-goog-api-key` header (never in the URL).
    pub api_key: Secret,
    /// The model used when a request names none (`gemini-2.5-flash`).
    pub model: String,
    /// The API root without a trailing slash (`https://generativelanguage.googleapis.com/v1beta`).
    pub base_url: String,
    /// How long one attempt may take (the cascade applies it).
    pub timeout: Duration,
}

impl GeminiConfig {
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
    /// A config error naming the variable when no key is set, the timeout does not parse or the base
    /// URL is not an http(s) URL.
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

impl fmt::Debug for GeminiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiConfig")
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
    fn key_aliases_first_set_wins() {
        let only_google = MapEnv::new().with("GOOGLE_API_KEY", "g");
        assert_eq!(
            GeminiConfig::from_env(&only_google)
                .expect("config")
                .api_key
                .expose(),
            "g"
        );
        let both = MapEnv::new()
            .with("GOOGLE_API_KEY", "g")
            .with("GOOGLE_GEMINI_API_KEY", "gg")
            .with("GEMINI_API_KEY", "  ");
        assert_eq!(
            GeminiConfig::from_env(&both)
                .expect("config")
                .api_key
                .expose(),
            "gg"
        );
    }

    #[test]
    fn defaults_and_redaction() {
        let config = GeminiConfig::from_env(&MapEnv::new().with("GEMINI_API_KEY", "AIza-secret"))
            .expect("config");
        assert_eq!(config.model, "gemini-2.5-flash");
        assert_eq!(
            config.base_url,
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert!(!format!("{config:?}").contains("AIza-secret"));
    }

    #[test]
    fn missing_key_names_every_alias() {
        let err = GeminiConfig::from_env(&MapEnv::new()).expect_err("no key");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.message()
                .contains("GEMINI_API_KEY or GOOGLE_GEMINI_API_KEY or GOOGLE_API_KEY"),
            "{err}"
        );
    }
}
