//! Integration tests of the DeepSeek provider: fixture replays of `fixtures/deepseek/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_deepseek::DeepSeek;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("DEEPSEEK_API_KEY", CANARY_KEY)
        .with("DEEPSEEK_BASE_URL", uri)
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<DeepSeek> {
    Box::new(DeepSeek::from_env(&env(uri)).expect("a valid configuration"))
}
