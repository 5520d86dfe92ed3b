//! The embedded model (`local`) end to end: answering with no key and no server, as the last resort
//! after failing cloud providers, in privacy mode, and `cascade pull local`.

use std::path::PathBuf;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{cascade, fast, locals_down, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

/// The real SmolLM2-135M-Instruct GGUF (`LLM_TEST_GGUF`, set by `.ci/run`); see
/// [`llm_test_support::required_in_ci`].
fn model_file() -> Option<PathBuf> {
    llm_test_support::required_in_ci("LLM_TEST_GGUF", "the SmolLM2-135M GGUF").map(PathBuf::from)
}

fn var(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_owned(), value.into())
}

/// A fresh machine: no key, no Ollama, no LM Studio, the model file in place.
fn fresh(model: &std::path::Path) -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(locals_down());
    env.push(var("LOCAL_MODEL_PATH", model.display().to_string()));
    env
}

const QUESTION: [&str; 6] = ["ask", "--json", "--temperature", "0", "--max-tokens", "48"];

fn ask(question: &str) -> Vec<&str> {
    let mut args = QUESTION.to_vec();
    args.push(question);
    args
}

#[tokio::test]
async fn with_nothing_configured_the_embedded_model_answers() {
    let Some(model) = model_file() else { return };
    let run = cascade(&ask("What is the capital of France?"), &fresh(&model)).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["success"], true);
    assert_eq!(json["provider"], "local");
    let content = json["content"].as_str().expect("content");
    assert!(content.contains("Paris"), "{content}");
    let outcomes: Vec<_> = json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| json!([a["provider"], a["outcome"]]))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            json!(["ollama", "not_running"]),
            json!(["lmstudio", "not_running"]),
            json!(["local", "ok"]),
        ]
    );
}

#[tokio::test]
async fn failing_cloud_providers_fall_through_to_the_embedded_model() {
    let Some(model) = model_file() else { return };
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "error.500.server", OPENAI_ROUTE, 2).await;
    let mut env = fresh(&model);
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    let run = cascade(&ask("What is the capital of France?"), &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["provider"], "local");
    assert!(
        !json["content"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .is_empty()
    );
    let failed: Vec<_> = json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["provider"] == "groq" || a["provider"] == "openai")
        .map(|a| json!([a["provider"], a["outcome"]]))
        .collect();
    assert_eq!(
        failed,
        vec![
            json!(["groq", "auth"]),
            json!(["openai", "server_error"]),
            json!(["openai", "server_error"]),
        ]
    );
}

/// Cloud mocks that must never be called, with keys set for both.
async fn cloud_that_must_not_be_called() -> (MockServer, MockServer, Vec<(String, String)>) {
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 0).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 0).await;
    let mut env = provider("GROQ", format!("{}/openai/v1", groq.uri()));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(var("LLM_PRIVATE", "true"));
    (groq, openai, env)
}

#[tokio::test]
async fn privacy_mode_answers_locally_and_never_calls_the_cloud() {
    let Some(model) = model_file() else { return };
    let (groq, openai, cloud) = cloud_that_must_not_be_called().await;
    let mut env = fresh(&model);
    env.extend(cloud);
    let run = cascade(&ask("What is the capital of France?"), &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.json()["provider"], "local");
    groq.verify().await;
    openai.verify().await;
}

#[tokio::test]
async fn privacy_mode_fails_rather_than_call_the_cloud_and_says_why() {
    let (groq, openai, cloud) = cloud_that_must_not_be_called().await;
    let mut env = fast();
    env.extend(locals_down());
    env.extend(cloud);
    env.push(var("LOCAL_MODEL_PATH", "/nonexistent/model.gguf"));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1), "stdout: {}", run.stdout);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["success"], false);
    let message = json["message"].as_str().expect("message");
    assert!(message.contains("privacy mode is on"), "{message}");
    let tried: Vec<_> = json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["provider"].clone())
        .collect();
    assert_eq!(
        tried,
        vec![json!("ollama"), json!("lmstudio"), json!("local")]
    );

    let pinned = cascade(&["ask", "--json", "--provider", "groq", "hi"], &env).await;
    assert_eq!(pinned.code, Some(2), "stdout: {}", pinned.stdout);
    assert!(pinned.stdout.contains("privacy mode"), "{}", pinned.stdout);
    groq.verify().await;
    openai.verify().await;
}

#[tokio::test]
async fn providers_says_privacy_mode_is_on_and_shows_the_model_file() {
    let Some(model) = model_file() else { return };
    let (_groq, _openai, cloud) = cloud_that_must_not_be_called().await;
    let mut env = fresh(&model);
    env.extend(cloud);
    let run = cascade(&["providers"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(
        run.stdout
            .starts_with("privacy mode is on (LLM_PRIVATE=true)"),
        "{}",
        run.stdout
    );
    let run = cascade(&["providers", "--json"], &env).await;
    let rows = run.json();
    let row = |id: &str| {
        rows.as_array()
            .expect("rows")
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .expect(id)
    };
    assert_eq!(row("groq")["excluded"], "privacy mode (LLM_PRIVATE=true)");
    assert_eq!(row("groq")["position"], serde_json::Value::Null);
    let local = row("local");
    assert_eq!(local["position"], 3);
    assert_eq!(local["model_file"]["present"], true);
    let size = std::fs::metadata(&model).expect("model").len();
    assert_eq!(local["model_file"]["size"], size);
}

#[tokio::test]
async fn pull_local_downloads_the_file_with_json_progress() {
    let Some(model) = model_file() else { return };
    let bytes = std::fs::read(&model).expect("model");
    let server = model_server(bytes.clone(), 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = vec![
        var("LOCAL_MODEL", "org/repo/model.gguf"),
        var("LOCAL_MODEL_URL", format!("{}/m/model.gguf", server.uri())),
        var("LOCAL_MODEL_DIR", dir.path().display().to_string()),
    ];
    let run = cascade(&["pull", "local", "--json"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let (summary, progress) = lines.split_last().expect("lines");
    assert_eq!(summary["success"], true);
    assert_eq!(summary["model"], "org/repo/model.gguf");
    assert!(progress.iter().all(|p| p["type"] == "progress"));
    let last = progress.last().expect("progress");
    assert_eq!(last["status"], "success");
    assert_eq!(last["completed"], bytes.len());
    assert_eq!(last["total"], bytes.len());
    let pulled = std::fs::read(dir.path().join("model.gguf")).expect("pulled");
    assert!(pulled == bytes, "the pulled file is the served one");
}

/// Serves `bytes` as the model file at `/m/model.gguf`, expecting `times` downloads.
async fn model_server(bytes: Vec<u8>, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/m/model.gguf"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes))
        .expect(times)
        .mount(&server)
        .await;
    server
}

/// A fresh machine whose model file is served by `server` into `dir` (no key, no local server).
fn first_use(server: &MockServer, dir: &std::path::Path) -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(locals_down());
    env.extend([
        var("LOCAL_MODEL", "org/repo/model.gguf"),
        var("LOCAL_MODEL_URL", format!("{}/m/model.gguf", server.uri())),
        var("LOCAL_MODEL_DIR", dir.display().to_string()),
    ]);
    env
}

#[tokio::test]
async fn a_download_during_ask_streams_json_progress_lines_before_the_answer() {
    let Some(model) = model_file() else { return };
    let size = std::fs::metadata(&model).expect("model").len();
    let server = model_server(std::fs::read(&model).expect("model"), 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let args = ["ask", "--stream", "--json", "--max-tokens", "4", "hi"];
    let run = cascade(&args, &first_use(&server, dir.path())).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    let first_delta = kinds.iter().position(|k| *k == "delta").expect("deltas");
    assert!(first_delta > 0, "{kinds:?}");
    assert!(
        kinds[..first_delta].iter().all(|k| *k == "progress"),
        "{kinds:?}"
    );
    let progress = &lines[..first_delta];
    assert!(
        progress.iter().all(|p| p["provider"] == "local"),
        "{progress:?}"
    );
    let downloading = |p: &&serde_json::Value| p["status"] == "downloading model.gguf";
    let last = progress
        .iter()
        .rfind(downloading)
        .expect("download progress");
    assert_eq!(
        (&last["completed"], &last["total"]),
        (&json!(size), &json!(size))
    );
    let summary = lines.last().expect("lines");
    assert_eq!(
        (&summary["success"], &summary["provider"]),
        (&json!(true), &json!("local"))
    );
}

#[tokio::test]
async fn a_download_during_ask_shows_the_pull_bar_on_a_terminal_and_nothing_on_a_pipe() {
    let Some(model) = model_file() else { return };
    let bytes = std::fs::read(&model).expect("model");
    let server = model_server(bytes.clone(), 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let env = first_use(&server, dir.path());
    // `script` gives the command a pseudo-terminal for stdout and stderr and copies what it shows.
    let work = tempfile::tempdir().expect("dir");
    let output = tokio::process::Command::new("script")
        .args([
            "-qec",
            &format!(
                "{} ask --max-tokens 4 hi",
                crate::harness::binary().display()
            ),
            "/dev/null",
        ])
        .env_clear()
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env("LLM_USAGE_DB", "off")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(work.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run script");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    // The bar of `cascade pull`: the status (20 columns), bytes done of the total, the rate, the ETA.
    assert!(
        shown.contains("downloading model.gg [") && shown.contains("/93.81 MiB"),
        "{shown:?}"
    );
    assert!(shown.contains(" eta "), "{shown:?}");
    assert!(shown.contains("iB/s"), "{shown:?}");

    let server = model_server(bytes, 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let run = cascade(
        &["ask", "--max-tokens", "4", "hi"],
        &first_use(&server, dir.path()),
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(!run.stderr.contains("downloading"), "{}", run.stderr);
    assert!(!run.stderr.contains(" eta "), "{}", run.stderr);
}

#[tokio::test]
async fn a_fresh_machine_downloads_the_model_as_a_last_resort_then_answers() {
    let Some(model) = model_file() else { return };
    let server = model_server(std::fs::read(&model).expect("model"), 1).await;
    let dir = tempfile::tempdir().expect("dir");
    let mut env = fast();
    env.extend(locals_down());
    env.extend([
        var("LOCAL_MODEL", "org/repo/model.gguf"),
        var("LOCAL_MODEL_URL", format!("{}/m/model.gguf", server.uri())),
        var("LOCAL_MODEL_DIR", dir.path().display().to_string()),
    ]);
    let run = cascade(&ask("What is the capital of France?"), &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["provider"], "local");
    let local: Vec<_> = json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["provider"] == "local")
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(local, vec![json!("model_not_found"), json!("ok")]);
    assert!(dir.path().join("model.gguf").is_file());

    // With LLM_LOCAL_PULL=never nothing is downloaded.
    let empty = tempfile::tempdir().expect("dir");
    let never = model_server(Vec::new(), 0).await;
    let mut env = fast();
    env.extend(locals_down());
    env.extend([
        var("LOCAL_MODEL", "org/repo/model.gguf"),
        var("LOCAL_MODEL_URL", format!("{}/m/model.gguf", never.uri())),
        var("LOCAL_MODEL_DIR", empty.path().display().to_string()),
        var("LLM_LOCAL_PULL", "never"),
    ]);
    let run = cascade(&ask("hi"), &env).await;
    assert_eq!(run.code, Some(1), "stdout: {}", run.stdout);
    assert!(run.stdout.contains("cascade pull local"), "{}", run.stdout);
    never.verify().await;
}
