//! The Ollama NDJSON stream (its framer and decoder) behind the real driver: any body, cut anywhere,
//! ends in exactly one `Finish` or one classified error, and (for UTF-8 bodies) chunking does not
//! change the outcome. Input: one byte choosing the chunk sizes, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_provider_ollama::fuzzing::{framer, stream_decoder};

fuzz_target!(|data: &[u8]| {
    llm_cascade_fuzz::stream_target(data, framer, stream_decoder);
});
