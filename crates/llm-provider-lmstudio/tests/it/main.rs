//! Integration tests of the LM Studio provider: fixture replays of `fixtures/lmstudio/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_lmstudio::LmStudio;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {
    MapEnv::new()
        .with("LM_STUDIO_MODEL", "qwen2.5-7b-instruct")
        .with("LM_STUDIO_BASE_URL", format!("{uri}/v1"))
}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<LmStudio> {
    Box::new(LmStudio::from_env(&env(uri)).expect("a valid configuration"))
}
