//! The OpenAI dialect response-body decoder: any 2xx body gives an answer or a classified error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(error) =
        llm_protocol::openai::decode_response("fuzz", data, llm_protocol::openai::parse_error)
    {
        llm_cascade_fuzz::check_error(&error);
    }
});
