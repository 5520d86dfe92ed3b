//! A key that never prints itself.

use std::fmt;

/// An API key or other secret. `Debug` and `Display` print `***`; only [`Secret::expose`] gives the value,
/// and callers use it only to build the request header.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value and registers it for redaction ([`crate::redact`]), so that the value is
    /// scrubbed from every error, log line and output even when a provider echoes it back.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        crate::register_secret(&value);
        Self(value)
    }

    /// The secret value, for putting into a request header and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let secret = Secret::new("sk-canary-0123456789");
        assert!(!format!("{secret:?}").contains("canary"));
        assert!(!format!("{secret}").contains("canary"));
        assert_eq!(secret.expose(), "sk-canary-0123456789");
        assert_eq!(
            crate::redact("echo sk-canary-0123456789"),
            "echo [REDACTED]"
        );
    }
}
