//! One cascade for the whole gateway: what one request learns about a provider (a long
//! `Retry-After`) the next request knows, over real provider clients against wiremock replaying
//! captured answers. The calls go over real sockets, so the clock is not paused: no assertion
//! depends on how long anything took.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::time::{SystemTime, UNIX_EPOCH};

use llm_cascade::{Cascade, MapEnv, StateClock};
use llm_gateway::{Gateway, GatewayConfig};
use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::{Value, json};
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

/// A mock provider answering `route` with `fixture`, expecting exactly `times` calls.
async fn upstream(fixture: &Fixture, route: &str, times: u64) -> MockServer {
    let server = MockServer::start().await;
    fixture.mount(&server, "POST", route, times).await;
    server
}

/// A gateway over groq, anthropic and openai (in that order) at these mock servers.
fn gateway(groq: &MockServer, anthropic: &MockServer, openai: &MockServer) -> Gateway {
    let env = MapEnv::new()
        .with("LLM_FALLBACK_ORDER", "groq,anthropic,openai")
        .with("GROQ_API_KEY", CANARY_KEY)
        .with("GROQ_BASE_URL", format!("{}/openai/v1", groq.uri()))
        .with("ANTHROPIC_API_KEY", CANARY_KEY)
        .with("ANTHROPIC_BASE_URL", format!("{}/v1", anthropic.uri()))
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{}/v1", openai.uri()))
        // Every provider fails at most once per request: the mocks' counts are the requests'.
        .with("LLM_MAX_ATTEMPTS", "1")
        // A skip-everything request does not wait for the soonest provider to come back.
        .with("LLM_DEADLINE", "5s")
        .with("OPENAI_RPD", "1000");
    let cascade = Cascade::from_env_source(&env)
        .expect("a cascade")
        .with_state_clock(noon());
    Gateway::new(&cascade, GatewayConfig::default())
}

/// The state clock set to today's noon (UTC), so that no budget window ends during the test.
fn noon() -> StateClock {
    const DAY_MS: i64 = 86_400_000;
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("ms");
    StateClock::with_offset(now / DAY_MS * DAY_MS + DAY_MS / 2 - now)
}

async fn chat(gateway: &Gateway, body: Value) -> (StatusCode, axum::http::HeaderMap, Value) {
    let request = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = gateway.router().oneshot(request).await.expect("response");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).expect("a JSON body");
    (parts.status, parts.headers, json)
}

fn outcomes(attempts: &Value) -> Vec<String> {
    attempts
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| format!("{}:{}", a["provider"], a["outcome"]).replace('"', ""))
        .collect()
}

#[tokio::test]
async fn a_long_retry_after_is_remembered_across_requests_and_sets_the_gateways_retry_after() {
    // The real Groq 429 (body and header names); its illustrative `retry-after: 2` made 20 minutes.
    let groq = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/chat/completions"))
        .respond_with(
            Fixture::load("groq", "error.429.rate_limit")
                .response_template()
                .insert_header("retry-after", "1200"),
        )
        .expect(1)
        .mount(&groq)
        .await;
    let anthropic = upstream(
        &Fixture::load("anthropic", "error.429.rate_limit"),
        "/v1/messages",
        1,
    )
    .await;
    let openai = upstream(
        &Fixture::load("openai", "chat.success"),
        "/v1/chat/completions",
        2,
    )
    .await;
    let gateway = gateway(&groq, &anthropic, &openai);
    let hi = json!([{"role": "user", "content": "hi"}]);

    // 1: this request's order is groq, openai: groq's 429 falls over to openai.
    let (status, headers, body) = chat(
        &gateway,
        json!({"models": ["groq", "openai"], "messages": hi}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-cascade-provider"], "openai");
    assert_eq!(
        outcomes(&body["cascade"]["attempts"]),
        ["groq:rate_limit", "openai:ok"]
    );

    // 2: the whole chain. Groq is still cooling and is not called (its mock expects one call);
    // anthropic's captured 429 asks for 16 s, longer than LLM_MAX_RETRY_WAIT (10 s): it cools too.
    let (status, _, body) = chat(&gateway, json!({"messages": hi})).await;
    assert_eq!(status, 200, "{body}");
    let attempts = &body["cascade"]["attempts"];
    assert_eq!(
        outcomes(attempts),
        ["groq:skipped", "anthropic:rate_limit", "openai:ok"]
    );
    assert_eq!(attempts[0]["skip"]["reason"], "cooling");
    assert_eq!(attempts[0]["skip"]["source"], "Retry-After");

    // 3: only the two resting providers, streamed or not: nothing is sent, and the 429's
    // Retry-After is the soonest comeback, anthropic's (at most 16 s, not groq's 20 minutes).
    for stream in [false, true] {
        let request = json!({"models": ["groq", "anthropic"], "messages": hi, "stream": stream});
        let (status, headers, body) = chat(&gateway, request).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["type"], "rate_limit");
        assert_eq!(
            outcomes(&body["error"]["attempts"]),
            ["groq:skipped", "anthropic:skipped"]
        );
        let wait: u64 = headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=16).contains(&wait), "Retry-After {wait}");
    }

    // The state shows where the gateway shows providers.
    let providers = get(&gateway, "/v1/providers").await;
    let states: Vec<&str> = providers["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .map(|p| p["state"]["condition"].as_str().expect("condition"))
        .collect();
    assert_eq!(states, ["cooling", "cooling", "ready"]);
    let groq_state = &providers["providers"][0]["state"];
    assert_eq!(groq_state["source"], "Retry-After");
    assert!(
        groq_state["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("cooling until ")),
        "{groq_state}"
    );
    // Two requests reached openai today (the skips took no slot).
    assert_eq!(
        providers["providers"][2]["state"]["budget"],
        json!([{"name": "RPD", "limit": 1000, "remaining": 998}])
    );
    let metrics = get_text(&gateway, "/metrics").await;
    for line in [
        r#"cascade_gateway_provider_state{provider="groq",state="cooling"} 1"#,
        r#"cascade_gateway_provider_state{provider="groq",state="ready"} 0"#,
        r#"cascade_gateway_provider_state{provider="openai",state="ready"} 1"#,
        r#"cascade_gateway_provider_budget_remaining{provider="openai",budget="rpd"} 998"#,
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    let page = get_text(&gateway, "/").await;
    assert!(page.contains(r#"data-state="cooling""#), "{page}");
    assert!(page.contains("RPD 998/1000"), "{page}");
}

async fn get(gateway: &Gateway, uri: &str) -> Value {
    serde_json::from_str(&get_text(gateway, uri).await).expect("JSON")
}

async fn get_text(gateway: &Gateway, uri: &str) -> String {
    let request = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let response = gateway.router().oneshot(request).await.expect("response");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}
