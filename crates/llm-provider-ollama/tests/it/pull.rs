//! Pulling a model: progress from real and documented streams, failures with advice.

use std::sync::Mutex;

use llm_core::{ErrorKind, Progress, Provider};
use llm_test_support::{Fixture, ScriptedServer, Step};
use serde_json::json;
use wiremock::MockServer;

use crate::support::{bodies_at, mount, provider, summary};

/// Collects progress events.
#[derive(Default)]
struct Seen(Mutex<Vec<Progress>>);

impl Seen {
    fn sink(&self) -> impl Fn(Progress) + Send + Sync + '_ {
        |progress| self.0.lock().expect("lock").push(progress)
    }
    fn take(&self) -> Vec<Progress> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }
}

#[tokio::test]
async fn prepare_reports_the_real_pull_progress() {
    let server = MockServer::start().await;
    mount(&server, "pull.stream", 1).await;
    let ollama = provider(&server.uri(), &[]);
    let seen = Seen::default();

    ollama.prepare(&seen.sink()).await.expect("pull succeeds");

    let events = seen.take();
    let last = events.last().expect("progress was reported");
    // 815310432 + 358 + 8432 + 77 + 492 bytes over the five layers.
    assert_eq!(
        (last.status.as_str(), last.completed, last.total),
        ("success", Some(815_319_791), Some(815_319_791))
    );
    insta::assert_json_snapshot!(events);
    assert_eq!(
        bodies_at(&server, "/api/pull").await,
        vec![json!({"model": "llama3.2", "stream": true})]
    );
}

#[tokio::test]
async fn documented_progress_with_a_partial_layer() {
    let server = MockServer::start().await;
    mount(&server, "pull.stream.doc", 1).await;
    let ollama = provider(&server.uri(), &[]);
    let seen = Seen::default();

    ollama
        .pull(Some("gemma3:1b"), &seen.sink())
        .await
        .expect("pull succeeds");

    let summary: Vec<(String, Option<u64>, Option<u64>)> = seen
        .take()
        .into_iter()
        .map(|p| (p.status, p.completed, p.total))
        .collect();
    let partial = (Some(241_970), Some(2_142_590_208));
    assert_eq!(
        summary,
        vec![
            ("pulling manifest".to_owned(), None, None),
            ("pulling digestname".to_owned(), partial.0, partial.1),
            ("verifying sha256 digest".to_owned(), partial.0, partial.1),
            ("writing manifest".to_owned(), partial.0, partial.1),
            (
                "removing any unused layers".to_owned(),
                partial.0,
                partial.1
            ),
            ("success".to_owned(), partial.0, partial.1),
        ]
    );
    assert_eq!(
        bodies_at(&server, "/api/pull").await,
        vec![json!({"model": "gemma3:1b", "stream": true})]
    );
}

#[tokio::test]
async fn a_successful_pull_drops_the_cached_model_list() {
    let server = MockServer::start().await;
    mount(&server, "tags.success.doc", 2).await;
    mount(&server, "pull.stream", 1).await;
    let ollama = provider(&server.uri(), &[]);

    ollama.check_available().await.expect("installed");
    ollama.prepare(&|_| {}).await.expect("pull succeeds");
    ollama.check_available().await.expect("asked again");
}

#[tokio::test]
async fn error_line_fails_the_pull_with_advice() {
    let server = MockServer::start().await;
    mount(&server, "pull.error", 1).await;
    let ollama = provider(&server.uri(), &[]);
    let seen = Seen::default();

    let error = ollama.prepare(&seen.sink()).await.expect_err("pull fails");

    insta::assert_json_snapshot!(summary(&error));
    let message = error.message();
    assert!(
        message.contains("pull model manifest: file does not exist"),
        "{message}"
    );
    assert!(
        message.contains("pull it by hand: `ollama pull llama3.2`"),
        "{message}"
    );
    assert!(
        !ollama.can_prepare(&error),
        "a failed pull is not retried by preparing"
    );
    let statuses: Vec<String> = seen.take().into_iter().map(|p| p.status).collect();
    assert_eq!(statuses, vec!["pulling manifest"]);
}

#[tokio::test]
async fn http_error_fails_the_pull_with_advice() {
    let server = MockServer::start().await;
    let fixture = Fixture::load("ollama", "error.500.server");
    fixture.mount(&server, "POST", "/api/pull", 1).await;
    let ollama = provider(&server.uri(), &[]);

    let error = ollama.prepare(&|_| {}).await.expect_err("500");

    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::ServerError, Some(500))
    );
    assert!(
        error.message().contains("pull it by hand"),
        "{}",
        error.message()
    );
}

/// The first `lines` lines of the real pull stream.
fn real_pull_lines(lines: usize) -> String {
    let body = Fixture::load("ollama", "pull.stream").body_bytes();
    String::from_utf8(body)
        .expect("UTF-8")
        .lines()
        .take(lines)
        .map(|line| format!("{line}\n"))
        .collect()
}

#[tokio::test]
async fn dropped_connection_interrupts_the_pull() {
    // A chunked body whose connection closes before the last chunk: a transport error mid-body.
    let part = real_pull_lines(2);
    let server = ScriptedServer::start(vec![
        Step::text(
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n",
        ),
        Step::text(&format!("{:x}\r\n{part}\r\n", part.len())),
    ])
    .await;
    let ollama = provider(&server.uri(), &[]);
    let seen = Seen::default();

    let error = ollama.prepare(&seen.sink()).await.expect_err("interrupted");

    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(
        error.message().contains("interrupted"),
        "{}",
        error.message()
    );
    assert!(
        error
            .message()
            .contains("pull it by hand: `ollama pull llama3.2`")
    );
    assert_eq!(
        seen.take().len(),
        2,
        "the lines before the drop were reported"
    );
}

#[tokio::test]
async fn stream_ending_without_success_fails_the_pull() {
    let server = ScriptedServer::start(vec![
        Step::head(200, "application/x-ndjson"),
        Step::text(&real_pull_lines(3)),
    ])
    .await;
    let ollama = provider(&server.uri(), &[]);

    let error = ollama.prepare(&|_| {}).await.expect_err("no success line");

    assert_eq!(error.kind(), ErrorKind::Network, "{error}");
    assert!(
        error
            .message()
            .contains("ended before Ollama reported success")
    );
    assert!(error.message().contains("pull it by hand"));
}

#[tokio::test]
async fn pull_is_bounded_by_its_own_timeout() {
    let server = ScriptedServer::start(vec![
        Step::head(200, "application/x-ndjson"),
        Step::text(&real_pull_lines(1)),
        Step::Hang,
    ])
    .await;
    let ollama = provider(&server.uri(), &[("OLLAMA_PULL_TIMEOUT", "300ms")]);

    let error = ollama.prepare(&|_| {}).await.expect_err("times out");

    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.message().contains("OLLAMA_PULL_TIMEOUT"));
    assert!(error.message().contains("pull it by hand"));
}
