//! Line framing (`llm_protocol::lines`, the NDJSON framer): lines carry no line ending, and for UTF-8
//! input without `\r` the lines put back together are the input (a whitespace-only tail is dropped).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_cascade_fuzz::chunks;
use llm_protocol::lines::LineBuffer;
use llm_protocol::stream::{Framer, NdjsonFramer};

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let mut buffer = LineBuffer::new();
    let mut framer = NdjsonFramer::default();
    let mut lines = Vec::new();
    let mut failed = false;
    for chunk in chunks(seed, body) {
        match buffer.push(&chunk) {
            Ok(more) => lines.extend(more),
            Err(_) => failed = true,
        }
        if let Ok(frames) = framer.push(&chunk) {
            assert!(
                frames.iter().all(|f| !f.trim().is_empty()),
                "a blank NDJSON frame"
            );
        }
        if failed {
            break;
        }
    }
    let _ = framer.finish();
    if failed {
        assert!(
            std::str::from_utf8(body).is_err(),
            "valid short UTF-8 was rejected"
        );
        return;
    }
    let tail = buffer.finish();
    assert!(lines.iter().all(|line| !line.contains('\n')));
    let Ok(text) = std::str::from_utf8(body) else {
        return;
    };
    let tail = tail.expect("UTF-8 tail");
    if text.contains('\r') {
        return;
    }
    let mut rebuilt: String = lines.iter().map(|line| format!("{line}\n")).collect();
    rebuilt.extend(tail);
    let rest = text
        .strip_prefix(rebuilt.as_str())
        .expect("lines are the input, in order");
    assert!(rest.trim_ascii().is_empty(), "bytes lost: {rest:?}");
});
