//! The configuration source: the process environment over a `.env` file in the working directory
//! (the library's loader, [`llm_cascade::env_with_dotenv`]).

use llm_cascade::LayeredEnv;

/// The process environment, then `.env` (if present) for what the process does not set.
///
/// # Errors
/// A message naming the file when `.env` exists but cannot be parsed.
pub fn load() -> Result<LayeredEnv, String> {
    llm_cascade::env_with_dotenv(".env").map_err(|error| error.message().to_owned())
}
