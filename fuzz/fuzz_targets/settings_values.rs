//! `llm_core::parse_duration` and `parse_bool`: any text gives a value or a message, never a panic;
//! a boolean does not depend on ASCII case, and a duration accepted once is accepted again after
//! trimming.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_core::{parse_bool, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let duration = parse_duration(text);
    if let Ok(value) = duration {
        assert_eq!(parse_duration(text.trim()), Ok(value));
    }
    let flag = parse_bool(text);
    assert_eq!(flag.is_ok(), parse_bool(&text.to_ascii_uppercase()).is_ok());
    if let Ok(value) = flag {
        assert_eq!(parse_bool(&text.to_ascii_uppercase()), Ok(value));
    }
});
