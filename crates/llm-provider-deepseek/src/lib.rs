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
    model_capabilities,
    ..CompatSpec::new(SETTINGS)
};

/// `deepseek-reasoner` (R1) has neither function calling nor JSON output (DeepSeek's reasoning-model
/// guide: "Not Supported Features: Function Call, Json Output, FIM"): text only, so a tool request
/// skips it and a schema is asked for by instruction. Every other model: the provider's capabilities.
fn model_capabilities(model: &str, provider: Capabilities) -> Capabilities {
    if model.starts_with("deepseek-reasoner") {
        Capabilities::TEXT
    } else {
        provider
    }
}

llm_protocol::compat_provider!(DeepSeekSpec, DeepSeek, DeepSeekConfig, "DeepSeek", SPEC);
