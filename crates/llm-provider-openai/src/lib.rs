#![doc = include_str!("../README.md")]

use llm_protocol::openai::CompatSpec;
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

/// The provider id.
pub const ID: &str = "openai";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "OpenAI",
    env_prefix: "OPENAI",
    key_env: &["OPENAI_API_KEY"],
    default_model: "gpt-4.1-mini",
    default_base_url: "https://api.openai.com/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 80,
    aliases: &[],
};

const SPEC: CompatSpec = CompatSpec::new(SETTINGS);

llm_protocol::compat_provider!(OpenAiSpec, OpenAi, OpenAiConfig, "OpenAI", SPEC);
