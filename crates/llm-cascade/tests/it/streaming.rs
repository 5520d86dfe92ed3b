//! Stream fallback before the first token, errors after it, and the stream timeouts.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use llm_cascade::{
    CascadeBuilder, CascadeConfig, ChatRequest, ErrorKind, Outcome, StreamEvent, StreamRecovery,
};

use crate::fake::{Fake, Item, Step, fast_config};

/// The settings before streams recovered: a failure after the first token ends the answer.
fn no_recovery() -> CascadeConfig {
    fast_config().with_stream_recovery(StreamRecovery::Off)
}

async fn collect(stream: llm_cascade::CascadeStream) -> (Vec<String>, Option<ErrorKind>) {
    let items: Vec<_> = stream.collect().await;
    let texts = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Delta { text }) => Some(text.clone()),
            _ => None,
        })
        .collect();
    (
        texts,
        items
            .iter()
            .find_map(|i| i.as_ref().err().map(|e| e.kind())),
    )
}

#[tokio::test(start_paused = true)]
async fn failure_before_the_first_token_falls_over_invisibly() {
    let broken = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![Item::Error(ErrorKind::Overloaded)]),
            Step::Stream(vec![Item::Error(ErrorKind::Overloaded)]),
        ],
    ));
    let good = Arc::new(Fake::new(
        "openai",
        vec![Step::Stream(vec![
            Item::Text("he"),
            Item::Text("llo"),
            Item::Finish,
        ])],
    ));
    let cascade = CascadeBuilder::new()
        .config(fast_config())
        .provider_arc(broken)
        .provider_arc(good)
        .build();
    let stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("a provider streams");
    assert_eq!(stream.provider(), "openai");
    let attempts = stream.attempts();
    let (texts, error) = collect(stream).await;
    assert_eq!(
        (texts, error),
        (vec!["he".to_owned(), "llo".to_owned()], None)
    );
    assert_eq!(
        attempts.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![
            Outcome::Failed(ErrorKind::Overloaded),
            Outcome::Failed(ErrorKind::Overloaded),
            Outcome::Ok
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn with_recovery_off_a_failure_after_the_first_token_is_an_error_in_the_stream() {
    let cut = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![
            Item::Text("partial"),
            Item::Error(ErrorKind::StreamTruncated),
        ])],
    ));
    let spare = Arc::new(Fake::new("openai", vec![]));
    let cascade = CascadeBuilder::new()
        .config(no_recovery())
        .provider_arc(cut)
        .provider_arc(spare.clone())
        .build();
    let stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    assert_eq!(
        stream.attempts().last().map(|a| a.outcome),
        Some(Outcome::Ok)
    );
    let record = collect(stream).await;
    assert_eq!(
        record,
        (vec!["partial".to_owned()], Some(ErrorKind::StreamTruncated))
    );
    assert_eq!(
        spare.calls(),
        0,
        "no silent restart on another provider after text was shown"
    );
}

#[tokio::test(start_paused = true)]
async fn the_attempt_record_reflects_a_late_failure() {
    let cut = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![
            Item::Text("partial"),
            Item::Error(ErrorKind::StreamTruncated),
        ])],
    ));
    let cascade = CascadeBuilder::new()
        .config(no_recovery())
        .provider_arc(cut)
        .build();
    let mut stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    while stream.next().await.is_some() {}
    assert_eq!(
        stream.attempts().last().map(|a| a.outcome),
        Some(Outcome::Failed(ErrorKind::StreamTruncated))
    );
}

#[tokio::test(start_paused = true)]
async fn no_first_token_in_time_moves_on() {
    let silent = Arc::new(Fake::new("gemini", vec![Step::Stream(vec![Item::Stall])]));
    let good = Arc::new(Fake::new(
        "mistral",
        vec![Step::Stream(vec![Item::Text("ok"), Item::Finish])],
    ));
    let config = fast_config().with_first_token_timeout(Duration::from_millis(50));
    let cascade = CascadeBuilder::new()
        .config(config)
        .provider_arc(silent)
        .provider_arc(good)
        .build();
    let stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("falls over");
    assert_eq!(stream.provider(), "mistral");
    let first = stream.attempts()[0].clone();
    assert_eq!(first.outcome, Outcome::Failed(ErrorKind::Timeout));
    assert!(
        first
            .message
            .as_deref()
            .is_some_and(|m| m.contains("first token")),
        "{first:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_recovery_off_a_stalled_stream_is_an_error() {
    let stalls = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![Item::Text("start"), Item::Stall])],
    ));
    let config = no_recovery().with_stream_idle_timeout(Duration::from_millis(50));
    let cascade = CascadeBuilder::new()
        .config(config)
        .provider_arc(stalls)
        .build();
    let stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    let (texts, error) = collect(stream).await;
    assert_eq!(
        (texts, error),
        (vec!["start".to_owned()], Some(ErrorKind::Timeout))
    );
}

/// The attempts of every `AttemptFinished` event `cascade` emits.
fn finished_attempts(
    cascade: llm_cascade::Cascade,
) -> (
    llm_cascade::Cascade,
    Arc<std::sync::Mutex<Vec<llm_cascade::Attempt>>>,
) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    let cascade = cascade.with_observer(Arc::new(move |e: &llm_cascade::CascadeEvent| {
        if let llm_cascade::CascadeEvent::AttemptFinished { attempt, .. } = e {
            sink.lock().expect("lock").push(attempt.clone());
        }
    }));
    (cascade, seen)
}

#[tokio::test(start_paused = true)]
async fn a_stream_dropped_before_its_end_is_recorded_once_as_cancelled() {
    let long = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![
            Item::Text("one"),
            Item::Text("two"),
            Item::Finish,
        ])],
    ));
    let (cascade, seen) = finished_attempts(
        CascadeBuilder::new()
            .config(fast_config())
            .provider_arc(long)
            .build(),
    );
    let mut stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    assert!(matches!(
        stream.next().await,
        Some(Ok(StreamEvent::Delta { .. }))
    ));
    assert!(
        seen.lock().expect("lock").is_empty(),
        "nothing finished yet"
    );
    drop(stream);
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].outcome, Outcome::Cancelled);
    assert_eq!(
        serde_json::to_value(&seen[0]).expect("json")["outcome"],
        "cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_read_to_its_end_is_recorded_once_and_not_cancelled() {
    let good = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![Item::Text("one"), Item::Finish])],
    ));
    let (cascade, seen) = finished_attempts(
        CascadeBuilder::new()
            .config(fast_config())
            .provider_arc(good)
            .build(),
    );
    let stream = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    let _ = collect(stream).await;
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(
        seen.iter().map(|a| a.outcome).collect::<Vec<_>>(),
        vec![Outcome::Ok]
    );
}

#[tokio::test(start_paused = true)]
async fn a_provider_stream_that_just_stops_is_truncated_not_complete() {
    let quiet_end = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![Item::Text("half an ans")])],
    ));
    let stream = CascadeBuilder::new()
        .config(no_recovery())
        .provider_arc(quiet_end)
        .build()
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    let attempts = stream.attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!(
        collect(stream).await,
        (
            vec!["half an ans".to_owned()],
            Some(ErrorKind::StreamTruncated)
        )
    );
}

#[tokio::test(start_paused = true)]
async fn a_key_echoed_piece_by_piece_across_deltas_is_redacted() {
    // A secret of this test's own (the registry is global to the test process), starting with a
    // character no other test's delta ends with, so that their deltas are never held back.
    llm_core::register_secret("~echoed-key-4f2a9c7e");
    let echo = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![
            Item::Text("your key is ~echo"),
            Item::Text("ed-key-4f"),
            Item::Text("2a9c7e, and ~"),
            Item::Finish,
        ])],
    ));
    let cascade = CascadeBuilder::new()
        .config(fast_config())
        .provider_arc(echo)
        .build();
    let items: Vec<_> = cascade
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("stream")
        .collect()
        .await;
    let texts: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            Ok(StreamEvent::Delta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["your key is ", "[REDACTED], and ", "~"]);
    // The last held byte (it could have begun the key) goes out before the end, not lost.
    assert!(matches!(items.last(), Some(Ok(StreamEvent::Finish { .. }))));
}
