//! The cascade's own settings (`LLM_*`) and the provider order, read from an [`EnvSource`].

use std::time::Duration;

use llm_core::{EnvSource, Error, Registry, parse_bool, parse_duration};

use crate::providers::DEFAULT_ORDER;

/// When a local provider may download its model (Ollama's pull).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalPull {
    /// Never download.
    Never,
    /// Only when every other provider failed (the default): a request is never blocked on a
    /// multi-gigabyte download while a cloud provider could answer.
    #[default]
    LastResort,
    /// As soon as the model is found missing.
    Eager,
}

/// The environment variables that mean "this runs on a serverless platform", where a model download
/// can never finish (and must not be tried).
pub const SERVERLESS_MARKERS: [&str; 5] = [
    "VERCEL",
    "AWS_LAMBDA_FUNCTION_NAME",
    "NETLIFY",
    "K_SERVICE",
    "FUNCTIONS_WORKER_RUNTIME",
];

/// Retry, backoff, deadline and stream settings of a cascade.
#[derive(Debug, Clone, PartialEq)]
pub struct CascadeConfig {
    /// Attempts per provider, the first included (`LLM_MAX_ATTEMPTS`, default 2).
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt (`LLM_BACKOFF_MS`, default 500 ms).
    pub backoff: Duration,
    /// Whether a random jitter (up to a quarter of the backoff) is added to each backoff.
    pub jitter: bool,
    /// The longest provider wait hint that is honoured (`LLM_MAX_RETRY_WAIT`, default 2 s); a longer one
    /// moves on to the next provider at once.
    pub max_retry_wait: Duration,
    /// The bound on a whole request, all attempts included (`LLM_DEADLINE`, default 120 s).
    pub deadline: Duration,
    /// How long a stream may take to produce its first token (`LLM_FIRST_TOKEN_TIMEOUT`, default 15 s).
    pub first_token_timeout: Duration,
    /// How long a started stream may go without data (`LLM_STREAM_IDLE_TIMEOUT`, default 15 s).
    pub stream_idle_timeout: Duration,
    /// Default temperature for requests that set none (`LLM_TEMPERATURE`).
    pub temperature: Option<f32>,
    /// Default max tokens for requests that set none (`LLM_MAX_TOKENS`).
    pub max_tokens: Option<u32>,
    /// Whether to fall back at all (`LLM_AUTO_FALLBACK`, default true); false uses the first provider only.
    pub auto_fallback: bool,
    /// When a local provider may download its model (`LLM_LOCAL_PULL`, default last-resort; never on
    /// serverless platforms).
    pub local_pull: LocalPull,
    /// Privacy mode (`LLM_PRIVATE`, default false): only local providers are ever called.
    pub private: bool,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            backoff: Duration::from_millis(500),
            jitter: true,
            max_retry_wait: Duration::from_secs(2),
            deadline: Duration::from_secs(120),
            first_token_timeout: Duration::from_secs(15),
            stream_idle_timeout: Duration::from_secs(15),
            temperature: None,
            max_tokens: None,
            auto_fallback: true,
            local_pull: LocalPull::LastResort,
            private: false,
        }
    }
}

impl CascadeConfig {
    /// Reads the `LLM_*` settings from `env`; unset ones keep their defaults.
    ///
    /// # Errors
    /// A config error naming the variable and the accepted values.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let mut config = Self::default();
        if let Some(n) = read(env, "LLM_MAX_ATTEMPTS", |v| {
            v.parse::<u32>().map_err(|e| e.to_string())
        })? {
            if n == 0 {
                return Err(Error::config("LLM_MAX_ATTEMPTS must be at least 1"));
            }
            config.max_attempts = n;
        }
        if let Some(ms) = read(env, "LLM_BACKOFF_MS", |v| {
            v.parse::<u64>().map_err(|e| e.to_string())
        })? {
            config.backoff = Duration::from_millis(ms);
        }
        if let Some(wait) = read(env, "LLM_MAX_RETRY_WAIT", parse_duration)? {
            config.max_retry_wait = wait;
        }
        if let Some(deadline) = read(env, "LLM_DEADLINE", parse_duration)? {
            config.deadline = deadline;
        }
        if let Some(t) = read(env, "LLM_FIRST_TOKEN_TIMEOUT", parse_duration)? {
            config.first_token_timeout = t;
        }
        if let Some(t) = read(env, "LLM_STREAM_IDLE_TIMEOUT", parse_duration)? {
            config.stream_idle_timeout = t;
        }
        config.temperature = read(env, "LLM_TEMPERATURE", |v| {
            v.parse::<f32>().map_err(|e| e.to_string())
        })?;
        config.max_tokens = read(env, "LLM_MAX_TOKENS", |v| {
            v.parse::<u32>().map_err(|e| e.to_string())
        })?;
        if let Some(auto) = read(env, "LLM_AUTO_FALLBACK", parse_bool)? {
            config.auto_fallback = auto;
        }
        if let Some(pull) = read(env, "LLM_LOCAL_PULL", parse_local_pull)? {
            config.local_pull = pull;
        }
        config.private = private_mode(env)?;
        if let Some((marker, _)) = env.first_of(&SERVERLESS_MARKERS) {
            tracing::debug!(
                marker,
                "serverless platform detected: local model downloads are disabled"
            );
            config.local_pull = LocalPull::Never;
        }
        Ok(config)
    }
}

fn read<T>(
    env: &dyn EnvSource,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    env.non_empty(name)
        .map(|v| parse(&v).map_err(|why| Error::config(format!("{name}: {why}"))))
        .transpose()
}

fn parse_local_pull(text: &str) -> Result<LocalPull, String> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "never" | "off" | "false" => Ok(LocalPull::Never),
        "last-resort" | "lastresort" => Ok(LocalPull::LastResort),
        "eager" | "always" => Ok(LocalPull::Eager),
        _ => Err(format!("`{text}` is not one of never, last-resort, eager")),
    }
}

/// Whether privacy mode is on (`LLM_PRIVATE=true`): only local providers (`local: true` in their
/// registration: Ollama, LM Studio, the embedded model) are ever called; cloud keys are ignored.
///
/// # Errors
/// A config error when `LLM_PRIVATE` is not a boolean.
pub fn private_mode(env: &dyn EnvSource) -> Result<bool, Error> {
    Ok(read(env, "LLM_PRIVATE", parse_bool)?.unwrap_or(false))
}

/// Other spellings users have for provider ids.
fn canonical_id(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "lm_studio" | "lm-studio" => "lmstudio".to_owned(),
        "google" => "gemini".to_owned(),
        "claude" => "anthropic".to_owned(),
        _ => lower,
    }
}

/// Every id the order may name: the default order plus any other compiled-in provider.
fn known_ids(registry: &Registry) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = DEFAULT_ORDER.to_vec();
    ids.extend(
        registry
            .ids()
            .into_iter()
            .filter(|id| !DEFAULT_ORDER.contains(id)),
    );
    ids
}

fn parse_id(name: &str, known: &[&'static str], var: &str) -> Result<&'static str, Error> {
    let id = canonical_id(name);
    known.iter().copied().find(|k| *k == id).ok_or_else(|| {
        Error::config(format!(
            "{var}: unknown provider `{}`; valid ids are: {}",
            name.trim(),
            known.join(", ")
        ))
    })
}

/// The order providers are tried in, before filtering by configuration.
///
/// `LLM_FALLBACK_ORDER` (alias `AI_FALLBACK_ORDER`) or the default cheapest-first order; ids not compiled
/// in are dropped; `LLM_DEFAULT_PROVIDER` moves one provider to the front; in privacy mode
/// (`LLM_PRIVATE`) only local providers remain.
///
/// # Errors
/// A config error naming the valid ids when an id is unknown.
pub fn provider_order(
    env: &dyn EnvSource,
    registry: &Registry,
) -> Result<Vec<&'static str>, Error> {
    let known = known_ids(registry);
    let mut order: Vec<&'static str> =
        match env.first_of(&["LLM_FALLBACK_ORDER", "AI_FALLBACK_ORDER"]) {
            Some((var, list)) => {
                let mut order = Vec::new();
                for name in list.split(',').filter(|n| !n.trim().is_empty()) {
                    let id = parse_id(name, &known, var)?;
                    if !order.contains(&id) {
                        order.push(id);
                    }
                }
                order
            }
            None => known.clone(),
        };
    if let Some(name) = env.non_empty("LLM_DEFAULT_PROVIDER") {
        let first = parse_id(&name, &known, "LLM_DEFAULT_PROVIDER")?;
        order.retain(|id| *id != first);
        order.insert(0, first);
    }
    let private = private_mode(env)?;
    order.retain(|id| registry.get(id).is_some_and(|r| r.local || !private));
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::{ErrorKind, MapEnv, Provider, ProviderRegistration};

    fn no_build(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
        Err(Error::config("unused"))
    }

    fn registry(ids: &[&'static str]) -> Registry {
        Registry::from_registrations(ids.iter().enumerate().map(|(i, id)| ProviderRegistration {
            id,
            display_name: id,
            priority: u16::try_from(i).unwrap_or(u16::MAX),
            local: false,
            env_prefix: "TEST",
            key_env: &[],
            default_model: "m",
            default_base_url: "http://127.0.0.1:1",
            build: no_build,
        }))
        .expect("registry")
    }

    #[test]
    fn default_order_is_cheapest_first_and_skips_missing_providers() {
        let reg = registry(&["openai", "groq", "ollama"]);
        assert_eq!(
            provider_order(&MapEnv::new(), &reg).expect("order"),
            vec!["ollama", "groq", "openai"]
        );
    }

    #[test]
    fn explicit_order_alias_and_default_provider() {
        let reg = registry(&["openai", "groq", "lmstudio", "anthropic"]);
        let env = MapEnv::new().with("AI_FALLBACK_ORDER", "openai, LM-Studio ,groq,,anthropic");
        assert_eq!(
            provider_order(&env, &reg).expect("order"),
            vec!["openai", "lmstudio", "groq", "anthropic"]
        );
        let env = env.with("LLM_DEFAULT_PROVIDER", "claude");
        assert_eq!(
            provider_order(&env, &reg).expect("order"),
            vec!["anthropic", "openai", "lmstudio", "groq"]
        );
        let env = MapEnv::new()
            .with("LLM_FALLBACK_ORDER", "groq")
            .with("AI_FALLBACK_ORDER", "openai");
        assert_eq!(provider_order(&env, &reg).expect("order"), vec!["groq"]);
    }

    #[test]
    fn unknown_ids_name_the_valid_ones() {
        let reg = registry(&["groq"]);
        let err = provider_order(&MapEnv::new().with("LLM_FALLBACK_ORDER", "groq,gpt5"), &reg)
            .expect_err("unknown");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(
            err.message().contains("`gpt5`") && err.message().contains("ollama, lmstudio, groq"),
            "{}",
            err
        );
    }

    #[test]
    fn settings_parse_and_reject() {
        let env = MapEnv::new()
            .with("LLM_MAX_ATTEMPTS", "3")
            .with("LLM_BACKOFF_MS", "10")
            .with("LLM_DEADLINE", "2m")
            .with("LLM_AUTO_FALLBACK", "false")
            .with("LLM_TEMPERATURE", "0.2")
            .with("LLM_LOCAL_PULL", "eager");
        let config = CascadeConfig::from_env(&env).expect("config");
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.backoff, Duration::from_millis(10));
        assert_eq!(config.deadline, Duration::from_secs(120));
        assert!(!config.auto_fallback);
        assert_eq!(config.temperature, Some(0.2));
        assert_eq!(config.local_pull, LocalPull::Eager);

        let err = CascadeConfig::from_env(&MapEnv::new().with("LLM_MAX_ATTEMPTS", "many"))
            .expect_err("bad");
        assert!(err.message().starts_with("LLM_MAX_ATTEMPTS"));
        assert!(
            CascadeConfig::from_env(&MapEnv::new().with("LLM_LOCAL_PULL", "sometimes")).is_err()
        );
    }

    #[test]
    fn privacy_mode_keeps_only_local_providers() {
        let local = |id: &'static str| ProviderRegistration {
            local: true,
            ..registry(&[id]).get(id).copied().expect("registration")
        };
        let reg = Registry::from_registrations(
            registry(&["groq", "openai"])
                .iter()
                .copied()
                .chain([local("ollama"), local("local")]),
        )
        .expect("registry");
        let env = MapEnv::new().with("LLM_FALLBACK_ORDER", "groq,ollama,openai,local");
        assert_eq!(
            provider_order(&env, &reg).expect("order"),
            vec!["groq", "ollama", "openai", "local"]
        );
        let private = env.with("LLM_PRIVATE", "true");
        assert_eq!(
            provider_order(&private, &reg).expect("order"),
            vec!["ollama", "local"]
        );
        assert!(CascadeConfig::from_env(&private).expect("config").private);
        let err = private_mode(&MapEnv::new().with("LLM_PRIVATE", "maybe")).expect_err("bad");
        assert!(err.message().contains("LLM_PRIVATE"));
    }

    #[test]
    fn serverless_platforms_never_pull() {
        let env = MapEnv::new()
            .with("LLM_LOCAL_PULL", "eager")
            .with("AWS_LAMBDA_FUNCTION_NAME", "fn");
        assert_eq!(
            CascadeConfig::from_env(&env).expect("config").local_pull,
            LocalPull::Never
        );
    }
}
