//! Tools and structured output through `cascade serve`, with `async-openai` sending the requests real
//! apps sent (the captured request bodies) and mock providers replaying the captured answers.

use async_openai::types::{
    ChatCompletionToolType, CreateChatCompletionRequest, CreateChatCompletionResponse, FinishReason,
};
use futures_util::StreamExt;
use llm_test_support::Fixture;
use serde_json::{Value, json};
use wiremock::MockServer;

use super::{GROQ_ROUTE, OPENAI_ROUTE, sse, start};
use crate::harness::{fast, fixture_content, order, provider, serve};

/// The captured request of `scenario`, as the OpenAI client library would build it.
fn captured_request(scenario: &str) -> CreateChatCompletionRequest {
    let body = Fixture::load("openai", scenario)
        .request
        .body
        .expect("a captured request body");
    serde_json::from_value(body).expect("async-openai reads the captured request")
}

/// The fields of the request body `server` received (call `index`) that carry the conversation, the
/// tools and the format.
fn received(server_requests: &[wiremock::Request], index: usize) -> Value {
    let body: Value = serde_json::from_slice(&server_requests[index].body).expect("JSON body");
    conversation(&body)
}

fn conversation(body: &Value) -> Value {
    json!({
        "messages": body["messages"],
        "tools": body["tools"],
        "tool_choice": body["tool_choice"],
        "response_format": body["response_format"],
    })
}

/// What the captured request of `scenario` sent upstream, as the gateway must send it too.
fn captured_upstream(scenario: &str) -> Value {
    conversation(
        &Fixture::load("openai", scenario)
            .request
            .body
            .expect("a captured request body"),
    )
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("recording")
}

#[tokio::test]
async fn a_tool_call_comes_back_whole_and_streamed_with_its_arguments_intact() {
    let openai = serve("openai", "chat.tools.json_schema", OPENAI_ROUTE, 1).await;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 0).await;
    let streaming = serve("openai", "chat.stream.tool_calls", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));
    let served = start(env, &[]).await;
    let client = served.openai("any-key");

    // Whole: the call, `content: null`, finish `tool_calls`; the upstream got the tools as captured.
    let answer = client
        .chat()
        .create(captured_request("chat.tools.json_schema"))
        .await
        .expect("an answer");
    let choice = &answer.choices[0];
    assert_eq!(choice.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(choice.message.content, None);
    let calls = choice.message.tool_calls.as_ref().expect("tool calls");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_Tbs8Do1pty9ixq7sj37jRJMI");
    assert_eq!(calls[0].r#type, ChatCompletionToolType::Function);
    assert_eq!(calls[0].function.name, "add_numbers");
    assert_eq!(calls[0].function.arguments, "{\"a\":15,\"b\":27}");
    assert_eq!(
        received(&requests(&openai).await, 0),
        captured_upstream("chat.tools.json_schema")
    );
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");

    // Streamed: one `delta.tool_calls` chunk per call, then finish `tool_calls`.
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", streaming.uri())));
    env.push(order("openai"));
    let served = start(env, &[]).await;
    let client = served.openai("any-key");
    let mut stream = client
        .chat()
        .create_stream(captured_request("chat.stream.tool_calls"))
        .await
        .expect("a stream");
    let (mut id, mut name, mut arguments, mut finish) = (None, None, String::new(), None);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a chunk");
        let Some(choice) = chunk.choices.first() else {
            continue;
        };
        finish = finish.or(choice.finish_reason);
        for call in choice.delta.tool_calls.iter().flatten() {
            assert_eq!(call.index, 0);
            id = id.or(call.id.clone());
            let function = call.function.as_ref().expect("function");
            name = name.or(function.name.clone());
            arguments.push_str(function.arguments.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(id.as_deref(), Some("call_QXZLQbxriC1eBnOMXLPMopfe"));
    assert_eq!(name.as_deref(), Some("get_current_temperature"));
    assert_eq!(arguments, "{\"city\":\"San Francisco\"}");
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    let sent = requests(&streaming).await;
    assert_eq!(
        received(&sent, 0),
        captured_upstream("chat.stream.tool_calls")
    );
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn the_raw_stream_carries_the_call_as_openai_streams_it() {
    let upstream = serve("openai", "chat.stream.tool_calls", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", upstream.uri())));
    env.push(order("openai"));
    let served = start(env, &[]).await;
    let mut body = Fixture::load("openai", "chat.stream.tool_calls")
        .request
        .body
        .expect("body");
    body["stream_options"] = json!({"include_usage": false});
    let response = served.post(&body).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let (data, events) = sse(&text);
    assert!(events.is_empty(), "{text}");
    let deltas: Vec<Value> = data
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).expect("json"))
        .map(|c| json!([c["choices"][0]["delta"], c["choices"][0]["finish_reason"]]))
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!([{"role": "assistant", "content": ""}, null]),
            json!([{"tool_calls": [{"index": 0, "id": "call_QXZLQbxriC1eBnOMXLPMopfe",
                "type": "function", "function": {"name": "get_current_temperature",
                "arguments": "{\"city\":\"San Francisco\"}"}}]}, null]),
            json!([{}, "tool_calls"]),
        ]
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn a_tool_result_goes_upstream_as_the_app_sent_it() {
    let openai = serve("openai", "chat.tool_result", OPENAI_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.push(order("openai"));
    let served = start(env, &[]).await;
    let client = served.openai("any-key");
    let answer: CreateChatCompletionResponse = client
        .chat()
        .create(captured_request("chat.tool_result"))
        .await
        .expect("an answer");
    assert_eq!(
        answer.choices[0].message.content.as_deref(),
        Some(fixture_content("openai", "chat.tool_result").as_str())
    );
    assert_eq!(answer.choices[0].finish_reason, Some(FinishReason::Stop));
    // The assistant's call (content null) and the tool's result (with the tool's name, taken from
    // the call it answers) reach the provider as the real app sent them.
    assert_eq!(
        received(&requests(&openai).await, 0),
        captured_upstream("chat.tool_result")
    );
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn an_answer_that_misses_the_schema_falls_over_to_a_valid_one() {
    // OpenAI answers prose (a captured plain answer) to a json_schema request: invalid, asked again
    // with the validator's message, invalid again; Groq then serves a captured structured answer (same
    // dialect) that validates.
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let groq = serve("openai", "chat.tool_result", GROQ_ROUTE, 1).await;
    let mut env = fast();
    env.extend(provider("OPENAI", format!("{}/v1", openai.uri())));
    env.extend(provider("GROQ", format!("{}/openai/v1", groq.uri())));
    env.push(order("openai,groq"));
    let served = start(env, &[]).await;
    let captured = Fixture::load("openai", "chat.tool_result")
        .request
        .body
        .expect("body");
    let body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Calculate 15 + 27. Report the result."}],
        "response_format": captured["response_format"],
    });
    let request: CreateChatCompletionRequest = serde_json::from_value(body).expect("request");
    let response = served
        .post(&serde_json::to_value(&request).expect("json"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-cascade-provider"], "groq");
    let answer: Value = response.json().await.expect("json");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        fixture_content("openai", "chat.tool_result")
    );
    let outcomes: Vec<&str> = answer["cascade"]["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["malformed_answer", "malformed_answer", "ok"]);
    let detail = answer["cascade"]["attempts"][0]["message"]
        .as_str()
        .expect("message");
    assert!(detail.contains("not JSON"), "{detail}");
    // The retry told the model what was wrong; the schema went out as the app sent it (strict).
    let sent = requests(&openai).await;
    let retry: Value = serde_json::from_slice(&sent[1].body).expect("json");
    let last = retry["messages"]
        .as_array()
        .and_then(|m| m.last())
        .expect("a message");
    assert!(
        last["content"]
            .as_str()
            .is_some_and(|c| c.contains("rejected")),
        "{last}"
    );
    assert_eq!(retry["response_format"], captured["response_format"]);
    let (code, stderr) = served.stop().await;
    assert_eq!(code, Some(0), "{stderr}");
}
