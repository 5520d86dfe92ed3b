//! How results look: JSON objects for `--json`, a readable report on stderr otherwise.
//!
//! Everything reaches stdout through [`out`], which never panics: the first failed write (the reader
//! of a pipe went away: `cascade ask hi | head -c1`) is remembered, later writes are skipped, and the
//! command ends with [`EXIT_BROKEN_PIPE`] (see [`stdout_failure_code`]). stderr is written the same
//! way through [`err`], its failures ignored (there is nowhere left to report them).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use llm_cascade::{
    Attempt, CascadeError, FinishReason, Outcome, ProviderSummary, StatsSnapshot, Usage,
};
use serde_json::{Value, json};

/// The `--json` object of a successful answer.
pub fn success_json(
    provider: &str,
    model: &str,
    content: &str,
    finish_reason: Option<&FinishReason>,
    usage: Option<Usage>,
    attempts: &[Attempt],
) -> Value {
    json!({
        "success": true,
        "provider": provider,
        "model": llm_core::redact(model),
        "content": content,
        "finish_reason": finish_reason.map(FinishReason::as_str),
        "truncated": truncated(finish_reason),
        "usage": usage.map(|u| json!({"input_tokens": u.input_tokens, "output_tokens": u.output_tokens})),
        "attempts": attempts,
    })
}

/// The `--json` object of a failure.
pub fn failure_json(report: &CascadeError) -> Value {
    let mut value =
        serde_json::to_value(report).unwrap_or_else(|_| json!({"error": report.category.as_str()}));
    if let Value::Object(map) = &mut value {
        map.insert("success".to_owned(), Value::Bool(false));
    }
    value
}

/// Exit code when stdout was closed under us: 128 + SIGPIPE, what a shell reports for a process
/// killed by a broken pipe.
pub const EXIT_BROKEN_PIPE: u8 = 141;

/// The first stdout write error, kept so the command can end with the right status.
static STDOUT_FAILED: OnceLock<std::io::ErrorKind> = OnceLock::new();

/// stdout can no longer be written (its reader went away, or the disk is full).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

/// Writes `text` to stdout and flushes (answers stream: each piece shows at once). After the first
/// failure nothing more is written and every call returns [`Closed`].
pub fn out(text: &str) -> Result<(), Closed> {
    if STDOUT_FAILED.get().is_some() {
        return Err(Closed);
    }
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    written.map_err(|error| {
        let _ = STDOUT_FAILED.set(error.kind());
        Closed
    })
}

/// [`out`] with a newline.
pub fn outln(text: &str) -> Result<(), Closed> {
    out(&format!("{text}\n"))
}

/// Marks stdout as closed without a write (the watcher saw its reader go away).
pub fn mark_stdout_closed() {
    let _ = STDOUT_FAILED.set(std::io::ErrorKind::BrokenPipe);
}

/// The exit code a failed stdout imposes: [`EXIT_BROKEN_PIPE`] for a closed pipe (quietly), 1 for any
/// other write error (reported on stderr); `None` while stdout works.
pub fn stdout_failure_code() -> Option<u8> {
    match STDOUT_FAILED.get()? {
        std::io::ErrorKind::BrokenPipe => Some(EXIT_BROKEN_PIPE),
        other => {
            err(&format!("error: cannot write to stdout: {other}"));
            Some(crate::EXIT_FAILED)
        }
    }
}

/// Writes a line to stderr; a failure is ignored (a closed stderr must not end the command).
pub fn err(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// Prints a value as one JSON line on stdout (JSON escapes every control character itself).
pub fn print_json(value: &Value) {
    let _ = try_json(value);
}

/// [`print_json`], saying whether stdout took it.
pub fn try_json(value: &Value) -> Result<(), Closed> {
    outln(&value.to_string())
}

/// How a cut is marked on stderr (signals; not a closed stdout, which ends quietly).
pub const CANCELLED_MARK: &str = "[cancelled]";

/// The final `--json` object of a call cut short by a signal.
pub fn cancelled_json(message: &str, attempts: &[Attempt]) -> Value {
    json!({
        "success": false,
        "error": "cancelled",
        "message": message,
        "attempts": attempts,
    })
}

/// Answer text as it may reach a terminal: escape sequences and other control characters (C0, DEL,
/// C1) except newline and tab become visible `\u{1b}`-style text, so an answer can neither clear
/// the screen, retitle the window nor fake colours. Raw when `terminal` is false (a pipe or file gets
/// the bytes the provider sent).
pub fn neutralise(text: &str, terminal: bool) -> Cow<'_, str> {
    let harmful = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !terminal || !text.chars().any(harmful) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if harmful(c) {
            shown.extend(c.escape_unicode());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// Whether stdout is a terminal (answers are then [`neutralise`]d).
pub fn stdout_terminal() -> bool {
    static TERMINAL: OnceLock<bool> = OnceLock::new();
    *TERMINAL.get_or_init(|| std::io::stdout().is_terminal())
}

/// Writes answer text to stdout, neutralised on a terminal.
pub fn answer(text: &str) -> Result<(), Closed> {
    out(&neutralise(text, stdout_terminal()))
}

/// Provider-supplied or configured text bound for a table, a summary or a plain line: secrets
/// redacted, control characters escaped.
pub fn clean(text: &str) -> Cow<'_, str> {
    llm_core::sanitize(text)
}

/// Whether stderr gets colour: a terminal, and `NO_COLOR` unset.
pub fn stderr_color() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The readable failure report, on stderr: one paragraph, each attempt, then the hint.
pub fn print_failure(report: &CascadeError) {
    let color = stderr_color();
    let (bold, dim, reset) = if color {
        ("\x1b[1;31m", "\x1b[2m", "\x1b[0m")
    } else {
        ("", "", "")
    };
    err(&format!(
        "{bold}error{reset} ({}): {}",
        report.category,
        clean(&report.message)
    ));
    for line in &report.details {
        err(&format!("  {dim}-{reset} {}", clean(line)));
    }
    if !report.hint.is_empty() {
        err(&format!("hint: {}", clean(&report.hint)));
    }
}

/// The dim line after an answer on a terminal: who answered, how many attempts, how long.
pub fn print_summary(provider: &str, model: &str, attempts: &[Attempt], elapsed: Duration) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    print_dim(&summary_line(provider, model, attempts, elapsed));
}

/// Prints a failure (JSON on stdout, or the readable report on stderr) and returns `code`.
pub fn fail(report: &CascadeError, json: bool, code: u8) -> u8 {
    if json {
        print_json(&failure_json(report));
    } else {
        print_failure(report);
    }
    code
}

/// Whether stdout gets colour: a terminal, and `NO_COLOR` unset.
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The one-line account of an answer: `— openai · gpt-4o · 1 attempt · 0.4s`, and `· 1 skipped` when
/// providers were skipped without a call (they are not attempts, as in `cascade stats`).
pub fn summary_line(
    provider: &str,
    model: &str,
    attempts: &[Attempt],
    elapsed: Duration,
) -> String {
    let skipped = attempts
        .iter()
        .filter(|a| a.outcome == Outcome::Skipped)
        .count();
    let count = attempts.len() - skipped;
    let skipped = if skipped == 0 {
        String::new()
    } else {
        format!(" · {skipped} skipped")
    };
    // The model name comes from the provider's answer or from configuration: shown sanitized.
    format!(
        "— {} · {} · {count} attempt{}{skipped} · {:.1}s",
        clean(provider),
        clean(model),
        if count == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    )
}

/// What the summary line adds for an answer cut by the token limit.
pub const CUT_AT_LIMIT: &str = "cut at the token limit";

/// The note on stderr after an answer cut by the token limit (`ask` has the flag to raise it).
pub const CUT_NOTE: &str = "note: cut at the token limit: raise --max-tokens";

/// Whether an answer was cut by the token limit (`"truncated"` in `--json`).
pub fn truncated(finish_reason: Option<&FinishReason>) -> bool {
    finish_reason == Some(&FinishReason::Length)
}

/// Prints `text` dim on stderr (dim only with colour).
pub fn print_dim(text: &str) {
    if stderr_color() {
        err(&format!("\x1b[2m{text}\x1b[0m"));
    } else {
        err(text);
    }
}

/// A table in the house style: rounded borders, wrapped to the terminal's width when there is one.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners())
        .set_content_arrangement(ContentArrangement::Dynamic);
    let color = stdout_color();
    table.set_header(header.iter().map(|h| {
        let cell = Cell::new(h);
        if color {
            cell.add_attribute(Attribute::Bold)
        } else {
            cell
        }
    }));
    table
}

/// A cell coloured `color` when stdout takes colour; its text [`clean`]ed.
pub fn colored(text: impl std::fmt::Display, color: Color) -> Cell {
    let cell = cell(text);
    if stdout_color() { cell.fg(color) } else { cell }
}

/// A table cell whose text is [`clean`]ed (provider-supplied text never drives the terminal).
pub fn cell(text: impl std::fmt::Display) -> Cell {
    Cell::new(clean(&text.to_string()))
}

/// `12 ms`, or `-`.
pub fn ms(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"))
}

/// `66.7%`, or `-`.
pub fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// The statistics table: one row per provider, then the total when there is more than one.
pub fn stats_table(snapshot: &StatsSnapshot) -> Table {
    let mut table = table(&[
        "PROVIDER",
        "REQUESTS",
        "OK",
        "FAILED",
        "SUCCESS",
        "MEAN",
        "P95",
        "TOKENS IN",
        "TOKENS OUT",
    ]);
    let row = |name: &str, s: &ProviderSummary| -> Vec<Cell> {
        let failed: u64 = s.failures.values().sum();
        let failures = if failed == 0 {
            "0".to_owned()
        } else {
            let kinds: Vec<String> = s.failures.iter().map(|(k, n)| format!("{k} {n}")).collect();
            format!("{failed} ({})", kinds.join(", "))
        };
        vec![
            cell(name),
            Cell::new(s.requests),
            Cell::new(s.successes),
            if failed == 0 {
                cell(failures)
            } else {
                colored(failures, Color::Red)
            },
            Cell::new(percent(s.success_rate)),
            Cell::new(ms(s.mean_latency_ms)),
            Cell::new(ms(s.p95_latency_ms)),
            Cell::new(s.input_tokens),
            Cell::new(s.output_tokens),
        ]
    };
    for (id, summary) in &snapshot.providers {
        table.add_row(row(id, summary));
    }
    if snapshot.providers.len() > 1 {
        table.add_row(row("total", &snapshot.total));
    }
    table
}

/// A configuration failure found before any attempt, worded plainly (no `config:` prefix).
pub fn config_report(message: impl Into<String>, hint: impl Into<String>) -> CascadeError {
    CascadeError::before_any_attempt(&llm_cascade::Error::config(message), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_on_a_terminal_show_controls_harmlessly_and_keep_newlines_and_tabs() {
        let hostile = "a\x1b[2J\x1b]0;title\x07b\r\u{9b}31m\x7f\n\tc";
        assert_eq!(
            neutralise(hostile, true),
            r"a\u{1b}[2J\u{1b}]0;title\u{7}b\u{d}\u{9b}31m\u{7f}".to_owned() + "\n\tc"
        );
        // Piped: the bytes the provider sent.
        assert_eq!(neutralise(hostile, false), hostile);
        // Plain text is not copied.
        assert!(matches!(
            neutralise("plain\ttext\n", true),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn the_summary_line_escapes_provider_supplied_names() {
        let line = summary_line("openai", "gpt\x1b[31m", &[], Duration::from_millis(400));
        assert_eq!(line, r"— openai · gpt\u{1b}[31m · 0 attempts · 0.4s");
    }

    #[test]
    fn skipped_providers_are_not_counted_as_attempts() {
        let skip = llm_cascade::Skip {
            reason: llm_cascade::SkipReason::AuthFailed,
            until_ms: None,
        };
        let attempts = [
            Attempt::skipped("groq", skip),
            Attempt::ok("openai", 1, Duration::from_millis(5)),
        ];
        let line = summary_line("openai", "gpt-4o", &attempts, Duration::from_millis(400));
        assert_eq!(line, "— openai · gpt-4o · 1 attempt · 1 skipped · 0.4s");
    }

    #[test]
    fn json_says_whether_the_token_limit_cut_the_answer() {
        let cut = success_json("p", "m", "x", Some(&FinishReason::Length), None, &[]);
        let whole = success_json("p", "m", "x", Some(&FinishReason::Stop), None, &[]);
        let unknown = success_json("p", "m", "x", None, None, &[]);
        assert_eq!(
            [&cut, &whole, &unknown].map(|v| v["truncated"].clone()),
            [json!(true), json!(false), json!(false)]
        );
    }

    #[test]
    fn the_cancelled_object_has_the_failure_shape() {
        let value = cancelled_json("cancelled by SIGTERM", &[]);
        assert_eq!(
            value,
            json!({"success": false, "error": "cancelled", "message": "cancelled by SIGTERM", "attempts": []})
        );
    }
}
