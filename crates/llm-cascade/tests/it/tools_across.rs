//! A tool-call conversation that crosses providers, over the real provider crates: Ollama calls the
//! tool (an id we made up, since Ollama gives none); the next turn goes to OpenAI, which fails, and on
//! to Mistral, which takes only nine-letter ids: each is sent the conversation with ids it accepts, the
//! call and its result still matching.

use llm_cascade::{Cascade, ChatRequest, ErrorKind, MapEnv, Message, Outcome, Tool};
use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::{Value, json};
use wiremock::MockServer;

async fn serve(provider: &str, scenarios: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    for scenario in scenarios {
        let fixture = Fixture::load(provider, scenario);
        let (method, path) = (fixture.request.method.clone(), fixture.request.path.clone());
        let method = if method.is_empty() {
            "POST".to_owned()
        } else {
            method
        };
        fixture.mount(&server, &method, &path, 1).await;
    }
    server
}

async fn bodies(server: &MockServer, path: &str) -> Vec<Value> {
    let requests = server.received_requests().await.expect("recording");
    requests
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).expect("JSON"))
        .collect()
}

fn chain(env: MapEnv, order: &str) -> Cascade {
    let env = env
        .with("LLM_FALLBACK_ORDER", order)
        .with("LLM_BACKOFF_MS", "10");
    Cascade::from_env_source(&env).expect("valid configuration")
}

/// The documented tool of Ollama's example.
fn weather() -> Tool {
    Tool::new(
        "get_weather",
        "Get the weather in a given city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

#[tokio::test]
async fn a_tool_conversation_from_ollama_goes_on_at_openai_then_mistral() {
    // Turn 1 on Ollama: a call with our synthetic id.
    let ollama = serve("ollama", &["tags.success.doc", "chat.tools.doc"]).await;
    let env = MapEnv::new()
        .with("OLLAMA_BASE_URL", ollama.uri())
        .with("OLLAMA_MODEL", "llama3.2");
    let request = ChatRequest {
        tools: vec![weather()],
        ..ChatRequest::from_prompt("what is the weather in tokyo?")
    };
    let turn = chain(env, "ollama")
        .chat(request.clone())
        .await
        .expect("ollama calls the tool");
    let call = turn.response.tool_calls[0].clone();
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_0_0", "get_weather")
    );

    // Turn 2: the call and its result, to OpenAI (a 401: next provider), then Mistral.
    let openai = serve("openai", &["error.401.auth"]).await;
    let mistral = serve("mistral", &["chat.tool_result"]).await;
    let env = MapEnv::new()
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{}/v1", openai.uri()))
        .with("MISTRAL_API_KEY", CANARY_KEY)
        .with("MISTRAL_BASE_URL", format!("{}/v1", mistral.uri()));
    let mut follow_up = request;
    follow_up
        .messages
        .push(Message::assistant_tool_calls("", vec![call.clone()]));
    follow_up
        .messages
        .push(Message::tool_result(call.id.clone(), "Sunny, 22C"));
    let answer = chain(env, "openai,mistral")
        .chat(follow_up)
        .await
        .expect("mistral answers");
    assert_eq!(answer.response.provider, "mistral");
    assert_eq!(
        answer
            .attempts
            .iter()
            .map(|a| a.outcome)
            .collect::<Vec<_>>(),
        vec![Outcome::Failed(ErrorKind::Auth), Outcome::Ok]
    );

    let to_openai = &bodies(&openai, "/v1/chat/completions").await[0];
    assert_eq!(to_openai["messages"][1]["tool_calls"][0]["id"], "call_0_0");
    assert_eq!(to_openai["messages"][2]["tool_call_id"], "call_0_0");
    let to_mistral = &bodies(&mistral, "/v1/chat/completions").await[0];
    let id = to_mistral["messages"][1]["tool_calls"][0]["id"]
        .as_str()
        .expect("an id");
    assert!(
        id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(to_mistral["messages"][2]["tool_call_id"], id);
    assert_eq!(to_mistral["messages"][2]["name"], "get_weather");
}
