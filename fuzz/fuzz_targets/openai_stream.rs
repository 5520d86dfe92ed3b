//! The OpenAI dialect stream decoder behind the real driver: any SSE body, cut anywhere, ends in exactly one
//! `Finish` or one classified error, and (for UTF-8 bodies) chunking does not change the outcome.
//! Input: one byte choosing the chunk sizes, then the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_protocol::sse::SseDecoder;

fuzz_target!(|data: &[u8]| {
    llm_cascade_fuzz::stream_target(data, SseDecoder::new, || {
        llm_protocol::openai::ChunkDecoder::new(llm_protocol::openai::parse_error)
    });
});
