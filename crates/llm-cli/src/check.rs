//! Live probes of providers as the CLI shows them: the engine probes
//! ([`llm_cascade::probe_registrations`]); this module turns each result into a table cell or a JSON
//! object.

use std::time::Duration;

use llm_cascade::{EnvSource, Error, ProbeResult, ProviderRegistration, probe_registrations};
use serde::Serialize;

/// The result of probing one provider.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Provider id.
    pub provider: String,
    /// Whether it answered and accepted the credentials.
    pub ok: bool,
    /// How long the probe took.
    pub latency_ms: u64,
    /// The classified reason, when it failed (`auth`, `network`, `not_running`, …).
    pub kind: Option<&'static str>,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// A short message, when it failed.
    pub message: Option<String>,
}

impl Check {
    /// A failure that happened before any probe (not configured, invalid settings).
    pub fn failed(provider: &str, error: &Error, latency: Duration) -> Self {
        Self {
            provider: provider.to_owned(),
            ok: false,
            latency_ms: millis(latency),
            kind: Some(error.kind().as_str()),
            status: error.status(),
            message: Some(error.message().to_owned()),
        }
    }

    /// `✅ 12 ms` or `❌ auth (HTTP 401): Incorrect API key provided…`.
    pub fn describe(&self) -> String {
        if self.ok {
            return format!("✅ {} ms", self.latency_ms);
        }
        let mut text = format!("❌ {}", self.kind.unwrap_or("failed"));
        if let Some(status) = self.status {
            text.push_str(&format!(" (HTTP {status})"));
        }
        if let Some(message) = &self.message {
            text.push_str(&format!(": {}", short(message)));
        }
        text
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The first line of `message`, cut to 60 characters (`--json` has it whole).
fn short(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default();
    if line.chars().count() > 60 {
        let cut: String = line.chars().take(59).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

impl From<&ProbeResult> for Check {
    fn from(probe: &ProbeResult) -> Self {
        match probe.error() {
            None => Self {
                provider: probe.provider.clone(),
                ok: true,
                latency_ms: millis(probe.elapsed),
                kind: None,
                status: None,
                message: None,
            },
            Some(error) => Self::failed(&probe.provider, error, probe.elapsed),
        }
    }
}

/// Probes each registration (the engine's [`probe_registrations`]), each bounded by its timeout
/// and `deadline`; the results come back in the given order. Registrations that are not configured
/// fail with a config reason naming their variables.
pub async fn check_registrations(
    registrations: &[&ProviderRegistration],
    env: &dyn EnvSource,
    deadline: Duration,
) -> Vec<Check> {
    probe_registrations(registrations, env, deadline)
        .await
        .iter()
        .map(Check::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_cascade::ErrorKind;

    #[test]
    fn descriptions_name_the_kind_status_and_a_short_message() {
        let ok = Check {
            provider: "openai".to_owned(),
            ok: true,
            latency_ms: 12,
            kind: None,
            status: None,
            message: None,
        };
        assert_eq!(ok.describe(), "✅ 12 ms");
        let error = Error::new(ErrorKind::Auth, format!("{}\nsecond line", "x".repeat(150)))
            .with_status(401);
        let failed = Check::failed("groq", &error, Duration::from_millis(3));
        let text = failed.describe();
        assert!(text.starts_with("❌ auth (HTTP 401): xxx"), "{text}");
        assert!(
            text.ends_with('…') && !text.contains("second line"),
            "{text}"
        );
    }
}
