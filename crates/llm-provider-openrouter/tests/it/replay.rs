//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.

use llm_provider_openrouter::ID;
use llm_test_support::replay::{Case, check_all};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    // An error object inside a 200 body is an error, not an empty answer.
    Case::chat("chat.error_in_200", Some("context_length")),
    Case::stream("chat.stream", None),
    Case::stream("chat.stream.truncated", Some("stream_truncated")),
    // A 200 stream with a chunk carrying `error: {code: 400, "Token limit reached"}`.
    Case::stream("chat.stream.error_in_200", Some("invalid_request")),
    Case::chat("error.429.rate_limit", Some("rate_limit")),
    Case::chat("error.429.provider_returned_error", Some("rate_limit")),
    Case::chat("error.402.insufficient_credits", Some("quota_exhausted")),
    Case::chat("error.401.auth", Some("auth")),
    // Tools asked of a model that none of OpenRouter's endpoints serves with tools: another
    // provider may; the model itself exists.
    Case::chat("error.404.no_endpoints", Some("unsupported")),
    Case::chat("error.400.context_length", Some("context_length")),
    Case::chat("error.502.server", Some("server_error")),
    Case::chat("error.502.html", Some("server_error")),
];

#[tokio::test]
async fn fixtures_replay_to_their_snapshots() {
    check_all(ID, CASES, provider, |name, outcome| {
        insta::assert_json_snapshot!(name, outcome);
    })
    .await;
}
