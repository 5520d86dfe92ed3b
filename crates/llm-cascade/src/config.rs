//! The cascade's own settings (`LLM_*`) and the provider order, read from an [`EnvSource`].

use std::time::Duration;

use llm_core::{EnvSource, Error, Registry, parse_bool, parse_duration, parse_timeout};

use crate::providers::{KNOWN_PROVIDERS, known};

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
pub(crate) const SERVERLESS_MARKERS: [&str; 5] = [
    "VERCEL",
    "AWS_LAMBDA_FUNCTION_NAME",
    "NETLIFY",
    "K_SERVICE",
    "FUNCTIONS_WORKER_RUNTIME",
];

/// Retry, backoff, deadline and stream settings of a cascade.
///
/// Start from [`CascadeConfig::default`] or [`CascadeConfig::from_env`] and change what you need with the
/// `with_*` setters (the struct may gain fields, so it cannot be written as a literal outside this crate):
///
/// ```
/// use std::time::Duration;
/// let config = llm_cascade::CascadeConfig::default()
///     .with_max_attempts(3)
///     .with_deadline(Duration::from_secs(30));
/// assert_eq!(config.max_attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CascadeConfig {
    /// Attempts per provider, the first included (`LLM_MAX_ATTEMPTS`, default 2).
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt (`LLM_BACKOFF_MS`, default 500 ms).
    pub backoff: Duration,
    /// Whether a random jitter (up to a quarter of the backoff) is added to each backoff.
    pub jitter: bool,
    /// The longest provider wait hint that is honoured (`LLM_MAX_RETRY_WAIT`, default 10 s, and never
    /// past the deadline); a longer one moves on to the next provider at once.
    pub max_retry_wait: Duration,
    /// The bound on a whole request, all attempts included (`LLM_DEADLINE`, default 120 s).
    pub deadline: Duration,
    /// How long a stream may take to produce its first token (`LLM_FIRST_TOKEN_TIMEOUT`, default 10 s).
    /// While a later provider is left, the wait is also at most half the time before the deadline, so
    /// that a silent provider never eats the time the next one needs.
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
    /// The most text a streamed answer may carry, in bytes (`LLM_MAX_ANSWER_BYTES`, default 16 MiB, like
    /// a non-streamed body); a stream that sends more ends with an error, never a silent cut.
    pub max_answer_bytes: usize,
    /// What happens to a stream that fails after text was delivered (`LLM_STREAM_RECOVERY`, default
    /// continue).
    pub stream_recovery: StreamRecovery,
    /// Whether a content-filter refusal falls over to the next provider (`LLM_CONTENT_FILTER_FALLBACK`,
    /// default false: the refusal is final, since the request, not the provider, is the problem).
    pub content_filter_fallback: bool,
    /// Privacy mode (`LLM_PRIVATE`, default false): only local providers are ever called.
    pub private: bool,
    /// Hedging (`LLM_HEDGE_AFTER`, default off): when an attempt has produced no first token (a
    /// stream) or no answer after this long, the next provider the state admits starts in parallel;
    /// the first to produce one wins and the other is cancelled.
    pub hedge_after: Option<Duration>,
}

/// What the cascade does with a stream that fails after text was delivered (`LLM_STREAM_RECOVERY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamRecovery {
    /// Continue the answer within the deadline: the same provider again when the failure is retryable,
    /// else the next one; by prefill where the provider supports it, else by a restart that drops the
    /// text already delivered (the default).
    #[default]
    Continue,
    /// End the answer with the error in the stream.
    Off,
}

impl Default for CascadeConfig {
    fn default() -> Self {
        Self {
            max_attempts: 2,
            backoff: Duration::from_millis(500),
            jitter: true,
            max_retry_wait: Duration::from_secs(10),
            deadline: Duration::from_secs(120),
            first_token_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(15),
            temperature: None,
            max_tokens: None,
            auto_fallback: true,
            local_pull: LocalPull::LastResort,
            max_answer_bytes: 16 * 1024 * 1024,
            stream_recovery: StreamRecovery::Continue,
            content_filter_fallback: false,
            private: false,
            hedge_after: None,
        }
    }
}

/// Setters, so callers outside this crate can build a config (it is `#[non_exhaustive]`).
impl CascadeConfig {
    /// Sets the attempts per provider, the first included.
    #[must_use]
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets the first backoff (it doubles per attempt).
    #[must_use]
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets whether a random jitter is added to each backoff.
    #[must_use]
    pub fn with_jitter(mut self, jitter: bool) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the longest provider wait hint that is honoured.
    #[must_use]
    pub fn with_max_retry_wait(mut self, max_retry_wait: Duration) -> Self {
        self.max_retry_wait = max_retry_wait;
        self
    }

    /// Sets the bound on a whole request, all attempts included.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Sets how long a stream may take to produce its first token.
    #[must_use]
    pub fn with_first_token_timeout(mut self, first_token_timeout: Duration) -> Self {
        self.first_token_timeout = first_token_timeout;
        self
    }

    /// Sets how long a started stream may go without data.
    #[must_use]
    pub fn with_stream_idle_timeout(mut self, stream_idle_timeout: Duration) -> Self {
        self.stream_idle_timeout = stream_idle_timeout;
        self
    }

    /// Sets the default temperature for requests that set none.
    #[must_use]
    pub fn with_temperature(mut self, temperature: Option<f32>) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the default max tokens for requests that set none.
    #[must_use]
    pub fn with_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets whether to fall back at all.
    #[must_use]
    pub fn with_auto_fallback(mut self, auto_fallback: bool) -> Self {
        self.auto_fallback = auto_fallback;
        self
    }

    /// Sets when a local provider may download its model.
    #[must_use]
    pub fn with_local_pull(mut self, local_pull: LocalPull) -> Self {
        self.local_pull = local_pull;
        self
    }

    /// Sets the bound on a streamed answer's text, in bytes.
    #[must_use]
    pub fn with_max_answer_bytes(mut self, max_answer_bytes: usize) -> Self {
        self.max_answer_bytes = max_answer_bytes;
        self
    }

    /// Sets what happens to a stream that fails after text was delivered.
    #[must_use]
    pub fn with_stream_recovery(mut self, stream_recovery: StreamRecovery) -> Self {
        self.stream_recovery = stream_recovery;
        self
    }

    /// Sets whether a content-filter refusal falls over to the next provider.
    #[must_use]
    pub fn with_content_filter_fallback(mut self, fallback: bool) -> Self {
        self.content_filter_fallback = fallback;
        self
    }

    /// Sets hedging: after this long without a first token, the next provider starts in parallel
    /// (`None`: off).
    #[must_use]
    pub fn with_hedge_after(mut self, hedge_after: Option<Duration>) -> Self {
        self.hedge_after = hedge_after;
        self
    }
}

impl CascadeConfig {
    /// Reads the `LLM_*` settings from `env`; unset ones keep their defaults.
    ///
    /// # Errors
    /// A config error naming the variable and the accepted values (also when a variable is set but
    /// is not valid UTF-8).
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let mut config = Self::default();
        if let Some(n) = read(env, "LLM_MAX_ATTEMPTS", |v| at_least_one(v, "attempt"))? {
            config.max_attempts = n;
        }
        if let Some(ms) = read(env, "LLM_BACKOFF_MS", |v| {
            v.parse::<u64>()
                .map_err(|_| format!("`{v}` is not a whole number of milliseconds (e.g. `500`)"))
        })? {
            config.backoff = Duration::from_millis(ms);
        }
        // Zero is meaningful here: never wait on a provider's hint.
        if let Some(wait) = read(env, "LLM_MAX_RETRY_WAIT", parse_duration)? {
            config.max_retry_wait = wait;
        }
        if let Some(deadline) = read(env, "LLM_DEADLINE", parse_timeout)? {
            config.deadline = deadline;
        }
        if let Some(t) = read(env, "LLM_FIRST_TOKEN_TIMEOUT", parse_timeout)? {
            config.first_token_timeout = t;
        }
        if let Some(t) = read(env, "LLM_STREAM_IDLE_TIMEOUT", parse_timeout)? {
            config.stream_idle_timeout = t;
        }
        config.temperature = read(env, "LLM_TEMPERATURE", parse_temperature)?;
        config.max_tokens = read(env, "LLM_MAX_TOKENS", parse_max_tokens)?;
        if let Some(auto) = read(env, "LLM_AUTO_FALLBACK", parse_bool)? {
            config.auto_fallback = auto;
        }
        if let Some(pull) = read(env, "LLM_LOCAL_PULL", parse_local_pull)? {
            config.local_pull = pull;
        }
        config.private = private_mode(env)?;
        if let Some(marker) = serverless_marker(env) {
            tracing::debug!(
                marker,
                "serverless platform detected: local model downloads are disabled"
            );
            config.local_pull = LocalPull::Never;
        }
        // A positive number of bytes; 0 would refuse every answer.
        if let Some(bytes) = read(env, "LLM_MAX_ANSWER_BYTES", |v| match v.parse::<usize>() {
            Ok(0) => Err("must be at least 1 byte (e.g. 16777216 for 16 MiB)".to_owned()),
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(format!(
                "`{v}` is not a number of bytes (e.g. 16777216): {e}"
            )),
        })? {
            config.max_answer_bytes = bytes;
        }
        if let Some(recovery) = read(env, "LLM_STREAM_RECOVERY", parse_stream_recovery)? {
            config.stream_recovery = recovery;
        }
        if let Some(fallback) = read(env, "LLM_CONTENT_FILTER_FALLBACK", parse_bool)? {
            config.content_filter_fallback = fallback;
        }
        if let Some(after) = read(env, "LLM_HEDGE_AFTER", parse_hedge_after)? {
            config.hedge_after = after;
        }
        Ok(config)
    }
}

/// The first serverless marker that is set. Only presence matters: a marker whose value cannot be
/// read is set all the same.
fn serverless_marker(env: &dyn EnvSource) -> Option<&'static str> {
    SERVERLESS_MARKERS
        .iter()
        .copied()
        .find(|marker| !matches!(env.non_empty(marker), Ok(None)))
}

fn read<T>(
    env: &dyn EnvSource,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    env.non_empty(name)?
        .map(|v| parse(&v).map_err(|why| Error::config(format!("{name}: {why}"))))
        .transpose()
}

/// The accepted sampling temperatures: every provider we support takes 0 to 2 (Anthropic caps at 1
/// and says so in its own error).
pub const TEMPERATURE_RANGE: std::ops::RangeInclusive<f32> = 0.0..=2.0;

/// Parses a sampling temperature: a number from 0 to 2 (`LLM_TEMPERATURE`, `--temperature`).
///
/// # Errors
/// A message naming the accepted range when `text` is not a number in it (`NaN` and infinities are
/// not).
pub fn parse_temperature(text: &str) -> Result<f32, String> {
    let text = text.trim();
    match text.parse::<f32>() {
        Ok(t) if TEMPERATURE_RANGE.contains(&t) => Ok(t),
        _ => Err(format!(
            "`{text}` is not a temperature (use a number from {} to {}, e.g. `0.7`)",
            TEMPERATURE_RANGE.start(),
            TEMPERATURE_RANGE.end()
        )),
    }
}

/// Parses a token limit: a whole number of at least 1 (`LLM_MAX_TOKENS`, `--max-tokens`).
///
/// # Errors
/// A message naming the accepted values.
pub fn parse_max_tokens(text: &str) -> Result<u32, String> {
    at_least_one(text, "token")
}

fn at_least_one(text: &str, unit: &str) -> Result<u32, String> {
    let text = text.trim();
    match text.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a number of {unit}s (use a whole number of at least 1, e.g. `2`)"
        )),
    }
}

/// A positive duration, or `off`.
fn parse_hedge_after(text: &str) -> Result<Option<Duration>, String> {
    if matches!(text.trim().to_ascii_lowercase().as_str(), "off" | "false") {
        return Ok(None);
    }
    parse_timeout(text)
        .map(Some)
        .map_err(|why| format!("{why}; or `off`"))
}

fn parse_stream_recovery(text: &str) -> Result<StreamRecovery, String> {
    match text.to_ascii_lowercase().as_str() {
        "continue" | "on" | "true" => Ok(StreamRecovery::Continue),
        "off" | "false" => Ok(StreamRecovery::Off),
        _ => Err(format!("`{text}` is not one of continue, off")),
    }
}

fn parse_local_pull(text: &str) -> Result<LocalPull, String> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "never" | "off" | "false" => Ok(LocalPull::Never),
        "last-resort" | "lastresort" => Ok(LocalPull::LastResort),
        "eager" | "always" => Ok(LocalPull::Eager),
        _ => Err(format!("`{text}` is not one of never, last-resort, eager")),
    }
}

/// Resolves a provider name (an id or one of its registration's aliases, any case, surrounding
/// blanks ignored) to the id of a compiled-in provider.
///
/// # Errors
/// A config error when `name` is a provider this workspace has but this build does not compile in
/// (naming the cargo feature to enable), or no provider at all (naming the valid ids). The message
/// does not say where the name came from: callers prefix the variable or flag.
pub fn resolve_provider(name: &str, registry: &Registry) -> Result<&'static str, Error> {
    let wanted = name.trim().to_ascii_lowercase();
    if let Some(registration) = registry
        .iter()
        .find(|r| r.id == wanted || r.aliases.contains(&wanted.as_str()))
    {
        return Ok(registration.id);
    }
    if let Some(known) = known(&wanted) {
        return Err(Error::config(format!(
            "provider `{}` is not compiled into this build: enable the cargo feature `{}` \
             (compiled in: {})",
            known.id,
            known.feature,
            compiled_in(registry)
        )));
    }
    Err(Error::config(format!(
        "unknown provider `{}`; valid ids are: {}",
        name.trim(),
        valid_ids(registry)
    )))
}

/// The compiled-in ids in default order, or a note that there are none.
fn compiled_in(registry: &Registry) -> String {
    if registry.ids().is_empty() {
        "none".to_owned()
    } else {
        registry.ids().join(", ")
    }
}

/// Every id a name may resolve to: the compiled-in ones in default order, then the known ones that
/// are not compiled in.
fn valid_ids(registry: &Registry) -> String {
    let mut ids = registry.ids();
    ids.extend(
        KNOWN_PROVIDERS
            .iter()
            .map(|p| p.id)
            .filter(|id| registry.get(id).is_none()),
    );
    ids.join(", ")
}

/// The config error of an empty registry.
pub(crate) fn nothing_compiled_in() -> Error {
    Error::config(format!(
        "no provider is compiled in: build with the cargo feature `all-providers` or one of {}",
        KNOWN_PROVIDERS
            .iter()
            .map(|p| format!("`{}`", p.feature))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// `error` with `source` (a variable or a flag) in front of its message.
fn blame(source: &str, error: &Error) -> Error {
    Error::config(format!("{source}: {}", error.message()))
}

/// The order providers are tried in, before filtering by configuration.
///
/// `LLM_FALLBACK_ORDER` (alias `AI_FALLBACK_ORDER`) or the default order (the registrations'
/// priorities, cheapest first); `LLM_DEFAULT_PROVIDER` moves one provider to the front; in privacy
/// mode (`LLM_PRIVATE`) only local providers remain.
///
/// # Errors
/// A config error naming the variable when an id is unknown or not compiled in, when the order names
/// no provider at all (`,,,`), when `LLM_DEFAULT_PROVIDER` names a provider that is not configured,
/// when the registry is empty, or when a variable is not valid UTF-8.
pub fn provider_order(
    env: &dyn EnvSource,
    registry: &Registry,
) -> Result<Vec<&'static str>, Error> {
    if registry.ids().is_empty() {
        return Err(nothing_compiled_in());
    }
    let mut order: Vec<&'static str> =
        match env.first_of(&["LLM_FALLBACK_ORDER", "AI_FALLBACK_ORDER"])? {
            Some((var, list)) => explicit_order(var, &list, registry)?,
            None => registry.ids(),
        };
    if let Some(name) = env.non_empty("LLM_DEFAULT_PROVIDER")? {
        let first = default_provider(&name, env, registry)?;
        order.retain(|id| *id != first);
        order.insert(0, first);
    }
    if private_mode(env)? {
        order.retain(|id| registry.get(id).is_some_and(|r| r.local));
    }
    Ok(order)
}

/// Whether privacy mode is on (`LLM_PRIVATE=true`): only local providers (`local: true` in their
/// registration: Ollama, LM Studio, the embedded model) are ever called; cloud keys are ignored.
///
/// # Errors
/// A config error when `LLM_PRIVATE` is not a boolean.
pub fn private_mode(env: &dyn EnvSource) -> Result<bool, Error> {
    Ok(read(env, "LLM_PRIVATE", parse_bool)?.unwrap_or(false))
}

/// The ids of an explicit order variable, deduplicated, in the order given.
fn explicit_order(var: &str, list: &str, registry: &Registry) -> Result<Vec<&'static str>, Error> {
    let mut order = Vec::new();
    for name in list.split(',').filter(|n| !n.trim().is_empty()) {
        let id = resolve_provider(name, registry).map_err(|e| blame(var, &e))?;
        if !order.contains(&id) {
            order.push(id);
        }
    }
    if order.is_empty() {
        return Err(Error::config(format!(
            "{var} names no provider; give comma-separated ids from: {}, or unset it for the \
             default order",
            registry.ids().join(", ")
        )));
    }
    Ok(order)
}

/// `LLM_DEFAULT_PROVIDER`, resolved. A provider that is not configured is an error rather than a
/// warning: the user asked for it by name, and going on would have another provider answer with
/// nothing on screen to say so (the CLI shows no warnings without `-v`).
fn default_provider(
    name: &str,
    env: &dyn EnvSource,
    registry: &Registry,
) -> Result<&'static str, Error> {
    const VAR: &str = "LLM_DEFAULT_PROVIDER";
    let id = resolve_provider(name, registry).map_err(|e| blame(VAR, &e))?;
    let registration = registry.get(id).ok_or_else(nothing_compiled_in)?;
    if !registration.is_configured(env) {
        return Err(Error::config(format!(
            "{VAR}: {id} is not configured: set {}, or unset {VAR}",
            registration.key_env.join(" or ")
        ))
        .with_provider(id));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::KnownProvider;
    use llm_core::{ErrorKind, MapEnv, Provider, ProviderRegistration, not_unicode};

    fn no_build(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
        Err(Error::config("unused"))
    }

    /// A local (always configured) registration.
    const fn fake(id: &'static str, priority: u16) -> ProviderRegistration {
        ProviderRegistration {
            id,
            display_name: id,
            priority,
            aliases: &[],
            local: true,
            env_prefix: "TEST",
            key_env: &[],
            default_model: "m",
            default_base_url: "http://127.0.0.1:1",
            build: no_build,
        }
    }

    fn registry(registrations: &[ProviderRegistration]) -> Registry {
        Registry::from_registrations(registrations.iter().copied()).expect("registry")
    }

    /// Ids that are in the workspace's table but not in the test registries below.
    fn known_elsewhere() -> &'static KnownProvider {
        KNOWN_PROVIDERS
            .iter()
            .find(|p| !["a", "b", "c"].contains(&p.id))
            .expect("the workspace has providers")
    }

    #[test]
    fn default_order_comes_from_the_priorities() {
        let reg = registry(&[fake("a", 30), fake("b", 10), fake("c", 20)]);
        assert_eq!(
            provider_order(&MapEnv::new(), &reg).expect("order"),
            vec!["b", "c", "a"]
        );
    }

    #[test]
    fn explicit_order_aliases_from_the_registrations_and_default_provider() {
        let reg = registry(&[
            fake("a", 1),
            ProviderRegistration {
                aliases: &["bee", "b_b"],
                ..fake("b", 2)
            },
            fake("c", 3),
        ]);
        let env = MapEnv::new().with("AI_FALLBACK_ORDER", "c, BEE ,a,,b_b");
        assert_eq!(
            provider_order(&env, &reg).expect("order"),
            vec!["c", "b", "a"]
        );
        let env = env.with("LLM_DEFAULT_PROVIDER", "Bee");
        assert_eq!(
            provider_order(&env, &reg).expect("order"),
            vec!["b", "c", "a"]
        );
        let env = MapEnv::new()
            .with("LLM_FALLBACK_ORDER", "a")
            .with("AI_FALLBACK_ORDER", "c");
        assert_eq!(provider_order(&env, &reg).expect("order"), vec!["a"]);
    }

    fn order_error(env: &MapEnv, reg: &Registry) -> String {
        let err = provider_order(env, reg).expect_err("invalid order");
        assert_eq!(err.kind(), ErrorKind::Config);
        err.message().to_owned()
    }

    #[test]
    fn unknown_ids_name_the_variable_and_the_valid_ones() {
        let reg = registry(&[fake("a", 1), fake("b", 2)]);
        let message = order_error(&MapEnv::new().with("LLM_FALLBACK_ORDER", "a,gpt5"), &reg);
        assert!(
            message.starts_with("LLM_FALLBACK_ORDER: unknown provider `gpt5`")
                && message.contains("valid ids are: a, b, "),
            "{message}"
        );
        let message = order_error(&MapEnv::new().with("LLM_DEFAULT_PROVIDER", "gpt5"), &reg);
        assert!(
            message.starts_with("LLM_DEFAULT_PROVIDER: unknown"),
            "{message}"
        );
    }

    #[test]
    fn a_known_provider_that_is_not_compiled_in_names_its_feature() {
        let reg = registry(&[fake("a", 1)]);
        let other = known_elsewhere();
        for var in ["LLM_FALLBACK_ORDER", "LLM_DEFAULT_PROVIDER"] {
            let message = order_error(&MapEnv::new().with(var, other.id.to_uppercase()), &reg);
            assert_eq!(
                message,
                format!(
                    "{var}: provider `{}` is not compiled into this build: enable the cargo \
                     feature `{}` (compiled in: a)",
                    other.id, other.feature
                )
            );
        }
    }

    #[test]
    fn an_order_of_only_commas_is_an_error_not_an_empty_chain() {
        let reg = registry(&[fake("a", 1), fake("b", 2)]);
        let message = order_error(&MapEnv::new().with("LLM_FALLBACK_ORDER", ",, ,"), &reg);
        assert!(
            message.starts_with("LLM_FALLBACK_ORDER names no provider") && message.contains("a, b"),
            "{message}"
        );
        // A blank value is unset: the default order.
        let env = MapEnv::new().with("LLM_FALLBACK_ORDER", "  ");
        assert_eq!(provider_order(&env, &reg).expect("order"), vec!["a", "b"]);
    }

    #[test]
    fn an_empty_registry_says_nothing_is_compiled_in() {
        let message = order_error(&MapEnv::new(), &Registry::default());
        assert!(
            message.starts_with("no provider is compiled in")
                && message.contains(&format!("`{}`", known_elsewhere().feature)),
            "{message}"
        );
    }

    #[test]
    fn a_default_provider_that_is_not_configured_is_an_error_naming_its_key() {
        let cloud = ProviderRegistration {
            local: false,
            key_env: &["B_API_KEY", "B_KEY"],
            ..fake("b", 2)
        };
        let reg = registry(&[fake("a", 1), cloud]);
        let env = MapEnv::new().with("LLM_DEFAULT_PROVIDER", "b");
        assert_eq!(
            order_error(&env, &reg),
            "LLM_DEFAULT_PROVIDER: b is not configured: set B_API_KEY or B_KEY, or unset \
             LLM_DEFAULT_PROVIDER"
        );
        let env = env.with("B_KEY", "canary-key-0000-DO-NOT-LEAK");
        assert_eq!(provider_order(&env, &reg).expect("order"), vec!["b", "a"]);
    }

    #[test]
    fn settings_parse_and_reject() {
        let env = MapEnv::new()
            .with("LLM_MAX_ATTEMPTS", "3")
            .with("LLM_BACKOFF_MS", "10")
            .with("LLM_DEADLINE", "2m")
            .with("LLM_MAX_RETRY_WAIT", "0")
            .with("LLM_AUTO_FALLBACK", "false")
            .with("LLM_TEMPERATURE", "0.2")
            .with("LLM_MAX_TOKENS", "1")
            .with("LLM_LOCAL_PULL", "eager");
        let config = CascadeConfig::from_env(&env).expect("config");
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.backoff, Duration::from_millis(10));
        assert_eq!(config.deadline, Duration::from_secs(120));
        assert_eq!(config.max_retry_wait, Duration::ZERO);
        assert!(!config.auto_fallback);
        assert_eq!(config.temperature, Some(0.2));
        assert_eq!(config.max_tokens, Some(1));
        assert_eq!(config.local_pull, LocalPull::Eager);

        let err = CascadeConfig::from_env(&MapEnv::new().with("LLM_MAX_ATTEMPTS", "many"))
            .expect_err("bad");
        assert!(err.message().starts_with("LLM_MAX_ATTEMPTS"));
        assert!(
            CascadeConfig::from_env(&MapEnv::new().with("LLM_LOCAL_PULL", "sometimes")).is_err()
        );
    }

    /// The message of the config error `LLM_*` setting `name=value` gives.
    fn setting_error(name: &str, value: &str) -> String {
        let err = CascadeConfig::from_env(&MapEnv::new().with(name, value))
            .expect_err(&format!("{name}={value} is rejected"));
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().starts_with(&format!("{name}: ")), "{err}");
        err.message().to_owned()
    }

    #[test]
    fn zero_timeouts_are_rejected_naming_the_accepted_values() {
        for name in [
            "LLM_DEADLINE",
            "LLM_FIRST_TOKEN_TIMEOUT",
            "LLM_STREAM_IDLE_TIMEOUT",
        ] {
            for zero in ["0", "0s", "0ms"] {
                assert!(setting_error(name, zero).contains("above zero"));
            }
        }
    }

    #[test]
    fn temperatures_outside_zero_to_two_are_rejected() {
        for bad in ["NaN", "nan", "inf", "-inf", "-0.1", "2.01", "99", "warm"] {
            let message = setting_error("LLM_TEMPERATURE", bad);
            assert!(message.contains("from 0 to 2"), "{message}");
        }
        for good in ["0", "2", "1.0"] {
            assert!(parse_temperature(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn counts_must_be_at_least_one() {
        for name in ["LLM_MAX_TOKENS", "LLM_MAX_ATTEMPTS"] {
            for bad in ["0", "-1", "1.5"] {
                assert!(setting_error(name, bad).contains("at least 1"));
            }
        }
    }

    /// Every variable set, one of them unreadable (as a non-UTF-8 process variable is).
    struct OneUnreadable(&'static str);

    impl EnvSource for OneUnreadable {
        fn var(&self, name: &str) -> Result<Option<String>, Error> {
            if name == self.0 {
                Err(not_unicode(name))
            } else {
                Ok(None)
            }
        }
    }

    #[test]
    fn a_variable_that_is_not_utf8_is_an_error_naming_it() {
        for name in [
            "LLM_MAX_ATTEMPTS",
            "LLM_BACKOFF_MS",
            "LLM_MAX_RETRY_WAIT",
            "LLM_DEADLINE",
            "LLM_FIRST_TOKEN_TIMEOUT",
            "LLM_STREAM_IDLE_TIMEOUT",
            "LLM_TEMPERATURE",
            "LLM_MAX_TOKENS",
            "LLM_AUTO_FALLBACK",
            "LLM_LOCAL_PULL",
        ] {
            let err = CascadeConfig::from_env(&OneUnreadable(name)).expect_err(name);
            assert!(err.message().starts_with(&format!("{name} ")), "{err}");
        }
        let reg = registry(&[fake("a", 1)]);
        for name in [
            "LLM_FALLBACK_ORDER",
            "AI_FALLBACK_ORDER",
            "LLM_DEFAULT_PROVIDER",
        ] {
            let err = provider_order(&OneUnreadable(name), &reg).expect_err(name);
            assert!(err.message().contains("UTF-8"), "{err}");
        }
        // A platform marker is about presence: unreadable is still present.
        let config = CascadeConfig::from_env(&OneUnreadable("VERCEL")).expect("config");
        assert_eq!(config.local_pull, LocalPull::Never);
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

    #[test]
    fn stream_recovery_and_the_content_filter_fallback_are_read() {
        let defaults = CascadeConfig::from_env(&MapEnv::new()).expect("defaults");
        assert_eq!(defaults.stream_recovery, StreamRecovery::Continue);
        assert!(!defaults.content_filter_fallback);
        assert_eq!(defaults.first_token_timeout, Duration::from_secs(10));
        assert_eq!(defaults.max_retry_wait, Duration::from_secs(10));
        let env = MapEnv::new()
            .with("LLM_STREAM_RECOVERY", "off")
            .with("LLM_CONTENT_FILTER_FALLBACK", "true");
        let config = CascadeConfig::from_env(&env).expect("valid");
        assert_eq!(config.stream_recovery, StreamRecovery::Off);
        assert!(config.content_filter_fallback);
        let bad = MapEnv::new().with("LLM_STREAM_RECOVERY", "sometimes");
        let error = CascadeConfig::from_env(&bad).expect_err("invalid");
        assert!(
            error.message().contains("LLM_STREAM_RECOVERY")
                && error.message().contains("continue, off"),
            "{error}"
        );
    }

    #[test]
    fn hedging_is_off_by_default_and_read_from_llm_hedge_after() {
        let defaults = CascadeConfig::from_env(&MapEnv::new()).expect("defaults");
        assert_eq!(defaults.hedge_after, None);
        assert_eq!(CascadeConfig::default().hedge_after, None);
        let on = MapEnv::new().with("LLM_HEDGE_AFTER", "1.5s");
        assert_eq!(
            CascadeConfig::from_env(&on).expect("valid").hedge_after,
            Some(Duration::from_millis(1500))
        );
        let off = MapEnv::new().with("LLM_HEDGE_AFTER", "off");
        assert_eq!(
            CascadeConfig::from_env(&off).expect("valid").hedge_after,
            None
        );
        for bad in ["0", "soon"] {
            let env = MapEnv::new().with("LLM_HEDGE_AFTER", bad);
            let error = CascadeConfig::from_env(&env).expect_err("invalid");
            assert!(
                error.message().contains("LLM_HEDGE_AFTER") && error.message().contains("`off`"),
                "{error}"
            );
        }
    }
}
