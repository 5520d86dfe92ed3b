#![doc = include_str!("../README.md")]

use llm_core::{Error, ErrorKind};
use llm_protocol::openai::{self, CompatSpec};
use llm_protocol::{CLOUD_TIMEOUT, HttpFailure, SettingsSpec};

/// The provider id.
pub const ID: &str = "together";

const SETTINGS: SettingsSpec = SettingsSpec {
    id: ID,
    display_name: "Together AI",
    env_prefix: "TOGETHER",
    key_env: &[
        "TOGETHER_API_KEY",
        "TOGETHER_AI_API_KEY",
        "TOGETHERAI_API_KEY",
    ],
    default_model: "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    default_base_url: "https://api.together.xyz/v1",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: 60,
    aliases: &[],
};

const SPEC: CompatSpec = CompatSpec {
    // Together sends usage on its last chunk unasked; `stream_options` is left out.
    stream_usage: false,
    parse_error,
    ..CompatSpec::new(SETTINGS)
};

/// Together documents HTTP 403 as "input + max_tokens exceed the model's context length", not as a
/// permission error.
fn parse_error(failure: &HttpFailure) -> Error {
    openai::parse_error_with(failure, |facts| {
        (facts.status == 403).then_some(ErrorKind::ContextLength)
    })
}

llm_protocol::compat_provider!(TogetherSpec, Together, TogetherConfig, "Together AI", SPEC);
