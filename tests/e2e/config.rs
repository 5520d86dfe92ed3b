//! Configuration that is wrong is an error (exit 2, naming the variable and the accepted values),
//! never a silent default that lets another provider answer.

use llm_test_support::CANARY_KEY;

use crate::harness::{Run, cascade, fast, locals_down, order, provider};

/// A configuration that would answer if it were valid: OpenAI at an address nothing listens on
/// (a run that got past configuration would fail with exit 1, not 2).
fn configured() -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(locals_down());
    env.extend(provider("OPENAI", "http://127.0.0.1:9/v1".to_owned()));
    env
}

fn with(mut env: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
    env.push((name.to_owned(), value.to_owned()));
    env
}

/// Asserts a config failure (exit 2, category `config`) whose message starts with `start` and
/// contains every one of `parts`; returns the message.
fn assert_config_error(run: &Run, start: &str, parts: &[&str]) -> String {
    assert_eq!(
        run.code,
        Some(2),
        "stdout: {}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    let json = run.json();
    assert_eq!(json["error"], "config", "{json}");
    let message = json["message"].as_str().expect("message").to_owned();
    assert!(message.starts_with(start), "{message}");
    for part in parts {
        assert!(message.contains(part), "`{part}` missing from: {message}");
    }
    run.assert_no_key();
    message
}

#[cfg(unix)]
#[tokio::test]
async fn a_value_that_is_not_utf8_is_an_error_naming_its_variable() {
    use crate::harness::cascade_with_raw_env;

    let mut key = CANARY_KEY.as_bytes().to_vec();
    key.push(0xff);
    let cases: [(&str, &[u8]); 5] = [
        ("LLM_FALLBACK_ORDER", b"openai,\xffgroq"),
        ("LLM_MAX_ATTEMPTS", b"\xff"),
        ("LLM_USAGE_LOG_CONTENT", b"tr\xffue"),
        ("LLM_DEFAULT_PROVIDER", b"\xfe"),
        ("OPENAI_API_KEY", &key),
    ];
    for (name, value) in cases {
        let env: Vec<_> = configured()
            .into_iter()
            .filter(|(k, _)| k != name)
            .collect();
        let run = cascade_with_raw_env(&["ask", "--json", "hi"], &env, &[(name, value)]).await;
        let expected = format!("{name} is set but is not valid UTF-8");
        if name == "LLM_USAGE_LOG_CONTENT" {
            // Read before any command runs: the report goes to stderr.
            assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
            assert!(run.stderr.contains(&expected), "{}", run.stderr);
        } else {
            assert_config_error(&run, &expected, &[]);
        }
    }
}

#[tokio::test]
async fn zero_timeouts_are_rejected() {
    for name in [
        "LLM_DEADLINE",
        "LLM_FIRST_TOKEN_TIMEOUT",
        "LLM_STREAM_IDLE_TIMEOUT",
        "OPENAI_TIMEOUT",
    ] {
        let run = cascade(&["ask", "--json", "hi"], &with(configured(), name, "0")).await;
        assert_config_error(&run, &format!("{name}: "), &["above zero", "500ms"]);
    }
}

#[tokio::test]
async fn temperatures_and_token_limits_outside_their_range_are_rejected() {
    for bad in ["NaN", "99", "-1"] {
        let run = cascade(
            &["ask", "--json", "hi"],
            &with(configured(), "LLM_TEMPERATURE", bad),
        )
        .await;
        assert_config_error(&run, "LLM_TEMPERATURE: ", &["from 0 to 2"]);
    }
    let run = cascade(
        &["ask", "--json", "hi"],
        &with(configured(), "LLM_MAX_TOKENS", "0"),
    )
    .await;
    assert_config_error(&run, "LLM_MAX_TOKENS: ", &["at least 1"]);
    for flags in [["--temperature", "99"], ["--max-tokens", "0"]] {
        let run = cascade(&["ask", flags[0], flags[1], "hi"], &configured()).await;
        assert_eq!(run.code, Some(2), "stderr: {}", run.stderr);
        assert!(
            run.stderr.contains(flags[0])
                && (run.stderr.contains("from 0 to 2") || run.stderr.contains("at least 1")),
            "{}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn an_order_of_only_commas_is_a_config_error() {
    let run = cascade(
        &["ask", "--json", "hi"],
        &with(configured(), "LLM_FALLBACK_ORDER", ",,,"),
    )
    .await;
    assert_config_error(&run, "LLM_FALLBACK_ORDER names no provider", &["openai"]);
}

#[tokio::test]
async fn a_default_provider_that_is_not_configured_is_an_error() {
    let env = with(configured(), "LLM_DEFAULT_PROVIDER", "groq");
    for args in [&["ask", "--json", "hi"][..], &["providers", "--json"][..]] {
        let run = cascade(args, &env).await;
        assert_config_error(
            &run,
            "LLM_DEFAULT_PROVIDER: groq is not configured",
            &["GROQ_API_KEY"],
        );
    }
}

#[tokio::test]
async fn cascade_test_blames_its_argument() {
    let run = cascade(&["test", "--json", "openai", "nope"], &configured()).await;
    let message = assert_config_error(
        &run,
        "cascade test nope: unknown provider `nope`",
        &["openai"],
    );
    assert!(!message.contains("LLM_FALLBACK_ORDER"), "{message}");
}

#[tokio::test]
async fn only_local_servers_that_are_down_is_a_config_headline() {
    let mut env = fast();
    env.extend(locals_down());
    env.push(order("ollama,lmstudio"));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["error"], "config");
    assert!(
        json["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("no provider is configured: only local servers")),
        "{json}"
    );
    assert_eq!(json["attempts"].as_array().map(Vec::len), Some(2));
    assert!(
        json["hint"]
            .as_str()
            .is_some_and(|h| h.contains("OPENAI_API_KEY")),
        "{json}"
    );
}
