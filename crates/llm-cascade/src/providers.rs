//! The link file: the one table of every provider this workspace has, compiled in or not.
//!
//! A crate that is a dependency but never named in code is not linked, and its `inventory` registration
//! silently disappears. The table below names each feature-gated provider crate once; from the same
//! rows come [`ENABLED`] (the ids whose feature is on) and [`KNOWN_PROVIDERS`] (every id, so that an id
//! that is known but not compiled in is a config error naming its feature, not an unknown id). The
//! default order is not here: it comes from each registration's `priority`. The test
//! `registry_equals_enabled_features` checks that nothing is lost.

/// A provider this workspace has, whether or not this build compiles it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownProvider {
    /// Its id.
    pub id: &'static str,
    /// The cargo feature of `llm-cascade` (and `llm-cli`) that compiles it in.
    pub feature: &'static str,
    /// Whether that feature is enabled in this build.
    pub compiled_in: bool,
}

/// One row per provider: `id => "feature", crate`. Adding a provider is one row here, its optional
/// dependency and its feature in `Cargo.toml`.
macro_rules! provider_table {
    ($($id:literal => $feature:literal, $krate:ident;)+) => {
        $(
            #[cfg(feature = $feature)]
            use $krate as _;
        )+

        /// The ids of the providers whose cargo feature is enabled in this build.
        pub const ENABLED: &[&str] = &[$(#[cfg(feature = $feature)] $id,)+];

        /// Every provider this workspace has, in id order, compiled in or not.
        pub const KNOWN_PROVIDERS: &[KnownProvider] = &[$(
            KnownProvider { id: $id, feature: $feature, compiled_in: cfg!(feature = $feature) },
        )+];
    };
}

provider_table! {
    "anthropic" => "provider-anthropic", llm_provider_anthropic;
    "deepseek" => "provider-deepseek", llm_provider_deepseek;
    "gemini" => "provider-gemini", llm_provider_gemini;
    "groq" => "provider-groq", llm_provider_groq;
    "lmstudio" => "provider-lmstudio", llm_provider_lmstudio;
    "local" => "provider-local", llm_provider_local;
    "mistral" => "provider-mistral", llm_provider_mistral;
    "ollama" => "provider-ollama", llm_provider_ollama;
    "openai" => "provider-openai", llm_provider_openai;
    "openrouter" => "provider-openrouter", llm_provider_openrouter;
    "together" => "provider-together", llm_provider_together;
}

/// The table's row for `id`.
pub(crate) fn known(id: &str) -> Option<&'static KnownProvider> {
    KNOWN_PROVIDERS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_follows_the_naming_convention() {
        for row in KNOWN_PROVIDERS {
            assert_eq!(row.feature, format!("provider-{}", row.id), "{row:?}");
        }
        let enabled: Vec<&str> = KNOWN_PROVIDERS
            .iter()
            .filter(|p| p.compiled_in)
            .map(|p| p.id)
            .collect();
        assert_eq!(enabled, ENABLED);
    }
}
