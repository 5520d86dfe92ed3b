#![doc = include_str!("../README.md")]

use llm_protocol::openai::{Capabilities, CompatSpec};
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

/// The provider id.
pub const ID: &str = "deepseek";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "DeepSeek",
    env_prefix: "DEEPSEEK",
    key_env: &["DEEPSEEK_API_KEY"],
    default_model: "deepseek-chat",
    default_base_url: "https://api.deepseek.com",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 90,
    aliases: &[],
};

/// DeepSeek has JSON mode (`json_object`) but no `json_schema`: a schema is asked for by instruction
/// and the answer validated by the cascade.
const SPEC: CompatSpec = CompatSpec {
    capabilities: Capabilities {
        json_schema: false,
        ..Capabilities::ALL
    },
    ..CompatSpec::new(SETTINGS)
};

llm_protocol::compat_provider!(DeepSeekSpec, DeepSeek, DeepSeekConfig, "DeepSeek", SPEC);
