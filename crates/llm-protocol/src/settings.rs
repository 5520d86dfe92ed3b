//! The configuration every HTTP provider reads from the environment, parsed once, in one place.
//!
//! `<PREFIX>_API_KEY` (or an alias), `<PREFIX>_MODEL`, `<PREFIX>_BASE_URL`, `<PREFIX>_TIMEOUT`.

use std::fmt;
use std::time::Duration;

use llm_core::{EnvSource, Error, ProviderRegistration, Secret, parse_timeout};

/// The per-attempt timeout of a cloud provider when `<PREFIX>_TIMEOUT` is not set.
pub const CLOUD_TIMEOUT: Duration = Duration::from_secs(60);

/// What a provider crate declares about its configuration: a `const`.
#[derive(Debug, Clone, Copy)]
pub struct SettingsSpec {
    /// Provider id.
    pub id: &'static str,
    /// A human name.
    pub display_name: &'static str,
    /// Env prefix without the trailing underscore (`GROQ`, `LM_STUDIO`).
    pub env_prefix: &'static str,
    /// Key variables, first set wins (`GEMINI_API_KEY`, `GOOGLE_GEMINI_API_KEY`, `GOOGLE_API_KEY`).
    /// Empty for providers that need no key.
    pub key_env: &'static [&'static str],
    /// Model when `<PREFIX>_MODEL` is not set.
    pub default_model: &'static str,
    /// Base URL when `<PREFIX>_BASE_URL` is not set.
    pub default_base_url: &'static str,
    /// Timeout when `<PREFIX>_TIMEOUT` is not set.
    pub default_timeout: Duration,
    /// Whether the provider runs locally (needs no key; refused connection = not running).
    pub local: bool,
    /// Position in the default order (lower first).
    pub priority: u16,
    /// Other names users have for the id, lower case (`claude` for `anthropic`).
    pub aliases: &'static [&'static str],
}

impl SettingsSpec {
    /// The registry entry for this provider, with its builder.
    pub const fn registration(&self, build: llm_core::BuildProvider) -> ProviderRegistration {
        ProviderRegistration {
            id: self.id,
            display_name: self.display_name,
            priority: self.priority,
            aliases: self.aliases,
            local: self.local,
            env_prefix: self.env_prefix,
            key_env: self.key_env,
            default_model: self.default_model,
            default_base_url: self.default_base_url,
            build,
        }
    }

    /// The name of `<PREFIX>_<suffix>`.
    pub fn var(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.env_prefix)
    }
}

/// A provider's parsed settings.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The key, when the provider has one.
    pub api_key: Option<Secret>,
    /// Default model.
    pub model: String,
    /// Base URL, without a trailing slash.
    pub base_url: String,
    /// Per-attempt timeout.
    pub timeout: Duration,
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ProviderSettings {
    /// Reads the settings of `spec` from `env`.
    ///
    /// # Errors
    /// A config error naming the variable when a key is required but missing, a timeout does not
    /// parse, or a base URL is not http(s).
    pub fn from_env(spec: &SettingsSpec, env: &dyn EnvSource) -> Result<Self, Error> {
        let api_key = env
            .first_of(spec.key_env)
            .map_err(|e| e.with_provider(spec.id))?
            .map(|(_, key)| Secret::new(key));
        if api_key.is_none() && !spec.key_env.is_empty() && !spec.local {
            return Err(missing_key(spec));
        }
        let read = |suffix: &str| {
            env.non_empty(&spec.var(suffix))
                .map_err(|e| e.with_provider(spec.id))
        };
        let model = read("MODEL")?.unwrap_or_else(|| spec.default_model.to_owned());
        let base_url = match read("BASE_URL")? {
            Some(url) => validate_base_url(spec, &spec.var("BASE_URL"), &url)?,
            None => spec.default_base_url.to_owned(),
        };
        let timeout_var = spec.var("TIMEOUT");
        let timeout = match read("TIMEOUT")? {
            Some(text) => parse_timeout(&text).map_err(|why| {
                Error::config(format!("{timeout_var}: {why}")).with_provider(spec.id)
            })?,
            None => spec.default_timeout,
        };
        Ok(Self {
            api_key,
            model,
            base_url,
            timeout,
        })
    }

    /// Reads the settings of `spec` from `env` for a provider that cannot work without a key, and
    /// returns the key apart (the returned settings hold none).
    ///
    /// # Errors
    /// As [`ProviderSettings::from_env`]; a config error naming the key variables whenever no key is set
    /// (even for a `local` spec).
    pub fn from_env_with_key(
        spec: &SettingsSpec,
        env: &dyn EnvSource,
    ) -> Result<(Secret, Self), Error> {
        let mut settings = Self::from_env(spec, env)?;
        let key = settings.api_key.take().ok_or_else(|| missing_key(spec))?;
        Ok((key, settings))
    }
}

/// The config error of a provider whose key is not set, naming every variable that may hold it.
fn missing_key(spec: &SettingsSpec) -> Error {
    Error::config(format!(
        "{} is not configured: set {}",
        spec.id,
        spec.key_env.join(" or ")
    ))
    .with_provider(spec.id)
}

/// Checks that `url` (from variable `var`) is an http(s) URL and strips its trailing slash.
///
/// # Errors
/// A config error naming the variable.
pub fn validate_base_url(spec: &SettingsSpec, var: &str, url: &str) -> Result<String, Error> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::config(format!("{var} is not a valid URL ({e})")).with_provider(spec.id)
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(
            Error::config(format!("{var} must be an http:// or https:// URL"))
                .with_provider(spec.id),
        );
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::{ErrorKind, MapEnv};

    const SPEC: SettingsSpec = SettingsSpec {
        id: "gemini",
        display_name: "Gemini",
        env_prefix: "GEMINI",
        key_env: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        default_model: "m-default",
        default_base_url: "https://example.test/v1",
        default_timeout: CLOUD_TIMEOUT,
        local: false,
        priority: 40,
        aliases: &["google"],
    };

    #[test]
    fn defaults_and_aliases() {
        let settings =
            ProviderSettings::from_env(&SPEC, &MapEnv::new().with("GOOGLE_API_KEY", "k"))
                .expect("ok");
        assert_eq!(settings.api_key.as_ref().map(Secret::expose), Some("k"));
        assert_eq!(
            (settings.model.as_str(), settings.base_url.as_str()),
            ("m-default", "https://example.test/v1")
        );
        assert_eq!(settings.timeout, CLOUD_TIMEOUT);
    }

    #[test]
    fn overrides() {
        let env = MapEnv::new()
            .with("GEMINI_API_KEY", "k")
            .with("GEMINI_MODEL", "m2")
            .with("GEMINI_BASE_URL", "http://127.0.0.1:9/v1beta/")
            .with("GEMINI_TIMEOUT", "500ms");
        let settings = ProviderSettings::from_env(&SPEC, &env).expect("ok");
        assert_eq!(settings.base_url, "http://127.0.0.1:9/v1beta");
        assert_eq!(settings.model, "m2");
        assert_eq!(settings.timeout, Duration::from_millis(500));
    }

    #[test]
    fn errors_name_the_variable_and_never_the_key() {
        let missing = ProviderSettings::from_env(&SPEC, &MapEnv::new()).expect_err("no key");
        assert_eq!(missing.kind(), ErrorKind::Config);
        assert!(
            missing
                .message()
                .contains("GEMINI_API_KEY or GOOGLE_API_KEY")
        );
        let env = MapEnv::new()
            .with("GEMINI_API_KEY", "secret-value")
            .with("GEMINI_TIMEOUT", "soon");
        let bad = ProviderSettings::from_env(&SPEC, &env).expect_err("bad timeout");
        assert!(
            bad.message().starts_with("GEMINI_TIMEOUT"),
            "{}",
            bad.message()
        );
        let env = MapEnv::new()
            .with("GEMINI_API_KEY", "secret-value")
            .with("GEMINI_BASE_URL", "ftp://x");
        let bad = ProviderSettings::from_env(&SPEC, &env).expect_err("bad url");
        assert!(bad.message().contains("GEMINI_BASE_URL"));
        let settings = ProviderSettings::from_env(
            &SPEC,
            &MapEnv::new().with("GEMINI_API_KEY", "secret-value"),
        );
        assert!(!format!("{settings:?}").contains("secret-value"));
    }

    #[test]
    fn a_zero_timeout_is_rejected() {
        for zero in ["0", "0s", "0ms"] {
            let env = MapEnv::new()
                .with("GEMINI_API_KEY", "k")
                .with("GEMINI_TIMEOUT", zero);
            let bad = ProviderSettings::from_env(&SPEC, &env).expect_err(zero);
            assert_eq!(bad.provider(), Some("gemini"));
            assert!(
                bad.message().starts_with("GEMINI_TIMEOUT: ")
                    && bad.message().contains("above zero"),
                "{bad}"
            );
        }
    }

    /// Every variable unset but `name`, which is unreadable (as a non-UTF-8 process variable is).
    struct OneUnreadable(&'static str);

    impl EnvSource for OneUnreadable {
        fn var(&self, name: &str) -> Result<Option<String>, Error> {
            match name {
                _ if name == self.0 => Err(llm_core::not_unicode(name)),
                "GEMINI_API_KEY" => Ok(Some("canary-key-0000-DO-NOT-LEAK".to_owned())),
                _ => Ok(None),
            }
        }
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error_naming_it_never_a_default() {
        for name in ["GEMINI_MODEL", "GEMINI_BASE_URL", "GEMINI_TIMEOUT"] {
            let err = ProviderSettings::from_env(&SPEC, &OneUnreadable(name)).expect_err(name);
            assert_eq!(
                (err.kind(), err.provider()),
                (ErrorKind::Config, Some("gemini"))
            );
            assert!(err.message().starts_with(&format!("{name} ")), "{err}");
        }
        // The first key variable is unreadable: not skipped for the next one.
        let err = ProviderSettings::from_env(&SPEC, &OneUnreadable("GEMINI_API_KEY"))
            .expect_err("unreadable key");
        assert!(err.message().starts_with("GEMINI_API_KEY "), "{err}");
    }

    #[test]
    fn with_key_returns_the_key_apart_or_a_config_error() {
        let (key, settings) = ProviderSettings::from_env_with_key(
            &SPEC,
            &MapEnv::new()
                .with("GOOGLE_API_KEY", "k")
                .with("GEMINI_MODEL", "m2"),
        )
        .expect("ok");
        assert_eq!((key.expose(), settings.model.as_str()), ("k", "m2"));
        assert!(settings.api_key.is_none());
        let missing =
            ProviderSettings::from_env_with_key(&SPEC, &MapEnv::new()).expect_err("no key");
        assert_eq!(missing.kind(), ErrorKind::Config);
        assert_eq!(
            missing.message(),
            "gemini is not configured: set GEMINI_API_KEY or GOOGLE_API_KEY"
        );
        let local = SettingsSpec {
            local: true,
            ..SPEC
        };
        let missing =
            ProviderSettings::from_env_with_key(&local, &MapEnv::new()).expect_err("no key");
        assert!(missing.message().contains("GEMINI_API_KEY"), "{missing}");
    }
}
