//! The `.env` reader: `dotenvy` over any bytes, read the way `llm-cli` reads the file (every entry,
//! stopping at the first error). No panic, no hang, and every name it returns is non-empty.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for entry in dotenvy::from_read_iter(data) {
        match entry {
            Ok((name, _value)) => assert!(!name.is_empty(), "an entry without a name"),
            Err(error) => {
                let _ = error.to_string();
                break;
            }
        }
    }
});
