//! What reaches a terminal: answers cut by the token limit are flagged, escape sequences in
//! provider text are neutralised on a terminal (raw when piped), logs have no colour codes off a
//! terminal.

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use llm_test_support::Fixture;

use crate::harness::{binary, cascade, command, fast, fixture_content, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const CUT_NOTE: &str = "note: cut at the token limit: raise --max-tokens";

/// DeepSeek answering with its real answer cut by the token limit (finish reason `length`).
async fn deepseek_cut() -> (MockServer, Vec<(String, String)>) {
    let server = serve("deepseek", "chat.success", "/chat/completions", 1).await;
    let mut env = fast();
    env.extend(provider("DEEPSEEK", server.uri()));
    env.push(order("deepseek"));
    (server, env)
}

/// DeepSeek streaming its real answer cut at 400 tokens.
async fn deepseek_cut_stream() -> (MockServer, Vec<(String, String)>) {
    let server = serve("deepseek", "chat.stream.length", "/chat/completions", 1).await;
    let mut env = fast();
    env.extend(provider("DEEPSEEK", server.uri()));
    env.push(order("deepseek"));
    (server, env)
}

#[tokio::test]
async fn a_plain_answer_cut_by_the_token_limit_says_so_on_stderr() {
    let (_server, env) = deepseek_cut().await;
    let run = cascade(&["ask", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("{}\n", fixture_content("deepseek", "chat.success"))
    );
    assert!(run.stderr.contains(CUT_NOTE), "stderr: {}", run.stderr);
}

#[tokio::test]
async fn json_flags_a_cut_answer_as_truncated_and_a_whole_one_as_not() {
    let (_server, env) = deepseek_cut().await;
    let cut = cascade(&["ask", "--json", "hi"], &env).await.json();
    assert_eq!(
        (&cut["finish_reason"], &cut["truncated"]),
        (&Value::from("length"), &Value::from(true))
    );
    let whole = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", whole.uri())));
    env.push(order("openai"));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    let whole = run.json();
    assert_eq!(
        (&whole["finish_reason"], &whole["truncated"]),
        (&Value::from("stop"), &Value::from(false))
    );
    assert!(!run.stderr.contains(CUT_NOTE));
}

#[tokio::test]
async fn a_streamed_cut_is_flagged_in_the_final_object_and_noted_in_plain_mode() {
    let (_server, env) = deepseek_cut_stream().await;
    let run = cascade(&["ask", "--stream", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let last: Value =
        serde_json::from_str(run.stdout.lines().last().expect("lines")).expect("JSON");
    assert_eq!(last["success"], true);
    assert_eq!(last["finish_reason"], "length");
    assert_eq!(last["truncated"], true);

    let (_server, env) = deepseek_cut_stream().await;
    let run = cascade(&["ask", "--stream", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert!(
        run.stdout.ends_with("silent looking at\n"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains(CUT_NOTE), "stderr: {}", run.stderr);
}

#[tokio::test]
async fn chat_summary_line_says_the_answer_was_cut() {
    let (_server, env) = deepseek_cut_stream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(&["chat"], &env, dir.path()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n").await.expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("— deepseek · "))
        .unwrap_or_else(|| panic!("no summary line: {stderr}"));
    assert!(summary.ends_with(" · cut at the token limit"), "{summary}");
}

/// OpenAI's real success body with a hostile answer and model name in it.
async fn hostile_openai() -> (MockServer, Vec<(String, String)>) {
    let mut body = Fixture::load("openai", "chat.success")
        .response
        .body
        .expect("a JSON body");
    body["choices"][0]["message"]["content"] = Value::from("before\x1b[2J\x1b]0;title\x07after");
    body["model"] = Value::from("gpt\x1b[31m-red");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(OPENAI_ROUTE))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", server.uri())));
    env.push(order("openai"));
    (server, env)
}

#[tokio::test]
async fn escape_sequences_are_neutralised_on_a_terminal() {
    let (_server, env) = hostile_openai().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // `script` gives the command a pseudo-terminal for stdout and stderr and copies what it shows.
    let output = tokio::process::Command::new("script")
        .args([
            "-qec",
            &format!("{} ask hi", binary().display()),
            "/dev/null",
        ])
        .env_clear()
        .env("NO_COLOR", "1")
        .env("LLM_USAGE_DB", "off")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run script");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{shown}");
    assert!(
        shown.contains(r"before\u{1b}[2J\u{1b}]0;title\u{7}after"),
        "{shown:?}"
    );
    // The summary line (on the terminal's stderr) shows the model name escaped too.
    assert!(shown.contains(r"gpt\u{1b}[31m-red"), "{shown:?}");
    assert!(
        !shown.contains('\x1b') && !shown.contains('\x07'),
        "{shown:?}"
    );
}

#[tokio::test]
async fn escape_sequences_pass_raw_to_a_pipe() {
    let (_server, env) = hostile_openai().await;
    let run = cascade(&["ask", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "before\x1b[2J\x1b]0;title\x07after\n");
}

#[tokio::test]
async fn verbose_logs_have_no_colour_codes_off_a_terminal() {
    let (_server, env) = hostile_openai().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let output = command(&["-v", "ask", "hi"], &env, dir.path())
        .env_remove("NO_COLOR")
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("openai"), "no log lines: {stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr:?}");
}
