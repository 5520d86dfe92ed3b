//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.

use llm_provider_openai::ID;
use llm_test_support::replay::{Case, check_all};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    Case::stream("chat.stream", None),
    Case::stream("chat.stream.truncated", Some("stream_truncated")),
    // Cut from the real captures: `[DONE]` (or a whole body) without any finish_reason.
    Case::stream(
        "chat.stream.no_finish_reason.truncated",
        Some("stream_truncated"),
    ),
    Case::chat("chat.no_finish_reason.truncated", Some("stream_truncated")),
    Case::chat("error.429.rate_limit", Some("rate_limit")),
    // A 429 that is billing, not a rate limit: retrying cannot help.
    Case::chat("error.429.insufficient_quota", Some("quota_exhausted")),
    Case::chat("error.401.auth", Some("auth")),
    Case::chat("error.400.context_length", Some("context_length")),
    Case::chat("error.404.model_not_found", Some("model_not_found")),
    Case::chat("error.500.server", Some("server_error")),
    Case::chat("error.503.overloaded", Some("overloaded")),
    Case::chat("error.502.html", Some("server_error")),
];

#[tokio::test]
async fn fixtures_replay_to_their_snapshots() {
    check_all(ID, CASES, provider, |name, outcome| {
        insta::assert_json_snapshot!(name, outcome);
    })
    .await;
}
