#![doc = include_str!("../README.md")]

use llm_protocol::openai::CompatSpec;
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

/// The provider id.
pub const ID: &str = "groq";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Groq",
    env_prefix: "GROQ",
    key_env: &["GROQ_API_KEY"],
    default_model: "llama-3.3-70b-versatile",
    default_base_url: "https://api.groq.com/openai/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 30,
    aliases: &[],
};

const SPEC: CompatSpec = CompatSpec {
    parallel_tool_calls: true,
    ..CompatSpec::new(SETTINGS)
};

llm_protocol::compat_provider!(GroqSpec, Groq, GroqConfig, "Groq", SPEC);
