//! Only a complete answer passes: empty answers and cuts are failures, token-limit cuts are flagged
//! successes, and a streamed answer is bounded.

use std::sync::Arc;

use futures_util::StreamExt;
use llm_cascade::{
    CascadeConfig, ChatRequest, Decision, ErrorKind, FinishReason, MoveReason, Outcome, StreamEvent,
};

use crate::fake::{Fake, Item, Step, cascade, fast_config, outcomes};

#[tokio::test(start_paused = true)]
async fn an_empty_answer_is_retried_then_the_next_provider_answers() {
    let empty = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Answer("", FinishReason::Stop),
            Step::Answer("", FinishReason::Other("unknown".into())),
        ],
    ));
    let good = Arc::new(Fake::new("openai", vec![Step::Reply("hello")]));
    let result = cascade(vec![empty.clone(), good], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("openai answers");
    assert_eq!(result.response.content, "hello");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            (
                "groq".into(),
                1,
                Outcome::Failed(ErrorKind::MalformedAnswer)
            ),
            (
                "groq".into(),
                2,
                Outcome::Failed(ErrorKind::MalformedAnswer)
            ),
            ("openai".into(), 1, Outcome::Ok),
        ]
    );
    assert_eq!(
        result.attempts[0].message.as_deref(),
        Some("the provider returned an empty answer")
    );
    assert_eq!(empty.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_empty_filtered_answer_moves_on_with_the_fallback_flag_and_a_tool_call_is_an_answer() {
    let filtered = Arc::new(Fake::new(
        "gemini",
        vec![Step::Answer("", FinishReason::ContentFilter)],
    ));
    let tool = Arc::new(Fake::new(
        "openai",
        vec![Step::Answer("", FinishReason::ToolCalls)],
    ));
    let config = fast_config().with_content_filter_fallback(true);
    let result = cascade(vec![filtered, tool], config)
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("a tool call is an answer");
    assert_eq!(result.response.finish_reason, FinishReason::ToolCalls);
    assert_eq!(
        result.attempts[0].outcome,
        Outcome::Failed(ErrorKind::ContentFilter)
    );
    assert_eq!(
        result.attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::NotRetryable
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_truncated_answer_is_retried() {
    let flaky = Arc::new(Fake::new(
        "anthropic",
        vec![
            Step::Fail(ErrorKind::StreamTruncated, None, None),
            Step::Reply("whole"),
        ],
    ));
    let result = cascade(vec![flaky.clone()], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("the retry answers");
    assert_eq!(result.response.content, "whole");
    assert_eq!(
        outcomes(&result.attempts),
        vec![
            (
                "anthropic".into(),
                1,
                Outcome::Failed(ErrorKind::StreamTruncated)
            ),
            ("anthropic".into(), 2, Outcome::Ok),
        ]
    );
    assert!(matches!(
        result.attempts[0].decision,
        Some(Decision::Retry { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_token_limit_cut_is_a_flagged_success() {
    let cut = Arc::new(Fake::new(
        "ollama",
        vec![Step::Answer("Once upon a", FinishReason::Length)],
    ));
    let spare = Arc::new(Fake::new("openai", vec![]));
    let result = cascade(vec![cut, spare.clone()], fast_config())
        .chat(ChatRequest::from_prompt("a long story"))
        .await
        .expect("a cut answer is still an answer");
    assert_eq!(result.response.content, "Once upon a");
    assert!(result.response.finish_reason.is_truncated());
    assert_eq!(result.attempts.len(), 1);
    assert_eq!(spare.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stream_finishing_before_any_text_is_an_empty_answer() {
    let empty = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![Item::Text(""), Item::Finish]),
            Step::Stream(vec![Item::FinishWith(FinishReason::Length)]),
        ],
    ));
    let good = Arc::new(Fake::new(
        "openai",
        vec![Step::Stream(vec![
            Item::Text("hi"),
            Item::FinishWith(FinishReason::Length),
        ])],
    ));
    let stream = cascade(vec![empty.clone(), good], fast_config())
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("openai streams");
    assert_eq!(stream.provider(), "openai");
    assert_eq!(
        outcomes(&stream.attempts()),
        vec![
            (
                "groq".into(),
                1,
                Outcome::Failed(ErrorKind::MalformedAnswer)
            ),
            (
                "groq".into(),
                2,
                Outcome::Failed(ErrorKind::MalformedAnswer)
            ),
            ("openai".into(), 1, Outcome::Ok),
        ]
    );
    let items: Vec<_> = stream.collect().await;
    assert!(matches!(
        items.last(),
        Some(Ok(StreamEvent::Finish { reason, .. })) if reason.is_truncated()
    ));
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_passes_the_answer_bound_ends_with_an_error() {
    let endless = Arc::new(Fake::new(
        "lmstudio",
        vec![Step::Stream(vec![
            Item::Text("0123456789"),
            Item::Text("0123456789"),
            Item::Text("x"),
            Item::Text("never read"),
            Item::Finish,
        ])],
    ));
    let config = fast_config().with_max_answer_bytes(20);
    let mut stream = cascade(vec![endless], config)
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect("starts");
    let mut texts = Vec::new();
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Delta { text }) => texts.push(text),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => error = Some(e),
        }
    }
    assert_eq!(
        texts,
        vec!["0123456789", "0123456789"],
        "20 bytes pass, 21 do not"
    );
    let error = error.expect("the bound is an error, never a silent cut");
    assert_eq!(error.kind(), ErrorKind::MalformedAnswer);
    assert!(
        error.message().contains("20 bytes") && error.message().contains("LLM_MAX_ANSWER_BYTES"),
        "{error}"
    );
    assert_eq!(
        stream.attempts().last().map(|a| a.outcome),
        Some(Outcome::Failed(ErrorKind::MalformedAnswer))
    );
}

#[test]
fn the_answer_bound_is_read_from_the_environment() {
    let config = CascadeConfig::from_env(&llm_cascade::MapEnv::new()).expect("config");
    assert_eq!(config.max_answer_bytes, 16 * 1024 * 1024);
    let env = llm_cascade::MapEnv::new().with("LLM_MAX_ANSWER_BYTES", "1024");
    assert_eq!(
        CascadeConfig::from_env(&env)
            .expect("config")
            .max_answer_bytes,
        1024
    );
    for bad in ["0", "16MiB", "-1"] {
        let env = llm_cascade::MapEnv::new().with("LLM_MAX_ANSWER_BYTES", bad);
        let err = CascadeConfig::from_env(&env).expect_err(bad);
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().starts_with("LLM_MAX_ANSWER_BYTES"), "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_content_filter_refusal_is_final_by_default() {
    let filtered = Arc::new(Fake::new(
        "openai",
        vec![Step::Fail(ErrorKind::ContentFilter, Some(400), None)],
    ));
    let spare = Arc::new(Fake::new("groq", vec![]));
    let report = cascade(vec![filtered, spare.clone()], fast_config())
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("the refusal is the answer");
    assert_eq!(spare.calls(), 0, "no other provider is asked");
    assert_eq!(report.category, llm_cascade::Category::ContentFilter);
    assert_eq!(report.category.http_status(), 400);
    assert_eq!(report.kind, ErrorKind::ContentFilter);
    assert_eq!(report.attempts.len(), 1);
    assert_eq!(report.attempts[0].decision, Some(Decision::Stop));
    assert_eq!(report.attempts[0].status, Some(400));
    assert!(
        report.message.contains("scripted content_filter"),
        "{}",
        report.message
    );
}
