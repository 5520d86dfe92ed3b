//! `cascade stats [--since DURATION]`: per-provider statistics from the usage log.

use std::time::Duration;

use llm_cascade::{EnvSource, ErrorKind, StatsSnapshot};
use serde_json::json;

use crate::args::StatsArgs;
use crate::output;
use crate::usage::{self, Target};
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Runs `cascade stats`; returns the exit code.
pub fn run(args: &StatsArgs, env: &dyn EnvSource) -> u8 {
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(since) => since,
        Err(message) => {
            let report = output::config_report(
                format!("--since: {message}"),
                "Give a duration like 30m, 24h or 7d.",
            );
            return output::fail(&report, args.json, EXIT_USAGE);
        }
    };
    let target = match Target::from_env(env) {
        Ok(target) => target,
        Err(error) => {
            let report = output::config_report(error.message(), ErrorKind::Config.advice());
            return output::fail(&report, args.json, EXIT_USAGE);
        }
    };
    let Target::File(path) = target else {
        let report = output::config_report(
            "the usage log is off (LLM_USAGE_DB=off, or no data directory)",
            "Set LLM_USAGE_DB to a file path, or unset it to use the default location.",
        );
        return output::fail(&report, args.json, EXIT_USAGE);
    };
    let since_ms = since
        .map(|d| usage::now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let rows = match usage::open_existing(&path) {
        Ok(Some(conn)) => usage::rows_since(&conn, since_ms).map_err(|e| e.to_string()),
        Ok(None) => Ok(Vec::new()),
        Err(message) => Err(message),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(message) => {
            let report = output::config_report(
                format!("cannot read the usage log {}: {message}", path.display()),
                "Check the file's permissions, or point LLM_USAGE_DB at another file.",
            );
            return output::fail(&report, args.json, EXIT_FAILED);
        }
    };
    let snapshot = usage::aggregate(&rows).snapshot();
    let calls = {
        let mut ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    };
    if args.json {
        output::print_json(&json!({
            "db": path.display().to_string(),
            "since_ms": since_ms,
            "calls": calls,
            "providers": snapshot.providers,
            "total": snapshot.total,
        }));
    } else {
        print(&snapshot, calls, &path, args.since.as_deref());
    }
    EXIT_OK
}

fn print(snapshot: &StatsSnapshot, calls: usize, path: &std::path::Path, since: Option<&str>) {
    let window = since.map_or_else(String::new, |s| format!(" in the last {s}"));
    if snapshot.providers.is_empty() {
        let _ = output::outln(&format!(
            "No attempts recorded{window} (log: {}).",
            path.display()
        ));
        return;
    }
    let _ = output::outln(&output::stats_table(snapshot).to_string());
    let _ = output::outln(&format!(
        "{calls} request{}, {} attempt{}{window} (log: {})",
        if calls == 1 { "" } else { "s" },
        snapshot.total.requests,
        if snapshot.total.requests == 1 {
            ""
        } else {
            "s"
        },
        path.display()
    ));
}

/// A duration as `parse_duration` reads it (`30m`, `24h`, `90s`), plus days (`7d`).
fn parse_since(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if let Some(days) = trimmed.strip_suffix('d') {
        let days: f64 = days
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a duration (use 30m, 24h or 7d)"))?;
        return Duration::try_from_secs_f64(days * 86_400.0)
            .map_err(|_| format!("`{text}` is out of range"));
    }
    llm_core::parse_duration(trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_days_and_the_usual_forms() {
        assert_eq!(parse_since("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_since("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_since("30m"), Ok(Duration::from_secs(1_800)));
        assert!(parse_since("soon").is_err());
        assert!(parse_since("xd").is_err());
    }
}
