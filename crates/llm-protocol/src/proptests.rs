//! Property tests of the framing round trips: events and lines encoded, cut at arbitrary byte
//! boundaries, decoded to what went in; Go durations formatted then parsed. (The fuzz targets in
//! `fuzz/` cover arbitrary input; these cover arbitrary *valid* input, where the answer is known.)

use std::time::Duration;

use proptest::prelude::*;

use crate::error_map::parse_go_duration;
use crate::lines::LineBuffer;
use crate::sse::{SseDecoder, SseEvent};

/// `bytes` cut at `cuts` (positions taken modulo the length, in any order, repeats allowed).
fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// One event: an optional name and data lines (neither may hold a line ending).
fn event() -> impl Strategy<Value = (Option<String>, Vec<String>)> {
    (
        proptest::option::of("[^\r\n:]{0,12}"),
        proptest::collection::vec("[^\r\n]{0,30}", 1..4),
    )
}

fn encode(events: &[(Option<String>, Vec<String>)], newline: &str, comments: bool) -> String {
    let mut out = String::new();
    for (name, lines) in events {
        if comments {
            out.push_str(&format!(": keep-alive{newline}"));
        }
        if let Some(name) = name {
            out.push_str(&format!("event: {name}{newline}"));
        }
        for line in lines {
            out.push_str(&format!("data: {line}{newline}"));
        }
        out.push_str(newline);
    }
    out
}

proptest! {
    #[test]
    fn sse_events_survive_any_chunking(
        events in proptest::collection::vec(event(), 0..6),
        crlf in any::<bool>(),
        comments in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let body = encode(&events, if crlf { "\r\n" } else { "\n" }, comments);
        let mut decoder = SseDecoder::new();
        let mut decoded = Vec::new();
        for chunk in cut(body.as_bytes(), &cuts) {
            decoded.extend(decoder.push(&chunk).map_err(|e| TestCaseError::fail(e.to_string()))?);
        }
        decoded.extend(decoder.finish().map_err(|e| TestCaseError::fail(e.to_string()))?);
        let expected: Vec<SseEvent> = events
            .iter()
            .map(|(name, lines)| SseEvent { event: name.clone(), data: lines.join("\n") })
            .collect();
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn lines_survive_any_chunking(
        lines in proptest::collection::vec("[^\r\n]{0,40}", 0..8),
        crlf in any::<bool>(),
        terminated in any::<bool>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut body = lines.join(newline);
        if terminated && !lines.is_empty() {
            body.push_str(newline);
        }
        let mut buffer = LineBuffer::new();
        let mut decoded = Vec::new();
        for chunk in cut(body.as_bytes(), &cuts) {
            decoded.extend(buffer.push(&chunk).map_err(|e| TestCaseError::fail(e.to_string()))?);
        }
        decoded.extend(buffer.finish().map_err(|e| TestCaseError::fail(e.to_string()))?);
        let mut expected = lines.clone();
        // An unterminated last line that is only whitespace is not a line (`finish` drops it).
        if !terminated && expected.last().is_some_and(|l| l.trim_ascii().is_empty()) {
            expected.pop();
        }
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn go_durations_round_trip(h in 0u64..100, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
        let expected = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
        let mut text = String::new();
        if h > 0 { text.push_str(&format!("{h}h")); }
        if h > 0 || m > 0 { text.push_str(&format!("{m}m")); }
        text.push_str(&format!("{s}.{ms:03}s"));
        let parsed = parse_go_duration(&text).ok_or_else(|| TestCaseError::fail(text.clone()))?;
        prop_assert!(parsed.abs_diff(expected) < Duration::from_micros(1), "{} -> {:?}", text, parsed);
        let message = format!("Rate limit reached. Please try again in {text}. Visit the docs.");
        prop_assert_eq!(crate::error_map::retry_after_from_message(&message), Some(parsed));
    }
}
