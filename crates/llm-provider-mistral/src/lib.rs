#![doc = include_str!("../README.md")]

use llm_protocol::openai::{CompatSpec, ToolCallIds};
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

/// The provider id.
pub const ID: &str = "mistral";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Mistral",
    env_prefix: "MISTRAL",
    key_env: &["MISTRAL_API_KEY"],
    default_model: "mistral-small-latest",
    default_base_url: "https://api.mistral.ai/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 70,
    aliases: &[],
};

const SPEC: CompatSpec = CompatSpec {
    // Mistral rejects unknown fields (`stream_options`) and sends usage on its last chunk anyway.
    stream_usage: false,
    // A final assistant message with `"prefix": true` is continued (a prefill); without the mark Mistral
    // rejects a conversation that ends with the assistant.
    prefix_prefill: true,
    // "Tool call id was … but must be a-z, A-Z, 0-9, with a length of 9": foreign ids are mapped.
    tool_call_ids: ToolCallIds::Alphanumeric9,
    parallel_tool_calls: true,
    ..CompatSpec::new(SETTINGS)
};

llm_protocol::compat_provider!(MistralSpec, Mistral, MistralConfig, "Mistral", SPEC);
