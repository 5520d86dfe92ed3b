//! Commands cut short: a closed stdout (141, quiet) and SIGINT/SIGTERM (130/143, marked), each
//! cancelling the upstream request, against a loopback server that streams a real DeepSeek answer
//! slowly.

use std::path::Path;
use std::time::Duration;

use llm_test_support::{ConnectionEvent, Fixture, ScriptedServer, Step};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};

use crate::harness::{command, fast, order, provider, send_signal};

/// The real DeepSeek stream (402 events), one event every 10 ms: long enough that no test that cuts
/// it could see it end.
fn slow_stream() -> Vec<Step> {
    let body = Fixture::load("deepseek", "chat.stream.length").body_bytes();
    let text = String::from_utf8(body).expect("UTF-8 SSE");
    let mut steps = vec![Step::head(200, "text/event-stream; charset=utf-8")];
    for event in text.split_inclusive("\n\n") {
        steps.push(Step::text(event));
        steps.push(Step::Wait(Duration::from_millis(10)));
    }
    steps
}

/// The number of `Send` steps in a script.
fn sends(script: &[Step]) -> usize {
    script.iter().filter(|s| matches!(s, Step::Send(_))).count()
}

/// A server that takes the request and never answers.
async fn silent_server() -> ScriptedServer {
    ScriptedServer::start(vec![Step::Hang]).await
}

fn env_for(server: &ScriptedServer) -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(provider("DEEPSEEK", server.uri()));
    env.push(order("deepseek"));
    env
}

/// Reads stdout until at least `n` bytes came.
async fn read_at_least(stdout: &mut ChildStdout, n: usize) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0_u8; 256];
    while seen.len() < n {
        let read = stdout.read(&mut buf).await.expect("read stdout");
        assert!(read > 0, "stdout ended after {seen:?}");
        seen.extend_from_slice(&buf[..read]);
    }
    seen
}

/// Asserts the server got the request, then saw the client close before the whole script was sent.
async fn assert_cut_early(server: &ScriptedServer, total: usize) {
    assert_eq!(server.next_event().await, ConnectionEvent::Requested);
    match server.next_event().await {
        ConnectionEvent::ClosedByClient { sent } => {
            assert!(sent < total, "closed only after {sent} of {total} sends");
        }
        other => panic!("the connection was not cut: {other:?}"),
    }
}

struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn finish(child: Child) -> Ended {
    let output = child.wait_with_output().await.expect("wait for cascade");
    Ended {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn assert_quiet(ended: &Ended) {
    assert_eq!(ended.code, Some(141), "stderr: {}", ended.stderr);
    assert!(ended.stderr.is_empty(), "not quiet: {}", ended.stderr);
}

#[tokio::test]
async fn a_closed_stdout_ends_a_stream_with_141_and_closes_the_connection() {
    for args in [
        &["ask", "--stream", "hi"][..],
        &["ask", "--stream", "--json", "hi"],
    ] {
        let script = slow_stream();
        let total = sends(&script);
        let server = ScriptedServer::start(script).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = command(args, &env_for(&server), dir.path())
            .spawn()
            .expect("spawn");
        // `| head -c 10`: take ten bytes, then go away.
        let mut stdout = child.stdout.take().expect("stdout");
        read_at_least(&mut stdout, 10).await;
        drop(stdout);
        assert_cut_early(&server, total).await;
        assert_quiet(&finish(child).await);
    }
}

#[tokio::test]
async fn a_reader_leaving_before_the_answer_cancels_the_request_at_once() {
    let server = silent_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(&["ask", "--json", "hi"], &env_for(&server), dir.path())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    assert_eq!(server.next_event().await, ConnectionEvent::Requested);
    // Nothing was written yet: only watching stdout can notice.
    drop(stdout);
    assert_eq!(
        server.next_event().await,
        ConnectionEvent::ClosedByClient { sent: 0 }
    );
    assert_quiet(&finish(child).await);
}

/// Runs `cascade args` with a stdout whose reader is already gone.
async fn with_stdout_closed(args: &[&str], dir: &Path) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    command(args, &[], dir)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        // Not `output()`, which would pipe stdout again.
        .spawn()
        .expect("run cascade")
        .wait_with_output()
        .await
        .expect("wait for cascade")
}

#[tokio::test]
async fn listing_commands_end_quietly_with_141_on_a_closed_stdout() {
    let dir = tempfile::tempdir().expect("temp dir");
    for args in [
        &["providers"][..],
        &["providers", "--json"],
        &["stats"],
        &["stats", "--json"],
        &["completions", "bash"],
    ] {
        let output = with_stdout_closed(args, dir.path()).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(stderr.is_empty(), "{args:?} not quiet: {stderr}");
    }
}

#[tokio::test]
async fn chat_ends_with_141_when_its_reader_leaves_mid_answer() {
    let script = slow_stream();
    let total = sends(&script);
    let server = ScriptedServer::start(script).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(&["chat", "--json"], &env_for(&server), dir.path())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n").await.expect("ask");
    let mut stdout = child.stdout.take().expect("stdout");
    read_at_least(&mut stdout, 10).await;
    drop(stdout);
    assert_cut_early(&server, total).await;
    let ended = finish(child).await;
    drop(stdin);
    assert_quiet(&ended);
}

/// Reads JSON lines until one has `"type": "delta"` (the answer is streaming).
async fn until_first_delta(lines: &mut tokio::io::Lines<BufReader<ChildStdout>>) {
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        let value: Value = serde_json::from_str(&line).expect("a JSON line");
        if value["type"] == "delta" {
            return;
        }
    }
    panic!("stdout ended before the first delta");
}

#[tokio::test]
async fn sigint_mid_stream_ends_json_with_a_cancelled_object_and_logs_the_attempt() {
    let script = slow_stream();
    let total = sends(&script);
    let server = ScriptedServer::start(script).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let env = env_for(&server);
    let mut child = command(&["ask", "--stream", "--json", "hi"], &env, dir.path())
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    until_first_delta(&mut lines).await;
    send_signal(&child, "INT");
    assert_cut_early(&server, total).await;
    let mut last = None;
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        last = Some(line);
    }
    let ended = finish(child).await;
    assert_eq!(ended.code, Some(130), "stderr: {}", ended.stderr);
    let last: Value = serde_json::from_str(&last.expect("a final line")).expect("JSON");
    assert_eq!(last["success"], false);
    assert_eq!(last["error"], "cancelled");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("SIGINT")),
        "{last}"
    );
    let attempts = last["attempts"].as_array().expect("attempts");
    assert_eq!(
        attempts.last().expect("one attempt")["outcome"],
        "cancelled"
    );

    // The usage log kept the attempt, and `cascade stats` reads it back as cancelled.
    let stats = command(&["stats", "--json"], &[], dir.path())
        .output()
        .await
        .expect("stats");
    let stats: Value = serde_json::from_slice(&stats.stdout).expect("stats JSON");
    assert_eq!(
        stats["providers"]["deepseek"]["failures"]["cancelled"], 1,
        "{stats}"
    );
}

#[tokio::test]
async fn sigterm_while_waiting_for_an_answer_marks_the_cut_and_exits_143() {
    let server = silent_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let child = command(&["ask", "hi"], &env_for(&server), dir.path())
        .spawn()
        .expect("spawn");
    assert_eq!(server.next_event().await, ConnectionEvent::Requested);
    send_signal(&child, "TERM");
    assert_eq!(
        server.next_event().await,
        ConnectionEvent::ClosedByClient { sent: 0 }
    );
    let ended = finish(child).await;
    assert_eq!(ended.code, Some(143), "stderr: {}", ended.stderr);
    assert_eq!(ended.stdout, "");
    assert_eq!(ended.stderr.trim(), "[cancelled]");
}

#[tokio::test]
async fn ctrl_c_in_chat_cancels_the_answer_and_the_session_goes_on() {
    let script = slow_stream();
    let total = sends(&script);
    let server = ScriptedServer::start(script).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(&["chat", "--json"], &env_for(&server), dir.path())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n").await.expect("ask");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    until_first_delta(&mut lines).await;
    send_signal(&child, "INT");
    assert_cut_early(&server, total).await;
    let cancelled = loop {
        let line = lines.next_line().await.expect("read").expect("a line");
        let value: Value = serde_json::from_str(&line).expect("JSON");
        if value["type"] != "delta" {
            break value;
        }
    };
    assert_eq!(cancelled["type"], "cancelled");
    assert_eq!(cancelled["error"], "cancelled");
    // Still listening: a command answers, and leaving is a normal end.
    stdin.write_all(b"/help\n/exit\n").await.expect("write");
    drop(stdin);
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.expect("read") {
        rest.push(serde_json::from_str::<Value>(&line).expect("JSON")["type"].clone());
    }
    assert_eq!(rest, vec![Value::from("help")]);
    let ended = finish(child).await;
    assert_eq!(ended.code, Some(0), "stderr: {}", ended.stderr);
}

#[tokio::test]
async fn sigterm_at_the_chat_prompt_ends_the_session_with_143() {
    let server = silent_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(&["chat", "--json"], &env_for(&server), dir.path())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"/help\n").await.expect("write");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The session answered a command: it is now waiting at the prompt, stdin still open.
    let help: Value =
        serde_json::from_str(&lines.next_line().await.expect("read").expect("a line"))
            .expect("JSON");
    assert_eq!(help["type"], "help");
    send_signal(&child, "TERM");
    // Read to the end rather than close stdout: a closed stdout would end the session too (141).
    while lines.next_line().await.expect("read").is_some() {}
    let ended = finish(child).await;
    drop(stdin);
    assert_eq!(ended.code, Some(143), "stderr: {}", ended.stderr);
}
