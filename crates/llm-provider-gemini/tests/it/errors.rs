//! Every error class, replayed from fixtures.

use llm_core::{ChatRequest, Provider};

use crate::support::{error_json, provider, serve};

/// Calls the endpoint the fixture was recorded for (`chat` or `chat_stream`).
async fn error_of(scenario: &str) -> serde_json::Value {
    let (server, fixture) = serve(scenario).await;
    let provider = provider(&server);
    let request = ChatRequest::from_prompt("Hi");
    let err = if fixture.request.path.ends_with(":streamGenerateContent") {
        provider
            .chat_stream(&request)
            .await
            .err()
            .expect("an error")
    } else {
        provider.chat(&request).await.expect_err("an error")
    };
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

error_case!(api_key_invalid_400_is_auth, "error.400.api_key_invalid");
error_case!(context_length_400, "error.400.context_length");
error_case!(invalid_argument_400, "error.400.invalid_argument");
error_case!(permission_denied_403, "error.403.permission_denied");
error_case!(model_not_found_404, "error.404.model_not_found");
error_case!(resource_exhausted_429, "error.429.resource_exhausted");
error_case!(retry_info_delay_is_parsed_429, "error.429.retry_info");
error_case!(json_array_error_body_429, "error.429.json_array");
error_case!(internal_500, "error.500.internal");
error_case!(unavailable_503, "error.503.unavailable");
error_case!(
    function_calling_not_enabled_400_is_unsupported,
    "error.400.unsupported"
);
error_case!(
    tools_with_json_mime_type_400_is_unsupported,
    "error.400.unsupported_json_with_tools"
);
