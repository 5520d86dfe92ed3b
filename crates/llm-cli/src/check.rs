//! Live probes of providers (`Provider::check_available`), run concurrently, each bounded by the
//! provider's own timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use llm_cascade::{EnvSource, Error, ErrorKind, Provider, ProviderRegistration};
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

/// Probes one provider within its timeout.
pub async fn check(provider: Arc<dyn Provider>) -> Check {
    let started = Instant::now();
    let limit = provider.timeout();
    let result = match tokio::time::timeout(limit, provider.check_available()).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!("no answer within {limit:?} (the provider's timeout)"),
        )
        .with_provider(provider.id())),
    };
    match result {
        Ok(()) => Check {
            provider: provider.id().to_owned(),
            ok: true,
            latency_ms: millis(started.elapsed()),
            kind: None,
            status: None,
            message: None,
        },
        Err(error) => Check::failed(provider.id(), &error, started.elapsed()),
    }
}

/// Builds and probes each registration concurrently; the results come back in the given order.
/// Registrations that are not configured fail with a config reason naming their variables.
pub async fn check_registrations(
    registrations: &[&ProviderRegistration],
    env: &dyn EnvSource,
) -> Vec<Check> {
    let probes = registrations.iter().map(|registration| {
        let built = if registration.is_configured(env) {
            (registration.build)(env).map(Arc::<dyn Provider>::from)
        } else {
            Err(Error::config(format!(
                "not configured: set {}",
                registration.key_env.join(" or ")
            )))
        };
        let id = registration.id;
        async move {
            match built {
                Ok(provider) => check(provider).await,
                Err(error) => Check::failed(id, &error, Duration::ZERO),
            }
        }
    });
    join_all(probes).await
}

#[cfg(test)]
mod tests {
    use super::*;

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
