#![doc = include_str!("../README.md")]

use llm_protocol::openai::{CompatSpec, EnvHeader, ToolCallIds};
use llm_protocol::{CLOUD_TIMEOUT, SettingsSpec};

/// The provider id.
pub const ID: &str = "openrouter";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "OpenRouter",
    env_prefix: "OPENROUTER",
    key_env: &["OPENROUTER_API_KEY"],
    default_model: "openai/gpt-4o-mini",
    default_base_url: "https://openrouter.ai/api/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 50,
    aliases: &[],
};

const SPEC: CompatSpec = CompatSpec {
    headers: &[
        EnvHeader {
            name: "http-referer",
            env: &["OPENROUTER_SITE_URL", "OPENROUTER_HTTP_REFERER"],
            default: None,
        },
        EnvHeader {
            name: "x-title",
            env: &["OPENROUTER_APP_NAME", "OPENROUTER_X_TITLE"],
            default: Some("llm-cascade"),
        },
    ],
    // Mistral's models keep Mistral's rule behind OpenRouter: nine letters and digits per id.
    tool_call_ids: ToolCallIds::Alphanumeric9For("mistralai/"),
    parallel_tool_calls: true,
    ..CompatSpec::new(SETTINGS)
};

llm_protocol::compat_provider!(
    OpenRouterSpec,
    OpenRouter,
    OpenRouterConfig,
    "OpenRouter",
    SPEC
);
