//! Choosing the chain for one call: every provider a cascade may use (its pool), restricted and
//! reordered per call ([`Cascade::restricted`]), given explicitly ([`Cascade::with_providers`]), or
//! pinned to one ([`Cascade::from_env_pinned`]).

use std::sync::Arc;

use llm_core::{EnvSource, Error, ErrorKind, Provider, Registry};

use crate::config::resolve_provider;
use crate::engine::Cascade;

/// Every provider a chain may be restricted to: the compiled-in ones (configured or not) when the
/// cascade was built from the environment, or the builder's providers.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    /// Resolves names (aliases, ids that are not compiled in); `None` for a builder chain.
    registry: Option<Registry>,
    members: Vec<Member>,
}

#[derive(Debug)]
struct Member {
    id: String,
    state: State,
}

/// Whether a pool member can be used, and why not.
#[derive(Debug)]
enum State {
    Ready(Arc<dyn Provider>),
    /// Configured, but its settings are invalid: the error's kind and message (errors are not
    /// `Clone`; the message says what to fix).
    Invalid(ErrorKind, String),
    /// Not configured: the variables that would configure it.
    Unconfigured(&'static [&'static str]),
}

impl Pool {
    /// The builder's providers, all usable.
    pub(crate) fn of(providers: &[Arc<dyn Provider>]) -> Self {
        let members = providers
            .iter()
            .map(|p| Member {
                id: p.id().to_owned(),
                state: State::Ready(p.clone()),
            })
            .collect();
        Self {
            registry: None,
            members,
        }
    }

    /// Every compiled-in provider: those in `chain` as they are, the other configured ones built
    /// now (an invalid setting is reported only when a call names that provider, as it was before
    /// the provider was pooled), the rest as unconfigured. Does no network I/O.
    pub(crate) fn from_registry(
        env: &dyn EnvSource,
        registry: &Registry,
        chain: &[Arc<dyn Provider>],
    ) -> Self {
        let private = crate::config::private_mode(env).unwrap_or(false);
        let members = registry
            .iter()
            .map(|registration| {
                let id = registration.id;
                let state = if let Some(p) = chain.iter().find(|p| p.id() == id) {
                    State::Ready(p.clone())
                } else if !registration.local && private {
                    // Privacy mode: a cloud provider is never built, so no call can name it.
                    State::Unconfigured(&["LLM_PRIVATE=false (privacy mode is on)"])
                } else if !registration.is_configured(env) {
                    State::Unconfigured(registration.key_env)
                } else {
                    match (registration.build)(env) {
                        Ok(provider) => State::Ready(Arc::from(provider)),
                        Err(error) => State::Invalid(error.kind(), error.message().to_owned()),
                    }
                };
                Member {
                    id: id.to_owned(),
                    state,
                }
            })
            .collect();
        Self {
            registry: Some(registry.clone()),
            members,
        }
    }

    /// The usable provider `name` stands for.
    fn find(&self, name: &str) -> Result<Arc<dyn Provider>, Error> {
        let wanted = name.trim().to_ascii_lowercase();
        let id = match (self.member(&wanted), &self.registry) {
            (Some(member), _) => member.id.clone(),
            (None, Some(registry)) => resolve_provider(name, registry)?.to_owned(),
            (None, None) => {
                return Err(Error::config(format!(
                    "unknown provider `{}`; this chain has: {}",
                    name.trim(),
                    self.ids().join(", ")
                )));
            }
        };
        let Some(member) = self.member(&id) else {
            return Err(Error::config(format!("unknown provider `{id}`")));
        };
        match &member.state {
            State::Ready(provider) => Ok(provider.clone()),
            State::Invalid(kind, message) => {
                Err(Error::new(*kind, message.clone()).with_provider(&member.id))
            }
            State::Unconfigured(keys) => Err(Error::config(format!(
                "{id} is not configured: set {}",
                keys.join(" or ")
            ))
            .with_provider(&member.id)),
        }
    }

    fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    fn ids(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.id.as_str()).collect()
    }
}

impl Cascade {
    /// Builds the chain from `env` and the compiled-in providers, pinned to one provider when `pin`
    /// names one (`--provider`, `/llm switch`), the full chain otherwise. Does no network I/O.
    ///
    /// # Errors
    /// A config error for invalid settings or an unknown provider id in the order; when pinned, also
    /// when the pinned provider is unknown, not compiled in, or not configured (naming its variables).
    pub fn from_env_pinned(env: &dyn EnvSource, pin: Option<&str>) -> Result<Self, Error> {
        Self::from_registry(env, &crate::registry()?, pin)
    }

    /// This cascade with `providers` as its chain, in that order, sharing everything else: the
    /// settings, the observers, the provider state (a provider cooling after a long `Retry-After`,
    /// an open circuit, a spent budget are the same here) and the retry budget. For a caller that
    /// resolves providers itself, such as a gateway routing one request to `id/model` (a provider
    /// wrapped to ask for another model, remembered under that model). Cheap: nothing is built, no
    /// text is copied, nothing is sent. Add a per-call observer to the result with
    /// [`Cascade::with_observer`]; the original cascade does not get it.
    ///
    /// ```
    /// use llm_cascade::{Cascade, MapEnv};
    /// if let Ok(cascade) = Cascade::from_env_source(&MapEnv::new()) {
    ///     let reversed = cascade.providers().iter().rev().cloned().collect();
    ///     let per_call = cascade.with_providers(reversed);
    ///     assert_eq!(per_call.providers().len(), cascade.providers().len());
    /// }
    /// ```
    pub fn with_providers(&self, providers: Vec<Arc<dyn Provider>>) -> Self {
        self.with_chain(providers)
    }

    /// A chain of exactly the providers `names` stands for, in that order, with this cascade's
    /// settings, observers and retry budget: for one call that names its providers (`cascade test
    /// ID…`, a gateway request's `models`). Cheap: no provider is built and nothing is sent.
    ///
    /// A name is an id or an alias, any case; a provider named twice is tried once. Any compiled-in
    /// provider that is configured may be named, also one the configured order leaves out. With
    /// fallback disabled (`LLM_AUTO_FALLBACK=false`) the chain keeps only the first. No names give an
    /// empty chain, whose calls fail with the setup hint.
    ///
    /// ```
    /// use llm_cascade::{Cascade, MapEnv};
    /// // Without any key only the local servers are configured (when compiled in).
    /// if let Ok(cascade) = Cascade::from_env_source(&MapEnv::new()) {
    ///     let error = cascade.restricted(&["gpt5"]).expect_err("no such provider");
    ///     assert!(error.message().starts_with("unknown provider `gpt5`"));
    /// }
    /// ```
    ///
    /// # Errors
    /// A config error naming the provider when a name is unknown (listing the valid ids), is a
    /// provider this build does not compile in (naming its cargo feature), or is not configured
    /// (naming its variables); a configured provider whose settings are invalid gives that error.
    /// The message does not say where the name came from: callers prefix the flag or field.
    pub fn restricted(&self, names: &[&str]) -> Result<Self, Error> {
        let mut chain: Vec<Arc<dyn Provider>> = Vec::new();
        for name in names {
            let provider = self.pool().find(name)?;
            if !chain.iter().any(|p| p.id() == provider.id()) {
                chain.push(provider);
            }
        }
        if !self.config().auto_fallback {
            chain.truncate(1);
        }
        Ok(self.with_chain(chain))
    }
}
