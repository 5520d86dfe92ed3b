//! `cascade ask --stream`: JSON lines, fallback before the first token, truncation after it.

use serde_json::json;

use crate::harness::{cascade, fast, order, provider, serve};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn stream_json_lines_end_with_the_summary() {
    let groq = serve("groq", "error.500.server", GROQ_ROUTE, 2).await;
    let openai = serve("openai", "chat.stream", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("groq,openai"));
    let run = cascade(&["ask", "--stream", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    run.assert_no_key();
    let lines = lines(&run.stdout);
    let (summary, deltas) = lines.split_last().expect("lines");
    assert!(!deltas.is_empty());
    assert!(deltas.iter().all(|d| d["type"] == "delta"));
    let joined: String = deltas.iter().filter_map(|d| d["text"].as_str()).collect();
    assert_eq!(summary["content"], joined);
    assert_eq!(summary["provider"], "openai");
    assert_eq!(summary["finish_reason"], "stop");
    let outcomes: Vec<_> = summary["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![json!("server_error"), json!("server_error"), json!("ok")]
    );
}

#[tokio::test]
async fn a_stream_cut_after_its_first_token_is_an_error_not_an_answer_with_recovery_off() {
    let openai = serve("openai", "chat.stream.truncated", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    env.push(("LLM_STREAM_RECOVERY".into(), "off".into()));
    let run = cascade(&["ask", "--stream", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1), "stdout: {}", run.stdout);
    let lines = lines(&run.stdout);
    let last = lines.last().expect("a final line");
    assert_eq!(last["success"], false);
    assert_eq!(last["error"], "network");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed after it started")),
        "{last}"
    );
    assert_eq!(last["attempts"][0]["outcome"], "stream_truncated");
}

#[tokio::test]
async fn a_cut_stream_is_restarted_without_repeating_text_and_says_so() {
    // Both requests get the same cut capture: the restart repeats the delivered text (dropped), is
    // cut at the same place, and with the attempts used up the cut ends the answer.
    let openai = serve("openai", "chat.stream.truncated", OPENAI_ROUTE, 2).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let run = cascade(&["ask", "--stream", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(1), "stdout: {}", run.stdout);
    let printed = lines(&run.stdout);
    let resumed: Vec<_> = printed.iter().filter(|l| l["type"] == "resumed").collect();
    assert_eq!(resumed.len(), 1, "{}", run.stdout);
    assert_eq!(resumed[0]["provider"], "openai");
    assert_eq!(resumed[0]["mode"], "restart");
    let text: String = printed
        .iter()
        .filter(|l| l["type"] == "delta")
        .filter_map(|l| l["text"].as_str())
        .collect();
    let single = serve("openai", "chat.stream.truncated", OPENAI_ROUTE, 1).await;
    let mut once = fast();
    once.extend(provider("OPENAI", format!("{}/v1", single.uri())));
    once.push(order("openai"));
    once.push(("LLM_STREAM_RECOVERY".into(), "off".into()));
    let cut_once: String = lines(
        &cascade(&["ask", "--stream", "--json", "hi"], &once)
            .await
            .stdout,
    )
    .iter()
    .filter(|l| l["type"] == "delta")
    .filter_map(|l| l["text"].as_str())
    .collect();
    assert_eq!(text, cut_once, "the repeated text is not shown twice");
    let last = printed.last().expect("a final line");
    assert_eq!(last["success"], false);
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("continuing the answer failed")),
        "{last}"
    );
    let outcomes: Vec<_> = last["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].clone())
        .collect();
    assert_eq!(
        outcomes,
        vec![json!("stream_truncated"), json!("stream_truncated")]
    );
}

#[tokio::test]
async fn plain_stream_prints_text_as_it_arrives() {
    let openai = serve("openai", "chat.stream", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let streamed = cascade(&["ask", "--stream", "hi"], &env).await;
    assert_eq!(streamed.code, Some(0), "stderr: {}", streamed.stderr);
    let openai = serve("openai", "chat.stream", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let json = cascade(&["ask", "--stream", "--json", "hi"], &env).await;
    let summary = lines(&json.stdout).pop().expect("summary");
    assert_eq!(
        streamed.stdout,
        format!("{}\n", summary["content"].as_str().expect("content"))
    );
}
