//! Entry points for the fuzz targets in `fuzz/`. **Not public API**: hidden from the docs, exempt from
//! semver, and changed whenever `wire` changes.
//!
//! `wire` stays private (its serde types are not a contract); these wrappers hand its pure decode
//! functions to the fuzzer exactly as the client calls them.

use llm_core::{ChatResponse, Error, ErrorKind};
use llm_protocol::sse::SseEvent;
use llm_protocol::{FrameDecoder, HttpFailure};

use crate::wire;

/// The model the client would have asked for; the decoders fall back to it.
const REQUESTED_MODEL: &str = "fuzz-model";

/// A 2xx generateContent body (one object or an array) decoded as `chat` decodes it.
///
/// # Errors
/// A validation error when the body is not the expected JSON, else what the body says.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
    let decoded: wire::OneOrMany = serde_json::from_slice(body)
        .map_err(|e| Error::new(ErrorKind::MalformedAnswer, e.to_string()))?;
    wire::decode_response(decoded, REQUESTED_MODEL, 0)
}

/// The provider's `parse_error`.
pub fn parse_error(failure: &HttpFailure) -> Error {
    wire::parse_error(failure)
}

/// A fresh stream decoder, as `chat_stream` builds one.
pub fn stream_decoder() -> impl FrameDecoder<SseEvent> {
    wire::StreamDecoder::default()
}
