//! Test helpers shared by the llm-cascade crates (a dev-dependency only).
//!
//! - [`Fixture`]: loads `fixtures/<provider>/<scenario>.json` (plus its byte-exact stream body) and
//!   serves it through `wiremock`.
//! - [`ScriptedServer`]: a raw loopback HTTP server that sends a response in timed steps, for what
//!   `wiremock` cannot do (a slow first token, a stream that stalls, a connection that drops).
//! - [`replay`]: replays a fixture against any provider and normalises the outcome for snapshots.
//! - [`CANARY_KEY`]: a fake key that tests look for in every output.

mod fixture;
mod manifest;
pub mod replay;
mod scripted;

pub use fixture::{Fixture, FixtureMeta, workspace_root};
pub use manifest::cargo_features;
pub use scripted::{ConnectionEvent, ScriptedServer, Step};

/// A fake API key. Tests configure providers with it and assert it never appears in any output.
pub const CANARY_KEY: &str = "canary-key-0000-never-print-me";
