//! Choosing a store shared by several processes (`LLM_STATE_URL`), and how such a store is doing.

use std::sync::Arc;

use llm_core::{EnvSource, Error};
use serde::Serialize;

use super::StateStore;

/// The variable naming a shared state store: `redis://host:port/db`.
pub const STATE_URL_VAR: &str = "LLM_STATE_URL";
/// The variable setting the prefix of every key the shared store writes (default
/// `llm-cascade:state:v1:`), so that deployments can share one Redis without sharing state.
pub const STATE_PREFIX_VAR: &str = "LLM_STATE_PREFIX";

/// A PEM file with the CA certificate that signed the Redis server's (for `rediss://` with a private
/// CA; by default the system's trusted CAs are used).
pub const STATE_CA_FILE_VAR: &str = "LLM_STATE_CA_FILE";

/// How a store with a backend is doing, for metrics (`/metrics`) and status pages. Counters only
/// grow for the life of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct StoreHealth {
    /// The backend (`redis`).
    pub backend: &'static str,
    /// Whether the backend answered last time: `false` while state is kept locally until it is back.
    pub reachable: bool,
    /// Changes applied to local state because the backend was unreachable, erroring or too slow.
    pub fallbacks: u64,
    /// Times the backend became unreachable; each logged one warning.
    pub outages: u64,
    /// Requests sent to the backend (checks, writes of changes that other instances must see at
    /// once, and flushes).
    pub round_trips: u64,
    /// Changes applied again because another instance had changed the state first.
    pub conflicts: u64,
    /// Writes of deferred changes alone (token counts and the like that no check carried within
    /// the flush interval, or written before the process ends).
    pub flushes: u64,
}

impl StoreHealth {
    /// A reachable backend named `backend` with every counter at zero.
    pub fn new(backend: &'static str) -> Self {
        Self {
            backend,
            reachable: true,
            fallbacks: 0,
            outages: 0,
            round_trips: 0,
            conflicts: 0,
            flushes: 0,
        }
    }
}

/// The shared store `LLM_STATE_URL` names (one per URL and prefix in a process, so that cascades
/// built per request share its connection), or `None` when it is unset.
///
/// # Errors
/// A config error naming the variable when the URL is not a Redis URL, or when this build has no
/// Redis support (llm-cascade's `redis` feature).
pub fn state_store_from_env(env: &dyn EnvSource) -> Result<Option<Arc<dyn StateStore>>, Error> {
    let Some(url) = env.non_empty(STATE_URL_VAR)? else {
        return Ok(None);
    };
    shared_store(env, &url).map(Some)
}

#[cfg(feature = "redis")]
fn shared_store(env: &dyn EnvSource, url: &str) -> Result<Arc<dyn StateStore>, Error> {
    let prefix = env.non_empty(STATE_PREFIX_VAR)?;
    let prefix = prefix.as_deref().unwrap_or(super::redis::DEFAULT_PREFIX);
    let ca = env
        .non_empty(STATE_CA_FILE_VAR)?
        .map(|path| {
            std::fs::read(&path).map_err(|e| {
                Error::config(format!(
                    "{STATE_CA_FILE_VAR}: cannot read the CA certificate `{}`: {e}",
                    llm_core::sanitize(&path)
                ))
            })
        })
        .transpose()?;
    let store: Arc<dyn StateStore> = super::RedisStore::shared(url, prefix, ca.as_deref())?;
    Ok(store)
}

#[cfg(not(feature = "redis"))]
fn shared_store(_env: &dyn EnvSource, _url: &str) -> Result<Arc<dyn StateStore>, Error> {
    Err(Error::config(format!(
        "{STATE_URL_VAR} is set, but this build has no Redis support: build llm-cascade with its \
         `redis` feature (the `cascade` CLI has it), or unset {STATE_URL_VAR}"
    )))
}
