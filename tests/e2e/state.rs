//! Provider state remembered across `cascade` runs (the `provider_state` table of the usage database).

use crate::harness::{cascade_in, fast, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

#[tokio::test]
async fn a_long_rate_limit_is_remembered_by_the_next_run_until_it_has_passed() {
    // Called by the first run and by the third, never by the second.
    let openai = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 2).await;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 3).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));

    let first = cascade_in(dir.path(), &["ask", "--json", "hi"], &env, None).await;
    assert_eq!(first.code, Some(0), "stderr: {}", first.stderr);
    assert_eq!(first.json()["attempts"][0]["outcome"], "rate_limit");

    let second = cascade_in(dir.path(), &["ask", "--json", "hi"], &env, None).await;
    assert_eq!(second.code, Some(0), "stderr: {}", second.stderr);
    let json = second.json();
    assert_eq!(json["attempts"][0]["provider"], "openai");
    assert_eq!(json["attempts"][0]["outcome"], "skipped");
    assert_eq!(json["attempts"][0]["skip"]["reason"], "cooling");
    assert_eq!(json["attempts"][0]["skip"]["source"], "Retry-After");
    let requests = openai.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 1, "the cooling provider was not called");

    // A minute later (the test-only clock offset), the wait has passed: openai is asked again.
    env.push(("LLM_STATE_CLOCK_OFFSET_SECS".to_owned(), "60".to_owned()));
    let third = cascade_in(dir.path(), &["ask", "--json", "hi"], &env, None).await;
    assert_eq!(third.code, Some(0), "stderr: {}", third.stderr);
    assert_eq!(third.json()["attempts"][0]["outcome"], "rate_limit");

    // `cascade providers` shows the remembered state.
    let providers = cascade_in(dir.path(), &["providers", "--json"], &env, None).await;
    assert_eq!(providers.code, Some(0), "stderr: {}", providers.stderr);
    let rows = providers.json();
    let openai_row = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == "openai")
        .expect("openai row")
        .clone();
    assert!(
        openai_row["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("cooling until")),
        "{openai_row}"
    );
}

/// The test Redis (`LLM_TEST_REDIS_URL`, started by `.ci/run`); see
/// [`llm_test_support::required_in_ci`].
fn redis_url() -> Option<String> {
    llm_test_support::required_in_ci("LLM_TEST_REDIS_URL", "a redis-server")
}

#[tokio::test]
async fn with_llm_state_url_runs_on_two_machines_share_a_rate_limit_through_redis() {
    let Some(url) = redis_url() else { return };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let prefix = format!("llm-cascade-e2e:{}:{nanos}:", std::process::id());
    // Called by the first run only.
    let openai = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 1).await;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 2).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));
    env.push(("LLM_STATE_URL".to_owned(), url));
    env.push(("LLM_STATE_PREFIX".to_owned(), prefix));
    // A day's token budget: what the runs used reaches Redis although a process ends at once after
    // its answer (the tokens a store keeps back are flushed before it exits).
    env.push(("GROQ_TPD".to_owned(), "1000000".to_owned()));
    // Two directories, two usage databases: what the second run knows came through Redis.
    let (here, there) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );

    let first = cascade_in(here.path(), &["ask", "--json", "hi"], &env, None).await;
    assert_eq!(first.code, Some(0), "stderr: {}", first.stderr);
    assert_eq!(first.json()["attempts"][0]["outcome"], "rate_limit");

    let second = cascade_in(there.path(), &["ask", "--json", "hi"], &env, None).await;
    assert_eq!(second.code, Some(0), "stderr: {}", second.stderr);
    let json = second.json();
    assert_eq!(json["attempts"][0]["outcome"], "skipped");
    assert_eq!(json["attempts"][0]["skip"]["reason"], "cooling");

    let providers = cascade_in(there.path(), &["providers", "--json"], &env, None).await;
    assert_eq!(providers.code, Some(0), "stderr: {}", providers.stderr);
    let rows = providers.json();
    let openai_row = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == "openai")
        .expect("openai row")
        .clone();
    assert!(
        openai_row["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("cooling until")),
        "{openai_row}"
    );
    let groq_row = rows
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == "groq")
        .expect("groq row")
        .clone();
    let left = groq_row["budget"].as_str().unwrap_or_default();
    assert!(
        left.starts_with("TPD ") && !left.starts_with("TPD 1000000/"),
        "{groq_row}"
    );
}

#[tokio::test]
async fn a_breaker_opens_across_runs_lets_one_probe_through_after_its_cooldown_and_closes() {
    use wiremock::matchers::{method, path};
    // Groq fails three times (once per run), then answers: the probe and the run after it.
    let groq = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("POST"))
        .and(path(GROQ_ROUTE))
        .respond_with(
            llm_test_support::Fixture::load("groq", "error.500.server").response_template(),
        )
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&groq)
        .await;
    llm_test_support::Fixture::load("groq", "chat.success")
        .mount(&groq, "POST", GROQ_ROUTE, 2)
        .await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 4).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("groq,openai"));
    env.push(("LLM_MAX_ATTEMPTS".to_owned(), "1".to_owned()));
    let run = |env: Vec<(String, String)>| {
        let dir = dir.path().to_owned();
        async move {
            let run = cascade_in(&dir, &["ask", "--json", "hi"], &env, None).await;
            assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
            run.json()["attempts"][0].clone()
        }
    };
    let groq_calls = || async { groq.received_requests().await.expect("recording").len() };

    // Three consecutive server errors, one per run: the third opens the breaker (the default 3).
    for _ in 0..3 {
        assert_eq!(run(env.clone()).await["outcome"], "server_error");
    }
    let skipped = run(env.clone()).await;
    assert_eq!(skipped["outcome"], "skipped");
    assert_eq!(skipped["skip"]["reason"], "circuit_open");
    assert_eq!(groq_calls().await, 3, "an open breaker costs no call");

    // After the cooldown (30 s by default; the test-only clock offset): one probe, which answers and
    // closes the breaker; the next run calls groq as usual.
    env.push(("LLM_STATE_CLOCK_OFFSET_SECS".to_owned(), "31".to_owned()));
    assert_eq!(run(env.clone()).await["outcome"], "ok");
    assert_eq!(run(env.clone()).await["outcome"], "ok");
    assert_eq!(groq_calls().await, 5);
}
