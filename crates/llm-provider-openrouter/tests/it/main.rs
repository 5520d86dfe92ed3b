//! Integration tests of the OpenRouter provider: fixture replays of `fixtures/openrouter/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_openrouter::OpenRouter;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("OPENROUTER_API_KEY", CANARY_KEY)
        .with("OPENROUTER_BASE_URL", format!("{uri}/api/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<OpenRouter> {
    Box::new(OpenRouter::from_env(&env(uri)).expect("a valid configuration"))
}
