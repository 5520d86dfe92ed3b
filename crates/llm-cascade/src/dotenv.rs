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
    let file = path.display().to_string();
    let text = std::fs::read(path)
        .map_err(|e| Error::config(format!("{file}: cannot read it: {}", e.kind())))?;
    parse(&file, &text).map_err(Error::config)
}

/// The variables of a `.env` file's contents; `file` names it in errors.
///
/// # Errors
/// The file, the line number and the variable, never the value.
fn parse(file: &str, text: &[u8]) -> Result<MapEnv, String> {
    let mut map = MapEnv::new();
    for entry in dotenvy::from_read_iter(text) {
        let (name, value) = entry.map_err(|error| describe(file, text, &error))?;
        map = map.with(name, value);
    }
    Ok(map)
}

/// What is wrong with `text`, without quoting it: dotenvy's own message quotes the failing line whole,
/// and that line is usually `SOME_API_KEY=…`.
fn describe(file: &str, text: &[u8], error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::LineParse(..) => {
            let Some((number, name)) = failing_line(text) else {
                return format!("{file}: cannot parse it (check quotes and escapes)");
            };
            match name {
                Some(name) => format!(
                    "{file} line {number}: cannot parse the value of {name} (check its quotes and escapes); the line is not shown, as it may hold a key"
                ),
                None => format!(
                    "{file} line {number}: cannot parse this line (expected NAME=value); the line is not shown, as it may hold a key"
                ),
            }
        }
        dotenvy::Error::Io(io) => format!("{file}: cannot read it: {}", io.kind()),
        // dotenvy reports a missing variable without quoting any value.
        other => format!("{file}: {other}"),
    }
}

/// The 1-based number of the first line at which `text` stops parsing, and the variable it sets when
/// that can be told. Found by parsing ever longer prefixes of the file (a `.env` is short): the first
/// prefix that fails on a complete line is the culprit; a quote still open at the end of the file is
/// blamed on the line that opened it.
fn failing_line(text: &[u8]) -> Option<(usize, Option<String>)> {
    let text = String::from_utf8_lossy(text);
    let lines: Vec<&str> = text.lines().collect();
    for end in 1..=lines.len() {
        let prefix = lines[..end].join("\n") + "\n";
        let Some(Err(dotenvy::Error::LineParse(rest, at))) =
            dotenvy::from_read_iter(prefix.as_bytes()).find(Result::is_err)
        else {
            continue;
        };
        // An error at the very end of what dotenvy buffered: a quote still open, which a later line
        // may close.
        let open_at_end = at == rest.len();
        if open_at_end && end < lines.len() {
            continue;
        }
        let number = if open_at_end {
            end + 1 - rest.lines().count().max(1)
        } else {
            end
        };
        return Some((number, variable_name(lines[number - 1])));
    }
    None
}

/// The variable a `.env` line sets (`NAME=…` or `export NAME=…`), when its name is a plausible one.
fn variable_name(line: &str) -> Option<String> {
    let line = line.trim_start();
    let line = line.strip_prefix("export ").unwrap_or(line);
    let (name, _) = line.split_once('=')?;
    let name = name.trim();
    let plausible = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    plausible.then(|| name.to_owned())
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

    const KEY: &str = "canary-env-0000-DO-NOT-LEAK";

    fn error_of(text: &str) -> String {
        let error = parse(".env", text.as_bytes()).expect_err("malformed");
        assert!(!error.contains(KEY), "the key leaked: {error}");
        assert!(!error.contains("DO-NOT"), "part of the key leaked: {error}");
        error
    }

    #[test]
    fn a_well_formed_file_is_read() {
        let env = parse(
            ".env",
            format!("# keys\nexport GROQ_API_KEY={KEY}\n\nLLM_DEADLINE=\"30s\"\n").as_bytes(),
        )
        .expect("parses");
        assert_eq!(
            env.var("GROQ_API_KEY").expect("utf-8").as_deref(),
            Some(KEY)
        );
        assert_eq!(
            env.var("LLM_DEADLINE").expect("utf-8").as_deref(),
            Some("30s")
        );
    }

    #[test]
    fn a_bad_value_names_the_line_and_variable_never_the_value() {
        let text = format!("# comment\nLLM_DEADLINE=30s\n\nOPENAI_API_KEY={KEY} trailing words\n");
        assert_eq!(
            error_of(&text),
            ".env line 4: cannot parse the value of OPENAI_API_KEY (check its quotes and escapes); the line is not shown, as it may hold a key"
        );
        let text = format!("GROQ_API_KEY=\"{KEY}\\q\"\n");
        assert!(error_of(&text).starts_with(".env line 1: cannot parse the value of GROQ_API_KEY"));
    }

    #[test]
    fn an_unclosed_quote_is_blamed_on_the_line_that_opened_it() {
        let text = format!("A=1\nGEMINI_API_KEY=\"{KEY}\nB=2\n");
        assert!(
            error_of(&text).starts_with(".env line 2: cannot parse the value of GEMINI_API_KEY"),
            "{}",
            error_of(&text)
        );
    }

    #[test]
    fn a_line_without_a_name_is_described_without_quoting_it() {
        let text = format!("A=1\n{KEY} oops\n");
        assert_eq!(
            error_of(&text),
            ".env line 2: cannot parse this line (expected NAME=value); the line is not shown, as it may hold a key"
        );
    }
}
