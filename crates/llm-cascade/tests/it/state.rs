//! Provider state across calls: cooling, the breaker, the all-skipped wait and report.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llm_cascade::{
    Cascade, CascadeBuilder, CascadeConfig, ChatRequest, ErrorKind, MemoryStore, Outcome,
    SkipReason, StreamRecovery,
};

use crate::fake::{Fake, Item, Step, fast_config};

fn cascade(providers: &[&Arc<Fake>], store: &Arc<MemoryStore>) -> Cascade {
    configured(providers, fast_config(), store)
}

/// A cascade of `providers` with `config` over `store`.
fn configured(
    providers: &[&Arc<Fake>],
    config: CascadeConfig,
    store: &Arc<MemoryStore>,
) -> Cascade {
    providers
        .iter()
        .fold(CascadeBuilder::new().config(config), |b, p| {
            b.provider_arc((*p).clone())
        })
        .build()
        .with_state_store(store.clone())
}

fn hi() -> ChatRequest {
    ChatRequest::from_prompt("hi")
}

fn outcomes(attempts: &[llm_cascade::Attempt]) -> Vec<(String, Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.clone(), a.outcome))
        .collect()
}

const LONG: Option<Duration> = Some(Duration::from_secs(600));

#[tokio::test(start_paused = true)]
async fn a_cooling_provider_is_skipped_without_a_call_until_its_time_passes() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(ErrorKind::RateLimit, Some(429), LONG),
            Step::Reply("groq again"),
        ],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Reply("one"), Step::Reply("two")],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq, &openai], &store);
    cascade.chat(hi()).await.expect("first answer");
    let second = cascade.chat(hi()).await.expect("second answer");
    assert_eq!(groq.calls(), 1, "a cooling provider costs no call");
    assert_eq!(
        outcomes(&second.attempts),
        vec![
            ("groq".to_owned(), Outcome::Skipped),
            ("openai".to_owned(), Outcome::Ok)
        ]
    );
    let skip = second.attempts[0].skip.as_ref().expect("skip");
    assert!(matches!(&skip.reason, SkipReason::Cooling { source } if source == "Retry-After"));
    let json = serde_json::to_value(&second.attempts[0]).expect("json");
    assert_eq!(json["outcome"], "skipped");
    assert_eq!(json["skip"]["reason"], "cooling");
    // A second cascade sharing the store sees the cooling too.
    let other = cascade_sharing(&groq, &store);
    assert!(other.chat(hi()).await.is_err());
    assert_eq!(groq.calls(), 1);
    tokio::time::advance(Duration::from_secs(601)).await;
    let third = cascade.chat(hi()).await.expect("third answer");
    assert_eq!(third.text(), "groq again");
}

fn cascade_sharing(groq: &Arc<Fake>, store: &Arc<MemoryStore>) -> Cascade {
    cascade(&[groq], store).with_state_clock(llm_cascade::StateClock::with_offset(0))
}

#[tokio::test(start_paused = true)]
async fn every_provider_skipped_fails_at_once_with_when_each_comes_back() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(ErrorKind::RateLimit, Some(429), LONG)],
    ));
    let store = Arc::new(MemoryStore::default());
    // A deadline shorter than the cooling: no wait.
    let cascade = CascadeBuilder::new()
        .config(fast_config().with_deadline(Duration::from_secs(60)))
        .provider_arc(groq.clone())
        .build()
        .with_state_store(store);
    assert!(cascade.chat(hi()).await.is_err());
    let started = tokio::time::Instant::now();
    let report = cascade
        .chat(hi())
        .await
        .expect_err("every provider skipped");
    assert_eq!(started.elapsed(), Duration::ZERO, "failed at once");
    assert_eq!(groq.calls(), 1);
    assert_eq!(report.category, llm_cascade::Category::RateLimit);
    assert!(
        report.message.contains("groq cooling until"),
        "{}",
        report.message
    );
    let wait = report.retry_after.expect("retry_after");
    assert!(wait > Duration::from_secs(590) && wait <= Duration::from_secs(600));
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(json["attempts"][0]["outcome"], "skipped");
    assert!(json["retry_after_ms"].as_u64().is_some());
}

#[tokio::test(start_paused = true)]
async fn every_provider_skipped_waits_for_the_soonest_within_the_deadline() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Fail(
                ErrorKind::RateLimit,
                Some(429),
                Some(Duration::from_secs(30)),
            ),
            Step::Reply("after the wait"),
        ],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq], &store);
    assert!(cascade.chat(hi()).await.is_err());
    let started = tokio::time::Instant::now();
    let answer = cascade.chat(hi()).await.expect("answer after waiting");
    assert_eq!(answer.text(), "after the wait");
    assert!(started.elapsed() >= Duration::from_secs(29));
    assert_eq!(
        outcomes(&answer.attempts),
        vec![
            ("groq".to_owned(), Outcome::Skipped),
            ("groq".to_owned(), Outcome::Ok)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opens_probes_once_and_closes() {
    let down = || Step::Fail(ErrorKind::ServerError, Some(500), None);
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            down(),
            down(),
            down(),
            down(),
            Step::Reply("probe ok"),
            Step::Reply("closed"),
        ],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Reply("1"), Step::Reply("2"), Step::Reply("3")],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq, &openai], &store);
    // Two attempts per call: the third consecutive failure opens the breaker.
    cascade.chat(hi()).await.expect("answer");
    cascade.chat(hi()).await.expect("answer");
    assert_eq!(groq.calls(), 4);
    let skipped = cascade.chat(hi()).await.expect("answer");
    assert_eq!(groq.calls(), 4, "an open breaker costs no call");
    assert_eq!(
        skipped.attempts[0].skip.as_ref().map(|s| s.reason.clone()),
        Some(SkipReason::CircuitOpen)
    );
    tokio::time::advance(Duration::from_secs(31)).await;
    let probe = cascade.chat(hi()).await.expect("the probe answers");
    assert_eq!(probe.text(), "probe ok");
    let closed = cascade.chat(hi()).await.expect("closed again");
    assert_eq!(closed.text(), "closed");
}

#[tokio::test(start_paused = true)]
async fn a_fully_open_chain_still_lets_one_probe_through() {
    let down = || Step::Fail(ErrorKind::Overloaded, Some(503), None);
    let groq = Arc::new(Fake::new(
        "groq",
        vec![down(), down(), down(), down(), Step::Reply("probed")],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq], &store);
    assert!(cascade.chat(hi()).await.is_err());
    assert!(cascade.chat(hi()).await.is_err());
    let answer = cascade.chat(hi()).await.expect("the forced probe answers");
    assert_eq!(answer.text(), "probed");
    assert_eq!(answer.attempts[0].outcome, Outcome::Skipped);
}

/// Streams `cascade`'s answer to `hi` to its end; the error that ended it, if any.
async fn stream_to_end(cascade: &Cascade) -> Option<ErrorKind> {
    let stream = cascade.chat_stream(hi()).await.expect("a first token");
    let items: Vec<_> = stream.collect().await;
    items
        .iter()
        .find_map(|i| i.as_ref().err().map(|e| e.kind()))
}

#[tokio::test(start_paused = true)]
async fn streamed_usage_counts_into_the_token_budgets_else_an_estimate() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![Item::Text("hello"), Item::Usage(12, 30), Item::Finish]),
            // No usage: 4 bytes per token, rounded up, of the prompt ("hi": 1) and the answer (3).
            Step::Stream(vec![Item::Text("abcdefgh"), Item::Text("i"), Item::Finish]),
        ],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq], &store);
    assert_eq!(stream_to_end(&cascade).await, None);
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!((state.minute.tokens, state.day.tokens), (42, 42));
    assert_eq!(stream_to_end(&cascade).await, None);
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.minute.tokens, 42 + 1 + 3);
}

#[tokio::test(start_paused = true)]
async fn failures_after_the_first_token_open_the_breaker() {
    let cut = || {
        Step::Stream(vec![
            Item::Text("partial"),
            Item::Error(ErrorKind::Overloaded),
        ])
    };
    let groq = Arc::new(Fake::new("groq", vec![cut(), cut(), cut()]));
    let store = Arc::new(MemoryStore::default());
    let config = fast_config().with_stream_recovery(StreamRecovery::Off);
    let cascade = configured(&[&groq], config, &store);
    for _ in 0..3 {
        assert_eq!(stream_to_end(&cascade).await, Some(ErrorKind::Overloaded));
    }
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.failures, 3);
    assert_eq!(state.breaker_state(cascade.state_now_ms()), "open");
}

#[tokio::test(start_paused = true)]
async fn a_cut_that_recovery_continues_still_counts_against_the_breaker() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![
            Item::Text("Hello"),
            Item::Error(ErrorKind::ServerError),
        ])],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Stream(vec![Item::Text("Hello world"), Item::Finish])],
    ));
    let store = Arc::new(MemoryStore::default());
    let config = fast_config().with_max_attempts(1);
    let cascade = configured(&[&groq, &openai], config, &store);
    assert_eq!(stream_to_end(&cascade).await, None, "continued by openai");
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.failures, 1);
    // The cut attempt's text counts as tokens too (estimated: "hi" 1 + "Hello" 2).
    assert_eq!(state.minute.tokens, 3);
}

#[tokio::test(start_paused = true)]
async fn only_a_stream_that_finishes_closes_a_half_open_breaker() {
    let cut = || {
        Step::Stream(vec![
            Item::Text("partial"),
            Item::Error(ErrorKind::ServerError),
        ])
    };
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            cut(),
            cut(),
            cut(),
            cut(),
            Step::Stream(vec![Item::Text("whole"), Item::Finish]),
        ],
    ));
    let store = Arc::new(MemoryStore::default());
    let config = fast_config().with_stream_recovery(StreamRecovery::Off);
    let cascade = configured(&[&groq], config, &store);
    for _ in 0..3 {
        stream_to_end(&cascade).await;
    }
    // The probe's first token does not close the breaker: its cut reopens it for longer.
    tokio::time::advance(Duration::from_secs(31)).await;
    assert_eq!(stream_to_end(&cascade).await, Some(ErrorKind::ServerError));
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.breaker_state(cascade.state_now_ms()), "open");
    assert_eq!(state.opened, 2, "the cooldown doubled");
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(stream_to_end(&cascade).await, None);
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.breaker_state(cascade.state_now_ms()), "closed");
    assert_eq!(state.failures, 0);
}

#[tokio::test(start_paused = true)]
async fn a_success_that_used_up_a_rate_limit_cools_the_provider_until_its_reset() {
    let reset = Duration::from_secs(90);
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Spent("the last one this window", reset),
            Step::Stream(vec![
                Item::Spent(reset),
                Item::Text("streamed"),
                Item::Finish,
            ]),
            Step::Reply("after the reset"),
        ],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Reply("1"), Step::Reply("2")],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq, &openai], &store);
    let first = cascade.chat(hi()).await.expect("answer");
    assert_eq!(first.text(), "the last one this window");
    let second = cascade.chat(hi()).await.expect("answer");
    assert_eq!(second.text(), "1");
    assert_eq!(groq.calls(), 1, "no call wasted on a spent limit");
    let skip = second.attempts[0].skip.as_ref().expect("skipped");
    assert!(
        matches!(&skip.reason, SkipReason::Cooling { source } if source == "x-ratelimit-remaining"),
        "{skip:?}"
    );
    assert_eq!(
        skip.until_ms,
        Some(cascade.state_now_ms() + 90_000),
        "cooling until the reset"
    );
    // A stream that says so at its start cools the provider the same way.
    tokio::time::advance(reset).await;
    assert_eq!(stream_to_end(&cascade).await, None);
    assert_eq!(cascade.chat(hi()).await.expect("answer").text(), "2");
    assert_eq!(groq.calls(), 2);
    tokio::time::advance(reset).await;
    let after = cascade.chat(hi()).await.expect("answer");
    assert_eq!(after.text(), "after the reset");
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_midway_still_counts_its_tokens() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![Item::Text("abcdefgh"), Item::Stall])],
    ));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(&[&groq], &store);
    let mut stream = cascade.chat_stream(hi()).await.expect("a first token");
    assert!(matches!(stream.next().await, Some(Ok(_))));
    drop(stream);
    // The count is taken in off the caller's path: let it run.
    tokio::task::yield_now().await;
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(
        state.minute.tokens,
        1 + 2,
        "estimated: \"hi\" and 8 bytes of answer"
    );
}
