//! The library's surface: one error type through `?`, the answer's text, where the hint says to set keys.

use llm_cascade::{Cascade, CascadeError, Category, ChatRequest, ErrorKind, MapEnv};

use crate::fake::{Fake, Step};

/// What a caller writes: build from settings and ask, with one error type.
async fn ask(env: &MapEnv, prompt: &str) -> Result<String, CascadeError> {
    let cascade = Cascade::from_env_source(env)?;
    let answer = cascade.chat(ChatRequest::from_prompt(prompt)).await?;
    Ok(answer.text().to_owned())
}

#[tokio::test]
async fn a_build_error_arrives_through_question_mark_as_a_cascade_error() {
    let env = MapEnv::new().with("LLM_MAX_ATTEMPTS", "0");
    let report = ask(&env, "hi").await.expect_err("invalid settings");
    assert_eq!(report.kind, ErrorKind::Config);
    assert_eq!(report.category, Category::Config);
    assert!(report.attempts.is_empty());
    assert!(report.message.contains("LLM_MAX_ATTEMPTS"), "{report}");
    assert_eq!(report.hint, ErrorKind::Config.advice());
}

#[tokio::test]
async fn an_empty_chain_says_where_keys_are_read_from() {
    let report = ask(&MapEnv::new(), "hi").await.expect_err("no provider");
    assert!(
        report.hint.contains(", in the environment."),
        "{}",
        report.hint
    );
    assert!(!report.hint.contains(".env"), "{}", report.hint);

    let cascade = Cascade::from_env_source(&MapEnv::new())
        .expect("builds")
        .configured_in(llm_cascade::DOTENV_SOURCE);
    let report = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("no provider");
    assert!(
        report.hint.contains(", in the environment or a .env file."),
        "{}",
        report.hint
    );
}

#[tokio::test]
async fn the_builder_answers_with_text() {
    let cascade = Cascade::builder()
        .provider(Fake::new("groq", vec![Step::Reply("hello")]))
        .build();
    let answer = cascade
        .chat(ChatRequest::from_prompt("hi"))
        .await
        .expect("answer");
    assert_eq!(answer.text(), "hello");
}
