//! The usage log end to end: `ask` runs (also two at once) land in it, `cascade stats` counts them.

use serde_json::json;

use crate::harness::{cascade, fast, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

#[tokio::test]
async fn stats_count_successes_and_failures_from_several_processes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = (
        "LLM_USAGE_DB".to_owned(),
        dir.path().join("usage.db").display().to_string(),
    );
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 4).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(db.clone());

    // groq refuses the key, openai answers.
    let mut fallback = env.clone();
    fallback.push(order("groq,openai"));
    let run = cascade(&["ask", "--json", "first"], &fallback).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);

    // Then openai alone, once, and twice at the same time from two processes.
    let mut direct = env.clone();
    direct.push(order("openai"));
    let run = cascade(&["ask", "second"], &direct).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let (a, b) = tokio::join!(
        cascade(&["ask", "--json", "concurrent a"], &direct),
        cascade(&["ask", "--json", "concurrent b"], &direct)
    );
    assert_eq!(
        (a.code, b.code),
        (Some(0), Some(0)),
        "{}\n{}",
        a.stderr,
        b.stderr
    );
    assert!(
        a.stderr.is_empty() && b.stderr.is_empty(),
        "{}\n{}",
        a.stderr,
        b.stderr
    );

    let stats = cascade(&["stats", "--json"], std::slice::from_ref(&db)).await;
    assert_eq!(stats.code, Some(0), "stderr: {}", stats.stderr);
    let json = stats.json();
    assert_eq!(json["calls"], 4);
    let groq_stats = &json["providers"]["groq"];
    assert_eq!(groq_stats["requests"], 1);
    assert_eq!(groq_stats["successes"], 0);
    assert_eq!(groq_stats["failures"], json!({"auth": 1}));
    assert_eq!(groq_stats["fallbacks"], 1);
    assert_eq!(groq_stats["success_rate"], 0.0);
    assert_eq!(groq_stats["mean_latency_ms"], serde_json::Value::Null);
    let openai_stats = &json["providers"]["openai"];
    assert_eq!(openai_stats["requests"], 4);
    assert_eq!(openai_stats["successes"], 4);
    assert_eq!(openai_stats["failures"], json!({}));
    assert_eq!(openai_stats["success_rate"], 1.0);
    assert!(openai_stats["mean_latency_ms"].is_u64());
    assert!(openai_stats["p95_latency_ms"].is_u64());
    let input = openai_stats["input_tokens"].as_u64().expect("tokens");
    assert!(input > 0 && input % 4 == 0, "{input}");
    assert_eq!(json["total"]["requests"], 5);
    assert_eq!(json["total"]["success_rate"], 0.8);

    let recent = cascade(
        &["stats", "--since", "1h", "--json"],
        std::slice::from_ref(&db),
    )
    .await;
    assert_eq!(recent.json()["total"]["requests"], 5);

    let table = cascade(&["stats"], &[db]).await;
    assert_eq!(table.code, Some(0));
    let groq_line = table
        .stdout
        .lines()
        .find(|l| l.contains("groq"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        groq_line.contains("1 (auth 1)") && groq_line.contains("0.0%"),
        "{groq_line}"
    );
    assert!(table.stdout.contains("80.0%"), "{}", table.stdout);
    assert!(
        table.stdout.contains("4 requests, 5 attempts"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn stats_without_a_log_and_with_the_log_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("never-written.db").display().to_string();
    let empty = cascade(&["stats"], &[("LLM_USAGE_DB".to_owned(), db)]).await;
    assert_eq!(empty.code, Some(0), "stderr: {}", empty.stderr);
    assert!(
        empty.stdout.starts_with("No attempts recorded"),
        "{}",
        empty.stdout
    );

    let off = cascade(
        &["stats", "--json"],
        &[("LLM_USAGE_DB".to_owned(), "off".to_owned())],
    )
    .await;
    assert_eq!(off.code, Some(2));
    assert_eq!(off.json()["error"], "config");

    let bad = cascade(&["stats", "--since", "soon"], &[]).await;
    assert_eq!(bad.code, Some(2));
}

#[tokio::test]
async fn the_log_off_records_nothing_and_answers_all_the_same() {
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    env.push(("LLM_USAGE_DB".to_owned(), "off".to_owned()));
    let run = cascade(&["ask", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
}

#[tokio::test]
async fn an_unwritable_log_never_fails_the_answer() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory where the database file should be.
    let taken = dir.path().join("taken");
    std::fs::create_dir(&taken).expect("dir");
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    env.push(("LLM_USAGE_DB".to_owned(), taken.display().to_string()));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.json()["success"], true);
    assert_eq!(
        run.stderr.matches("note: not recording usage").count(),
        1,
        "{}",
        run.stderr
    );
}
