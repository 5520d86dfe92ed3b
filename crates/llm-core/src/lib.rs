#![doc = include_str!("../README.md")]

mod env;
mod error;
#[cfg(test)]
mod proptests;
mod provider;
mod redact;
mod registry;
mod secret;
mod tools;
mod types;

pub use env::{
    EnvSource, LayeredEnv, MapEnv, Overlay, ProcessEnv, not_unicode, parse_bool, parse_duration,
    parse_timeout,
};
pub use error::{Category, Error, ErrorKind};
pub use provider::{ChatStream, Progress, ProgressSink, Provider};
pub use redact::{
    MIN_SECRET_LEN, REDACTED, StreamRedactor, longest_secret_len, redact, redact_bytes,
    register_secret, sanitize,
};
pub use registry::{BuildProvider, ProviderRegistration, Registry};
pub use secret::Secret;
pub use tools::{Capabilities, ResponseFormat, Tool, ToolCall, ToolChoice, synthetic_call_id};
pub use types::{
    ChatRequest, ChatResponse, FinishReason, Message, RateLimitSpent, ResumeMode, Role,
    StreamEvent, Usage,
};

/// Re-exports used by [`register_provider!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}
