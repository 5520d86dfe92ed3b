//! A `.env` file as a layer under the process environment, read into a map and never into the process
//! environment (which edition 2024 makes `unsafe` to change).

use std::path::Path;

use llm_core::{Error, LayeredEnv, MapEnv, ProcessEnv};

/// Where [`env_with_dotenv`] reads settings from, for hints ("set … in the environment or a .env file").
pub const DOTENV_SOURCE: &str = "the environment or a .env file";

/// The process environment over the variables of the `.env` file at `path`: what the process sets
/// wins, the file fills in the rest. A missing file is no error (the process environment alone).
///
/// # Errors
/// A config error naming the file when it exists but cannot be read or parsed. A line that cannot be
/// parsed is not quoted: it may hold a key.
pub fn env_with_dotenv(path: impl AsRef<Path>) -> Result<LayeredEnv, Error> {
    let path = path.as_ref();
    let layered = LayeredEnv::new().then(ProcessEnv);
    if !path.is_file() {
        return Ok(layered);
    }
    Ok(layered.then(read_dotenv(path)?))
}

/// The variables of the `.env` file at `path`.
fn read_dotenv(path: &Path) -> Result<MapEnv, Error> {
    let unreadable = |error: dotenvy::Error| {
        let why = match error {
            // dotenvy's message quotes the line, which may hold a key.
            dotenvy::Error::LineParse(_, index) => {
                format!("a line cannot be parsed (at character {index}); expected NAME=value")
            }
            other => other.to_string(),
        };
        Error::config(format!("{}: {why}", path.display()))
    };
    let mut map = MapEnv::new();
    for entry in dotenvy::from_path_iter(path).map_err(unreadable)? {
        let (name, value) = entry.map_err(unreadable)?;
        map = map.with(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::EnvSource;

    #[test]
    fn the_file_fills_in_what_the_process_does_not_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(".env");
        // PATH is set in every test process: the process wins over the file.
        std::fs::write(&file, "LLM_CASCADE_DOTENV_TEST=from-file\nPATH=from-file\n")
            .expect("write");
        let env = env_with_dotenv(&file).expect("env");
        assert_eq!(
            env.var("LLM_CASCADE_DOTENV_TEST")
                .expect("utf-8")
                .as_deref(),
            Some("from-file")
        );
        assert_ne!(
            env.var("PATH").expect("utf-8").as_deref(),
            Some("from-file")
        );
    }

    #[test]
    fn a_missing_file_is_the_process_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env_with_dotenv(dir.path().join(".env")).expect("env");
        assert!(env.var("LLM_CASCADE_DOTENV_TEST").expect("utf-8").is_none());
    }

    #[test]
    fn a_bad_line_names_the_file_but_not_the_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join(".env");
        std::fs::write(&file, "GROQ_API_KEY canary-key-0000-DO-NOT-LEAK\n").expect("write");
        let error = env_with_dotenv(&file).expect_err("unparsable");
        assert_eq!(error.kind(), llm_core::ErrorKind::Config);
        assert!(error.message().contains(".env"), "{error}");
        assert!(!error.to_string().contains("canary"), "{error}");
    }
}
