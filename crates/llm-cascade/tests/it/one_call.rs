//! `parallel_tool_calls: false` (one tool call per answer) over the real provider crates: sent to a
//! provider that documents the setting, never to one that does not; from a provider that answers
//! with several calls anyway (Gemini has no such setting), the first call is kept.

use futures_util::StreamExt;
use llm_cascade::{Cascade, ChatRequest, MapEnv, StreamEvent, Tool};
use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::{Value, json};
use wiremock::MockServer;

/// A server answering each request to `scenario`'s path with that fixture.
async fn serve(provider: &str, scenario: &str) -> MockServer {
    let server = MockServer::start().await;
    let fixture = Fixture::load(provider, scenario);
    let path = fixture.request.path.clone();
    fixture.mount(&server, "POST", &path, 1).await;
    server
}

async fn sent_body(server: &MockServer) -> Value {
    let requests = server.received_requests().await.expect("recording");
    serde_json::from_slice(&requests[0].body).expect("JSON")
}

fn cascade(env: MapEnv, order: &str) -> Cascade {
    Cascade::from_env_source(&env.with("LLM_FALLBACK_ORDER", order)).expect("valid configuration")
}

/// A tool taking `{query: string}`, as in the parallel-calls captures.
fn search(name: &str) -> Tool {
    Tool::new(
        name,
        "Local search tool for concurrency testing.",
        json!({"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
    )
}

/// The request of the Gemini capture that answered with three calls.
fn three_searches(parallel_tool_calls: Option<bool>) -> ChatRequest {
    ChatRequest {
        tools: ["one", "two", "three"]
            .map(|n| search(&format!("parallel_local_search_{n}")))
            .to_vec(),
        parallel_tool_calls,
        ..ChatRequest::from_prompt("emit exactly 3 tool calls in the same response")
    }
}

fn gemini(server: &MockServer) -> MapEnv {
    MapEnv::new()
        .with("GEMINI_API_KEY", CANARY_KEY)
        .with("GEMINI_MODEL", "gemini-2.5-flash")
        .with("GEMINI_BASE_URL", format!("{}/v1beta", server.uri()))
}

#[tokio::test]
async fn several_calls_from_a_provider_without_the_setting_are_cut_to_the_first() {
    let server = serve("gemini", "chat.function_call.parallel").await;
    let answer = cascade(gemini(&server), "gemini")
        .chat(three_searches(Some(false)))
        .await
        .expect("gemini answers");
    let names: Vec<&str> = answer
        .response
        .tool_calls
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["parallel_local_search_one"]);
    let sent = sent_body(&server).await.to_string();
    assert!(!sent.contains("parallel_tool_calls"), "{sent}");

    // The same answer, parallel calls allowed: all three.
    let server = serve("gemini", "chat.function_call.parallel").await;
    let answer = cascade(gemini(&server), "gemini")
        .chat(three_searches(None))
        .await
        .expect("gemini answers");
    assert_eq!(answer.response.tool_calls.len(), 3);
}

/// The streamed tool calls of `request`'s answer, by name.
async fn streamed_calls(cascade: &Cascade, request: ChatRequest) -> Vec<String> {
    let stream = cascade.chat_stream(request).await.expect("stream");
    let events: Vec<_> = stream.collect().await;
    events
        .into_iter()
        .filter_map(|event| match event.expect("no error") {
            StreamEvent::ToolCall { call } => Some(call.name),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_stream_keeps_its_first_call_only() {
    let server = serve("gemini", "chat.stream.function_call.parallel").await;
    let temperature = Tool::new(
        "get_current_temperature",
        "Get the current temperature in a city.",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    );
    let request = |parallel_tool_calls| ChatRequest {
        tools: vec![temperature.clone()],
        parallel_tool_calls,
        ..ChatRequest::from_prompt("What is the temperature in Paris and London?")
    };
    let chain = cascade(gemini(&server), "gemini");
    assert_eq!(streamed_calls(&chain, request(None)).await.len(), 2);
    let server = serve("gemini", "chat.stream.function_call.parallel").await;
    let chain = cascade(gemini(&server), "gemini");
    assert_eq!(
        streamed_calls(&chain, request(Some(false))).await,
        ["get_current_temperature"]
    );
}

#[tokio::test]
async fn the_setting_goes_to_a_provider_that_documents_it_and_not_to_one_that_does_not() {
    let openai = serve("openai", "chat.stream.parallel_tool_calls").await;
    // The two tools the capture called in parallel (their arguments are not the point here).
    let tools = ["GetWeatherArgs", "get_stock_price"]
        .map(|name| Tool::new(name, "A tool of the capture.", json!({"type": "object"})));
    let request = ChatRequest {
        tools: tools.to_vec(),
        parallel_tool_calls: Some(false),
        ..ChatRequest::from_prompt("the weather in Paris and the price of AAPL")
    };
    let env = MapEnv::new()
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{}/v1", openai.uri()));
    let calls = streamed_calls(&cascade(env, "openai"), request.clone()).await;
    assert_eq!(calls, ["GetWeatherArgs"]);
    assert_eq!(sent_body(&openai).await["parallel_tool_calls"], false);

    let deepseek = serve("deepseek", "chat.success").await;
    let env = MapEnv::new()
        .with("DEEPSEEK_API_KEY", CANARY_KEY)
        .with("DEEPSEEK_BASE_URL", deepseek.uri());
    cascade(env, "deepseek")
        .chat(request)
        .await
        .expect("deepseek answers");
    let sent = sent_body(&deepseek).await;
    assert!(sent.get("parallel_tool_calls").is_none(), "{sent}");
    assert!(sent.get("tools").is_some());
}
