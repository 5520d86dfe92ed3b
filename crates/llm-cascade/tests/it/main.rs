//! Integration tests of the cascade engine.

mod fake;
mod providers;
mod registry;
mod retry;
mod streaming;
