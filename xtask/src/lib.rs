//! Project automation for llm-cascade, run as `cargo xtask <command>`.
//!
//! - `record-fixtures`: records real exchanges of every configured provider through our own provider
//!   code and a loopback recording proxy, scrubs them and writes `fixtures/<id>/recorded/`;
//!   `--check` decodes every committed fixture with the current code (offline). See `fixtures/README.md`.
//! - `new-provider`: scaffolds an OpenAI-compatible provider crate and wires it in ([`scaffold`]).
//! - `bench-gateway`: the gateway's overhead against an instant loopback upstream (see [`bench`]).
//!
//! The pieces are a library so that `tests/` can drive them against a local upstream.

pub mod bench;
pub mod check;
pub mod clock;
pub mod proxy;
pub mod record;
pub mod scaffold;
pub mod scenarios;
pub mod scrub;

use std::path::{Path, PathBuf};

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The committed scenario list.
pub fn scenario_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios.json")
}

/// The variables of a `.env` file in `dir`, read into a map (the process environment is not touched).
///
/// # Errors
/// A message when the file exists but cannot be parsed.
pub fn dotenv_map(dir: &Path) -> Result<llm_core::MapEnv, String> {
    let file = dir.join(".env");
    if !file.is_file() {
        return Ok(llm_core::MapEnv::new());
    }
    let iter = dotenvy::from_path_iter(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    iter.map(|item| item.map_err(|e| format!("{}: {e}", file.display())))
        .collect()
}
