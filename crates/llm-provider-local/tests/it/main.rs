//! The local provider: the real SmolLM2-135M GGUF answering, and its download from a loopback server.

mod download;
mod model;
mod support;
