//! Helpers shared by the test modules.

use futures_util::StreamExt;
use llm_core::{ChatStream, Error, MapEnv};
use llm_provider_ollama::Ollama;
use llm_test_support::Fixture;
use serde_json::{Value, json};
use wiremock::MockServer;

/// The model the tests configure: installed according to `tags.success.doc` (as `llama3.2:latest`).
pub const MODEL: &str = "llama3.2";

/// A provider pointed at `base_url`, configured with `MODEL` and any `extra` variables.
pub fn provider(base_url: &str, extra: &[(&str, &str)]) -> Ollama {
    let mut env = MapEnv::new()
        .with("OLLAMA_BASE_URL", base_url)
        .with("OLLAMA_MODEL", MODEL);
    for (name, value) in extra {
        env = env.with(*name, *value);
    }
    Ollama::from_env(&env).expect("valid test configuration")
}

/// Mounts `fixtures/ollama/<scenario>.json` at its own method and path, expecting `times` calls.
pub async fn mount(server: &MockServer, scenario: &str, times: u64) {
    let fixture = Fixture::load("ollama", scenario);
    let (method, path) = (fixture.request.method.clone(), fixture.request.path.clone());
    fixture.mount(server, &method, &path, times).await;
}

/// Our normalised view of an error, for assertions and snapshots.
pub fn summary(error: &Error) -> Value {
    json!({
        "kind": error.kind(),
        "status": error.status(),
        "retry_after_ms": error.retry_after().map(|d| d.as_millis() as u64),
        "provider": error.provider(),
    })
}

/// Every item of a stream: events as themselves, errors as their [`summary`].
pub async fn collect(stream: ChatStream) -> Vec<Value> {
    stream
        .map(|item| match item {
            Ok(event) => serde_json::to_value(event).expect("events serialise"),
            Err(error) => json!({ "error": summary(&error) }),
        })
        .collect()
        .await
}

/// The concatenated text of the `Delta` events in `items`.
pub fn text_of(items: &[Value]) -> String {
    items
        .iter()
        .filter(|item| item["type"] == "delta")
        .filter_map(|item| item["text"].as_str())
        .collect()
}

/// The JSON bodies the server received at `path`.
pub async fn bodies_at(server: &MockServer, path: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .expect("request recording is on")
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON request body"))
        .collect()
}
