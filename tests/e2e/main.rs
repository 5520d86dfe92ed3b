//! The `cascade` binary end to end, against local mock providers serving real captured responses.

mod ask;
mod chat;
mod harness;
mod local;
mod native;
mod pull;
mod stats;
mod stream;
mod test_cmd;
