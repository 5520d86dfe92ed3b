//! Integration tests of the cascade engine.

mod api;
mod complete;
mod fake;
// Needs the provider crates it drives compiled in.
#[cfg(all(
    feature = "provider-anthropic",
    feature = "provider-gemini",
    feature = "provider-ollama",
    feature = "provider-lmstudio"
))]
mod providers;
mod registry;
mod retry;
mod spans;
mod state;
mod streaming;
