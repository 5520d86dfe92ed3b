#![doc = include_str!("../README.md")]

mod client;
mod config;
#[doc(hidden)]
pub mod fuzzing;
mod wire;

use llm_core::{EnvSource, Error, Provider};
use llm_protocol::SettingsSpec;

pub use client::Ollama;
pub use config::OllamaConfig;

/// The provider id: also the env prefix (`OLLAMA_`), the crate suffix and the cargo feature.
pub const ID: &str = "ollama";

/// What the registry and [`llm_protocol::ProviderSettings`] know about Ollama.
const SPEC: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Ollama",
    env_prefix: "OLLAMA",
    // Local: no key required (`OLLAMA_API_KEY` is optional and read by `OllamaConfig`).
    key_env: &[],
    default_model: config::DEFAULT_MODEL,
    default_base_url: config::DEFAULT_BASE_URL,
    default_timeout: config::DEFAULT_TIMEOUT,
    local: true,
    priority: 10,
    aliases: &[],
};

fn build_boxed(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Ollama::from_env(env)?))
}

llm_core::register_provider!(SPEC.registration(build_boxed));
