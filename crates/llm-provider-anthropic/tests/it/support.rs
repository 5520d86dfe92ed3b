//! Helpers shared by the test modules.

use llm_core::MapEnv;
use llm_provider_anthropic::{Anthropic, ID};
use llm_test_support::replay::assert_no_canary;
use llm_test_support::{CANARY_KEY, Fixture};
use wiremock::MockServer;

/// The normalised form of an error we snapshot (`{kind, status, retry_after_ms, provider}`); also
/// checks that the key never shows.
pub use llm_test_support::replay::error_summary as error_json;

/// A provider pointed at `server`, configured with the canary key.
pub fn provider(server: &MockServer) -> Anthropic {
    let env = MapEnv::new()
        .with("ANTHROPIC_API_KEY", CANARY_KEY)
        .with("ANTHROPIC_BASE_URL", format!("{}/v1", server.uri()));
    let provider = Anthropic::from_env(&env).expect("provider");
    assert_no_canary(&format!("{provider:?}"));
    provider
}

/// Starts a server serving `fixtures/anthropic/<scenario>.json` once at its recorded route.
pub async fn serve(scenario: &str) -> (MockServer, Fixture) {
    let fixture = Fixture::load(ID, scenario);
    let server = llm_test_support::replay::serve(&fixture, 1).await;
    (server, fixture)
}
