//! Redaction by value: every secret the process holds is registered once, and text that comes from a
//! provider or from configuration passes [`redact`] (or [`sanitize`]) before it is shown anywhere.
//!
//! Redacting by value rather than by phrase catches a key however a provider quotes it ("Invalid key
//! sk-…", a key echoed inside an HTML page, a header copied into a message). [`crate::Secret::new`]
//! registers its value, so holding a key in a `Secret` is enough to have it scrubbed everywhere.

use std::borrow::Cow;
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
        register_secret("sk-redact-test-0123456789");
        register_secret("sk-redact-test-0123456789-longer");
        assert_eq!(
            redact("key sk-redact-test-0123456789-longer and sk-redact-test-0123456789."),
            "key [REDACTED] and [REDACTED]."
        );
        assert!(matches!(redact("nothing secret"), Cow::Borrowed(_)));
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
