//! The qwen2 architecture (Qwen2.5) on a tiny generated file: `tests/data/tiny-qwen2.gguf`, written by
//! `tests/data/make_tiny_qwen2.py` (committed: 111 KB, random weights, real format). It cannot answer
//! sensibly; these tests check that it loads, streams tokens and keeps to its context window.

use futures_util::StreamExt;
use llm_core::{
    ChatRequest, ErrorKind, FinishReason, MapEnv, Message, Provider, StreamEvent, Usage,
};
use llm_provider_local::Local;

/// The file's context window (`qwen2.context_length`).
const CONTEXT: u64 = 64;

fn tiny_qwen2() -> Local {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-qwen2.gguf");
    let env = MapEnv::new()
        .with("LOCAL_MODEL_PATH", path)
        .with("LOCAL_QUEUE", "32");
    Local::from_env(&env).expect("config")
}

fn greedy(messages: Vec<Message>, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        messages,
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        ..ChatRequest::default()
    }
}

/// The events of one streamed answer, all of them successes.
async fn events(request: &ChatRequest) -> Vec<StreamEvent> {
    let stream = tiny_qwen2().chat_stream(request).await.expect("stream");
    stream.map(|e| e.expect("event")).collect().await
}

fn usage(events: &[StreamEvent]) -> Usage {
    events
        .iter()
        .find_map(|e| match e {
            StreamEvent::Usage { usage } => Some(*usage),
            _ => None,
        })
        .expect("a usage event")
}

fn finish(events: &[StreamEvent]) -> FinishReason {
    match events.last() {
        Some(StreamEvent::Finish { reason, .. }) => reason.clone(),
        other => panic!("the stream ends in {other:?}, not a finish"),
    }
}

#[tokio::test]
async fn a_qwen2_file_loads_and_streams_tokens_up_to_max_tokens() {
    let events = events(&greedy(vec![Message::user("Hello, how are you?")], 6)).await;
    let deltas: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    // One delta per token: the file's vocabulary lets it generate only whole ASCII tokens.
    assert_eq!(deltas.len(), 6, "{deltas:?}");
    assert!(deltas.iter().all(|d| !d.is_empty()), "{deltas:?}");
    assert_eq!(usage(&events).output_tokens, 6);
    assert_eq!(finish(&events), FinishReason::Length);
    let finishes = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Finish { .. }))
        .count();
    assert_eq!(finishes, 1);
}

#[tokio::test]
async fn greedy_decoding_on_qwen2_is_deterministic() {
    let request = greedy(vec![Message::user("Hello")], 8);
    let first = tiny_qwen2().chat(&request).await.expect("answer");
    let second = tiny_qwen2().chat(&request).await.expect("answer");
    assert_eq!(first.content, second.content);
    assert_eq!(first.provider, "local");
}

#[tokio::test]
async fn an_answer_that_reaches_the_context_window_stops_there_with_length() {
    let events = events(&greedy(vec![Message::user("The sky is blue.")], 1000)).await;
    let usage = usage(&events);
    assert!(
        usage.input_tokens > 0 && usage.input_tokens < CONTEXT,
        "{usage:?}"
    );
    assert_eq!(
        usage.input_tokens + usage.output_tokens,
        CONTEXT,
        "{usage:?}"
    );
    assert_eq!(finish(&events), FinishReason::Length);
}

#[tokio::test]
async fn a_prompt_beyond_the_qwen2_context_window_is_context_length() {
    let error = tiny_qwen2()
        .chat(&greedy(vec![Message::user("word ".repeat(80))], 4))
        .await
        .expect_err("too long");
    assert_eq!(error.kind(), ErrorKind::ContextLength);
    assert!(
        error.message().contains("context window is 64"),
        "{}",
        error.message()
    );
}
