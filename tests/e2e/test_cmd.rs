//! `cascade test` and `cascade providers --check` against one provider that works, one that refuses
//! the key (401) and one that is down (refused port).

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use llm_test_support::Fixture;

use crate::harness::{cascade, fast, locals_down, provider, serve};
use llm_test_support::refused_port;

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

/// A working OpenAI: lists its models `probes` times and answers `chats` times.
async fn openai_up(probes: u64, chats: u64) -> MockServer {
    let server = serve("openai", "chat.success", OPENAI_ROUTE, chats).await;
    // No captured models list in the fixtures: a minimal body in OpenAI's documented shape.
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"id": "gpt-4.1-nano", "object": "model", "owned_by": "system"}]
        })))
        .expect(probes)
        .mount(&server)
        .await;
    server
}

/// Groq refusing the key on every route.
async fn groq_401(probes: u64, chats: u64) -> MockServer {
    let server = MockServer::start().await;
    let fixture = Fixture::load("groq", "error.401.auth");
    fixture
        .mount(&server, "GET", "/openai/v1/models", probes)
        .await;
    fixture.mount(&server, "POST", GROQ_ROUTE, chats).await;
    server
}

/// OpenAI, Groq (401) and Mistral (down), plus the local providers down.
fn env(openai: &MockServer, groq: &MockServer) -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(locals_down());
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider(
        "MISTRAL",
        format!("http://127.0.0.1:{}/v1", refused_port()),
    ));
    env
}

fn check_of<'a>(checks: &'a Value, id: &str) -> &'a Value {
    checks
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["provider"] == id)
        .unwrap_or_else(|| panic!("no check for {id}: {checks}"))
}

#[tokio::test]
async fn test_probes_each_provider_then_the_cascade_answers() {
    let openai = openai_up(1, 1).await;
    let groq = groq_401(1, 1).await;
    let run = cascade(
        &["test", "groq", "mistral", "openai", "--json"],
        &env(&openai, &groq),
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["success"], true);
    let checks = &json["checks"];
    assert_eq!(
        checks
            .as_array()
            .expect("checks")
            .iter()
            .map(|c| c["provider"].clone())
            .collect::<Vec<_>>(),
        vec![json!("groq"), json!("mistral"), json!("openai")]
    );
    let groq_check = check_of(checks, "groq");
    assert_eq!(
        (
            &groq_check["ok"],
            &groq_check["kind"],
            &groq_check["status"]
        ),
        (&json!(false), &json!("auth"), &json!(401))
    );
    assert_eq!(groq_check["message"], "Invalid API Key");
    let mistral_check = check_of(checks, "mistral");
    assert_eq!(
        (&mistral_check["ok"], &mistral_check["kind"]),
        (&json!(false), &json!("network"))
    );
    let openai_check = check_of(checks, "openai");
    assert_eq!(openai_check["ok"], true);
    assert!(openai_check["latency_ms"].is_u64());

    let generation = &json["generation"];
    assert_eq!(generation["success"], true);
    assert_eq!(generation["provider"], "openai");
    assert_eq!(generation["model"], "gpt-4.1-nano-2025-04-14");
    assert!(
        generation["content"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
    let outcomes: Vec<Value> = generation["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| json!([a["provider"], a["outcome"]]))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            json!(["groq", "auth"]),
            json!(["mistral", "network"]),
            json!(["mistral", "network"]),
            json!(["openai", "ok"]),
        ]
    );
    // The test prompt went to the providers, restricted to the given order.
    let requests = openai.received_requests().await.expect("recording");
    let chat = requests
        .iter()
        .find(|r| r.method.as_str() == "POST")
        .expect("a chat request");
    let body: Value = serde_json::from_slice(&chat.body).expect("json");
    assert_eq!(body["messages"][0]["role"], "user");
}

#[tokio::test]
async fn test_shows_each_reason_in_its_table() {
    let openai = openai_up(1, 1).await;
    let groq = groq_401(1, 1).await;
    let run = cascade(&["test", "groq", "mistral", "openai"], &env(&openai, &groq)).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let out = &run.stdout;
    assert!(out.starts_with("Step 1: probing 3 providers\n"), "{out}");
    assert!(out.contains("❌ auth (HTTP 401): Invalid API Key"), "{out}");
    assert!(out.contains("❌ network: "), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("openai") && l.contains("✅") && l.contains(" ms")),
        "{out}"
    );
    assert!(
        out.contains("Step 2: asking the cascade (groq → mistral → openai)"),
        "{out}"
    );
    assert!(
        out.contains("✅ openai · gpt-4.1-nano-2025-04-14 · 4 attempts · "),
        "{out}"
    );
}

#[tokio::test]
async fn test_fails_with_exit_1_when_no_provider_answers() {
    let openai = openai_up(0, 0).await;
    let groq = groq_401(1, 1).await;
    let run = cascade(&["test", "groq", "mistral", "--json"], &env(&openai, &groq)).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["success"], false);
    assert_eq!(json["generation"]["success"], false);
    assert_eq!(json["generation"]["error"], "network");
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn test_rejects_an_unknown_id_with_exit_2() {
    let run = cascade(&["test", "gpt5", "--json"], &fast()).await;
    assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["error"], "config");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("`gpt5`")),
        "{json}"
    );
}

#[tokio::test]
async fn providers_check_reports_each_reason_and_exits_0_when_one_is_reachable() {
    let openai = openai_up(1, 0).await;
    let groq = groq_401(1, 0).await;
    let run = cascade(&["providers", "--check", "--json"], &env(&openai, &groq)).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let rows = run.json();
    let row = |id: &str| -> Value {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no row {id}"))
    };
    assert_eq!(row("openai")["check"]["ok"], true);
    assert_eq!(row("groq")["check"]["kind"], "auth");
    assert_eq!(row("groq")["check"]["status"], 401);
    assert_eq!(row("mistral")["check"]["kind"], "network");
    assert_eq!(row("ollama")["check"]["kind"], "not_running");
    assert_eq!(row("lmstudio")["check"]["kind"], "not_running");
    // Not configured: listed, not probed.
    assert_eq!(row("anthropic")["configured"], false);
    assert!(row("anthropic").get("check").is_none());

    let table = cascade(
        &["providers", "--check"],
        &env(&openai_up(1, 0).await, &groq_401(1, 0).await),
    )
    .await;
    assert_eq!(table.code, Some(0), "stderr: {}", table.stderr);
    for expected in [
        "CHECK",
        "❌ auth (HTTP 401): Invalid API Key",
        "❌ network",
        "❌ not_running",
        "✅",
    ] {
        assert!(
            table.stdout.contains(expected),
            "{expected}: {}",
            table.stdout
        );
    }
}

#[tokio::test]
async fn providers_check_exits_1_when_nothing_is_reachable() {
    let groq = groq_401(1, 0).await;
    let mut env = fast();
    env.extend(locals_down());
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    let run = cascade(&["providers", "--check", "--json"], &env).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    // Without --check, listing always succeeds.
    let listing = cascade(&["providers", "--json"], &env).await;
    assert_eq!(listing.code, Some(0));
}
