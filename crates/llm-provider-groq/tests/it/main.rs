//! Integration tests of the Groq provider: fixture replays of `fixtures/groq/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_groq::Groq;
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("GROQ_API_KEY", CANARY_KEY)
        .with("GROQ_BASE_URL", format!("{uri}/openai/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<Groq> {
    Box::new(Groq::from_env(&env(uri)).expect("a valid configuration"))
}
