//! Integration tests of the Ollama provider against wiremock and scripted loopback servers.

mod chat;
mod errors;
mod pull;
mod stream;
mod support;
mod tags;
mod tools;
