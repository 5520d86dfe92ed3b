//! Tools through the router: a provider without tool support is skipped (and a chain of them is the
//! request's 400), calls are answered whole and streamed, a refusal is an answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use llm_cascade::{Capabilities, ToolCall};

use super::*;

/// A provider that calls `add` (whole or streamed), with tool support.
#[derive(Debug, Default)]
struct Caller {
    calls: AtomicUsize,
}

fn the_call() -> ToolCall {
    ToolCall::new(
        "call_Tbs8Do1pty9ixq7sj37jRJMI",
        "add",
        "{\"a\":15,\"b\":27}",
    )
}

#[async_trait]
impl Provider for Caller {
    fn id(&self) -> &str {
        "openai"
    }
    fn model(&self) -> &str {
        "caller-model"
    }
    fn base_url(&self) -> &str {
        "http://127.0.0.1:1"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
    async fn chat(&self, _: &ChatRequest) -> Result<ChatResponse, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(ChatResponse {
            content: String::new(),
            provider: "openai".to_owned(),
            model: "caller-model-2025".to_owned(),
            // Some providers say `stop` beside calls: the client is told `tool_calls`.
            finish_reason: FinishReason::Stop,
            usage: None,
            tool_calls: vec![the_call()],
            rate_limit: None,
        })
    }
    async fn chat_stream(&self, _: &ChatRequest) -> Result<ChatStream, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let events = vec![
            StreamEvent::ToolCall { call: the_call() },
            StreamEvent::ToolCall {
                call: ToolCall::new("call_2", "add", "{\"a\":1,\"b\":2}"),
            },
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
                model: None,
            },
        ];
        Ok(Box::pin(stream::iter(events.into_iter().map(Ok))))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}

fn add_request(stream: bool) -> Value {
    json!({"stream": stream, "messages": [{"role": "user", "content": "15 + 27?"}],
        "tools": [{"type": "function", "function": {"name": "add", "parameters": {"type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}]})
}

fn chain(text_only: Scripted, caller: Option<Arc<Caller>>) -> Gateway {
    let mut builder = CascadeBuilder::new().config(quick()).provider(text_only);
    if let Some(caller) = caller {
        builder = builder.provider_arc(caller);
    }
    Gateway::new(&builder.build(), GatewayConfig::default())
}

#[tokio::test]
async fn a_tools_request_skips_a_provider_without_tools() {
    // `answering` has the default capabilities: text only.
    let caller = Arc::new(Caller::default());
    let gateway = chain(answering("groq"), Some(caller.clone()));
    let (status, headers, text) = call(
        &gateway,
        "POST",
        "/v1/chat/completions",
        Some(add_request(false)),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers.contains("\"x-cascade-provider\": \"openai\""),
        "{headers}"
    );
    let json: Value = serde_json::from_str(&text).expect("json");
    let message = &json["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "call_Tbs8Do1pty9ixq7sj37jRJMI", "type": "function",
            "function": {"name": "add", "arguments": "{\"a\":15,\"b\":27}"}}])
    );
    assert_eq!(json["choices"][0]["finish_reason"], "tool_calls");
    let skipped = &json["cascade"]["attempts"][0];
    assert_eq!(skipped["provider"], "groq");
    assert_eq!(skipped["outcome"], "unsupported");
    assert_eq!(skipped["message"], "skipped: no tool support");
    assert_eq!(caller.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_chain_without_tool_support_is_a_400_saying_why() {
    for stream in [false, true] {
        let gateway = chain(answering("groq"), None);
        let (status, _, text) = call(
            &gateway,
            "POST",
            "/v1/chat/completions",
            Some(add_request(stream)),
        )
        .await;
        assert_eq!(status, 400, "stream {stream}: {text}");
        let error = &serde_json::from_str::<Value>(&text).expect("json")["error"];
        assert_eq!(error["type"], "invalid_request");
        assert_eq!(error["code"], "unsupported");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains("groq skipped: no tool support"),
            "{message}"
        );
        assert_eq!(error["attempts"][0]["outcome"], "unsupported");
    }
}

#[tokio::test]
async fn streamed_calls_are_one_chunk_each_with_their_index() {
    let gateway = chain(answering("groq"), Some(Arc::new(Caller::default())));
    let (status, _, text) = call(
        &gateway,
        "POST",
        "/v1/chat/completions",
        Some(add_request(true)),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let shape: Vec<Value> = chunks(&text)
        .iter()
        .map(|c| match c.get("choices") {
            Some(choices) => json!([choices[0]["delta"], choices[0]["finish_reason"]]),
            None => c.clone(),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            json!([{"role": "assistant", "content": ""}, null]),
            json!([{"tool_calls": [{"index": 0, "id": "call_Tbs8Do1pty9ixq7sj37jRJMI",
                "type": "function", "function": {"name": "add", "arguments": "{\"a\":15,\"b\":27}"}}]}, null]),
            json!([{"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                "function": {"name": "add", "arguments": "{\"a\":1,\"b\":2}"}}]}, null]),
            json!([{}, "tool_calls"]),
            json!("[DONE]"),
        ]
    );
}

#[tokio::test]
async fn a_refusal_is_an_answer_with_message_refusal() {
    let refusing = || {
        failing(
            "openai",
            ErrorKind::Refused,
            "the model declined to answer: I'm very sorry, but I can't assist with that.",
            200,
        )
    };
    let body = |stream: bool| {
        json!({"stream": stream, "stream_options": if stream { json!({"include_usage": true}) } else { Value::Null },
            "messages": [{"role": "user", "content": "…"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}})
    };
    let gateway = gateway(vec![refusing()]);
    let (status, headers, text) =
        call(&gateway, "POST", "/v1/chat/completions", Some(body(false))).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        headers.contains("\"x-cascade-provider\": \"openai\""),
        "{headers}"
    );
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        json["choices"][0]["message"],
        json!({"role": "assistant", "content": null,
            "refusal": "I'm very sorry, but I can't assist with that."})
    );
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    assert_eq!(json["model"], "scripted-model");
    assert_eq!(json["cascade"]["attempts"][0]["outcome"], "refused");

    let gateway = super::gateway(vec![refusing()]);
    let (status, _, text) = call(&gateway, "POST", "/v1/chat/completions", Some(body(true))).await;
    assert_eq!(status, 200, "{text}");
    let shape: Vec<Value> = chunks(&text)
        .iter()
        .map(|c| match c.get("choices") {
            Some(choices) if choices.as_array().is_some_and(Vec::is_empty) => json!("usage"),
            Some(choices) => json!([choices[0]["delta"], choices[0]["finish_reason"]]),
            None => c.clone(),
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            json!([{"role": "assistant", "content": null, "refusal": ""}, null]),
            json!([{"refusal": "I'm very sorry, but I can't assist with that."}, null]),
            json!([{}, "stop"]),
            json!("usage"),
            json!("[DONE]"),
        ]
    );
}

#[tokio::test]
async fn a_json_object_answer_that_is_not_json_falls_over_and_fences_go() {
    // `answering` says "Hello": not JSON. The next provider's JSON comes in a code fence.
    let fenced = Scripted {
        id: "openai",
        events: vec![
            StreamEvent::Delta {
                text: "```json\n{\"a\": 1}\n```".into(),
            },
            StreamEvent::Finish {
                reason: FinishReason::Stop,
                model: None,
            },
        ],
        error: None,
    };
    let gateway = gateway(vec![answering("groq"), fenced]);
    let body = json!({"messages": [{"role": "user", "content": "JSON please"}],
        "response_format": {"type": "json_object"}});
    let (status, _, text) = call(&gateway, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["choices"][0]["message"]["content"], "{\"a\": 1}");
    let attempts = &json["cascade"]["attempts"];
    assert_eq!(attempts[0]["provider"], "groq");
    assert_eq!(attempts[0]["outcome"], "malformed_answer");
    assert_eq!(attempts[1]["outcome"], "ok");
}

#[tokio::test]
async fn a_provider_asked_for_another_model_keeps_its_tool_support() {
    let caller = Arc::new(Caller::default());
    let gateway = chain(answering("groq"), Some(caller.clone()));
    let mut body = add_request(false);
    body["model"] = json!("openai/gpt-4o");
    let (status, _, text) = call(&gateway, "POST", "/v1/chat/completions", Some(body)).await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(json["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(json["cascade"]["attempts"][0]["outcome"], "ok");
    assert_eq!(caller.calls.load(Ordering::SeqCst), 1);
}
