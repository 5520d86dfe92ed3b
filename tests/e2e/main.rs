//! The `cascade` binary end to end, against local mock providers serving real captured responses.

mod ask;
mod chat;
mod config;
mod gateway;
mod gateway_recovery;
mod harness;
mod interrupt;
mod leak;
mod local;
mod native;
mod pull;
mod state;
mod stats;
mod stream;
mod terminal;
mod test_cmd;
