#![doc = include_str!("../README.md")]

use llm_protocol::openai::{Capabilities, CompatSpec};
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

const SPEC: CompatSpec = CompatSpec {
    model_capabilities,
    parallel_tool_calls: true,
    ..CompatSpec::new(SETTINGS)
};

/// Where OpenAI's models differ (its reasoning guide and structured-outputs guide):
/// - `o1-mini` and `o1-preview` take no tools and no `response_format` ("tools, function calling, and
///   response format parameters are not supported"): text only;
/// - `json_schema` came with `gpt-4o-2024-08-06`: older models (`gpt-4-turbo`, `gpt-4`,
///   `gpt-3.5-turbo`, `gpt-4o-2024-05-13`) have JSON mode and tools but no schema.
///
/// Every other model (`gpt-4o`, `gpt-4.1`, `o1`, `o3`, …): everything.
fn model_capabilities(model: &str, provider: Capabilities) -> Capabilities {
    let no_schema = model == "gpt-4"
        || model.starts_with("gpt-4-")
        || model.starts_with("gpt-3.5")
        || model == "gpt-4o-2024-05-13";
    if model.starts_with("o1-mini") || model.starts_with("o1-preview") {
        Capabilities::TEXT
    } else if no_schema {
        Capabilities {
            json_schema: false,
            ..provider
        }
    } else {
        provider
    }
}

llm_protocol::compat_provider!(OpenAiSpec, OpenAi, OpenAiConfig, "OpenAI", SPEC);
