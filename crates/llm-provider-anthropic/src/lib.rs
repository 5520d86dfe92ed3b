#![doc = include_str!("../README.md")]

mod client;
mod config;
mod content;
#[doc(hidden)]
pub mod fuzzing;
mod stream;
mod structured;
mod wire;

use llm_core::{EnvSource, Error, Provider};
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

pub use client::Anthropic;
pub use config::AnthropicConfig;

/// The provider id: `anthropic` (crate `llm-provider-anthropic`, feature `provider-anthropic`).
pub const ID: &str = "anthropic";

/// What this provider reads from the environment (`ANTHROPIC_API_KEY`, `ANTHROPIC_MODEL`, …).
pub(crate) const SPEC: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Anthropic",
    env_prefix: "ANTHROPIC",
    key_env: &["ANTHROPIC_API_KEY"],
    default_model: "claude-sonnet-4-5-20250929",
    default_base_url: "https://api.anthropic.com/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 100,
    aliases: &["claude"],
};

fn build_boxed(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Anthropic::from_env(env)?))
}

llm_core::register_provider!(SPEC.registration(build_boxed));
