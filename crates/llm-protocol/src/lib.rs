#![doc = include_str!("../README.md")]

pub mod conversation;
pub mod error_map;
pub mod http;
pub mod lines;
pub mod openai;
#[cfg(test)]
mod proptests;
pub mod settings;
pub mod sse;
pub mod stream;

pub use http::{HttpClient, HttpFailure, ParseError};
pub use settings::{CLOUD_TIMEOUT, ProviderSettings, SettingsSpec};
pub use stream::{FrameDecoder, decode_stream, led_by_rate_limit};

/// Header types, re-exported so provider crates need not depend on `reqwest` or `http` directly.
pub use reqwest::header;

/// Re-exports used by [`compat_provider!`]; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use llm_core;
}
