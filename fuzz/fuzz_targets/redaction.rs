//! Redaction (`llm_core::register_secret`, `redact`, `sanitize`): a registered secret never survives,
//! whatever text surrounds it, and text without a secret comes back unchanged.
//!
//! Input: text in which the bytes 0x01..=0x05 stand for the registered secrets below (so the fuzzer
//! places secrets anywhere, next to each other and to fragments of the `[REDACTED]` marker).
#![no_main]

use std::borrow::Cow;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use llm_core::{redact, register_secret, sanitize};

/// Registered once: the registry only grows, so a secret per input would leak memory.
const SECRETS: [&str; 5] = [
    // The canary the CLI tests use.
    "canary-key-0000-DO-NOT-LEAK",
    // A prefix of it: the longer one must win without leaving the shorter one's text behind.
    "canary-key-0000",
    // Starts with `n`: an escaped newline (`\n`) in front of it must not spell it out.
    "nvapi-canary-1111",
    // Gateway keys are chosen by users: brackets may meet the `[REDACTED]` marker.
    "]canary-2222[",
    "canary-3333-tail",
];

fn text_from(data: &[u8]) -> String {
    let mut text = String::new();
    for c in String::from_utf8_lossy(data).chars() {
        match c as u32 {
            n @ 1..=5 => text.push_str(SECRETS[n as usize - 1]),
            _ => text.push(c),
        }
    }
    text
}

fuzz_target!(|data: &[u8]| {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| SECRETS.iter().for_each(|s| register_secret(s)));
    let text = text_from(data);
    let redacted = redact(&text);
    let sanitized = sanitize(&text);
    for secret in SECRETS {
        assert!(
            !redacted.contains(secret),
            "{secret:?} survived redact: {redacted:?}"
        );
        assert!(
            !sanitized.contains(secret),
            "{secret:?} survived sanitize: {sanitized:?}"
        );
    }
    if !SECRETS.iter().any(|s| text.contains(s)) {
        assert!(
            matches!(redacted, Cow::Borrowed(_)),
            "text without a secret was changed"
        );
        assert_eq!(redacted, text.as_str());
        if !text.chars().any(char::is_control) {
            assert_eq!(
                sanitized,
                text.as_str(),
                "plain text without a secret was changed"
            );
        }
    }
});
