//! The `cascade` binary end to end, against local mock providers serving real captured responses.

mod ask;
mod harness;
mod pull;
mod stream;
