//! `OllamaConfig`: where the server is, which model, how long to wait; built from an [`EnvSource`].

use std::fmt;
use std::time::Duration;

use llm_core::{EnvSource, Error, Secret, parse_timeout};
use llm_protocol::ProviderSettings;
use llm_protocol::settings::validate_base_url;

use crate::{ID, SPEC};

/// The port Ollama listens on when `OLLAMA_HOST` names none (and has no scheme).
pub(crate) const DEFAULT_PORT: u16 = 11434;

/// The model used when `OLLAMA_MODEL` is not set (see the README for why this one).
pub(crate) const DEFAULT_MODEL: &str = "llama3.2:3b";

/// The base URL used when neither `OLLAMA_BASE_URL` nor `OLLAMA_HOST` is set.
pub(crate) const DEFAULT_BASE_URL: &str = "http://localhost:11434";

/// Per-attempt timeout when `OLLAMA_TIMEOUT` is not set: local generation on a CPU is slow.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a whole pull may take when `OLLAMA_PULL_TIMEOUT` is not set (a few GB on a slow line).
pub(crate) const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The Ollama provider's configuration: plain data, built from environment variables by
/// [`OllamaConfig::from_env`].
///
/// | variable | default |
/// |---|---|
/// | `OLLAMA_BASE_URL` | `http://localhost:11434` (wins over `OLLAMA_HOST`) |
/// | `OLLAMA_HOST` | Ollama's own spelling: `host`, `host:port`, `0.0.0.0`, `https://host` |
/// | `OLLAMA_MODEL` | `llama3.2:3b` |
/// | `OLLAMA_TIMEOUT` | 120 s per attempt |
/// | `OLLAMA_PULL_TIMEOUT` | 30 min per pull |
/// | `OLLAMA_API_KEY` | none (sent as a Bearer token when set: tunnels, ollama.com) |
#[derive(Clone)]
pub struct OllamaConfig {
    /// The server's base URL, without a trailing slash and without `/api`.
    pub base_url: String,
    /// The model used when a request names none.
    pub model: String,
    /// How long one chat attempt may take (applied by the cascade).
    pub timeout: Duration,
    /// How long one pull may take (applied by the provider itself).
    pub pull_timeout: Duration,
    /// A Bearer token for servers behind an authenticating proxy or for ollama.com.
    pub api_key: Option<Secret>,
}

impl fmt::Debug for OllamaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .field("pull_timeout", &self.pull_timeout)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl OllamaConfig {
    /// Reads the configuration from `env`. Does no I/O.
    ///
    /// # Errors
    /// A config error naming the variable when a URL or a duration does not parse.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let settings = ProviderSettings::from_env(&SPEC, env)?;
        let base_url = match (
            env.non_empty(&SPEC.var("BASE_URL"))?,
            env.non_empty("OLLAMA_HOST")?,
        ) {
            (None, Some(host)) => {
                let url = host_to_base_url(&host);
                validate_base_url(&SPEC, "OLLAMA_HOST", &url)?
            }
            // OLLAMA_BASE_URL (validated by ProviderSettings) or the default.
            _ => settings.base_url,
        };
        let pull_timeout = match env.non_empty("OLLAMA_PULL_TIMEOUT")? {
            Some(text) => parse_timeout(&text).map_err(|why| {
                Error::config(format!("OLLAMA_PULL_TIMEOUT: {why}")).with_provider(ID)
            })?,
            None => DEFAULT_PULL_TIMEOUT,
        };
        let api_key = env.non_empty("OLLAMA_API_KEY")?.map(Secret::new);
        Ok(Self {
            base_url: strip_api_suffix(&base_url),
            model: settings.model,
            timeout: settings.timeout,
            pull_timeout,
            api_key,
        })
    }
}

/// `OLLAMA_BASE_URL=http://host:11434/api` is a common slip: requests go to `<base>/api/...`.
fn strip_api_suffix(url: &str) -> String {
    let url = url.trim_end_matches('/');
    url.strip_suffix("/api").unwrap_or(url).to_owned()
}

/// Turns `OLLAMA_HOST` as Ollama reads it into a base URL.
///
/// Follows Ollama's own parsing (`envconfig.Host`): quotes and spaces are trimmed; without a scheme the
/// scheme is `http` and the default port 11434; with an explicit `http://` or `https://` and no port, the
/// scheme's own port applies (80/443, so a tunnel URL works as written). A bind-all address (`0.0.0.0`,
/// `::`) is what the server listens on, not where a client connects: it becomes loopback. An empty host
/// (`:11434`) is loopback too.
pub(crate) fn host_to_base_url(raw: &str) -> String {
    let value = raw.trim().trim_matches(|c| c == '"' || c == '\'').trim();
    let (scheme, rest, explicit_scheme) = match value.split_once("://") {
        Some((scheme, rest)) => (scheme.to_ascii_lowercase(), rest, true),
        None => ("http".to_owned(), value, false),
    };
    let rest = rest.trim_end_matches('/');
    let (hostport, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(hostport);
    let host = match host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" | "[::]" => "[::1]".to_owned(),
        _ => host,
    };
    let port = match port {
        Some(port) => Some(port),
        None if explicit_scheme => None,
        None => Some(DEFAULT_PORT.to_string()),
    };
    match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, a bare IPv6 address or a bare host.
fn split_host_port(hostport: &str) -> (String, Option<String>) {
    if let Some(rest) = hostport.strip_prefix('[')
        && let Some((host, after)) = rest.split_once(']')
    {
        let port = after.strip_prefix(':').filter(|p| !p.is_empty());
        return (format!("[{host}]"), port.map(str::to_owned));
    }
    match hostport.matches(':').count() {
        1 => {
            let (host, port) = hostport.split_once(':').unwrap_or((hostport, ""));
            let port = (!port.is_empty()).then(|| port.to_owned());
            (host.to_owned(), port)
        }
        // A bare IPv6 address (`::1`, `::`): bracket it.
        n if n > 1 => {
            if hostport == "::" {
                ("::".to_owned(), None)
            } else {
                (format!("[{hostport}]"), None)
            }
        }
        _ => (hostport.to_owned(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::{ErrorKind, MapEnv};

    #[test]
    fn defaults() {
        let config = OllamaConfig::from_env(&MapEnv::new()).expect("defaults");
        assert_eq!(config.base_url, "http://localhost:11434");
        assert_eq!(config.model, DEFAULT_MODEL);
        assert_eq!(config.timeout, Duration::from_secs(120));
        assert_eq!(config.pull_timeout, Duration::from_secs(1800));
        assert!(config.api_key.is_none());
    }

    #[test]
    fn ollama_host_forms() {
        let cases = [
            ("0.0.0.0", "http://127.0.0.1:11434"),
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("gpu-box", "http://gpu-box:11434"),
            ("gpu-box:9999", "http://gpu-box:9999"),
            (" \"gpu-box:9999\" ", "http://gpu-box:9999"),
            (":11434", "http://127.0.0.1:11434"),
            ("http://gpu-box:11434/", "http://gpu-box:11434"),
            (
                "https://abc.trycloudflare.com",
                "https://abc.trycloudflare.com",
            ),
            (
                "https://proxy.example/ollama",
                "https://proxy.example/ollama",
            ),
            ("[::1]:11434", "http://[::1]:11434"),
            ("::1", "http://[::1]:11434"),
            ("[::]", "http://[::1]:11434"),
            ("::", "http://[::1]:11434"),
        ];
        for (raw, want) in cases {
            assert_eq!(host_to_base_url(raw), want, "OLLAMA_HOST={raw}");
        }
    }

    #[test]
    fn base_url_wins_over_host() {
        let env = MapEnv::new()
            .with("OLLAMA_HOST", "0.0.0.0:1")
            .with("OLLAMA_BASE_URL", "https://tunnel.example/api/");
        let config = OllamaConfig::from_env(&env).expect("ok");
        assert_eq!(config.base_url, "https://tunnel.example");
        let env = MapEnv::new().with("OLLAMA_HOST", "0.0.0.0");
        let config = OllamaConfig::from_env(&env).expect("ok");
        assert_eq!(config.base_url, "http://127.0.0.1:11434");
    }

    #[test]
    fn overrides_and_errors_name_the_variable() {
        let env = MapEnv::new()
            .with("OLLAMA_MODEL", "qwen2.5:0.5b")
            .with("OLLAMA_TIMEOUT", "5m")
            .with("OLLAMA_PULL_TIMEOUT", "1h")
            .with("OLLAMA_API_KEY", "canary-secret");
        let config = OllamaConfig::from_env(&env).expect("ok");
        assert_eq!(config.model, "qwen2.5:0.5b");
        assert_eq!(config.timeout, Duration::from_secs(300));
        assert_eq!(config.pull_timeout, Duration::from_secs(3600));
        assert!(!format!("{config:?}").contains("canary-secret"));

        let bad = OllamaConfig::from_env(&MapEnv::new().with("OLLAMA_PULL_TIMEOUT", "soon"))
            .expect_err("bad duration");
        assert_eq!(bad.kind(), ErrorKind::Config);
        assert!(bad.message().starts_with("OLLAMA_PULL_TIMEOUT"));
        let bad = OllamaConfig::from_env(&MapEnv::new().with("OLLAMA_HOST", "ftp://x"))
            .expect_err("bad scheme");
        assert!(bad.message().contains("OLLAMA_HOST"), "{}", bad.message());
    }
}
