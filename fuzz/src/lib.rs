//! What the fuzz targets share: turning fuzz input into chunked bodies and HTTP failures, driving a
//! dialect's stream decoder through the real driver, and the invariants every stream must keep.

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use llm_core::{Error, ErrorKind, StreamEvent};
use llm_protocol::header::{HeaderMap, HeaderName, HeaderValue};
use llm_protocol::stream::Framer;
use llm_protocol::{FrameDecoder, HttpFailure, decode_stream};

/// The id the driver stamps on stream errors.
pub const PROVIDER: &str = "fuzz";

/// Splits `body` into chunks whose sizes come from `seed` (0 = one chunk), so that the fuzzer explores
/// frame and UTF-8 boundaries falling anywhere.
pub fn chunks(seed: u8, body: &[u8]) -> Vec<Bytes> {
    if seed == 0 {
        return vec![Bytes::copy_from_slice(body)];
    }
    // A small xorshift walk: chunk sizes 1..=16, varied but reproducible from one byte.
    let mut state = u32::from(seed) | 0x100;
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = (state % 16 + 1) as usize;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(Bytes::copy_from_slice(head));
        rest = tail;
    }
    out
}

/// One stream item reduced to what must not depend on chunking: the event, or the error's kind.
pub type Outcome = Result<StreamEvent, ErrorKind>;

/// Runs `chunks` through `framer` and `decoder` with the production driver ([`decode_stream`]) and
/// checks the stream's contract: it ends with exactly one `Finish` or one error, nothing after.
///
/// # Panics
/// When the contract is broken (that is the finding).
pub fn run_stream<R, D>(chunks: Vec<Bytes>, framer: R, decoder: D) -> Vec<Outcome>
where
    R: Framer,
    R::Frame: Send,
    D: FrameDecoder<R::Frame>,
{
    let body = stream::iter(chunks.into_iter().map(Ok::<Bytes, Error>));
    let items: Vec<Result<StreamEvent, Error>> =
        futures_executor::block_on(decode_stream(PROVIDER, body, framer, decoder).collect());
    let last = items.last().expect("a stream always ends with an item");
    assert!(
        matches!(last, Ok(StreamEvent::Finish { .. }) | Err(_)),
        "the stream ended without Finish or an error: {last:?}"
    );
    let terminals = items
        .iter()
        .filter(|item| matches!(item, Ok(StreamEvent::Finish { .. }) | Err(_)))
        .count();
    assert_eq!(terminals, 1, "more than one terminal item: {items:?}");
    for error in items.iter().filter_map(|item| item.as_ref().err()) {
        assert_eq!(
            error.provider(),
            Some(PROVIDER),
            "error without its provider"
        );
        check_error(error);
    }
    items
        .into_iter()
        .map(|item| item.map_err(|e| e.kind()))
        .collect()
}

/// Decodes a stream body whole and in the chunks `seed` picks, checks both, and (for UTF-8 bodies)
/// that chunking changed nothing.
///
/// Non-UTF-8 bodies are exempt from the comparison: a bad line fails the whole `push` it arrives in,
/// so a terminator that shares a chunk with later garbage is lost, while one that arrived first stands.
pub fn stream_target<R, D>(data: &[u8], framer: impl Fn() -> R, decoder: impl Fn() -> D)
where
    R: Framer,
    R::Frame: Send,
    D: FrameDecoder<R::Frame>,
{
    let Some((&seed, body)) = data.split_first() else {
        return;
    };
    let whole = run_stream(chunks(0, body), framer(), decoder());
    if seed == 0 {
        return;
    }
    let split = run_stream(chunks(seed, body), framer(), decoder());
    if std::str::from_utf8(body).is_ok() {
        assert_eq!(whole, split, "chunking changed the decoded stream");
    }
}

/// Reads fuzz input as a failed HTTP response: two bytes of status (mapped into 100..=599), then
/// `name: value` header lines up to a blank line, then the body. Without a blank line it is all body.
pub fn http_failure(data: &[u8]) -> HttpFailure {
    let (status, rest) = match data {
        [hi, lo, rest @ ..] => (100 + u16::from_be_bytes([*hi, *lo]) % 500, rest),
        _ => (500, data),
    };
    let split = rest.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (&rest[..0], rest),
    };
    HttpFailure {
        status,
        headers: headers(head),
        body: Bytes::copy_from_slice(body),
    }
}

/// `name: value` lines into a header map; lines that are not valid headers are skipped.
pub fn headers(block: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for line in block.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(line[..colon].trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// What every classified error must allow: displaying it, and a wait hint that is a real duration.
pub fn check_error(error: &Error) {
    let shown = error.to_string();
    assert!(!shown.is_empty(), "an error with no text");
    let _ = format!("{error:?}");
    if let Some(wait) = error.retry_after() {
        // A hint is used as a sleep: it must be representable (no overflow when added to now).
        let _ = wait.as_secs_f64();
    }
}
