//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.

use llm_provider_groq::ID;
use llm_test_support::replay::{Case, check_all};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    Case::stream("chat.stream", None),
    Case::stream("chat.stream.truncated", Some("stream_truncated")),
    // A 200 stream that ends in `event: error` (tool_use_failed, status_code 400).
    Case::stream("chat.stream.error_in_200", Some("invalid_request")),
    Case::chat("error.429.rate_limit", Some("rate_limit")),
    // 413 `rate_limit_exceeded`: the request alone exceeds the per-minute budget, waiting never helps.
    Case::chat("error.413.request_too_large", Some("context_length")),
    Case::chat("error.401.auth", Some("auth")),
    Case::chat("error.400.context_length", Some("context_length")),
    Case::chat("error.404.model_not_found", Some("model_not_found")),
    Case::chat("error.500.server", Some("server_error")),
    Case::chat("error.502.html", Some("server_error")),
];

#[tokio::test]
async fn fixtures_replay_to_their_snapshots() {
    check_all(ID, CASES, provider, |name, outcome| {
        insta::assert_json_snapshot!(name, outcome);
    })
    .await;
}
