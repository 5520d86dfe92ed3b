//! Integration tests of the cascade engine.

mod api;
mod chain;
mod complete;
mod fake;
mod hedge;
#[cfg(all(
    feature = "provider-gemini",
    feature = "provider-openai",
    feature = "provider-deepseek"
))]
mod one_call;
mod probe;
// Needs the provider crates it drives compiled in.
#[cfg(all(
    feature = "provider-anthropic",
    feature = "provider-gemini",
    feature = "provider-ollama",
    feature = "provider-lmstudio"
))]
mod providers;
mod recovery;
mod registry;
mod retry;
// Needs the `redis` feature (the store) and a Redis (`LLM_TEST_REDIS_URL`) for most tests.
#[cfg(feature = "redis")]
mod shared_state;
mod spans;
mod state;
mod streaming;
mod structured;
mod structured_stream;
#[cfg(all(
    feature = "provider-ollama",
    feature = "provider-openai",
    feature = "provider-mistral"
))]
mod tools_across;
