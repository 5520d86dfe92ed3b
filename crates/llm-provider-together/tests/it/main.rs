//! Integration tests of the Together AI provider: fixture replays of `fixtures/together/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_together::Together;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("TOGETHER_API_KEY", CANARY_KEY)
        .with("TOGETHER_BASE_URL", format!("{uri}/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<Together> {
    Box::new(Together::from_env(&env(uri)).expect("a valid configuration"))
}
