//! The Ollama `parse_error`: any status, headers and body give a classified error.
//! Input: two bytes of status, `name: value` header lines, a blank line, the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let failure = llm_cascade_fuzz::http_failure(data);
    llm_cascade_fuzz::check_error(&llm_provider_ollama::fuzzing::parse_error(&failure));
});
