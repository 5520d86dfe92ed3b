//! The provider answering with the real SmolLM2-135M-Instruct GGUF.

use futures_util::StreamExt;
use llm_core::{ChatRequest, ErrorKind, FinishReason, MapEnv, Provider, StreamEvent};
use llm_provider_local::Local;

use crate::support::model_file;

/// The provider over `path` with a queue deep enough for every test of this binary at once.
fn local(path: &std::path::Path) -> Local {
    let env = MapEnv::new()
        .with("LOCAL_MODEL_PATH", path.display().to_string())
        .with("LOCAL_QUEUE", "32");
    Local::from_env(&env).expect("config")
}

fn greedy(prompt: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        temperature: Some(0.0),
        max_tokens: Some(max_tokens),
        ..ChatRequest::from_prompt(prompt)
    }
}

/// Guards the chat template and tokenizer: a broken one makes even these answers wrong.
#[tokio::test]
async fn greedy_answers_to_simple_questions_are_right() {
    let Some(path) = model_file() else { return };
    let local = local(&path);
    for (question, expected) in [
        ("What is the capital of France?", "Paris"),
        ("What is the capital of Japan?", "Tokyo"),
        ("What color is the sky on a clear day?", "blue"),
    ] {
        let answer = local.chat(&greedy(question, 48)).await.expect("answer");
        assert!(
            answer.content.contains(expected),
            "{question} -> {:?}",
            answer.content
        );
        assert_eq!(answer.provider, "local");
    }
}

#[tokio::test]
async fn a_stream_ends_in_one_finish_with_length_when_max_tokens_cut_it() {
    let Some(path) = model_file() else { return };
    let stream = local(&path)
        .chat_stream(&greedy("Write a long story about a dragon.", 5))
        .await
        .expect("stream");
    let events: Vec<StreamEvent> = stream.map(|e| e.expect("event")).collect().await;
    let finishes: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Finish { .. }))
        .collect();
    assert_eq!(finishes.len(), 1);
    assert!(matches!(
        events.last(),
        Some(StreamEvent::Finish {
            reason: FinishReason::Length,
            ..
        })
    ));
    let usage = events.iter().find_map(|e| match e {
        StreamEvent::Usage { usage } => Some(*usage),
        _ => None,
    });
    assert_eq!(usage.map(|u| u.output_tokens), Some(5));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Delta { .. }))
    );
}

#[tokio::test]
async fn a_stop_sequence_ends_the_answer_before_it() {
    let Some(path) = model_file() else { return };
    let request = ChatRequest {
        stop: vec!["Paris".to_owned()],
        ..greedy("What is the capital of France?", 48)
    };
    let answer = local(&path).chat(&request).await.expect("answer");
    assert!(!answer.content.contains("Paris"), "{:?}", answer.content);
    assert_eq!(answer.finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn the_same_seed_and_temperature_give_the_same_answer() {
    let Some(path) = model_file() else { return };
    let request = ChatRequest {
        temperature: Some(0.9),
        ..greedy("Name an animal.", 12)
    };
    let local = local(&path);
    let first = local.chat(&request).await.expect("answer");
    let second = local.chat(&request).await.expect("answer");
    assert_eq!(first.content, second.content);
}

#[tokio::test]
async fn a_prompt_beyond_the_context_window_is_context_length() {
    let Some(path) = model_file() else { return };
    let prompt = "word ".repeat(5000);
    let error = local(&path)
        .chat(&greedy(&prompt, 8))
        .await
        .expect_err("too long");
    assert_eq!(error.kind(), ErrorKind::ContextLength);
    assert!(
        error.message().contains("context window"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn a_full_queue_is_overloaded() {
    let Some(path) = model_file() else { return };
    // Its own file name, so its own model thread with a queue of one.
    let dir = tempfile::tempdir().expect("dir");
    let link = dir.path().join("queued.gguf");
    std::os::unix::fs::symlink(&path, &link).expect("symlink");
    let env = MapEnv::new()
        .with("LOCAL_MODEL_PATH", link.display().to_string())
        .with("LOCAL_QUEUE", "1");
    let local = Local::from_env(&env).expect("config");
    let request = greedy("Count to one hundred.", 64);
    let mut kept = Vec::new();
    let mut overloaded = 0;
    for _ in 0..3 {
        match local.chat_stream(&request).await {
            Ok(stream) => kept.push(stream),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::Overloaded);
                overloaded += 1;
            }
        }
    }
    // At most one runs and one waits.
    assert!(overloaded >= 1, "{overloaded} refused");
    for stream in kept {
        let events: Vec<_> = stream.collect().await;
        assert!(events.iter().all(Result::is_ok));
    }
}

#[tokio::test]
async fn a_missing_file_is_model_not_found_and_a_given_path_is_never_downloaded() {
    let env = MapEnv::new().with("LOCAL_MODEL_PATH", "/nonexistent/model.gguf");
    let local = Local::from_env(&env).expect("config");
    let error = local
        .chat(&ChatRequest::from_prompt("hi"))
        .await
        .expect_err("missing");
    assert_eq!(error.kind(), ErrorKind::ModelNotFound);
    assert!(!local.can_prepare(&error));
    assert!(
        error.message().ends_with("check LOCAL_MODEL_PATH"),
        "{}",
        error.message()
    );
    let env = MapEnv::new().with("LOCAL_MODEL_DIR", "/nonexistent-dir");
    let local = Local::from_env(&env).expect("config");
    let error = local
        .chat(&ChatRequest::from_prompt("hi"))
        .await
        .expect_err("missing");
    assert!(
        local.can_prepare(&error),
        "a derived path may be downloaded"
    );
    // What to do comes first, so that a table's 60-character cut keeps it.
    assert!(
        error
            .message()
            .starts_with("not downloaded yet: run `cascade pull local`"),
        "{}",
        error.message()
    );
}
