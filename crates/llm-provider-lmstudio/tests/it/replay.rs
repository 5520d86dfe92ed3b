//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.

use llm_provider_lmstudio::ID;
use llm_test_support::replay::{Case, check_all};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    // A wrong path answers 200 with `{"error": "Unexpected endpoint or method. …"}`.
    Case::chat("error.200.unexpected_endpoint", Some("config")),
    Case::stream("chat.stream", None),
    Case::stream("chat.stream.truncated", Some("stream_truncated")),
    Case::chat("error.404.no_models_loaded", Some("model_not_found")),
    Case::chat("error.400.context_length", Some("context_length")),
    Case::chat("error.502.html", Some("server_error")),
];

#[tokio::test]
async fn fixtures_replay_to_their_snapshots() {
    check_all(ID, CASES, provider, |name, outcome| {
        insta::assert_json_snapshot!(name, outcome);
    })
    .await;
}
