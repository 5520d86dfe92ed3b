use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};
use xtask::proxy::RecordingProxy;

#[tokio::test]
async fn the_proxy_relays_and_records_exact_bytes() {
    let upstream = MockServer::start().await;
    let body = "data: {\"a\":1}\n\ndata: [DONE]\n\n";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(query_param("alt", "sse"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body, "text/event-stream")
                .insert_header("x-request-id", "req-1"),
        )
        .expect(1)
        .mount(&upstream)
        .await;
    let proxy = RecordingProxy::start(&format!("{}/v1", upstream.uri()))
        .await
        .expect("proxy");
    assert!(proxy.base_url().starts_with("http://127.0.0.1:"));
    assert!(proxy.base_url().ends_with("/v1"));

    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions?alt=sse", proxy.base_url()))
        .header("authorization", "Bearer secret")
        .body("{\"x\":true}")
        .send()
        .await
        .expect("through the proxy");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "headers are relayed"
    );
    assert_eq!(response.text().await.expect("body"), body);

    let (exchanges, failures) = proxy.take();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(exchanges.len(), 1);
    let exchange = &exchanges[0];
    assert_eq!(exchange.method, "POST");
    assert_eq!(exchange.path, "/v1/chat/completions?alt=sse");
    assert_eq!(exchange.request_body, b"{\"x\":true}");
    assert_eq!(exchange.response_body, body.as_bytes());
    assert!(
        exchange
            .response_headers
            .iter()
            .any(|(n, v)| n == "x-request-id" && v == "req-1")
    );
    assert!(proxy.take().0.is_empty(), "take drains the log");
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_reported_failure_not_an_exchange() {
    let port = llm_test_support::refused_port();
    let proxy = RecordingProxy::start(&format!("http://127.0.0.1:{port}/v1"))
        .await
        .expect("proxy");
    let response = reqwest::Client::new()
        .get(format!("{}/models", proxy.base_url()))
        .send()
        .await
        .expect("the proxy answers");
    assert_eq!(response.status(), 502);
    let (exchanges, failures) = proxy.take();
    assert!(exchanges.is_empty());
    assert_eq!(failures.len(), 1, "{failures:?}");
}
