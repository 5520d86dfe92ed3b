//! Every error class, replayed from fixtures.

use llm_core::{ChatRequest, Provider};

use crate::support::{error_json, provider, serve};

async fn error_of(scenario: &str) -> serde_json::Value {
    let (server, _fixture) = serve(scenario).await;
    let err = provider(&server)
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("an error");
    error_json(&err)
}

macro_rules! error_case {
    ($name:ident, $scenario:literal) => {
        #[tokio::test]
        async fn $name() {
            insta::assert_json_snapshot!($scenario, error_of($scenario).await);
        }
    };
}

error_case!(invalid_request_400, "error.400.invalid_request");
error_case!(context_length_400, "error.400.context_length");
error_case!(credit_balance_400, "error.400.credit_balance");
error_case!(auth_401, "error.401.auth");
error_case!(permission_403, "error.403.permission");
error_case!(model_not_found_404, "error.404.model_not_found");
error_case!(request_too_large_413, "error.413.request_too_large");
error_case!(rate_limit_429, "error.429.rate_limit");
error_case!(api_error_500, "error.500.api_error");
error_case!(overloaded_529, "error.529.overloaded");

#[tokio::test]
async fn error_object_in_a_200_body_is_an_error() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            wiremock::ResponseTemplate::new(200).set_body_raw(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                    .to_vec(),
                "application/json",
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = provider(&server)
        .chat(&ChatRequest::from_prompt("Hi"))
        .await
        .expect_err("error in 200");
    insta::assert_json_snapshot!("error.in_200", error_json(&err));
}
