//! SSE framing (`llm_protocol::sse`): any bytes, split anywhere, never panic; for UTF-8 input the
//! events do not depend on where the chunks were cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llm_cascade_fuzz::chunks;
use llm_protocol::sse::{SseDecoder, SseEvent};

fn decode(chunks: &[bytes::Bytes]) -> Result<Vec<SseEvent>, llm_core::ErrorKind> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        events.extend(decoder.push(chunk).map_err(|e| e.kind())?);
    }
    events.extend(decoder.finish().map_err(|e| e.kind())?);
    Ok(events)
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = decode(&chunks(0, body));
    let split = decode(&chunks(seed, body));
    if let Ok(events) = &whole {
        for event in events {
            assert!(!event.data.contains('\r') || body.contains(&b'\r'));
            assert!(
                event
                    .event
                    .as_deref()
                    .is_none_or(|name| !name.contains('\n'))
            );
        }
    }
    if std::str::from_utf8(body).is_ok() {
        assert_eq!(whole, split, "chunking changed the events");
    }
});
