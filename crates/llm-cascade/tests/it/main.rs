//! Integration tests of the cascade engine.

mod api;
mod chain;
mod complete;
mod fake;
mod hedge;
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
