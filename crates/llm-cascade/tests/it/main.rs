//! Integration tests of the cascade engine.

mod fake;
mod registry;
mod retry;
mod streaming;
