//! The Ollama /api/chat response-body decoder: any 2xx body gives an answer or a classified error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) = llm_provider_ollama::fuzzing::decode_response(data) {
        llm_cascade_fuzz::check_error(&error);
    }
});
