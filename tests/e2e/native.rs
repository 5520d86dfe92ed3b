//! `cascade ask --json` over the native providers (Anthropic Messages, Gemini generateContent).

use serde_json::json;

use crate::harness::{cascade, fast, order, provider, serve};

const ANTHROPIC_ROUTE: &str = "/v1/messages";
const GEMINI_ROUTE: &str = "/v1beta/models/gemini-2.5-flash:generateContent";

#[tokio::test]
async fn gemini_rate_limited_with_a_long_delay_then_anthropic_answers() {
    let gemini = serve("gemini", "error.429.retry_info", GEMINI_ROUTE, 1).await;
    let anthropic = serve("anthropic", "chat.success", ANTHROPIC_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GEMINI", format!("{}/v1beta", gemini.uri())));
    env.extend(provider("ANTHROPIC", format!("{}/v1", anthropic.uri())));
    env.push(order("gemini,anthropic"));

    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let json = run.json();
    assert_eq!(json["provider"], "anthropic");
    assert!(json["content"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(
        json["usage"]["output_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0)
    );
    let first = &json["attempts"][0];
    assert_eq!(
        json!([
            first["provider"],
            first["outcome"],
            first["status"],
            first["retry_after_ms"]
        ]),
        json!(["gemini", "rate_limit", 429, 34400])
    );
    assert_eq!(
        first["decision"],
        json!({"action": "next_provider", "reason": "wait_too_long"})
    );
}

#[tokio::test]
async fn anthropic_overloaded_then_gemini_blocked_reports_both() {
    let anthropic = serve("anthropic", "error.529.overloaded", ANTHROPIC_ROUTE, 2).await;
    let gemini = serve("gemini", "chat.safety_block", GEMINI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("ANTHROPIC", format!("{}/v1", anthropic.uri())));
    env.extend(provider("GEMINI", format!("{}/v1beta", gemini.uri())));
    env.push(order("anthropic,gemini"));

    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1));
    run.assert_no_key();
    let json = run.json();
    // The refusal is final: its category is content_filter (HTTP 400 for a server).
    assert_eq!(json["error"], "content_filter");
    let outcomes: Vec<_> = json["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| json!([a["provider"], a["outcome"], a["status"]]))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            json!(["anthropic", "overloaded", 529]),
            json!(["anthropic", "overloaded", 529]),
            json!(["gemini", "content_filter", null]),
        ]
    );
    assert!(
        json["hint"]
            .as_str()
            .is_some_and(|h| h.contains("overloaded") && h.contains("refused the content"))
    );
}
