//! `cascade ask --json`: success after fallback, exhaustion, configuration errors.

use llm_test_support::Fixture;
use serde_json::json;
use wiremock::MockServer;

use crate::harness::{cascade, cascade_with_stdin, fast, fixture_content, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

fn attempts(json: &serde_json::Value) -> Vec<serde_json::Value> {
    json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| json!({"provider": a["provider"], "attempt": a["attempt"], "outcome": a["outcome"], "status": a["status"]}))
        .collect()
}

#[tokio::test]
async fn server_errors_are_retried_then_the_next_provider_answers() {
    let groq = serve("groq", "error.500.server", GROQ_ROUTE, 2).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("groq,openai"));

    let run = cascade(&["ask", "--json", "Invent a holiday"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["success"], true);
    assert_eq!(json["provider"], "openai");
    assert_eq!(json["model"], "gpt-4.1-nano-2025-04-14");
    assert_eq!(json["content"], fixture_content("openai", "chat.success"));
    assert_eq!(json["finish_reason"], "stop");
    assert!(
        json["usage"]["input_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    assert_eq!(
        attempts(&json),
        vec![
            json!({"provider": "groq", "attempt": 1, "outcome": "server_error", "status": 500}),
            json!({"provider": "groq", "attempt": 2, "outcome": "server_error", "status": 500}),
            json!({"provider": "openai", "attempt": 1, "outcome": "ok", "status": null}),
        ]
    );
    let first = &json["attempts"][0];
    assert!(first["elapsed_ms"].is_u64() && first.get("retry_after_ms").is_some());
}

#[tokio::test]
async fn a_long_rate_limit_hint_moves_on_at_once_and_is_reported() {
    let openai = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 1).await;
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));

    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["success"], false);
    assert_eq!(json["error"], "auth");
    assert_eq!(
        attempts(&json),
        vec![
            json!({"provider": "openai", "attempt": 1, "outcome": "rate_limit", "status": 429}),
            json!({"provider": "groq", "attempt": 1, "outcome": "auth", "status": 401}),
        ]
    );
    // "Please try again in 26.604s" in OpenAI's message becomes the wait hint.
    assert_eq!(json["attempts"][0]["retry_after_ms"], 26604);
    let details = json["details"].as_array().expect("details");
    assert_eq!(details.len(), 2);
    let hint = json["hint"].as_str().expect("hint");
    assert!(
        hint.contains("Rate limited") && hint.contains("Authentication failed"),
        "{hint}"
    );
    assert!(hint.contains("openai asked to wait 27 s"), "{hint}");
}

#[tokio::test]
async fn quota_exhausted_is_not_retried() {
    let openai = serve("openai", "error.429.insufficient_quota", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1));
    let json = run.json();
    assert_eq!(json["error"], "rate_limit");
    assert_eq!(
        attempts(&json),
        vec![json!({
            "provider": "openai", "attempt": 1, "outcome": "quota_exhausted", "status": 429
        })]
    );
}

#[tokio::test]
async fn a_local_server_that_is_not_running_is_skipped() {
    let port = llm_test_support::refused_port();
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.push((
        "LM_STUDIO_BASE_URL".to_owned(),
        format!("http://127.0.0.1:{port}/v1"),
    ));
    env.push(("LM_STUDIO_MODEL".to_owned(), "local-model".to_owned()));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("lmstudio,openai"));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(
        attempts(&json)[0],
        json!({"provider": "lmstudio", "attempt": 1, "outcome": "not_running", "status": null})
    );
    assert_eq!(json["provider"], "openai");
}

#[tokio::test]
async fn readable_failure_report_on_stderr() {
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("groq"));
    let run = cascade(&["-v", "ask", "hi"], &env).await;
    assert_eq!(run.code, Some(1));
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("error (auth): all 1 provider failed (groq); last error: auth"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("groq attempt 1: auth (HTTP 401"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("hint: Authentication failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("trying groq"),
        "-v tells the story: {}",
        run.stderr
    );
    run.assert_no_key();
}

#[tokio::test]
async fn no_configured_provider_names_the_variables_to_set() {
    let run = cascade(&["ask", "--json", "hi"], &[order("groq,openai")]).await;
    assert_eq!(run.code, Some(1));
    let json = run.json();
    assert_eq!(json["error"], "config");
    assert_eq!(json["attempts"], json!([]));
    let hint = json["hint"].as_str().expect("hint");
    assert!(
        hint.contains("GROQ_API_KEY") && hint.contains("OPENAI_API_KEY"),
        "{hint}"
    );
}

#[tokio::test]
async fn provider_flag_pins_one_provider() {
    let groq = MockServer::start().await;
    Fixture::load("groq", "chat.success")
        .mount(&groq, "POST", GROQ_ROUTE, 1)
        .await;
    let openai = MockServer::start().await; // configured but never called
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai,groq"));
    let run = cascade(&["ask", "--json", "--provider", "groq", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.json()["provider"], "groq");
    assert!(
        openai
            .received_requests()
            .await
            .expect("recording")
            .is_empty()
    );

    let run = cascade(&["ask", "--json", "--provider", "mistral", "hi"], &env).await;
    assert_eq!(run.code, Some(2));
    assert!(
        run.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("MISTRAL_API_KEY"))
    );
}

#[tokio::test]
async fn prompt_from_stdin_and_flags_reach_the_provider() {
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let run = cascade_with_stdin(
        &[
            "ask",
            "--json",
            "--system",
            "Be brief.",
            "--max-tokens",
            "7",
            "--temperature",
            "0.5",
            "-",
        ],
        &env,
        Some("question from stdin"),
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let requests = openai.received_requests().await.expect("recording");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("json body");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "question from stdin"}
        ])
    );
    assert_eq!(body["max_tokens"], 7);
    assert_eq!(body["temperature"], 0.5);
}

/// Writes the schema of the recorded Groq structured-output exchange to a file, as a user would.
fn city_schema_file() -> tempfile::NamedTempFile {
    let fixture = Fixture::load("groq", "chat.json_schema");
    let body = fixture.request.body.expect("request body");
    let schema = &body["response_format"]["json_schema"]["schema"];
    let file = tempfile::Builder::new()
        .suffix(".json")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), schema.to_string()).expect("write schema");
    file
}

#[tokio::test]
async fn schema_prints_the_validated_json() {
    let groq = serve("groq", "chat.json_schema", GROQ_ROUTE, 1).await;
    let schema = city_schema_file();
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("groq"));

    let path = schema.path().to_str().expect("utf-8 path");
    let run = cascade(&["ask", "--schema", path, "Largest city in Mexico?"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let value: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(value, json!({"city": "Mexico City", "country": "Mexico"}));
}

#[tokio::test]
async fn schema_fails_with_the_validation_details_when_no_provider_answers_json() {
    // The recorded answer is prose: not JSON, twice (the retry), and no other provider.
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let schema = city_schema_file();
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));

    let path = schema.path().to_str().expect("utf-8 path");
    let run = cascade(&["ask", "--json", "--schema", path, "Largest city?"], &env).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["success"], false);
    assert_eq!(json["error"], "validation");
    let message = json["attempts"][1]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("the answer is not JSON"), "{json}");
}
