#![doc = include_str!("../README.md")]

mod calls;
mod client;
mod config;
#[doc(hidden)]
pub mod fuzzing;
mod request;
mod schema;
mod wire;

use llm_core::{EnvSource, Error, Provider};
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

pub use client::Gemini;
pub use config::GeminiConfig;

/// The provider id: `gemini` (crate `llm-provider-gemini`, feature `provider-gemini`).
pub const ID: &str = "gemini";

/// What this provider reads from the environment (`GEMINI_API_KEY` and aliases, `GEMINI_MODEL`, …).
pub(crate) const SPEC: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Google Gemini",
    env_prefix: "GEMINI",
    key_env: &["GEMINI_API_KEY", "GOOGLE_GEMINI_API_KEY", "GOOGLE_API_KEY"],
    default_model: "gemini-2.5-flash",
    default_base_url: "https://generativelanguage.googleapis.com/v1beta",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 40,
    aliases: &["google"],
};

fn build_boxed(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    Ok(Box::new(Gemini::from_env(env)?))
}

llm_core::register_provider!(SPEC.registration(build_boxed));
