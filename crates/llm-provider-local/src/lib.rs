#![doc = include_str!("../README.md")]

mod client;
mod config;
pub mod download;
mod model;
mod stop;
mod template;

use llm_core::{EnvSource, Error, Provider};
use llm_protocol::SettingsSpec;

pub use client::Local;
pub use config::{DEFAULT_MODEL, LocalConfig};

/// The provider id: also the env prefix (`LOCAL_`), the crate suffix and the cargo feature.
pub const ID: &str = "local";

/// What the registry knows about the embedded model.
const SPEC: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Local (embedded)",
    env_prefix: "LOCAL",
    key_env: &[],
    default_model: config::DEFAULT_MODEL,
    default_base_url: "(in-process)",
    default_timeout: config::DEFAULT_TIMEOUT,
    local: true,
    aliases: &[],
    // The last resort: after every server and cloud provider (anthropic is 100).
    priority: 110,
};

fn build_boxed(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Local::from_env(env)?))
}

llm_core::register_provider!(SPEC.registration(build_boxed));
