//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.

use llm_provider_mistral::ID;
use llm_test_support::replay::{Case, check_all};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    // Thinking parts (content arrays) are reasoning, not answer text.
    Case::stream("chat.stream", None),
    Case::stream("chat.stream.truncated", Some("stream_truncated")),
    Case::chat("error.429.rate_limit", Some("rate_limit")),
    Case::chat("error.429.requests_rate_limit_exceeded", Some("rate_limit")),
    Case::chat("error.401.auth", Some("auth")),
    Case::chat("error.401.detail", Some("auth")),
    // Mistral answers an unknown model with 400 `invalid_model`.
    Case::chat("error.400.invalid_model", Some("model_not_found")),
    Case::chat("error.400.context_length", Some("context_length")),
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
