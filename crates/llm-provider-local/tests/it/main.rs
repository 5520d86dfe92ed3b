//! The local provider: the real SmolLM2-135M GGUF answering, a tiny generated qwen2 file, and the
//! download from a loopback server.

mod download;
mod model;
mod qwen2;
mod support;
