//! Integration tests: fixture replay through wiremock (one `MockServer` per test).

mod chat;
mod errors;
mod request;
mod stream;
mod support;
mod tools;
