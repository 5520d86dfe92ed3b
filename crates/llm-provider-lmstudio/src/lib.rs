#![doc = include_str!("../README.md")]

use std::time::Duration;

use llm_protocol::SettingsSpec;
use llm_protocol::openai::{Capabilities, CompatSpec};

/// The provider id.
pub const ID: &str = "lmstudio";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "LM Studio",
    env_prefix: "LM_STUDIO",
    key_env: &[],
    default_model: "(loaded model)",
    default_base_url: "http://localhost:1234/v1",
    default_timeout: Duration::from_secs(120),
    local: true,
    priority: 20,
    aliases: &["lm-studio", "lm_studio"],
};

const SPEC: CompatSpec = CompatSpec {
    optional_key_env: &["LM_STUDIO_API_KEY"],
    chat_url_env: Some("LM_STUDIO_URL"),
    discover_model: true,
    // LM Studio's structured output is `json_schema` only; it rejects `json_object`.
    capabilities: Capabilities {
        json_mode: false,
        ..Capabilities::ALL
    },
    ..CompatSpec::new(SETTINGS)
};

llm_protocol::compat_provider!(LmStudioSpec, LmStudio, LmStudioConfig, "LM Studio", SPEC);
