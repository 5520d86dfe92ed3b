//! Retry, fallback and deadline decisions.

use std::sync::Arc;
use std::time::Duration;

use llm_cascade::{
    CascadeBuilder, CascadeEvent, ChatRequest, Decision, ErrorKind, MoveReason, Outcome,
};

use crate::fake::{Fake, Step, cascade, fast_config, outcomes};

#[tokio::test(start_paused = true)]
async fn rate_limit_is_retried_with_backoff_then_falls_back() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(ErrorKind::RateLimit, Some(429), None),
            Step::Fail(ErrorKind::RateLimit, Some(429), None),
        ],
    ));
    let openai = Arc::new(Fake::new("openai", vec![Step::Reply("hello")]));
    let config = fast_config().with_backoff(Duration::from_millis(20));
    let result = cascade(vec![groq.clone(), openai.clone()], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    let result = result.expect("openai answers");
    assert_eq!(result.response.content, "hello");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            ("groq".into(), 1, Outcome::Failed(ErrorKind::RateLimit)),
            ("groq".into(), 2, Outcome::Failed(ErrorKind::RateLimit)),
            ("openai".into(), 1, Outcome::Ok),
        ]
    );
    assert_eq!(
        result.attempts[0].decision,
        Some(Decision::Retry { waited_ms: 20 })
    );
    assert_eq!(
        result.attempts[1].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::AttemptsExhausted
        })
    );
    assert_eq!(result.attempts[0].status, Some(429));
    assert_eq!((groq.calls(), openai.calls()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_per_attempt() {
    let flaky = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(ErrorKind::ServerError, Some(500), None),
            Step::Fail(ErrorKind::ServerError, Some(502), None),
            Step::Reply("third time"),
        ],
    ));
    let config = fast_config()
        .with_max_attempts(3)
        .with_backoff(Duration::from_millis(10));
    let result = cascade(vec![flaky], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answers");
    let waits: Vec<_> = result.attempts.iter().map(|a| a.decision).collect();
    assert_eq!(
        waits,
        vec![
            Some(Decision::Retry { waited_ms: 10 }),
            Some(Decision::Retry { waited_ms: 20 }),
            None
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_adds_at_most_a_quarter() {
    let flaky = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(ErrorKind::Network, None, None),
            Step::Reply("ok"),
        ],
    ));
    let config = fast_config()
        .with_backoff(Duration::from_millis(40))
        .with_jitter(true);
    let result = cascade(vec![flaky], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answers");
    let Some(Decision::Retry { waited_ms }) = result.attempts[0].decision else {
        panic!("expected a retry")
    };
    assert!((40..=50).contains(&waited_ms), "{waited_ms}");
}

#[tokio::test(start_paused = true)]
async fn auth_moves_on_at_once() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::Auth, Some(401), None)],
    ));
    let openai = Arc::new(Fake::new("openai", vec![Step::Reply("hello")]));
    let result = cascade(vec![groq.clone(), openai], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    let attempts = result.expect("answers").attempts;
    assert_eq!(
        attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::NotRetryable
        })
    );
    assert_eq!(groq.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn quota_exhausted_is_not_retried() {
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Fail(ErrorKind::QuotaExhausted, Some(429), None)],
    ));
    let deepseek = Arc::new(Fake::new("deepseek", vec![Step::Reply("hi")]));
    let result = cascade(vec![openai.clone(), deepseek], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    assert_eq!(
        outcomes(&result.expect("answers").attempts)[0].2,
        Outcome::Failed(ErrorKind::QuotaExhausted)
    );
    assert_eq!(openai.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn short_wait_hint_is_honoured_long_one_moves_on() {
    let short = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(
                ErrorKind::RateLimit,
                Some(429),
                Some(Duration::from_millis(30)),
            ),
            Step::Reply("after waiting"),
        ],
    ));
    let result = cascade(vec![short], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answers");
    assert_eq!(
        result.attempts[0].decision,
        Some(Decision::Retry { waited_ms: 30 })
    );

    let long = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(
            ErrorKind::RateLimit,
            Some(429),
            Some(Duration::from_secs(30)),
        )],
    ));
    let next = Arc::new(Fake::new("gemini", vec![Step::Reply("sooner")]));
    let result = cascade(vec![long.clone(), next], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    let attempts = result.expect("answers").attempts;
    assert_eq!(
        attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::WaitTooLong
        })
    );
    assert_eq!(attempts[0].retry_after, Some(Duration::from_secs(30)));
    assert_eq!(long.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_hint_longer_than_the_time_left_moves_on() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(
            ErrorKind::RateLimit,
            Some(429),
            Some(Duration::from_millis(1500)),
        )],
    ));
    let next = Arc::new(Fake::new("openai", vec![Step::Reply("ok")]));
    let config = fast_config().with_deadline(Duration::from_secs(1));
    let attempts = cascade(vec![groq, next], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("ok")
        .attempts;
    assert_eq!(
        attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::WaitTooLong
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_provider_times_out_and_is_not_retried() {
    let slow =
        Arc::new(Fake::new("together", vec![Step::Hang]).with_timeout(Duration::from_millis(50)));
    let next = Arc::new(Fake::new("mistral", vec![Step::Reply("ok")]));
    let result = cascade(vec![slow.clone(), next], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    let attempts = result.expect("answers").attempts;
    assert_eq!(attempts[0].outcome, Outcome::Failed(ErrorKind::Timeout));
    assert_eq!(slow.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_every_attempt() {
    let hang = || Arc::new(Fake::new("together", vec![Step::Hang]));
    let config = fast_config().with_deadline(Duration::from_millis(80));
    let cascade = CascadeBuilder::new()
        .config(config)
        .provider_arc(hang())
        .provider_arc(hang())
        .build();
    let report = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("nothing answers");
    assert_eq!(report.kind, ErrorKind::Timeout);
    assert_eq!(report.category.http_status(), 504);
    let first = &report.attempts[0];
    assert!(
        first
            .message
            .as_deref()
            .is_some_and(|m| m.contains("LLM_DEADLINE")),
        "{first:?}"
    );
    // The deadline had passed when the first attempt ended: the cascade stopped instead of trying more.
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(first.decision, Some(Decision::Stop));
}

#[tokio::test(start_paused = true)]
async fn auto_fallback_off_uses_the_first_provider_only() {
    let first = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::Auth, Some(401), None)],
    ));
    let second = Arc::new(Fake::new("openai", vec![]));
    let config = fast_config().with_auto_fallback(false);
    let report = cascade(vec![first, second.clone()], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("stops");
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(second.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn exhausted_report_and_events() {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::Auth, Some(401), None)],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Fail(ErrorKind::ContextLength, Some(400), None)],
    ));
    let cascade = cascade(vec![groq, openai], fast_config()).with_observer(Arc::new(
        move |e: &CascadeEvent| {
            sink.lock().expect("lock").push(e.clone());
        },
    ));
    let report = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("all fail");
    assert_eq!(
        report.message,
        "all 2 providers failed (groq, openai); last error: context_length"
    );
    assert_eq!(report.details.len(), 2);
    assert!(
        report.hint.contains(ErrorKind::Auth.advice())
            && report.hint.contains(ErrorKind::ContextLength.advice())
    );
    let kinds: Vec<&str> = events
        .lock()
        .expect("lock")
        .iter()
        .map(|e| match e {
            CascadeEvent::AttemptStarted { .. } => "started",
            CascadeEvent::AttemptFinished { .. } => "finished",
            CascadeEvent::Fallback { .. } => "fallback",
            CascadeEvent::Waiting { .. } => "waiting",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        vec!["started", "finished", "fallback", "started", "finished"]
    );
}

#[tokio::test(start_paused = true)]
async fn empty_chain_and_empty_request_fail_before_any_attempt() {
    let report = CascadeBuilder::new()
        .build()
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("empty");
    assert_eq!((report.kind, report.attempts.len()), (ErrorKind::Config, 0));
    let one = Arc::new(Fake::new("groq", vec![]));
    let report = cascade(vec![one], fast_config())
        .chat(ChatRequest::default())
        .await
        .expect_err("no messages");
    assert_eq!(report.kind, ErrorKind::InvalidRequest);
}

#[tokio::test(start_paused = true)]
async fn a_provider_prepares_at_most_once_per_call() {
    // The server still says "missing" after a successful pull: no second pull, move on.
    let local = Arc::new(
        Fake::new(
            "ollama",
            vec![
                Step::Fail(ErrorKind::ModelNotFound, Some(404), None),
                Step::Fail(ErrorKind::ModelNotFound, Some(404), None),
            ],
        )
        .preparable(),
    );
    let cloud = Arc::new(Fake::new("groq", vec![Step::Reply("from the cloud")]));
    let config = fast_config().with_local_pull(llm_cascade::LocalPull::Eager);
    let result = cascade(vec![local.clone(), cloud], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await;
    assert_eq!(
        result.expect("groq answers").response.content,
        "from the cloud"
    );
    assert_eq!((local.prepares(), local.calls()), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn last_resort_prepares_only_after_every_provider_failed() {
    let local = Arc::new(
        Fake::new(
            "ollama",
            vec![
                Step::Fail(ErrorKind::ModelNotFound, Some(404), None),
                Step::Reply("local"),
            ],
        )
        .preparable(),
    );
    let cloud = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::Auth, Some(401), None)],
    ));
    let result = cascade(vec![local.clone(), cloud.clone()], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answers locally");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            (
                "ollama".into(),
                1,
                Outcome::Failed(ErrorKind::ModelNotFound)
            ),
            ("groq".into(), 1, Outcome::Failed(ErrorKind::Auth)),
            ("ollama".into(), 2, Outcome::Ok),
        ]
    );
    assert_eq!(local.prepares(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_failures_spends_the_retry_budget_instead_of_doubling_the_load() {
    // 20 calls to a provider that always fails: without a budget, 2 attempts each (40 requests).
    let failing = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::ServerError, Some(500), None); 33],
    ));
    let cascade = cascade(vec![failing.clone()], fast_config());
    let mut last_decisions = Vec::new();
    for _ in 0..20 {
        let report = cascade
            .chat(ChatRequest::from_prompt("hi"))
            .await
            .expect_err("always fails");
        last_decisions.push(report.attempts.last().and_then(|a| a.decision));
    }
    // The reserve (10 retries, full) plus a fifth of a retry per request: 12 retries for the first 12
    // calls, then one more once five requests have paid for it (call 16): 13 retries in all.
    assert_eq!(failing.calls(), 20 + 13);
    assert_eq!(
        last_decisions[12],
        Some(Decision::NextProvider {
            reason: MoveReason::RetryBudget
        })
    );
}
