//! Integration tests of the OpenAI provider: fixture replays of `fixtures/openai/` through wiremock.

mod ids;
mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_openai::OpenAi;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{uri}/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<OpenAi> {
    Box::new(OpenAi::from_env(&env(uri)).expect("a valid configuration"))
}
