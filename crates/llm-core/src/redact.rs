//! Redaction by value: every secret the process holds is registered once, and text that comes from a
//! provider or from configuration passes [`redact`] (or [`sanitize`]) before it is shown anywhere.
//!
//! Redacting by value rather than by phrase catches a key however a provider quotes it ("Invalid key
//! sk-…", a key echoed inside an HTML page, a header copied into a message). [`crate::Secret::new`]
//! registers its value, so holding a key in a `Secret` is enough to have it scrubbed everywhere.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{PoisonError, RwLock};

/// What a secret is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this are not registered: scrubbing every `a` or `1` from all text would mangle
/// messages and protect nothing (no real key is that short).
pub const MIN_SECRET_LEN: usize = 8;

/// The registered secrets, longest first (so a key that contains another is replaced whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Registers `value` as a secret: from now on [`redact`] replaces it wherever it appears.
///
/// Blank values and values shorter than [`MIN_SECRET_LEN`] are ignored; registering twice is harmless.
pub fn register_secret(value: &str) {
    let value = value.trim();
    // A value spelled only with the marker's characters (`REDACTED`) would be rebuilt by its own
    // replacement, and [`redact`] could never finish removing it; no real key looks like that.
    if value.len() < MIN_SECRET_LEN || value.chars().all(|c| REDACTED.contains(c)) {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if secrets.iter().any(|s| s == value) {
        return;
    }
    secrets.push(value.to_owned());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The length of the longest registered secret (0 when none is): a streaming redactor holds back at
/// most this many bytes minus one.
pub fn longest_secret_len() -> usize {
    SECRETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .first()
        .map_or(0, String::len)
}

/// `text` with every registered secret replaced by [`REDACTED`]; borrowed when nothing matched.
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    // A replacement can complete a secret with the marker's own characters (`[REDACTED]` then `key[`
    // spells the key `]key[`): repeat until none is left. Each round uses up at least one character of
    // the original text (no secret is made only of marker characters), so this ends; realistic keys
    // take one round.
    while let Some(secret) = secrets.iter().find(|s| out.contains(s.as_str())) {
        out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
    }
    out
}

/// `bytes` with every registered secret replaced by [`REDACTED`]; borrowed when nothing matched.
///
/// Works on bytes, so a body that is not UTF-8 (or a chunk cut inside a character) is scrubbed all the
/// same. With no secret registered it costs one uncontended lock and nothing else.
pub fn redact_bytes(bytes: &[u8]) -> Cow<'_, [u8]> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(bytes);
    // As in [`redact`]: a replacement can complete a secret with the marker's characters, so repeat.
    loop {
        let matches = find_matches(&out, &secrets);
        if matches.is_empty() {
            return out;
        }
        out = Cow::Owned(replace_matches(&out, &matches));
    }
}

/// Where registered secrets occur in `bytes`: leftmost first, the longest at a position winning,
/// never overlapping.
fn find_matches(bytes: &[u8], secrets: &[String]) -> Vec<Range<usize>> {
    let mut found: Vec<Range<usize>> = Vec::new();
    for secret in secrets {
        let needle = secret.as_bytes();
        found.extend(memchr::memmem::find_iter(bytes, needle).map(|at| at..at + needle.len()));
    }
    if found.len() > 1 {
        found.sort_by_key(|m| (m.start, std::cmp::Reverse(m.end)));
        let mut kept: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for m in found {
            if kept.last().is_none_or(|last| m.start >= last.end) {
                kept.push(m);
            }
        }
        found = kept;
    }
    found
}

/// `bytes` with each of `matches` (sorted, disjoint) replaced by [`REDACTED`].
fn replace_matches(bytes: &[u8], matches: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for m in matches {
        out.extend_from_slice(&bytes[at..m.start]);
        out.extend_from_slice(REDACTED.as_bytes());
        at = m.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Redacts a byte stream that arrives in chunks, catching a secret split across chunks.
///
/// Each [`StreamRedactor::push`] returns what can safely go on: the chunk (after what was held back),
/// scrubbed, minus a tail that could be the start of a secret. That tail is at most
/// [`longest_secret_len`] − 1 bytes, and it starts where a secret starts, so it never cuts a UTF-8
/// character in two (a secret's first byte is never a continuation byte). [`StreamRedactor::finish`]
/// returns the tail once the stream has ended.
#[derive(Debug, Default)]
pub struct StreamRedactor {
    held: Vec<u8>,
}

impl StreamRedactor {
    /// A redactor holding nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The scrubbed bytes of `chunk` that can be passed on now; `None` when `chunk` can go on as it is
    /// (nothing held, nothing matched), so the common case copies nothing.
    pub fn push(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
        if secrets.is_empty() && self.held.is_empty() {
            return None;
        }
        let data: Cow<'_, [u8]> = if self.held.is_empty() {
            Cow::Borrowed(chunk)
        } else {
            let mut joined = std::mem::take(&mut self.held);
            joined.extend_from_slice(chunk);
            Cow::Owned(joined)
        };
        let matches = find_matches(&data, &secrets);
        let keep_from = held_tail_start(&data, &secrets, &matches);
        if matches.is_empty() && keep_from == data.len() {
            return match data {
                Cow::Borrowed(_) => None,
                Cow::Owned(joined) => Some(joined),
            };
        }
        self.held = data[keep_from..].to_vec();
        let emitted: Vec<Range<usize>> =
            matches.into_iter().filter(|m| m.end <= keep_from).collect();
        Some(replace_matches(&data[..keep_from], &emitted))
    }

    /// What was held back, scrubbed: call once the stream has ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let held = std::mem::take(&mut self.held);
        redact_bytes(&held).into_owned()
    }
}

/// Where the tail to hold back starts (`data.len()` when nothing needs holding): the earliest position
/// in the last `longest - 1` bytes from which the rest of `data` is a proper prefix of some secret, so
/// the secret may complete in the next chunk. A position inside a complete match is skipped: that match
/// is replaced now.
fn held_tail_start(data: &[u8], secrets: &[String], matches: &[Range<usize>]) -> usize {
    let longest = secrets.first().map_or(0, String::len);
    let from = data.len().saturating_sub(longest.saturating_sub(1));
    (from..data.len())
        .find(|&at| {
            let tail = &data[at..];
            let inside_match = matches.iter().any(|m| m.start < at && at < m.end);
            !inside_match
                && secrets
                    .iter()
                    .any(|s| s.len() > tail.len() && s.as_bytes().starts_with(tail))
        })
        .unwrap_or(data.len())
}

/// [`redact`], then control characters escaped (`\u{1b}` for ESC, `\n` and `\t` spelled out) and the result
/// redacted again (an escape can spell a key), so that provider text in an error, a table cell or a log
/// line can neither carry a key nor drive the terminal (clear the screen, retitle the window, fake colours).
pub fn sanitize(text: &str) -> Cow<'_, str> {
    let redacted = redact(text);
    if !redacted.chars().any(char::is_control) {
        return redacted;
    }
    let mut escaped = String::with_capacity(redacted.len() + 8);
    for c in redacted.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() => escaped.extend(c.escape_unicode()),
            c => escaped.push(c),
        }
    }
    // An escape can spell a secret: a newline before `vapi-…` becomes `\nvapi-…`.
    Cow::Owned(redact(&escaped).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_replaced_wherever_they_appear() {
        register_secret("canary-redact-test-0123456789");
        register_secret("canary-redact-test-0123456789-longer");
        assert_eq!(
            redact("key canary-redact-test-0123456789-longer and canary-redact-test-0123456789."),
            "key [REDACTED] and [REDACTED]."
        );
        assert!(matches!(redact("nothing secret"), Cow::Borrowed(_)));
    }

    /// Feeds `input` to a fresh redactor in the given pieces and returns every emitted piece.
    fn stream_in(pieces: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut redactor = StreamRedactor::new();
        let mut out: Vec<Vec<u8>> = pieces
            .iter()
            .map(|piece| redactor.push(piece).unwrap_or_else(|| piece.to_vec()))
            .collect();
        out.push(redactor.finish());
        out
    }

    #[test]
    fn bytes_are_redacted_even_when_not_utf8() {
        register_secret("canary-bytes-0000-DO-NOT-LEAK");
        let body = b"\xff\xfe{\"key\":\"canary-bytes-0000-DO-NOT-LEAK\"}\xff";
        assert_eq!(
            redact_bytes(body).as_ref(),
            b"\xff\xfe{\"key\":\"[REDACTED]\"}\xff".as_slice()
        );
        assert!(matches!(redact_bytes(b"nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_secret_split_anywhere_across_chunks_is_caught() {
        let secret = "canary-split-0000-DO-NOT-LEAK";
        register_secret(secret);
        let text = format!("data: {{\"error\":\"bad key {secret}\"}}\n\ncanary-spl and {secret}");
        let expected = redact(&text).into_owned();
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            for second in cut..=bytes.len() {
                let pieces = [&bytes[..cut], &bytes[cut..second], &bytes[second..]];
                let joined = stream_in(&pieces).concat();
                assert_eq!(
                    String::from_utf8_lossy(&joined),
                    expected,
                    "cut {cut}/{second}"
                );
            }
        }
    }

    #[test]
    fn a_stream_byte_by_byte_comes_out_scrubbed() {
        let secret = "canary-bytewise-0000-DO-NOT-LEAK";
        register_secret(secret);
        let text = format!("{secret}{secret} tail canary-bytewise");
        let pieces: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        let joined = stream_in(&pieces).concat();
        assert_eq!(
            String::from_utf8(joined).expect("utf-8"),
            "[REDACTED][REDACTED] tail canary-bytewise"
        );
    }

    #[test]
    fn held_tails_never_cut_a_character_and_plain_chunks_pass_untouched() {
        let secret = "canary-utf8-0000-DO-NOT-LEAK";
        register_secret(secret);
        let mut redactor = StreamRedactor::new();
        assert_eq!(redactor.push("héllo wörld ".as_bytes()), None);
        let first = redactor
            .push("naïve ça canary-ut".as_bytes())
            .expect("holds a tail");
        assert_eq!(
            String::from_utf8(first).expect("whole characters"),
            "naïve ça "
        );
        let second = redactor
            .push("f8-0000-DO-NOT-LEAK — été".as_bytes())
            .expect("joins the tail");
        assert_eq!(
            String::from_utf8(second).expect("utf-8"),
            "[REDACTED] — été"
        );
        assert!(redactor.finish().is_empty());
    }

    #[test]
    fn short_values_are_not_registered() {
        register_secret("abc");
        assert_eq!(redact("abc"), "abc");
    }

    #[test]
    fn a_secret_rebuilt_by_the_marker_is_redacted_too() {
        // Found by the `redaction` fuzz target: one pass left `[REDACTED]canary-2222[`.
        register_secret("]canary-rebuilt-2222[");
        let text = "]canary-rebuilt-2222[canary-rebuilt-2222[";
        assert_eq!(redact(text), "[REDACTED[REDACTED]");
    }

    #[test]
    fn values_made_of_the_marker_are_not_registered() {
        register_secret("REDACTED");
        register_secret("D][REDACTED][REDA");
        assert_eq!(redact("[REDACTED] REDACTED"), "[REDACTED] REDACTED");
    }

    #[test]
    fn an_escape_never_spells_a_secret() {
        // A newline, then the key without its first letter `n`: escaping writes `\n`, which spells it.
        register_secret("nvapi-escape-test-1111");
        assert_eq!(
            sanitize("key:\nvapi-escape-test-1111."),
            "key:\\[REDACTED]."
        );
    }

    #[test]
    fn sanitize_escapes_control_characters() {
        assert_eq!(
            sanitize("a\x1b[2Jb\nc\u{7}"),
            "a\\u{1b}[2Jb\\nc\\u{7}".to_owned()
        );
        assert!(matches!(sanitize("plain text"), Cow::Borrowed(_)));
    }
}
