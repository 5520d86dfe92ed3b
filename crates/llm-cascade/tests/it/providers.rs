//! The cascade over the real provider crates, against local servers replaying real captures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_cascade::{
    Cascade, CascadeEvent, ChatRequest, Decision, ErrorKind, MapEnv, MoveReason, Outcome,
};
use llm_test_support::{CANARY_KEY, Fixture};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

const ANTHROPIC_ROUTE: &str = "/v1/messages";
const GEMINI_ROUTE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

/// A cascade over `env` with short backoff; keys are the canary.
fn cascade(env: MapEnv) -> Cascade {
    let env = env.with("LLM_BACKOFF_MS", "10");
    Cascade::from_env_source(&env).expect("valid configuration")
}

fn anthropic(env: MapEnv, server: &MockServer) -> MapEnv {
    env.with("ANTHROPIC_API_KEY", CANARY_KEY)
        .with("ANTHROPIC_BASE_URL", format!("{}/v1", server.uri()))
}

fn gemini(env: MapEnv, server: &MockServer) -> MapEnv {
    env.with("GEMINI_API_KEY", CANARY_KEY)
        .with("GEMINI_BASE_URL", format!("{}/v1beta", server.uri()))
}

fn ollama(env: MapEnv, server: &MockServer, model: &str) -> MapEnv {
    env.with("OLLAMA_BASE_URL", server.uri())
        .with("OLLAMA_MODEL", model)
}

async fn serve(
    provider: &str,
    scenario: &str,
    http_method: &str,
    route: &str,
    times: u64,
) -> MockServer {
    let server = MockServer::start().await;
    Fixture::load(provider, scenario)
        .mount(&server, http_method, route, times)
        .await;
    server
}

/// Mounts a fixture that answers only the first `n` matching requests.
async fn mount_first(
    server: &MockServer,
    provider: &str,
    scenario: &str,
    http_method: &str,
    route: &str,
    n: u64,
) {
    Mock::given(method(http_method))
        .and(path(route))
        .respond_with(Fixture::load(provider, scenario).response_template())
        .up_to_n_times(n)
        .expect(n)
        .mount(server)
        .await;
}

fn outcomes(attempts: &[llm_cascade::Attempt]) -> Vec<(&str, Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect()
}

#[tokio::test]
async fn anthropic_overloaded_twice_moves_to_the_next_provider() {
    let claude = serve(
        "anthropic",
        "error.529.overloaded",
        "POST",
        ANTHROPIC_ROUTE,
        2,
    )
    .await;
    let google = serve("gemini", "chat.success", "POST", GEMINI_ROUTE, 1).await;
    let env = gemini(anthropic(MapEnv::new(), &claude), &google)
        .with("LLM_FALLBACK_ORDER", "anthropic,gemini");
    let result = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("gemini answers");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            ("anthropic", Outcome::Failed(ErrorKind::Overloaded)),
            ("anthropic", Outcome::Failed(ErrorKind::Overloaded)),
            ("gemini", Outcome::Ok),
        ]
    );
    assert_eq!(result.attempts[0].status, Some(529));
    assert_eq!(result.response.provider, "gemini");
}

#[tokio::test]
async fn anthropic_401_moves_on_after_one_attempt() {
    let claude = serve("anthropic", "error.401.auth", "POST", ANTHROPIC_ROUTE, 1).await;
    let google = serve("gemini", "chat.success", "POST", GEMINI_ROUTE, 1).await;
    let env = gemini(anthropic(MapEnv::new(), &claude), &google)
        .with("LLM_FALLBACK_ORDER", "anthropic,gemini");
    let result = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("gemini answers");
    assert_eq!(result.attempts[0].outcome, Outcome::Failed(ErrorKind::Auth));
    assert_eq!(
        result.attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::NotRetryable
        })
    );
    let debug = format!("{:?}", result.attempts);
    assert!(!debug.contains(CANARY_KEY));
}

/// Freezes tokio's clock while the cascade waits before a retry, so the wait passes at once, and lets
/// it run again when the next attempt starts: the HTTP exchanges over real sockets need a running
/// clock (a paused one would fire their timeouts early). Returns the clock time the wait took.
fn paused_during_waits() -> (Arc<dyn llm_cascade::Observer>, Arc<Mutex<Vec<Duration>>>) {
    let waited = Arc::new(Mutex::new(Vec::new()));
    let started = Mutex::new(None);
    let record = Arc::clone(&waited);
    let observer = move |event: &CascadeEvent| match event {
        CascadeEvent::Waiting { .. } => {
            tokio::time::pause();
            *started.lock().expect("lock") = Some(tokio::time::Instant::now());
        }
        CascadeEvent::AttemptStarted { .. } => {
            if let Some(since) = started.lock().expect("lock").take() {
                record.lock().expect("lock").push(since.elapsed());
                tokio::time::resume();
            }
        }
        _ => {}
    };
    (Arc::new(observer), waited)
}

#[tokio::test]
async fn gemini_retry_delay_that_fits_is_honoured() {
    // The captured RetryInfo asks for 34.4 s; allowing waits that long makes the cascade wait it out
    // (on tokio's clock, paused for the wait).
    let google = MockServer::start().await;
    mount_first(
        &google,
        "gemini",
        "error.429.retry_info",
        "POST",
        GEMINI_ROUTE,
        1,
    )
    .await;
    Fixture::load("gemini", "chat.success")
        .mount(&google, "POST", GEMINI_ROUTE, 1)
        .await;
    let env = gemini(MapEnv::new(), &google)
        .with("LLM_FALLBACK_ORDER", "gemini")
        .with("LLM_MAX_RETRY_WAIT", "40s");
    let (observer, waited) = paused_during_waits();
    let result = cascade(env)
        .with_observer(observer)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answers after waiting");
    assert_eq!(
        result.attempts[0].decision,
        Some(Decision::Retry { waited_ms: 34_400 })
    );
    let waited = waited.lock().expect("lock").clone();
    assert_eq!(waited.len(), 1, "one wait: {waited:?}");
    assert!(waited[0] >= Duration::from_millis(34_400), "{waited:?}");
    assert_eq!(outcomes(&result.attempts)[1], ("gemini", Outcome::Ok));
}

#[tokio::test]
async fn gemini_retry_delay_longer_than_allowed_moves_on_at_once() {
    let google = serve("gemini", "error.429.retry_info", "POST", GEMINI_ROUTE, 1).await;
    let claude = serve("anthropic", "chat.success", "POST", ANTHROPIC_ROUTE, 1).await;
    let env = anthropic(gemini(MapEnv::new(), &google), &claude)
        .with("LLM_FALLBACK_ORDER", "gemini,anthropic");
    let result = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("anthropic answers");
    let first = &result.attempts[0];
    assert_eq!(
        first.retry_after,
        Some(std::time::Duration::from_millis(34_400))
    );
    assert_eq!(
        first.decision,
        Some(Decision::NextProvider {
            reason: MoveReason::WaitTooLong
        })
    );
    assert_eq!(result.response.provider, "anthropic");
}

#[tokio::test]
async fn gemini_safety_block_is_final_with_the_providers_reason() {
    let google = serve("gemini", "chat.safety_block", "POST", GEMINI_ROUTE, 1).await;
    let claude = serve("anthropic", "chat.success", "POST", ANTHROPIC_ROUTE, 0).await;
    let env = anthropic(gemini(MapEnv::new(), &google), &claude)
        .with("LLM_FALLBACK_ORDER", "gemini,anthropic");
    let report = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("the refusal is final");
    assert_eq!(report.category, llm_cascade::Category::ContentFilter);
    assert_eq!(report.category.http_status(), 400);
    assert_eq!(
        outcomes(&report.attempts),
        vec![("gemini", Outcome::Failed(ErrorKind::ContentFilter))]
    );
    assert!(
        report.message.contains("finishReason SAFETY"),
        "{}",
        report.message
    );
}

#[tokio::test]
async fn gemini_safety_block_moves_to_the_next_provider_with_the_fallback_flag() {
    let google = serve("gemini", "chat.safety_block", "POST", GEMINI_ROUTE, 1).await;
    let claude = serve("anthropic", "chat.success", "POST", ANTHROPIC_ROUTE, 1).await;
    let env = anthropic(gemini(MapEnv::new(), &google), &claude)
        .with("LLM_FALLBACK_ORDER", "gemini,anthropic")
        .with("LLM_CONTENT_FILTER_FALLBACK", "true");
    let result = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("anthropic answers");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            ("gemini", Outcome::Failed(ErrorKind::ContentFilter)),
            ("anthropic", Outcome::Ok),
        ]
    );
    assert!(!result.response.content.is_empty());
}

#[tokio::test]
async fn anthropic_error_event_after_text_is_continued_by_prefill() {
    use futures_util::StreamExt;
    // The captured mid-stream `overloaded_error` arrives after the first text delta ("1"): the same
    // provider is asked again (overloaded is retryable) with that text as the final assistant turn.
    let claude = MockServer::start().await;
    mount_first(
        &claude,
        "anthropic",
        "chat.stream.error_event",
        "POST",
        ANTHROPIC_ROUTE,
        1,
    )
    .await;
    Fixture::load("anthropic", "chat.stream")
        .mount(&claude, "POST", ANTHROPIC_ROUTE, 1)
        .await;
    let env = anthropic(MapEnv::new(), &claude).with("LLM_FALLBACK_ORDER", "anthropic");
    let stream = cascade(env)
        .chat_stream(ChatRequest::from_prompt("Count to five"))
        .await
        .expect("starts");
    let items: Vec<_> = stream.collect().await;
    assert_eq!(
        items[0].as_ref().ok(),
        Some(&llm_cascade::StreamEvent::Delta { text: "1".into() })
    );
    assert_eq!(
        items[1].as_ref().ok(),
        Some(&llm_cascade::StreamEvent::Resumed {
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5-20250929".into(),
            mode: llm_cascade::ResumeMode::Prefill,
        })
    );
    assert!(
        matches!(
            items.last(),
            Some(Ok(llm_cascade::StreamEvent::Finish { .. }))
        ),
        "{items:?}"
    );
    let requests = claude.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    let body: serde_json::Value = serde_json::from_slice(&requests[1].body).expect("json");
    assert_eq!(
        body["messages"],
        serde_json::json!([
            {"role": "user", "content": "Count to five"},
            {"role": "assistant", "content": "1"},
        ]),
        "the partial answer is the final assistant turn"
    );
}

#[tokio::test]
async fn anthropic_error_event_after_text_is_an_error_in_the_stream_with_recovery_off() {
    use futures_util::StreamExt;
    // With `LLM_STREAM_RECOVERY=off`: an error in the stream, with the text before it delivered.
    let claude = serve(
        "anthropic",
        "chat.stream.error_event",
        "POST",
        ANTHROPIC_ROUTE,
        1,
    )
    .await;
    let env = anthropic(MapEnv::new(), &claude)
        .with("LLM_FALLBACK_ORDER", "anthropic")
        .with("LLM_STREAM_RECOVERY", "off");
    let stream = cascade(env)
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    let items: Vec<_> = stream.collect().await;
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Ok(llm_cascade::StreamEvent::Delta { .. })))
    );
    let error = items
        .last()
        .and_then(|i| i.as_ref().err())
        .expect("ends in an error");
    assert_eq!(error.kind(), ErrorKind::Overloaded);
}

mod ollama {
    use super::*;

    const TAGS: &str = "/api/tags";

    /// Records pull progress events.
    fn progress_log(cascade: Cascade) -> (Cascade, Arc<Mutex<Vec<llm_cascade::Progress>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let cascade = cascade.with_observer(Arc::new(move |event: &CascadeEvent| {
            if let CascadeEvent::Progress(progress) = event {
                sink.lock().expect("lock").push(progress.clone());
            }
        }));
        (cascade, log)
    }

    /// A local Ollama without `gemma2:27b` until a pull (replaying the real pull progress) installs it,
    /// then answering one chat.
    async fn missing_model_that_pulls() -> MockServer {
        let local = MockServer::start().await;
        mount_first(&local, "ollama", "tags.success.doc", "GET", TAGS, 1).await;
        Fixture::load("ollama", "tags.success")
            .mount(&local, "GET", TAGS, 1)
            .await;
        Fixture::load("ollama", "pull.stream")
            .mount(&local, "POST", "/api/pull", 1)
            .await;
        Fixture::load("ollama", "chat.success")
            .mount(&local, "POST", "/api/chat", 1)
            .await;
        local
    }

    #[tokio::test]
    async fn a_cut_ollama_stream_is_continued_with_the_partial_answer_as_the_last_message() {
        use futures_util::StreamExt;
        let local = MockServer::start().await;
        mount_first(
            &local,
            "ollama",
            "chat.stream.truncated",
            "POST",
            "/api/chat",
            1,
        )
        .await;
        Fixture::load("ollama", "chat.stream")
            .mount(&local, "POST", "/api/chat", 1)
            .await;
        let env = ollama(MapEnv::new(), &local, "gemma3:1b").with("LLM_FALLBACK_ORDER", "ollama");
        let items: Vec<_> = cascade(env)
            .chat_stream(ChatRequest::from_prompt("Tell me something"))
            .await
            .expect("starts")
            .collect()
            .await;
        let resumed_at = items
            .iter()
            .position(|i| matches!(i, Ok(llm_cascade::StreamEvent::Resumed { .. })))
            .expect("resumed");
        let delivered: String = items[..resumed_at]
            .iter()
            .filter_map(|i| match i {
                Ok(llm_cascade::StreamEvent::Delta { text }) => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert!(!delivered.is_empty());
        assert!(
            matches!(
                items.last(),
                Some(Ok(llm_cascade::StreamEvent::Finish { .. }))
            ),
            "{items:?}"
        );
        assert_eq!(
            items[resumed_at].as_ref().ok(),
            Some(&llm_cascade::StreamEvent::Resumed {
                provider: "ollama".into(),
                model: "gemma3:1b".into(),
                mode: llm_cascade::ResumeMode::Prefill,
            })
        );
        let requests = local.received_requests().await.expect("recorded");
        let chats: Vec<_> = requests
            .iter()
            .filter(|r| r.url.path() == "/api/chat")
            .collect();
        assert_eq!(chats.len(), 2);
        let body: serde_json::Value = serde_json::from_slice(&chats[1].body).expect("json");
        assert_eq!(
            body["messages"],
            serde_json::json!([
                {"role": "user", "content": "Tell me something"},
                {"role": "assistant", "content": delivered.trim_end()},
            ])
        );
    }

    /// A local Ollama without `gemma2:27b` that must never be asked to pull it.
    async fn missing_model_never_pulled() -> MockServer {
        let local = serve("ollama", "tags.success.doc", "GET", TAGS, 1).await;
        Mock::given(method("POST"))
            .and(path("/api/pull"))
            .respond_with(wiremock::ResponseTemplate::new(500))
            .expect(0)
            .mount(&local)
            .await;
        local
    }

    #[tokio::test]
    async fn not_running_is_skipped_and_the_next_provider_answers() {
        let port = llm_test_support::refused_port();
        let claude = serve("anthropic", "chat.success", "POST", ANTHROPIC_ROUTE, 1).await;
        let env = anthropic(MapEnv::new(), &claude)
            .with("OLLAMA_BASE_URL", format!("http://127.0.0.1:{port}"))
            .with("LLM_FALLBACK_ORDER", "ollama,anthropic");
        let result = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect("anthropic answers");
        assert_eq!(
            result.attempts[0].outcome,
            Outcome::Failed(ErrorKind::NotRunning)
        );
        assert!(
            result.attempts[0]
                .message
                .as_deref()
                .is_some_and(|m| m.contains("nothing listens"))
        );
        assert_eq!(
            result.attempts.len(),
            2,
            "a server that is not running is not retried"
        );
    }

    #[tokio::test]
    async fn only_local_servers_all_down_suggests_setting_a_key() {
        let port = llm_test_support::refused_port();
        let env = MapEnv::new()
            .with("OLLAMA_BASE_URL", format!("http://127.0.0.1:{port}"))
            .with("LM_STUDIO_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
            .with("LM_STUDIO_MODEL", "any");
        let report = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect_err("nothing runs");
        let mut expected = vec![
            ("ollama", Outcome::Failed(ErrorKind::NotRunning)),
            ("lmstudio", Outcome::Failed(ErrorKind::NotRunning)),
        ];
        if llm_cascade::ENABLED.contains(&"local") {
            // The embedded model has no place for its file here (no HOME in this environment).
            expected.push(("local", Outcome::Failed(ErrorKind::Config)));
        }
        assert_eq!(outcomes(&report.attempts), expected);
        assert!(report.hint.contains("GROQ_API_KEY"), "{}", report.hint);
        assert_eq!(report.category, llm_cascade::Category::Config);
        let chain: Vec<&str> = expected.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            report.message,
            format!(
                "no provider is configured: only local servers are in the chain ({}) and none is \
                 running",
                chain.join(", ")
            )
        );
    }

    #[tokio::test]
    async fn running_with_the_model_is_used_first() {
        let local = serve("ollama", "tags.success", "GET", TAGS, 1).await;
        Fixture::load("ollama", "chat.success")
            .mount(&local, "POST", "/api/chat", 1)
            .await;
        let claude = MockServer::start().await; // configured, never called
        let env = anthropic(ollama(MapEnv::new(), &local, "gemma2:27b"), &claude)
            .with("LLM_FALLBACK_ORDER", "ollama,anthropic");
        let result = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect("ollama answers");
        assert_eq!(result.response.provider, "ollama");
        assert!(
            claude
                .received_requests()
                .await
                .expect("recording")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn model_missing_and_cloud_failing_pulls_then_answers_locally() {
        let local = missing_model_that_pulls().await;
        let claude = serve("anthropic", "error.401.auth", "POST", ANTHROPIC_ROUTE, 1).await;
        let env = anthropic(ollama(MapEnv::new(), &local, "gemma2:27b"), &claude)
            .with("LLM_FALLBACK_ORDER", "ollama,anthropic");
        let (cascade, progress) = progress_log(cascade(env));
        let result = cascade
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect("answers locally after the pull");
        assert_eq!(
            outcomes(&result.attempts),
            vec![
                ("ollama", Outcome::Failed(ErrorKind::ModelNotFound)),
                ("anthropic", Outcome::Failed(ErrorKind::Auth)),
                ("ollama", Outcome::Ok),
            ]
        );
        let progress = progress.lock().expect("lock");
        assert!(!progress.is_empty(), "pull progress reaches observers");
        assert_eq!(progress.last().map(|p| p.status.as_str()), Some("success"));
    }

    #[tokio::test]
    async fn model_missing_and_cloud_succeeding_does_not_pull() {
        let local = missing_model_never_pulled().await;
        let claude = serve("anthropic", "chat.success", "POST", ANTHROPIC_ROUTE, 1).await;
        let env = anthropic(ollama(MapEnv::new(), &local, "gemma2:27b"), &claude)
            .with("LLM_FALLBACK_ORDER", "ollama,anthropic");
        let result = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect("anthropic answers");
        assert_eq!(result.response.provider, "anthropic");
    }

    #[tokio::test]
    async fn serverless_never_pulls_and_says_why() {
        let local = missing_model_never_pulled().await;
        let env = ollama(MapEnv::new(), &local, "gemma2:27b")
            .with("LLM_FALLBACK_ORDER", "ollama")
            .with("VERCEL", "1");
        let report = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect_err("nothing can answer");
        assert_eq!(report.kind, ErrorKind::ModelNotFound);
        let detail = &report.details[0];
        assert!(detail.contains("ollama pull"), "{detail}");
    }

    #[tokio::test]
    async fn eager_policy_pulls_at_once() {
        let local = missing_model_that_pulls().await;
        let claude = MockServer::start().await; // configured, never called
        let env = anthropic(ollama(MapEnv::new(), &local, "gemma2:27b"), &claude)
            .with("LLM_FALLBACK_ORDER", "ollama,anthropic")
            .with("LLM_LOCAL_PULL", "eager");
        let result = cascade(env)
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect("ollama answers");
        assert_eq!(result.response.provider, "ollama");
        assert!(
            claude
                .received_requests()
                .await
                .expect("recording")
                .is_empty()
        );
    }
}

/// wiremock cannot tell when a client hangs up, so the silent provider is the scripted loopback
/// server, which reports it; the hedge that wins is a wiremock replay of a real Gemini answer.
#[tokio::test]
async fn a_hedged_loser_has_its_connection_closed() {
    use llm_test_support::{ConnectionEvent, ScriptedServer, Step};
    let silent = ScriptedServer::start(vec![Step::Hang]).await;
    let google = serve("gemini", "chat.success", "POST", GEMINI_ROUTE, 1).await;
    let env = gemini(MapEnv::new(), &google)
        .with("ANTHROPIC_API_KEY", CANARY_KEY)
        .with("ANTHROPIC_BASE_URL", format!("{}/v1", silent.uri()))
        .with("LLM_FALLBACK_ORDER", "anthropic,gemini")
        .with("LLM_HEDGE_AFTER", "200ms");
    let result = cascade(env)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("the hedge answers");
    assert_eq!(result.response.provider, "gemini");
    assert_eq!(
        outcomes(&result.attempts),
        vec![("anthropic", Outcome::Cancelled), ("gemini", Outcome::Ok)]
    );
    assert_eq!(silent.next_event().await, ConnectionEvent::Requested);
    assert_eq!(
        silent.next_event().await,
        ConnectionEvent::ClosedByClient { sent: 0 },
        "the loser's connection was closed: nothing more is billed for it"
    );
}

/// A successful Anthropic answer carrying the rate-limit headers Anthropic sent with a real 429
/// (input tokens at 0 until 15:15:48): the provider cools until the reset and the next call goes
/// to Gemini without asking Anthropic. The capture has no `Date`; its full buckets reset at 15:14:45,
/// the moment of the response, which the served `date` header says.
#[tokio::test]
async fn an_answer_that_used_up_a_rate_limit_skips_its_provider_until_the_reset() {
    let limits = Fixture::load("anthropic", "error.429.rate_limit")
        .response
        .headers;
    let mut answer = Fixture::load("anthropic", "chat.success");
    answer.response.headers.extend(
        limits
            .into_iter()
            .filter(|(name, _)| name.starts_with("anthropic-ratelimit-")),
    );
    answer.response.headers.insert(
        "date".to_owned(),
        "Mon, 02 Jun 2025 15:14:45 GMT".to_owned(),
    );
    let claude = MockServer::start().await;
    answer.mount(&claude, "POST", ANTHROPIC_ROUTE, 1).await;
    let google = serve("gemini", "chat.success", "POST", GEMINI_ROUTE, 1).await;
    let env = gemini(anthropic(MapEnv::new(), &claude), &google)
        .with("LLM_FALLBACK_ORDER", "anthropic,gemini");
    let cascade = cascade(env);
    let first = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("anthropic answers");
    assert_eq!(
        first.response.rate_limit.as_ref().map(|s| s.reset_after),
        Some(std::time::Duration::from_secs(63))
    );
    let second = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("gemini answers");
    assert_eq!(
        outcomes(&second.attempts),
        vec![("anthropic", Outcome::Skipped), ("gemini", Outcome::Ok)]
    );
    let skip = second.attempts[0].message.as_deref().unwrap_or_default();
    assert!(skip.contains("(x-ratelimit-remaining)"), "{skip}");
}
