//! `cascade chat` driven through piped stdin: history, `/llm switch`, `/llm stats`, `/exit`.

use serde_json::{Value, json};

use crate::harness::{cascade_with_stdin, fast, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[tokio::test]
async fn a_two_turn_conversation_keeps_its_history() {
    let openai = serve("openai", "chat.stream", OPENAI_ROUTE, 2).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));

    let run = cascade_with_stdin(
        &["chat", "--system", "Be brief."],
        &env,
        Some("Name a colour\n\nAnd another one?\n/exit\nnever asked\n"),
    )
    .await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();

    let requests = openai.received_requests().await.expect("recording");
    assert_eq!(requests.len(), 2);
    let first: Value = serde_json::from_slice(&requests[0].body).expect("json");
    let second: Value = serde_json::from_slice(&requests[1].body).expect("json");
    assert_eq!(
        first["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a colour"}
        ])
    );
    let answer = second["messages"][2]["content"]
        .as_str()
        .expect("the first answer is in the second request")
        .to_owned();
    assert!(!answer.is_empty());
    assert_eq!(
        second["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "And another one?"}
        ])
    );
    // Both answers streamed to stdout; after each, the dim line on stderr.
    assert_eq!(run.stdout, format!("{answer}\n{answer}\n"));
    let summaries: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("— openai · gpt-4o-2024-08-06 · 1 attempt · "))
        .collect();
    assert_eq!(summaries.len(), 2, "stderr: {}", run.stderr);
}

#[tokio::test]
async fn switch_pins_one_provider_and_stats_count_the_session() {
    let groq = serve("groq", "error.401.auth", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "chat.stream", OPENAI_ROUTE, 2).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("groq,openai"));

    let script = "hi\n/llm switch openai\nhi again\n/llm stats\n/exit\n";
    let run = cascade_with_stdin(&["chat", "--json"], &env, Some(script)).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let lines = lines(&run.stdout);

    let answers = of_type(&lines, "answer");
    assert_eq!(answers.len(), 2);
    let outcomes = |a: &Value| -> Vec<Value> {
        a["attempts"]
            .as_array()
            .expect("attempts")
            .iter()
            .map(|a| json!([a["provider"], a["outcome"]]))
            .collect()
    };
    // Before the switch: groq refuses the key, openai answers. After it: openai alone (groq's mock
    // expects exactly one call).
    assert_eq!(
        outcomes(answers[0]),
        vec![json!(["groq", "auth"]), json!(["openai", "ok"])]
    );
    assert_eq!(outcomes(answers[1]), vec![json!(["openai", "ok"])]);
    let deltas: String = lines
        .iter()
        .take_while(|l| l["type"] == "delta")
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(answers[0]["content"], deltas);

    let switch = of_type(&lines, "switch");
    assert_eq!(switch[0]["pinned"], "openai");
    assert_eq!(switch[0]["answering"], json!(["openai"]));

    let stats = of_type(&lines, "stats");
    assert_eq!(stats.len(), 1);
    let groq_stats = &stats[0]["providers"]["groq"];
    assert_eq!(groq_stats["requests"], 1);
    assert_eq!(groq_stats["successes"], 0);
    assert_eq!(groq_stats["failures"], json!({"auth": 1}));
    assert_eq!(groq_stats["fallbacks"], 1);
    assert_eq!(groq_stats["success_rate"], 0.0);
    let openai_stats = &stats[0]["providers"]["openai"];
    assert_eq!(openai_stats["requests"], 2);
    assert_eq!(openai_stats["successes"], 2);
    assert_eq!(openai_stats["success_rate"], 1.0);
    assert_eq!(stats[0]["total"]["requests"], 3);
    // Nothing after /exit: the stats line is the last.
    assert_eq!(lines.last(), Some(stats[0]));
}

#[tokio::test]
async fn errors_keep_the_session_going_and_set_the_exit_code() {
    let openai = serve("openai", "error.401.auth", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));

    let script = "/llm switch mistral\n/llm switch gpt5\n/frobnicate\nhello\n/help\n";
    let run = cascade_with_stdin(&["chat"], &env, Some(script)).await;
    // Input ended without /exit: the session ends cleanly, but a question went unanswered.
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    run.assert_no_key();
    assert!(
        run.stderr
            .contains("mistral is not configured: set MISTRAL_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("unknown provider `gpt5`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("unknown command `/frobnicate`"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("error (auth): all 1 provider failed (openai); last error: auth"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("hint: "), "{}", run.stderr);
    assert!(run.stdout.contains("/llm switch auto"), "{}", run.stdout);
}
