//! Helpers shared by the test modules.

use futures_util::StreamExt;
use llm_core::{ChatStream, Error, MapEnv, StreamEvent};
use llm_provider_anthropic::Anthropic;
use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::{Value, json};
use wiremock::MockServer;

/// A provider pointed at `server`, configured with the canary key.
pub fn provider(server: &MockServer) -> Anthropic {
    let env = MapEnv::new()
        .with("ANTHROPIC_API_KEY", CANARY_KEY)
        .with("ANTHROPIC_BASE_URL", format!("{}/v1", server.uri()));
    let provider = Anthropic::from_env(&env).expect("provider");
    assert!(!format!("{provider:?}").contains(CANARY_KEY));
    provider
}

/// Starts a server serving `fixtures/anthropic/<scenario>.json` once at its recorded route.
pub async fn serve(scenario: &str) -> (MockServer, Fixture) {
    let server = MockServer::start().await;
    let fixture = Fixture::load("anthropic", scenario);
    let route = fixture.request.path.clone();
    let method = fixture.request.method.clone();
    fixture.mount(&server, &method, &route, 1).await;
    (server, fixture)
}

/// The normalised form of an error we snapshot; also checks that the key never shows.
pub fn error_json(error: &Error) -> Value {
    assert!(!error.to_string().contains(CANARY_KEY), "{error}");
    assert!(!format!("{error:?}").contains(CANARY_KEY), "{error:?}");
    json!({
        "kind": error.kind(),
        "status": error.status(),
        "retry_after_ms": error.retry_after().map(|d| d.as_millis()),
        "provider": error.provider(),
    })
}

/// Collects a stream into its normalised form: events, then the error that ended it, if any.
pub async fn stream_json(stream: ChatStream) -> Value {
    let items: Vec<Result<StreamEvent, Error>> = stream.collect().await;
    Value::Array(
        items
            .iter()
            .map(|item| match item {
                Ok(event) => serde_json::to_value(event).expect("event json"),
                Err(error) => json!({ "error": error_json(error) }),
            })
            .collect(),
    )
}
