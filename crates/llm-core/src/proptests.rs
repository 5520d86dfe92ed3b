//! Property tests of the round trips in this crate: settings values formatted then parsed, and
//! secrets embedded in arbitrary text then redacted. (The fuzz targets in `fuzz/` cover arbitrary
//! input; these cover arbitrary *valid* input, where the answer is known.)

use std::time::Duration;

use proptest::prelude::*;

use crate::{REDACTED, parse_bool, parse_duration, redact, register_secret, sanitize};

/// Every secret these tests register carries this, so no other test's text can contain one by chance.
const TAG: &str = "pt-canary-";

proptest! {
    #[test]
    fn whole_durations_parse_exactly(n in 0u64..1_000_000_000, unit in 0usize..5, spaces in 0usize..3) {
        let (suffix, scale) = [("", 1), ("s", 1), ("secs", 1), ("m", 60), ("h", 3600)][unit];
        let pad = " ".repeat(spaces);
        let text = format!("{pad}{n}{pad}{suffix}{pad}");
        prop_assert_eq!(parse_duration(&text), Ok(Duration::from_secs(n * scale)));
    }

    #[test]
    fn millisecond_and_fractional_durations_round_trip(millis in 0u64..10_000_000_000) {
        let expected = Duration::from_millis(millis);
        let formats = [format!("{millis}ms"), format!("{}.{:03}", millis / 1000, millis % 1000)];
        for text in formats {
            let parsed = parse_duration(&text).map_err(TestCaseError::fail)?;
            // Parsed through f64: equal to the microsecond.
            prop_assert!(parsed.abs_diff(expected) < Duration::from_micros(1), "{} -> {:?}", text, parsed);
        }
    }

    #[test]
    fn booleans_in_any_ascii_case(index in 0usize..8, mask in any::<u8>()) {
        let (word, value) = [("1", true), ("true", true), ("yes", true), ("on", true),
            ("0", false), ("false", false), ("no", false), ("off", false)][index];
        let cased: String = word.chars().enumerate()
            .map(|(i, c)| if mask >> (i % 8) & 1 == 1 { c.to_ascii_uppercase() } else { c })
            .collect();
        prop_assert_eq!(parse_bool(&cased), Ok(value));
    }

    #[test]
    fn an_embedded_secret_never_survives(
        body in "[A-Za-z0-9_-]{8,40}",
        before in "\\PC{0,40}",
        between in "\\PC{0,10}",
        after in "\\PC{0,40}",
    ) {
        let secret = format!("{TAG}{body}");
        register_secret(&secret);
        let text = format!("{before}{secret}{between}{secret}{after}");
        let redacted = redact(&text);
        prop_assert!(!redacted.contains(&secret), "{:?}", redacted);
        prop_assert!(redacted.contains(REDACTED));
        prop_assert!(!sanitize(&text).contains(&secret));
    }

    #[test]
    fn text_without_a_secret_is_unchanged(text in "\\PC{0,200}") {
        prop_assume!(!text.contains(TAG));
        prop_assert_eq!(redact(&text), text.as_str());
    }
}
