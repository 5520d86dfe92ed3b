//! How results look: JSON objects for `--json`, a readable report on stderr otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};
use llm_cascade::{Attempt, CascadeError, FinishReason, ProviderSummary, StatsSnapshot, Usage};
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

/// Prints a value as one JSON line on stdout.
pub fn print_json(value: &Value) {
    println!("{value}");
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
    eprintln!(
        "{bold}error{reset} ({}): {}",
        report.category, report.message
    );
    for line in &report.details {
        eprintln!("  {dim}-{reset} {line}");
    }
    if !report.hint.is_empty() {
        eprintln!("hint: {}", report.hint);
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

/// The one-line account of an answer: `— openai · gpt-4o · 1 attempt · 0.4s`.
pub fn summary_line(
    provider: &str,
    model: &str,
    attempts: &[Attempt],
    elapsed: Duration,
) -> String {
    let count = attempts.len();
    // The model name comes from the provider's answer or from configuration: shown sanitized.
    let model = llm_core::sanitize(model);
    format!(
        "— {provider} · {model} · {count} attempt{} · {:.1}s",
        if count == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    )
}

/// Prints `text` dim on stderr (dim only with colour).
pub fn print_dim(text: &str) {
    if stderr_color() {
        eprintln!("\x1b[2m{text}\x1b[0m");
    } else {
        eprintln!("{text}");
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

/// A cell coloured `color` when stdout takes colour.
pub fn colored(text: impl std::fmt::Display, color: Color) -> Cell {
    let cell = Cell::new(text);
    if stdout_color() { cell.fg(color) } else { cell }
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
            Cell::new(name),
            Cell::new(s.requests),
            Cell::new(s.successes),
            if failed == 0 {
                Cell::new(failures)
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
