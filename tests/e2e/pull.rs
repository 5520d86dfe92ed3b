//! `cascade pull`: real pull progress from a local mock Ollama.

use crate::harness::{cascade, serve};

fn env(base: String) -> Vec<(String, String)> {
    vec![("OLLAMA_BASE_URL".to_owned(), base)]
}

#[tokio::test]
async fn pull_json_lines_report_progress_then_success() {
    let ollama = serve("ollama", "pull.stream", "/api/pull", 1).await;
    let run = cascade(&["pull", "--json", "gemma2:27b"], &env(ollama.uri())).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let (summary, progress) = lines.split_last().expect("lines");
    assert_eq!(
        summary,
        &serde_json::json!({"success": true, "model": "gemma2:27b"})
    );
    assert!(progress.iter().all(|p| p["type"] == "progress"));
    assert_eq!(
        progress.last().map(|p| p["status"].clone()),
        Some("success".into())
    );
    let sized: Vec<_> = progress.iter().filter(|p| p["total"].is_u64()).collect();
    assert!(!sized.is_empty(), "byte counts are reported");
    assert!(
        sized
            .iter()
            .all(|p| p["completed"].as_u64() <= p["total"].as_u64())
    );
    let requests = ollama.received_requests().await.expect("recording");
    let body: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("body");
    assert_eq!(body["model"], "gemma2:27b");
}

#[tokio::test]
async fn a_failed_pull_exits_1_with_the_manual_command() {
    let ollama = serve("ollama", "pull.error", "/api/pull", 1).await;
    let run = cascade(&["pull", "no-such-model"], &env(ollama.uri())).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("ollama pull no-such-model"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn pull_without_a_server_says_not_running() {
    let port = llm_test_support::refused_port();
    let run = cascade(
        &["pull", "--json"],
        &env(format!("http://127.0.0.1:{port}")),
    )
    .await;
    assert_eq!(run.code, Some(1));
    let json: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("json");
    assert_eq!(json["success"], false);
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.contains("nothing listens")),
        "{json}"
    );
}
