//! The configuration source: the process environment over a `.env` file in the working directory
//! (the library's loader, [`llm_cascade::env_with_dotenv`]).

use llm_cascade::{EnvSource, LayeredEnv};

/// The process environment, then `.env` (if present) for what the process does not set.
///
/// # Errors
/// A message naming the file, the line and (when it can be told) the variable when `.env` exists but
/// cannot be read or parsed. The line itself is never quoted: it may hold a key.
pub fn load() -> Result<LayeredEnv, String> {
    llm_cascade::env_with_dotenv(".env").map_err(|error| error.message().to_owned())
}

/// Registers every provider key `env` holds (each registration's key variables and `<PREFIX>_API_KEY`,
/// which covers the optional keys of local providers) for redaction, before anything can quote one: a
/// settings error that quotes a value the user pasted a key into, say. Building a provider registers
/// its key too; this covers what is read before, or never built.
pub fn register_keys(env: &dyn EnvSource) {
    let Ok(registry) = llm_cascade::registry() else {
        return;
    };
    for registration in registry.iter() {
        let own = format!("{}_API_KEY", registration.env_prefix);
        for name in registration.key_env.iter().copied().chain([own.as_str()]) {
            if let Ok(Some(value)) = env.var(name) {
                llm_core::register_secret(&value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_cascade::MapEnv;

    #[test]
    #[cfg(all(feature = "provider-openai", feature = "provider-lmstudio"))]
    fn keys_in_the_configuration_are_registered_before_any_provider_is_built() {
        let env = MapEnv::new()
            .with("OPENAI_API_KEY", "canary-openai-env-0000-DO-NOT-LEAK")
            .with("LM_STUDIO_API_KEY", "canary-lmstudio-env-0000-DO-NOT-LEAK")
            .with("LLM_DEADLINE", "canary-not-a-key-0000");
        register_keys(&env);
        assert_eq!(
            llm_core::redact(
                "canary-openai-env-0000-DO-NOT-LEAK canary-lmstudio-env-0000-DO-NOT-LEAK canary-not-a-key-0000"
            ),
            "[REDACTED] [REDACTED] canary-not-a-key-0000"
        );
    }
}
