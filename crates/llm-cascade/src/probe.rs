//! Live probes of providers ([`Provider::check_available`]): concurrent, each bounded by the
//! provider's own timeout and a deadline, with the engine's classified errors.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use llm_core::{EnvSource, Error, Provider, ProviderRegistration};
use tokio::time::Instant;

use crate::engine::{Cascade, timeout_error};

/// The result of probing one provider.
#[derive(Debug)]
#[non_exhaustive]
pub struct ProbeResult {
    /// The provider's id.
    pub provider: String,
    /// `Ok` when it answered and accepted the credentials; otherwise why not, classified as a call's
    /// errors are (`auth`, `network`, `not_running`, `timeout`, `config`, …).
    pub result: Result<(), Error>,
    /// How long the probe took (zero when the provider could not be built).
    pub elapsed: Duration,
}

impl ProbeResult {
    /// Whether the provider answered and accepted the credentials.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }

    /// Why the probe failed, when it did.
    pub fn error(&self) -> Option<&Error> {
        self.result.as_ref().err()
    }

    fn failed(provider: &str, error: Error) -> Self {
        Self {
            provider: provider.to_owned(),
            result: Err(error),
            elapsed: Duration::ZERO,
        }
    }
}

/// Probes one provider, bounded by its own timeout and by `deadline`, whichever is shorter. A probe
/// that runs out fails with [`llm_core::ErrorKind::Timeout`] and the message a call's attempt gets.
pub async fn probe_provider(provider: &dyn Provider, deadline: Duration) -> ProbeResult {
    let started = Instant::now();
    let limit = provider.timeout().min(deadline);
    let result = tokio::time::timeout(limit, provider.check_available())
        .await
        .unwrap_or_else(|_| Err(timeout_error(provider, limit, limit < provider.timeout())));
    ProbeResult {
        provider: provider.id().to_owned(),
        result,
        elapsed: started.elapsed(),
    }
}

/// Builds and probes each registration from `env`, concurrently, each bounded by its timeout and
/// `deadline`; the results come back in the given order. A registration that is not configured, or
/// whose settings are invalid, is not probed: its result is the config error (naming the variables
/// to set), so a caller can list every provider it was asked about.
pub async fn probe_registrations(
    registrations: &[&ProviderRegistration],
    env: &dyn EnvSource,
    deadline: Duration,
) -> Vec<ProbeResult> {
    let probes = registrations.iter().map(|registration| {
        let built = if registration.is_configured(env) {
            (registration.build)(env).map(Arc::<dyn Provider>::from)
        } else {
            Err(Error::config(format!(
                "not configured: set {}",
                registration.key_env.join(" or ")
            ))
            .with_provider(registration.id))
        };
        let id = registration.id;
        async move {
            match built {
                Ok(provider) => probe_provider(provider.as_ref(), deadline).await,
                Err(error) => ProbeResult::failed(id, error),
            }
        }
    });
    join_all(probes).await
}

impl Cascade {
    /// Probes every provider in the chain, concurrently, each bounded by its own timeout and the
    /// request deadline (`LLM_DEADLINE`); the results come back in chain order. Sends one small
    /// request per provider (a model list, or the local server's status) and no prompt; records no
    /// attempt and emits no event.
    pub async fn probe(&self) -> Vec<ProbeResult> {
        let deadline = self.config().deadline;
        join_all(
            self.providers()
                .iter()
                .map(|provider| probe_provider(provider.as_ref(), deadline)),
        )
        .await
    }
}
