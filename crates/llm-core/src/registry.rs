//! Provider registration without a central list.
//!
//! Each provider crate submits one [`ProviderRegistration`] with [`register_provider!`]; the facade builds
//! a [`Registry`] from them. Registration relies on `inventory` (life before `main`), which does not run in
//! every kind of build, so [`Registry::from_registrations`] is the explicit path that needs no magic.

use std::collections::BTreeMap;
use std::fmt;

use crate::{EnvSource, Error, Provider};

/// Builds a provider from configuration. Does no network I/O.
pub type BuildProvider = fn(&dyn EnvSource) -> Result<Box<dyn Provider>, Error>;

/// What a provider crate tells the registry about itself. A `const` value of plain data and `fn` pointers.
#[derive(Clone, Copy)]
pub struct ProviderRegistration {
    /// The provider's id, also its cargo feature (`provider-<id>`) and crate (`llm-provider-<id>`).
    pub id: &'static str,
    /// A human name ("OpenRouter").
    pub display_name: &'static str,
    /// Position in the default order: lower is tried first (cheapest first: local, free tiers, paid).
    /// The only source of the default order.
    pub priority: u16,
    /// Other names users have for the id, lower case (`claude` for `anthropic`, `lm-studio` for
    /// `lmstudio`); accepted wherever an id is.
    pub aliases: &'static [&'static str],
    /// Whether the provider runs locally and needs no key.
    pub local: bool,
    /// The prefix of its variables, without the underscore (`GROQ`, `LM_STUDIO`): `<PREFIX>_MODEL`,
    /// `<PREFIX>_BASE_URL`, `<PREFIX>_TIMEOUT`.
    pub env_prefix: &'static str,
    /// Environment variables that configure it; the first one set wins. Empty for local providers,
    /// which are always configured.
    pub key_env: &'static [&'static str],
    /// The model used when none is configured.
    pub default_model: &'static str,
    /// The base URL used when none is configured.
    pub default_base_url: &'static str,
    /// Builds the provider from configuration. Does no network I/O.
    pub build: BuildProvider,
}

impl ProviderRegistration {
    /// Whether `env` configures this provider (its key is set; local providers always are).
    pub fn is_configured(&self, env: &dyn EnvSource) -> bool {
        // An unreadable key is set: the provider counts as configured, and building it reports the error.
        self.local || !matches!(env.first_of(self.key_env), Ok(None))
    }
}

impl fmt::Debug for ProviderRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderRegistration")
            .field("id", &self.id)
            .field("priority", &self.priority)
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

inventory::collect!(ProviderRegistration);

/// Registers a provider with the registry. Use once per provider crate, with a `const` registration:
///
/// ```text
/// llm_core::register_provider!(crate::REGISTRATION);
/// ```
#[macro_export]
macro_rules! register_provider {
    ($registration:expr) => {
        $crate::__private::inventory::submit! { $registration }
    };
}

/// The known providers by id, sorted by (priority, id).
#[derive(Debug, Clone, Default)]
pub struct Registry {
    sorted: Vec<ProviderRegistration>,
}

impl Registry {
    /// Every provider registered with [`register_provider!`] in this binary.
    ///
    /// # Errors
    /// A [`ErrorKind::Config`](crate::ErrorKind::Config) error when two registrations share an id.
    pub fn from_inventory() -> Result<Self, Error> {
        Self::from_registrations(inventory::iter::<ProviderRegistration>.into_iter().copied())
    }

    /// A registry of exactly these providers (the explicit path, no `inventory`).
    ///
    /// # Errors
    /// A [`ErrorKind::Config`](crate::ErrorKind::Config) error when two registrations share an id.
    pub fn from_registrations(
        registrations: impl IntoIterator<Item = ProviderRegistration>,
    ) -> Result<Self, Error> {
        let mut by_id = BTreeMap::new();
        for registration in registrations {
            if by_id.insert(registration.id, registration).is_some() {
                return Err(Error::config(format!(
                    "provider id `{}` is registered twice; each provider crate must register once",
                    registration.id
                )));
            }
        }
        let mut sorted: Vec<_> = by_id.into_values().collect();
        sorted.sort_by_key(|r| (r.priority, r.id));
        Ok(Self { sorted })
    }

    /// The registration of `id`.
    pub fn get(&self, id: &str) -> Option<&ProviderRegistration> {
        self.sorted.iter().find(|r| r.id == id)
    }

    /// All registrations in default order.
    pub fn iter(&self) -> impl Iterator<Item = &ProviderRegistration> {
        self.sorted.iter()
    }

    /// All ids in default order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.sorted.iter().map(|r| r.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn no_build(_: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
        Err(Error::config("not buildable in this test"))
    }

    const fn registration(id: &'static str, priority: u16) -> ProviderRegistration {
        ProviderRegistration {
            id,
            display_name: id,
            priority,
            aliases: &[],
            local: false,
            env_prefix: "TEST",
            key_env: &["TEST_API_KEY"],
            default_model: "m",
            default_base_url: "http://127.0.0.1:1",
            build: no_build,
        }
    }

    #[test]
    fn sorted_by_priority_then_id() {
        let registry = Registry::from_registrations([
            registration("b", 2),
            registration("c", 1),
            registration("a", 2),
        ])
        .expect("no duplicates");
        assert_eq!(registry.ids(), vec!["c", "a", "b"]);
    }

    #[test]
    fn duplicate_ids_are_rejected_loudly() {
        let err = Registry::from_registrations([registration("x", 1), registration("x", 2)])
            .expect_err("duplicate");
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.message().contains("`x`"));
    }

    #[test]
    fn configured_when_a_key_is_set_or_local() {
        let remote = registration("r", 1);
        assert!(!remote.is_configured(&crate::MapEnv::new()));
        assert!(remote.is_configured(&crate::MapEnv::new().with("TEST_API_KEY", "k")));
        let local = ProviderRegistration {
            local: true,
            key_env: &[],
            ..remote
        };
        assert!(local.is_configured(&crate::MapEnv::new()));
    }
}
