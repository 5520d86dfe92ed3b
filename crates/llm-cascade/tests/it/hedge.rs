//! Hedging (`LLM_HEDGE_AFTER`): a second provider started beside a slow one, the first to answer wins.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llm_cascade::{
    CascadeConfig, ChatRequest, Decision, ErrorKind, MemoryStore, MoveReason, Outcome, StreamEvent,
};
use tokio::time::Instant;

use crate::fake::{Fake, Item, Step, cascade, fast_config, outcomes};

const AFTER: Duration = Duration::from_secs(1);

fn hedged() -> CascadeConfig {
    fast_config().with_hedge_after(Some(AFTER))
}

fn hi() -> ChatRequest {
    ChatRequest::from_prompt("hi")
}

fn later(secs: u64, step: Step) -> Step {
    Step::Later(Duration::from_secs(secs), Box::new(step))
}

fn server_error() -> Step {
    Step::Fail(ErrorKind::ServerError, Some(500), None)
}

fn record(provider: &str, attempt: u32, outcome: Outcome) -> (String, u32, Outcome) {
    (provider.to_owned(), attempt, outcome)
}

#[tokio::test(start_paused = true)]
async fn a_slow_provider_is_hedged_and_dropped_when_the_next_one_answers_first() {
    let slow = Arc::new(Fake::new("slow", vec![Step::Hang]));
    let quick = Arc::new(Fake::new("quick", vec![Step::Reply("quick answer")]));
    let cascade = cascade(vec![slow.clone(), quick.clone()], hedged());
    let started = Instant::now();
    let answer = cascade.chat(hi()).await.expect("the hedge answers");
    assert_eq!(answer.text(), "quick answer");
    assert_eq!(answer.response.provider, "quick");
    assert_eq!(
        started.elapsed(),
        AFTER,
        "the hedge started after LLM_HEDGE_AFTER"
    );
    assert_eq!(slow.dropped(), 1, "the loser's call was dropped");
    assert_eq!(
        outcomes(&answer.attempts),
        [
            record("slow", 1, Outcome::Cancelled),
            record("quick", 1, Outcome::Ok)
        ]
    );
    assert_eq!(
        answer.attempts[0].message.as_deref(),
        Some("hedged: lost to quick")
    );
    let json = serde_json::to_value(&answer.attempts[0]).expect("json");
    assert_eq!(json["outcome"], "cancelled");
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_answers_in_time_is_not_hedged() {
    let first = Arc::new(Fake::new("first", vec![later(0, Step::Reply("in time"))]));
    // An empty script: a call would fail the test.
    let second = Arc::new(Fake::new("second", vec![]));
    let cascade = cascade(
        vec![first.clone(), second.clone()],
        fast_config().with_hedge_after(Some(Duration::from_secs(2))),
    );
    let answer = cascade.chat(hi()).await.expect("answer");
    assert_eq!(answer.text(), "in time");
    assert_eq!(second.calls(), 0, "no hedge started");
    assert_eq!(
        outcomes(&answer.attempts),
        [record("first", 1, Outcome::Ok)]
    );
}

#[tokio::test(start_paused = true)]
async fn hedging_is_off_by_default() {
    assert_eq!(CascadeConfig::default().hedge_after, None);
    let slow = Arc::new(Fake::new("slow", vec![later(3, Step::Reply("late"))]));
    let second = Arc::new(Fake::new("second", vec![]));
    let cascade = cascade(vec![slow.clone(), second.clone()], fast_config());
    let answer = cascade.chat(hi()).await.expect("answer");
    assert_eq!(answer.text(), "late");
    assert_eq!(second.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_without_a_first_token_is_hedged_and_the_winner_streams() {
    let silent = Arc::new(Fake::new("silent", vec![Step::Stream(vec![Item::Stall])]));
    let quick = Arc::new(Fake::new(
        "quick",
        vec![Step::Stream(vec![
            Item::Text("he"),
            Item::Text("llo"),
            Item::Finish,
        ])],
    ));
    let cascade = cascade(vec![silent.clone(), quick.clone()], hedged());
    let stream = cascade.chat_stream(hi()).await.expect("the hedge streams");
    assert_eq!(stream.provider(), "quick");
    assert_eq!(silent.dropped(), 1, "the loser's stream was dropped");
    let attempts = stream.attempts();
    let items: Vec<_> = stream.collect().await;
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Delta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "hello");
    assert_eq!(
        outcomes(&attempts),
        [
            record("silent", 1, Outcome::Cancelled),
            record("quick", 1, Outcome::Ok)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_first_provider_can_still_win_and_the_hedge_is_dropped() {
    let first = Arc::new(Fake::new("first", vec![later(2, Step::Reply("first"))]));
    let hedge = Arc::new(Fake::new("hedge", vec![Step::Hang]));
    let cascade = cascade(vec![first.clone(), hedge.clone()], hedged());
    let answer = cascade.chat(hi()).await.expect("answer");
    assert_eq!(answer.text(), "first");
    assert_eq!(hedge.dropped(), 1);
    assert_eq!(
        outcomes(&answer.attempts),
        [
            record("hedge", 1, Outcome::Cancelled),
            record("first", 1, Outcome::Ok)
        ]
    );
    assert_eq!(
        answer.attempts[0].message.as_deref(),
        Some("hedged: lost to first")
    );
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_fails_first_is_a_normal_failed_attempt() {
    let first = Arc::new(Fake::new("first", vec![later(2, Step::Reply("first"))]));
    let hedge = Arc::new(Fake::new("hedge", vec![server_error()]));
    let cascade = cascade(vec![first.clone(), hedge.clone()], hedged());
    let answer = cascade.chat(hi()).await.expect("answer");
    assert_eq!(answer.text(), "first");
    assert_eq!(
        outcomes(&answer.attempts),
        [
            record("hedge", 1, Outcome::Failed(ErrorKind::ServerError)),
            record("first", 1, Outcome::Ok)
        ]
    );
    let state = cascade.provider_state(hedge.as_ref()).await;
    assert_eq!(state.failures, 1, "the breaker counts the hedge's failure");
}

#[tokio::test(start_paused = true)]
async fn when_both_fail_the_cascade_goes_on_as_without_hedging() {
    let first = Arc::new(Fake::new("first", vec![later(2, server_error())]));
    let hedge = Arc::new(Fake::new("hedge", vec![server_error()]));
    let last = Arc::new(Fake::new("last", vec![Step::Reply("last")]));
    let config = hedged().with_max_attempts(1);
    let cascade = cascade(vec![first.clone(), hedge.clone(), last.clone()], config);
    let answer = cascade
        .chat(hi())
        .await
        .expect("the third provider answers");
    assert_eq!(answer.text(), "last");
    assert_eq!(hedge.calls(), 1, "the hedge's attempt was its turn's first");
    let failed = Outcome::Failed(ErrorKind::ServerError);
    assert_eq!(
        outcomes(&answer.attempts),
        [
            record("hedge", 1, failed),
            record("first", 1, failed),
            record("last", 1, Outcome::Ok)
        ]
    );
    let moved = Some(Decision::NextProvider {
        reason: MoveReason::AttemptsExhausted,
    });
    assert_eq!(answer.attempts[0].decision, moved);
    assert_eq!(answer.attempts[1].decision, moved);
}

#[tokio::test(start_paused = true)]
async fn hedging_never_passes_the_deadline() {
    let slow = Arc::new(Fake::new("slow", vec![Step::Hang]));
    let slower = Arc::new(Fake::new("slower", vec![Step::Hang]));
    let deadline = Duration::from_secs(3);
    let cascade = cascade(
        vec![slow.clone(), slower.clone()],
        hedged().with_deadline(deadline),
    );
    let started = Instant::now();
    let report = cascade.chat(hi()).await.expect_err("nothing answers");
    assert_eq!(started.elapsed(), deadline);
    let timeout = Outcome::Failed(ErrorKind::Timeout);
    assert!(
        report.attempts.iter().all(|a| a.outcome == timeout),
        "{:?}",
        report.attempts
    );
    assert_eq!(report.attempts.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_spent_retry_budget_starts_no_hedge() {
    // Eleven attempts that fail at once: ten retries spend the budget's reserve (rate limits without
    // a wait hint: retried, and neither cooling nor the breaker skips the provider afterwards).
    let mut script = vec![Step::Fail(ErrorKind::RateLimit, Some(429), None); 11];
    script.push(Step::Hang);
    let flaky = Arc::new(Fake::new("flaky", script));
    let other = Arc::new(Fake::new(
        "other",
        vec![Step::Reply("one"), Step::Reply("two")],
    ));
    let config = hedged().with_max_attempts(11);
    let cascade = cascade(vec![flaky.clone(), other.clone()], config);
    assert_eq!(cascade.chat(hi()).await.expect("answer").text(), "one");
    let started = Instant::now();
    let answer = cascade.chat(hi()).await.expect("answer");
    assert_eq!(answer.text(), "two");
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(5),
        "no hedge: the provider's own timeout ran out"
    );
    assert_eq!(
        outcomes(&answer.attempts),
        [
            record("flaky", 1, Outcome::Failed(ErrorKind::Timeout)),
            record("other", 1, Outcome::Ok)
        ]
    );
}

/// Opens `groq`'s breaker in `store` (its first four steps must fail) and lets its cooldown pass: the
/// next check of `groq` makes that call the half-open probe. (Cascades made before this see the time
/// pass; their state clocks start at the wall clock of their making.)
async fn open_then_half_open(groq: &Arc<Fake>, store: &Arc<MemoryStore>) {
    let backup = Arc::new(Fake::new(
        "backup",
        vec![Step::Reply("1"), Step::Reply("2")],
    ));
    let opener = cascade(vec![groq.clone(), backup], fast_config()).with_state_store(store.clone());
    // Two attempts per call: the third consecutive failure opens the breaker.
    opener.chat(hi()).await.expect("the backup answers");
    opener.chat(hi()).await.expect("the backup answers");
    tokio::time::advance(Duration::from_secs(31)).await;
}

#[tokio::test(start_paused = true)]
async fn a_half_open_probe_that_loses_the_race_hands_the_probe_back() {
    let groq = Arc::new(Fake::new(
        "groq",
        [
            vec![server_error(); 4],
            vec![Step::Hang, Step::Reply("probe ok")],
        ]
        .concat(),
    ));
    let quick = Arc::new(Fake::new("quick", vec![Step::Reply("quick")]));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(vec![groq.clone(), quick], hedged()).with_state_store(store.clone());
    open_then_half_open(&groq, &store).await;
    let raced = cascade.chat(hi()).await.expect("the hedge answers");
    assert_eq!(
        outcomes(&raced.attempts)[0],
        record("groq", 1, Outcome::Cancelled)
    );
    // Without the probe handed back, groq would be skipped as "circuit open" for the probe's hold.
    let probe = cascade.chat(hi()).await.expect("the next call probes");
    assert_eq!(probe.text(), "probe ok");
    assert_eq!(groq.calls(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_that_was_the_probe_and_loses_hands_the_probe_back() {
    let groq = Arc::new(Fake::new(
        "groq",
        [vec![server_error(); 4], vec![Step::Hang]].concat(),
    ));
    let first = Arc::new(Fake::new("first", vec![later(2, Step::Reply("first"))]));
    let store = Arc::new(MemoryStore::default());
    let cascade = cascade(vec![first, groq.clone()], hedged()).with_state_store(store.clone());
    open_then_half_open(&groq, &store).await;
    let answer = cascade.chat(hi()).await.expect("the first answers");
    assert_eq!(
        outcomes(&answer.attempts)[0],
        record("groq", 1, Outcome::Cancelled)
    );
    let state = cascade.provider_state(groq.as_ref()).await;
    assert_eq!(state.probe_until_ms, None, "the probe is free again");
    assert!(state.open_until_ms.is_some(), "and the breaker still open");
}
