//! `LocalConfig`: which GGUF file, where it comes from, how requests are bounded; built from an
//! [`EnvSource`] without I/O.

use std::path::{Path, PathBuf};
use std::time::Duration;

use llm_core::{EnvSource, Error, parse_timeout};

use crate::ID;

/// The Hugging Face file used when `LOCAL_MODEL` is not set: `<owner>/<repo>/<file>` (see the README
/// for why this one).
pub const DEFAULT_MODEL: &str =
    "HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/smollm2-360m-instruct-q8_0.gguf";

/// The sha256 pinned for [`DEFAULT_MODEL`] fetched from its Hugging Face URL. None: it could not be
/// read from a trusted source when this was written (no network), so the server's `X-Linked-Etag`
/// (Hugging Face's sha256 of the stored file) is checked instead. Pin it here once known.
pub(crate) const DEFAULT_MODEL_SHA256: Option<&str> = None;

/// Where Hugging Face serves a repository file.
pub(crate) const HF_RESOLVE: &str = "https://huggingface.co";

/// Per-attempt timeout when `LOCAL_TIMEOUT` is not set: generation on a CPU is slow.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Requests waiting for the model when `LOCAL_QUEUE` is not set; one more is refused as `overloaded`.
pub(crate) const DEFAULT_QUEUE: usize = 4;

/// Tokens generated when neither the request nor `LOCAL_MAX_TOKENS` bounds the answer: small models
/// can repeat themselves until the context is full.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The sampling seed when `LOCAL_SEED` is not set: the same request gives the same answer.
pub(crate) const DEFAULT_SEED: u64 = 299_792_458;

/// How long a whole download may take when `LOCAL_PULL_TIMEOUT` is not set.
pub(crate) const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The local provider's configuration: plain data, built from environment variables by
/// [`LocalConfig::from_env`].
///
/// | variable | default |
/// |---|---|
/// | `LOCAL_MODEL_PATH` | none: a GGUF file to use as is (wins over everything below) |
/// | `LOCAL_MODEL` | [`DEFAULT_MODEL`]: a Hugging Face `<owner>/<repo>/<file>` |
/// | `LOCAL_MODEL_URL` | the file's Hugging Face resolve URL (a mirror: the full URL of the file) |
/// | `LOCAL_MODEL_SHA256` | pinned for the default model from Hugging Face; else the server's ETag |
/// | `LOCAL_MODEL_DIR` | `models/` in the data directory (`~/.local/share/llm-cascade/` on Linux) |
/// | `LOCAL_TIMEOUT` | 120 s per attempt |
/// | `LOCAL_PULL_TIMEOUT` | 30 min per download |
/// | `LOCAL_QUEUE` | 4 waiting requests |
/// | `LOCAL_MAX_TOKENS` | 1024 |
/// | `LOCAL_SEED` | 299792458 |
/// | `LOCAL_THREADS` | half the CPUs, at least 1 |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalConfig {
    /// The GGUF file the model is read from; `None` when there is nowhere to put a downloaded one (no
    /// data directory: `HOME` unset) and neither `LOCAL_MODEL_DIR` nor `LOCAL_MODEL_PATH` is set.
    pub model_path: Option<PathBuf>,
    /// Whether `model_path` was given (`LOCAL_MODEL_PATH`) rather than derived: a given file is never
    /// downloaded.
    pub path_given: bool,
    /// The model's name as reported in answers (`LOCAL_MODEL`, or the file name).
    pub model: String,
    /// Where the file is downloaded from, when it may be.
    pub url: Option<String>,
    /// The sha256 the downloaded file must have, when known before the download.
    pub sha256: Option<String>,
    /// How long one attempt may take (applied by the cascade).
    pub timeout: Duration,
    /// How long one download may take (applied by the provider).
    pub pull_timeout: Duration,
    /// Requests that may wait for the model; more are `overloaded`.
    pub queue: usize,
    /// Tokens generated when the request sets no `max_tokens`.
    pub max_tokens: u32,
    /// The sampling seed.
    pub seed: u64,
    /// Threads the model computes with (`LOCAL_THREADS`).
    pub threads: usize,
}

impl LocalConfig {
    /// Reads the configuration from `env`. Does no I/O.
    ///
    /// # Errors
    /// A config error naming the variable when a value does not parse, `LOCAL_MODEL` is not
    /// `<owner>/<repo>/<file>`, or no directory can hold a downloaded model.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, Error> {
        let timeout = duration(env, "LOCAL_TIMEOUT", DEFAULT_TIMEOUT)?;
        let pull_timeout = duration(env, "LOCAL_PULL_TIMEOUT", DEFAULT_PULL_TIMEOUT)?;
        let queue = number(env, "LOCAL_QUEUE", DEFAULT_QUEUE)?;
        let max_tokens = number(env, "LOCAL_MAX_TOKENS", DEFAULT_MAX_TOKENS)?;
        let seed = number(env, "LOCAL_SEED", DEFAULT_SEED)?;
        let threads = number(env, "LOCAL_THREADS", default_threads())?.max(1);
        if let Some(path) = env.non_empty("LOCAL_MODEL_PATH")? {
            let model_path = PathBuf::from(path);
            return Ok(Self {
                model: file_name(&model_path),
                model_path: Some(model_path),
                path_given: true,
                url: None,
                sha256: None,
                timeout,
                pull_timeout,
                queue,
                max_tokens,
                seed,
                threads,
            });
        }
        let model = env
            .non_empty("LOCAL_MODEL")?
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        let file = repo_file(&model)?;
        let resolve_url = resolve_url(&model)?;
        let url = env
            .non_empty("LOCAL_MODEL_URL")?
            .unwrap_or(resolve_url.clone());
        let sha256 = match env.non_empty("LOCAL_MODEL_SHA256")? {
            Some(hash) => Some(parse_sha256(&hash)?),
            // A pinned hash belongs to one file from one place: never to another URL's file.
            None if model == DEFAULT_MODEL && url == resolve_url => {
                DEFAULT_MODEL_SHA256.map(str::to_owned)
            }
            None => None,
        };
        let dir = match env.non_empty("LOCAL_MODEL_DIR")? {
            Some(dir) => Some(PathBuf::from(dir)),
            None => default_dir(env),
        };
        Ok(Self {
            model_path: dir.map(|d| d.join(file)),
            path_given: false,
            model,
            url: Some(url),
            sha256,
            timeout,
            pull_timeout,
            queue,
            max_tokens,
            seed,
            threads,
        })
    }
}

/// Half the CPUs: measured on a busy 2-core machine, one thread generated 3x faster than two (every
/// token synchronises the threads dozens of times, and a preempted thread stalls them all).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// `models/` in the platform's data directory, the same place the usage log lives. Without `HOME`
/// there is none: guessing one could write where nobody looks.
fn default_dir(env: &dyn EnvSource) -> Option<PathBuf> {
    if cfg!(unix) && env.non_empty("HOME").ok().flatten().is_none() {
        return None;
    }
    directories::ProjectDirs::from("", "", "llm-cascade").map(|d| d.data_dir().join("models"))
}

/// The last part of `<owner>/<repo>/<file>`.
fn repo_file(model: &str) -> Result<&str, Error> {
    let parts: Vec<&str> = model.split('/').collect();
    match parts.as_slice() {
        [owner, repo, .., file]
            if !owner.is_empty() && !repo.is_empty() && file.ends_with(".gguf") =>
        {
            Ok(file)
        }
        _ => Err(Error::config(format!(
            "LOCAL_MODEL: expected a Hugging Face file `<owner>/<repo>/<file>.gguf`, got `{model}`"
        ))
        .with_provider(ID)),
    }
}

/// `https://huggingface.co/<owner>/<repo>/resolve/main/<file>`.
fn resolve_url(model: &str) -> Result<String, Error> {
    repo_file(model)?;
    let (owner, rest) = model.split_once('/').unwrap_or_default();
    let (repo, file) = rest.split_once('/').unwrap_or_default();
    Ok(format!("{HF_RESOLVE}/{owner}/{repo}/resolve/main/{file}"))
}

/// A lowercase 64-digit hex sha256.
pub(crate) fn parse_sha256(text: &str) -> Result<String, Error> {
    let hash = text.trim().to_ascii_lowercase();
    if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hash)
    } else {
        Err(Error::config("LOCAL_MODEL_SHA256: expected 64 hex digits").with_provider(ID))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn duration(env: &dyn EnvSource, var: &str, default: Duration) -> Result<Duration, Error> {
    match env.non_empty(var)? {
        Some(text) => parse_timeout(&text)
            .map_err(|why| Error::config(format!("{var}: {why}")).with_provider(ID)),
        None => Ok(default),
    }
}

fn number<T: std::str::FromStr>(env: &dyn EnvSource, var: &str, default: T) -> Result<T, Error>
where
    T::Err: std::fmt::Display,
{
    match env.non_empty(var)? {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|e| Error::config(format!("{var}: {e}")).with_provider(ID)),
        None => Ok(default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::MapEnv;

    #[test]
    fn a_given_path_wins_and_is_never_downloaded() {
        let env = MapEnv::new()
            .with("LOCAL_MODEL_PATH", "/m/tiny.gguf")
            .with("LOCAL_MODEL", "a/b/c.gguf");
        let config = LocalConfig::from_env(&env).expect("config");
        assert_eq!(config.model_path, Some(PathBuf::from("/m/tiny.gguf")));
        assert!(config.path_given);
        assert_eq!(config.url, None);
        assert_eq!(config.model, "tiny.gguf");
    }

    #[test]
    fn a_repo_file_resolves_on_hugging_face_into_the_model_dir() {
        let env = MapEnv::new()
            .with("LOCAL_MODEL", "org/repo/m-q4.gguf")
            .with("LOCAL_MODEL_DIR", "/cache");
        let config = LocalConfig::from_env(&env).expect("config");
        assert_eq!(config.model_path, Some(PathBuf::from("/cache/m-q4.gguf")));
        assert_eq!(
            config.url.as_deref(),
            Some("https://huggingface.co/org/repo/resolve/main/m-q4.gguf")
        );
        assert_eq!(config.sha256, None);
    }

    #[test]
    fn a_pinned_hash_never_applies_to_a_mirror() {
        let env = MapEnv::new()
            .with("LOCAL_MODEL_DIR", "/cache")
            .with("LOCAL_MODEL_URL", "http://127.0.0.1:9/m.gguf");
        let config = LocalConfig::from_env(&env).expect("config");
        assert_eq!(config.sha256, None);
        assert_eq!(config.url.as_deref(), Some("http://127.0.0.1:9/m.gguf"));
        let hash = "AB".repeat(32);
        let env = env.with("LOCAL_MODEL_SHA256", &hash);
        let config = LocalConfig::from_env(&env).expect("config");
        assert_eq!(config.sha256, Some("ab".repeat(32)));
    }

    #[test]
    fn without_home_or_a_dir_there_is_no_model_path() {
        let config = LocalConfig::from_env(&MapEnv::new()).expect("config");
        assert_eq!(config.model_path, None);
        let config = LocalConfig::from_env(&MapEnv::new().with("HOME", "/h")).expect("config");
        assert!(
            config
                .model_path
                .expect("path")
                .ends_with("smollm2-360m-instruct-q8_0.gguf")
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (var, value) in [
            ("LOCAL_MODEL", "just-a-name"),
            ("LOCAL_MODEL_SHA256", "abc"),
            ("LOCAL_QUEUE", "many"),
            ("LOCAL_TIMEOUT", "soon"),
        ] {
            let env = MapEnv::new().with("LOCAL_MODEL_DIR", "/c").with(var, value);
            let err = LocalConfig::from_env(&env).expect_err(var);
            assert!(err.message().contains(var), "{var}: {}", err.message());
        }
    }
}
