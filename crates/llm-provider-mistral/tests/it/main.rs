//! Integration tests of the Mistral provider: fixture replays of `fixtures/mistral/` through wiremock.

mod ids;
mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_mistral::Mistral;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("MISTRAL_API_KEY", CANARY_KEY)
        .with("MISTRAL_BASE_URL", format!("{uri}/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<Mistral> {
    Box::new(Mistral::from_env(&env(uri)).expect("a valid configuration"))
}
