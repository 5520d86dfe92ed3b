//! The link file: names every compiled-in provider crate once.
//!
//! A crate that is a dependency but never named in code is not linked, and its `inventory` registration
//! silently disappears. Naming each feature-gated provider crate here keeps it linked; the test
//! `registry_equals_enabled_features` checks that nothing is lost.

#[cfg(feature = "provider-anthropic")]
use llm_provider_anthropic as _;
#[cfg(feature = "provider-deepseek")]
use llm_provider_deepseek as _;
#[cfg(feature = "provider-gemini")]
use llm_provider_gemini as _;
#[cfg(feature = "provider-groq")]
use llm_provider_groq as _;
#[cfg(feature = "provider-lmstudio")]
use llm_provider_lmstudio as _;
#[cfg(feature = "provider-local")]
use llm_provider_local as _;
#[cfg(feature = "provider-mistral")]
use llm_provider_mistral as _;
#[cfg(feature = "provider-ollama")]
use llm_provider_ollama as _;
#[cfg(feature = "provider-openai")]
use llm_provider_openai as _;
#[cfg(feature = "provider-openrouter")]
use llm_provider_openrouter as _;
#[cfg(feature = "provider-together")]
use llm_provider_together as _;

/// The ids of the providers whose cargo feature is enabled in this build.
pub const ENABLED: &[&str] = &[
    #[cfg(feature = "provider-ollama")]
    "ollama",
    #[cfg(feature = "provider-lmstudio")]
    "lmstudio",
    #[cfg(feature = "provider-groq")]
    "groq",
    #[cfg(feature = "provider-gemini")]
    "gemini",
    #[cfg(feature = "provider-openrouter")]
    "openrouter",
    #[cfg(feature = "provider-together")]
    "together",
    #[cfg(feature = "provider-mistral")]
    "mistral",
    #[cfg(feature = "provider-openai")]
    "openai",
    #[cfg(feature = "provider-deepseek")]
    "deepseek",
    #[cfg(feature = "provider-anthropic")]
    "anthropic",
    #[cfg(feature = "provider-local")]
    "local",
];

/// The default order, cheapest first: local servers, free cloud tiers, paid; the embedded model last.
pub const DEFAULT_ORDER: [&str; 11] = [
    "ollama",
    "lmstudio",
    "groq",
    "gemini",
    "openrouter",
    "together",
    "mistral",
    "openai",
    "deepseek",
    "anthropic",
    "local",
];
