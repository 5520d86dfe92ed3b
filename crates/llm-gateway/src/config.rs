//! The gateway's settings (`LLM_GATEWAY_*`), read from an [`EnvSource`] so tests pass a map.

use std::net::SocketAddr;
use std::time::Duration;

use llm_core::{EnvSource, Error, Secret, parse_bool, parse_duration};

/// The default listen address: loopback only, so a fresh install is never exposed.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8787";
/// The default request body limit (4 MiB).
pub const DEFAULT_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// The default number of chat requests served at once.
pub const DEFAULT_MAX_INFLIGHT: usize = 256;
/// The default time in-flight requests get to finish after SIGTERM/SIGINT.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Everything `cascade serve` is configured with besides the cascade itself.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where to listen (`--addr`, `LLM_GATEWAY_ADDR`).
    pub addr: SocketAddr,
    /// Accepted bearer tokens (`LLM_GATEWAY_KEYS`, comma-separated); empty means no authentication.
    pub keys: Vec<Secret>,
    /// Serve a non-loopback address without keys (`--allow-unauthenticated`).
    pub allow_unauthenticated: bool,
    /// Chat requests served at once; more get 503 (`LLM_GATEWAY_MAX_INFLIGHT`).
    pub max_inflight: usize,
    /// The largest request body accepted; larger gets 413 (`LLM_GATEWAY_MAX_BODY`, bytes).
    pub body_limit: usize,
    /// How long in-flight requests may finish after a shutdown signal (`LLM_GATEWAY_GRACE`).
    pub grace: Duration,
    /// Unknown model names are a 400 instead of the whole chain (`LLM_GATEWAY_STRICT_MODELS`).
    pub strict_models: bool,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("addr", &self.addr)
            .field("keys", &self.keys.len())
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("max_inflight", &self.max_inflight)
            .field("body_limit", &self.body_limit)
            .field("grace", &self.grace)
            .field("strict_models", &self.strict_models)
            .finish_non_exhaustive()
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8787))),
            keys: Vec::new(),
            allow_unauthenticated: false,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            body_limit: DEFAULT_BODY_LIMIT,
            grace: DEFAULT_GRACE,
            strict_models: false,
        }
    }
}

fn parse<T>(
    env: &dyn EnvSource,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    env.non_empty(name)?
        .map(|value| parse(value.trim()).map_err(|why| Error::config(format!("{name}: {why}"))))
        .transpose()
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!("expected a positive whole number, got {text:?}")),
        Ok(n) => Ok(n),
    }
}

impl GatewayConfig {
    /// Reads `LLM_GATEWAY_*` from `env`; unset ones keep their defaults.
    ///
    /// # Errors
    /// A config error naming the variable when a value does not parse.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let mut config = Self::default();
        if let Some(addr) = parse(env, "LLM_GATEWAY_ADDR", |t| {
            t.parse::<SocketAddr>()
                .map_err(|_| format!("expected host:port such as {DEFAULT_ADDR}, got {t:?}"))
        })? {
            config.addr = addr;
        }
        if let Some(keys) = env.non_empty("LLM_GATEWAY_KEYS")? {
            config.keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(Secret::new)
                .collect();
        }
        if let Some(n) = parse(env, "LLM_GATEWAY_MAX_INFLIGHT", positive)? {
            config.max_inflight = n;
        }
        if let Some(n) = parse(env, "LLM_GATEWAY_MAX_BODY", positive)? {
            config.body_limit = n;
        }
        if let Some(grace) = parse(env, "LLM_GATEWAY_GRACE", parse_duration)? {
            config.grace = grace;
        }
        if let Some(strict) = parse(env, "LLM_GATEWAY_STRICT_MODELS", parse_bool)? {
            config.strict_models = strict;
        }
        Ok(config)
    }

    /// Refuses to expose an unauthenticated gateway beyond this machine.
    ///
    /// # Errors
    /// A config error when the address is not loopback, no key is set, and
    /// `allow_unauthenticated` is false.
    pub fn check_exposure(&self) -> Result<(), Error> {
        if self.keys.is_empty() && !self.addr.ip().is_loopback() && !self.allow_unauthenticated {
            return Err(Error::config(format!(
                "refusing to serve {} without authentication: set LLM_GATEWAY_KEYS, bind a loopback \
                 address, or pass --allow-unauthenticated",
                self.addr
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use llm_core::MapEnv;

    use super::*;

    #[test]
    fn defaults_are_loopback_and_bounded() {
        let config = GatewayConfig::from_env(&MapEnv::new()).expect("config");
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.body_limit, 4 * 1024 * 1024);
        assert!(config.keys.is_empty());
        assert!(config.check_exposure().is_ok());
    }

    #[test]
    fn values_are_read_and_bad_ones_name_their_variable() {
        let env = MapEnv::new()
            .with("LLM_GATEWAY_KEYS", "alpha-key-one, beta-key-two,")
            .with("LLM_GATEWAY_MAX_INFLIGHT", "3")
            .with("LLM_GATEWAY_GRACE", "2s")
            .with("LLM_GATEWAY_STRICT_MODELS", "true");
        let config = GatewayConfig::from_env(&env).expect("config");
        assert_eq!(config.keys.len(), 2);
        assert_eq!(config.max_inflight, 3);
        assert_eq!(config.grace, Duration::from_secs(2));
        assert!(config.strict_models);
        let bad = MapEnv::new().with("LLM_GATEWAY_MAX_INFLIGHT", "0");
        let error = GatewayConfig::from_env(&bad).expect_err("zero");
        assert!(error.message().contains("LLM_GATEWAY_MAX_INFLIGHT"));
    }

    #[test]
    fn a_public_address_without_keys_is_refused_unless_allowed() {
        let mut config = GatewayConfig {
            addr: "0.0.0.0:8787".parse().expect("addr"),
            ..GatewayConfig::default()
        };
        let error = config.check_exposure().expect_err("refused");
        assert!(error.message().contains("--allow-unauthenticated"));
        config.allow_unauthenticated = true;
        assert!(config.check_exposure().is_ok());
        config.allow_unauthenticated = false;
        config.keys = vec![Secret::new("gateway-key-for-tests")];
        assert!(config.check_exposure().is_ok());
    }
}
