//! The committed `fixtures/lmstudio/recorded/` (a real llama.cpp server, see fixtures/README.md) replay
//! through the real lmstudio provider.

use futures_util::StreamExt;
use llm_cascade::{ChatRequest, FinishReason, MapEnv, StreamEvent};
use llm_test_support::{Fixture, workspace_root};
use wiremock::MockServer;

fn recorded(scenario: &str) -> Fixture {
    Fixture::load_from(
        &workspace_root()
            .join("fixtures/lmstudio/recorded")
            .join(format!("{scenario}.json")),
    )
}

/// A lmstudio provider pointed at `server`, with the model the fixture was recorded with.
fn provider(server: &MockServer, fixture: &Fixture) -> Box<dyn llm_cascade::Provider> {
    let registry = llm_cascade::registry().expect("registry");
    let registration = registry.get("lmstudio").expect("lmstudio is compiled in");
    let model = fixture.meta.extra["model"]
        .as_str()
        .expect("recorded model");
    (registration.build)(
        &MapEnv::new()
            .with("LM_STUDIO_BASE_URL", format!("{}/v1", server.uri()))
            .with("LM_STUDIO_MODEL", model),
    )
    .expect("provider")
}

#[tokio::test]
async fn recorded_chats_replay_through_the_lmstudio_provider() {
    for (scenario, finish) in [
        ("chat.success", None),
        ("chat.system", None),
        ("chat.max_tokens", Some(FinishReason::Length)),
        ("chat.invalid_key_accepted", None),
        ("chat.unknown_model_accepted", None),
    ] {
        let fixture = recorded(scenario);
        assert_eq!(fixture.meta.source, "recorded");
        assert_eq!(fixture.request.path, "/v1/chat/completions");
        let server = MockServer::start().await;
        fixture
            .mount(&server, "POST", "/v1/chat/completions", 1)
            .await;
        let response = provider(&server, &fixture)
            .chat(&ChatRequest::from_prompt("replay"))
            .await
            .unwrap_or_else(|e| panic!("{scenario}: {e}"));
        let recorded = fixture.response.body.as_ref().expect("json body");
        assert_eq!(
            response.content,
            recorded["choices"][0]["message"]["content"]
                .as_str()
                .expect("content"),
            "{scenario}"
        );
        assert_eq!(response.provider, "lmstudio");
        assert!(
            response.usage.is_some_and(|u| u.output_tokens > 0),
            "{scenario}"
        );
        if let Some(finish) = finish {
            assert_eq!(response.finish_reason, finish, "{scenario}");
        }
    }
}

#[tokio::test]
async fn the_recorded_stream_replays_to_one_finish() {
    let fixture = recorded("chat.stream");
    assert_eq!(
        fixture.response.body_file.as_deref(),
        Some("chat.stream.sse")
    );
    let server = MockServer::start().await;
    fixture
        .mount(&server, "POST", "/v1/chat/completions", 1)
        .await;
    let mut stream = provider(&server, &fixture)
        .chat_stream(&ChatRequest::from_prompt("replay"))
        .await
        .expect("stream starts");
    let mut text = String::new();
    let mut finishes = 0;
    while let Some(event) = stream.next().await {
        match event.expect("no error in a recorded stream") {
            StreamEvent::Delta { text: delta } => text.push_str(&delta),
            StreamEvent::Finish { .. } => finishes += 1,
            StreamEvent::Usage { .. }
            | StreamEvent::Resumed { .. }
            | StreamEvent::ToolCall { .. }
            | StreamEvent::RateLimit { .. } => {}
        }
    }
    assert_eq!(finishes, 1);
    assert!(!text.is_empty());
    let sse = String::from_utf8(fixture.body_bytes()).expect("utf-8");
    assert!(
        sse.ends_with("data: [DONE]\n\n"),
        "byte-exact SSE, terminator kept"
    );
}
