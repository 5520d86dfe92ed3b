//! The configuration source: the process environment over a `.env` file in the working directory.

use std::path::Path;

use llm_cascade::{LayeredEnv, MapEnv, ProcessEnv};

/// The process environment, then `.env` (if present) for what the process does not set. The file is
/// read into a map, never into the process environment.
///
/// # Errors
/// A message naming the file and line when `.env` exists but cannot be parsed.
pub fn load() -> Result<LayeredEnv, String> {
    let file = Path::new(".env");
    let layered = LayeredEnv::new().then(ProcessEnv);
    if !file.is_file() {
        return Ok(layered);
    }
    let entries = dotenvy::from_path_iter(file).map_err(|e| format!(".env: {e}"))?;
    let mut map = MapEnv::new();
    for entry in entries {
        let (name, value) = entry.map_err(|e| format!(".env: {e}"))?;
        map = map.with(name, value);
    }
    Ok(layered.then(map))
}
