//! `GET /`: the status page a person reads. Server-rendered HTML that refreshes itself every five
//! seconds; no script, no build step. Every piece of provider text is HTML-escaped here, after it was
//! sanitized when recorded.

use std::fmt::Write as _;

use llm_cascade::{Condition, ProviderStatus};

use crate::monitor::{Failure, ProviderBoard};

/// One row of the providers table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Provider id.
    pub id: String,
    /// Its configured model.
    pub model: String,
    /// Whether it runs locally.
    pub local: bool,
    /// What its state says now (ready, cooling, circuit open, auth failed; budgets left).
    pub state: ProviderStatus,
    /// Its counts.
    pub board: ProviderBoard,
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;\
padding:0 1rem;color:#1d2329;background:#fafafa}h1{font-size:1.4rem;margin-bottom:.2rem}\
.sub{color:#5b6670;margin-top:0}table{border-collapse:collapse;width:100%;margin:1rem 0 2rem;\
background:#fff}th,td{text-align:left;padding:.45rem .7rem;border-bottom:1px solid #e3e6e8;\
vertical-align:top}th{background:#f0f2f4;font-weight:600}td.num{text-align:right;\
font-variant-numeric:tabular-nums}.ok{color:#137333}.bad{color:#b3261e}.warn{color:#a05a00}\
.pill{display:inline-block;padding:0 .5rem;border-radius:1rem;background:#e8eaed;font-size:.85em}\
code{font-size:.9em}";

fn rate(board: &ProviderBoard) -> String {
    match board.success_rate {
        None => "<span class=\"pill\">no traffic</span>".to_owned(),
        Some(r) => {
            let class = if r >= 0.95 {
                "ok"
            } else if r >= 0.5 {
                "warn"
            } else {
                "bad"
            };
            format!("<span class=\"{class}\">{:.0}%</span>", r * 100.0)
        }
    }
}

/// The state cell: the condition in words, coloured by whether the provider can be called.
fn state(status: &ProviderStatus) -> String {
    let class = match status.condition {
        Condition::Ready if status.failures == 0 => "ok",
        Condition::Ready | Condition::HalfOpen => "warn",
        Condition::Cooling { .. } | Condition::CircuitOpen { .. } | Condition::AuthFailed => "bad",
    };
    // The times in the summary are the state clock's, in UTC like the failures table.
    let utc = match status.condition {
        Condition::Cooling { .. } | Condition::CircuitOpen { until_ms: Some(_) } => " UTC",
        _ => "",
    };
    format!(
        "<span class=\"{class}\" data-state=\"{}\">{}{utc}</span>",
        status.condition.as_str(),
        escape(&status.summary)
    )
}

/// The budget cell: what is left of each configured budget.
fn budget(status: &ProviderStatus) -> String {
    if status.budget.is_empty() {
        return "—".to_owned();
    }
    status
        .budget
        .iter()
        .map(|b| format!("{} {}/{}", b.name, b.remaining, b.limit))
        .collect::<Vec<_>>()
        .join(", ")
}

fn provider_rows(rows: &[Row]) -> String {
    let mut html = String::new();
    for (position, row) in rows.iter().enumerate() {
        let last = row.board.last_error.as_ref().map_or_else(
            || "—".to_owned(),
            |f| format!("<code>{}</code> {}", escape(&f.kind), escape(&f.message)),
        );
        let _ = write!(
            html,
            "<tr><td class=\"num\">{}</td><td><b>{}</b>{}</td><td><code>{}</code></td><td>{}</td>\
             <td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{}</td></tr>",
            position + 1,
            escape(&row.id),
            if row.local {
                " <span class=\"pill\">local</span>"
            } else {
                ""
            },
            escape(&row.model),
            state(&row.state),
            budget(&row.state),
            row.board.attempts,
            rate(&row.board),
            row.board
                .mean_latency_ms
                .map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms")),
            last,
        );
    }
    html
}

fn failure_rows(failures: &[Failure]) -> String {
    if failures.is_empty() {
        return "<tr><td colspan=\"5\">No failures since the gateway started.</td></tr>".to_owned();
    }
    let mut html = String::new();
    for f in failures {
        let _ = write!(
            html,
            "<tr><td class=\"num\" data-at=\"{}\">{}</td><td>{}</td><td><code class=\"bad\">{}</code>{}</td>\
             <td>{}</td><td>{}</td></tr>",
            f.at,
            format_time(f.at),
            escape(&f.provider),
            escape(&f.kind),
            f.status.map_or_else(String::new, |s| format!(" HTTP {s}")),
            escape(&f.advice),
            escape(&f.message),
        );
    }
    html
}

/// `HH:MM:SS` UTC.
fn format_time(unix: u64) -> String {
    let day = unix % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

/// The whole page.
pub fn render(rows: &[Row], failures: &[Failure], in_flight: i64, uptime_secs: u64) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>cascade serve</title><style>{STYLE}</style></head><body>\
         <h1>cascade serve</h1><p class=\"sub\">{} provider{} in the chain · {in_flight} request{} in \
         flight · up {} · refreshes every 5 s</p>\
         <h2>Providers, in order</h2><table id=\"providers\"><thead><tr><th>#</th><th>Provider</th>\
         <th>Model</th><th>State</th><th>Budget left</th><th>Attempts</th><th>Success</th><th>Mean latency</th><th>Last error</th></tr>\
         </thead><tbody>{}</tbody></table>\
         <h2>Recent failures</h2><table id=\"failures\"><thead><tr><th>Time (UTC)</th><th>Provider</th>\
         <th>Kind</th><th>Advice</th><th>Message</th></tr></thead><tbody>{}</tbody></table>\
         <p class=\"sub\">JSON: <a href=\"/v1/providers\">/v1/providers</a> · Prometheus: \
         <a href=\"/metrics\">/metrics</a></p></body></html>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        if in_flight == 1 { "" } else { "s" },
        format_uptime(uptime_secs),
        provider_rows(rows),
        failure_rows(failures),
    )
}

fn format_uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_text_is_escaped() {
        let failure = Failure {
            at: 3_723,
            provider: "groq".into(),
            kind: "server_error".into(),
            status: Some(500),
            message: "<script>alert(1)</script> & \"quotes\"".into(),
            advice: "Try again.".into(),
        };
        let html = render(&[], &[failure], 0, 5);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quotes&quot;"));
        assert!(html.contains("01:02:03"));
        assert!(html.contains("http-equiv=\"refresh\""));
    }
}
