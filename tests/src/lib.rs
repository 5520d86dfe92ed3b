//! End-to-end tests of the `cascade` binary live in `e2e/`; this library is empty.
//!
//! The tests find the binary next to their own executable (`target/<profile>/cascade`), which
//! `cargo test --workspace` builds because `llm-cli` has integration tests of its own.
