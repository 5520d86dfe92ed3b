//! How results look: JSON objects for `--json`, a readable report on stderr otherwise.

use std::io::IsTerminal;
use std::time::Duration;

use llm_cascade::{Attempt, CascadeError, FinishReason, Usage};
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
        "model": model,
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
    let (dim, reset) = if stderr_color() {
        ("\x1b[2m", "\x1b[0m")
    } else {
        ("", "")
    };
    let count = attempts.len();
    eprintln!(
        "{dim}— {provider} · {model} · {count} attempt{} · {:.1}s{reset}",
        if count == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    );
}
