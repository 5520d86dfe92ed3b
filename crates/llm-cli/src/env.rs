//! The configuration source: the process environment over a `.env` file in the working directory.

use std::path::Path;

use llm_cascade::{EnvSource, LayeredEnv, MapEnv, ProcessEnv};

/// The process environment, then `.env` (if present) for what the process does not set. The file is
/// read into a map, never into the process environment.
///
/// # Errors
/// A message naming the file, the line and (when it can be told) the variable when `.env` exists but
/// cannot be read or parsed. The line itself is never quoted: it may hold a key.
pub fn load() -> Result<LayeredEnv, String> {
    let file = Path::new(".env");
    let layered = LayeredEnv::new().then(ProcessEnv);
    if !file.is_file() {
        return Ok(layered);
    }
    let text = std::fs::read(file).map_err(|e| format!(".env: cannot read it: {}", e.kind()))?;
    Ok(layered.then(parse(&text)?))
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
            if let Some(value) = env.var(name) {
                llm_core::register_secret(&value);
            }
        }
    }
}

/// The variables of a `.env` file's contents.
///
/// # Errors
/// As [`load`]: the file, the line number and the variable, never the value.
fn parse(text: &[u8]) -> Result<MapEnv, String> {
    let mut map = MapEnv::new();
    for entry in dotenvy::from_read_iter(text) {
        let (name, value) = entry.map_err(|error| describe(text, &error))?;
        map = map.with(name, value);
    }
    Ok(map)
}

/// What is wrong with `text`, without quoting it: dotenvy's own message quotes the failing line whole,
/// and that line is usually `SOME_API_KEY=…`.
fn describe(text: &[u8], error: &dotenvy::Error) -> String {
    match error {
        dotenvy::Error::LineParse(..) => {
            let Some((number, name)) = failing_line(text) else {
                return ".env: cannot parse it (check quotes and escapes)".to_owned();
            };
            match name {
                Some(name) => format!(
                    ".env line {number}: cannot parse the value of {name} (check its quotes and escapes); the line is not shown, as it may hold a key"
                ),
                None => format!(
                    ".env line {number}: cannot parse this line (expected NAME=value); the line is not shown, as it may hold a key"
                ),
            }
        }
        dotenvy::Error::Io(io) => format!(".env: cannot read it: {}", io.kind()),
        // dotenvy reports a missing variable without quoting any value.
        other => format!(".env: {other}"),
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

    const KEY: &str = "canary-env-0000-DO-NOT-LEAK";

    fn error_of(text: &str) -> String {
        let error = parse(text.as_bytes()).expect_err("malformed");
        assert!(!error.contains(KEY), "the key leaked: {error}");
        assert!(!error.contains("DO-NOT"), "part of the key leaked: {error}");
        error
    }

    #[test]
    fn a_well_formed_file_is_read() {
        let env = parse(
            format!("# keys\nexport GROQ_API_KEY={KEY}\n\nLLM_DEADLINE=\"30s\"\n").as_bytes(),
        )
        .expect("parses");
        assert_eq!(env.var("GROQ_API_KEY").as_deref(), Some(KEY));
        assert_eq!(env.var("LLM_DEADLINE").as_deref(), Some("30s"));
    }

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
