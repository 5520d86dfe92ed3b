//! The wait-hint parsers (`llm_protocol::error_map`: `retry-after`, `retry-after-ms`,
//! `x-ratelimit-*` headers, "try again in …" messages, Go durations; Anthropic's RFC 3339 resets) and
//! the body describer: any text, no panic, and every hint is a duration that can be slept.
//! Input: lines; the first six are the values of the headers below, the whole input is the message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_protocol::error_map::{
    describe_unparsed_body, one_line, parse_go_duration, retry_after_from_headers,
    retry_after_from_message,
};
use llm_protocol::header::{HeaderMap, HeaderValue};

const HEADERS: [&str; 6] = [
    "retry-after",
    "retry-after-ms",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
];

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for (name, value) in HEADERS.iter().zip(data.split(|&b| b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(*name, value);
        }
    }
    let _ = retry_after_from_headers(&headers);
    let text = String::from_utf8_lossy(data);
    let _ = retry_after_from_message(&text);
    let _ = parse_go_duration(&text);
    let _ = llm_provider_anthropic::fuzzing::parse_rfc3339(&text);
    let described = describe_unparsed_body(data);
    assert!(
        !described.contains('\n'),
        "a description on more than one line"
    );
    let cut = one_line(&text, 40);
    assert!(cut.chars().count() <= 41, "one_line did not cut");
});
