use std::path::Path;
use std::time::Duration;

use llm_cascade::{ChatRequest, MapEnv};
use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};
use xtask::record::{self, RecordError, Recorder};
use xtask::scenarios::{self, INVALID_KEY, UNKNOWN_MODEL};
use xtask::scrub;

use crate::toy;

const SSE: &str = "data: {\"model\":\"toy-model\",\"choices\":[{\"delta\":{\"content\":\"One\"},\"finish_reason\":null}]}\n\n\
data: {\"model\":\"toy-model\",\"choices\":[{\"delta\":{\"content\":\", two\"},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

fn completion(content: &str, finish: &str) -> Value {
    json!({
        "id": "chatcmpl-1",
        "model": "toy-model",
        "system_fingerprint": "org-AbCdEfGh12345678",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
    })
}

/// Headers a real upstream sends that must not reach a fixture, plus allow-listed ones that must.
fn with_headers(template: ResponseTemplate) -> ResponseTemplate {
    template
        .insert_header("set-cookie", "__cf_bm=tracking; path=/")
        .insert_header("openai-organization", "org-AbCdEfGh12345678")
        .insert_header("openai-project", "proj_AbCdEfGh1234")
        .insert_header("cf-ray", "8f00aa-AMS")
        .insert_header("x-request-id", "req_123")
        .insert_header("x-ratelimit-remaining-requests", "99")
}

/// An upstream that behaves like an OpenAI-dialect provider: success, stream, 401, 404.
async fn upstream(success_body: Value) -> MockServer {
    let server = MockServer::start().await;
    let route = || Mock::given(method("POST")).and(path("/v1/chat/completions"));
    route()
        .and(header("authorization", format!("Bearer {INVALID_KEY}").as_str()))
        .respond_with(with_headers(ResponseTemplate::new(401).set_body_json(json!({
            "error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}
        }))))
        .expect(1)
        .mount(&server)
        .await;
    route()
        .and(body_partial_json(json!({"model": UNKNOWN_MODEL})))
        .respond_with(with_headers(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"message": "The model does not exist", "type": "invalid_request_error", "code": "model_not_found"}
        }))))
        .expect(1)
        .mount(&server)
        .await;
    route()
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(with_headers(
            ResponseTemplate::new(200).set_body_raw(SSE, "text/event-stream"),
        ))
        .expect(1)
        .mount(&server)
        .await;
    route()
        .and(body_partial_json(json!({"max_tokens": 8})))
        .respond_with(with_headers(
            ResponseTemplate::new(200).set_body_json(completion("Once upon a", "length")),
        ))
        .expect(1)
        .mount(&server)
        .await;
    route()
        .respond_with(with_headers(
            ResponseTemplate::new(200).set_body_json(success_body),
        ))
        .expect(2)
        .mount(&server)
        .await;
    server
}

fn env_for(server: &MockServer) -> MapEnv {
    MapEnv::new()
        .with("TOY_API_KEY", CANARY_KEY)
        .with("TOY_BASE_URL", format!("{}/v1", server.uri()))
}

fn all_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).expect("readable").flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn records_scrubbed_replayable_fixtures_from_a_local_upstream() {
    let server = upstream(completion("Hello there, friend", "stop")).await;
    let env = env_for(&server);
    let registry = toy::registry();
    let list = scenarios::load(&xtask::scenario_file()).expect("scenario list");
    let out = tempfile::tempdir().expect("temp dir");
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &[],
        fixtures_dir: out.path(),
        local_probe: Duration::from_secs(2),
    };

    let report = record::record(&recorder).await.expect("recorded");
    assert!(!report.has_failures(), "{report:#?}");
    let summary = report.summary(list.len());
    assert!(
        summary
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["toy", "6", "0", "0"]),
        "{summary}"
    );

    let dir = out.path().join("toy").join("recorded");
    let names: Vec<String> = all_files(out.path())
        .iter()
        .map(|f| {
            f.strip_prefix(&dir)
                .expect("under toy/recorded")
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        [
            "chat.max_tokens.json",
            "chat.stream.json",
            "chat.stream.sse",
            "chat.success.json",
            "chat.system.json",
            "error.401.auth.json",
            "error.404.model_not_found.json",
        ]
    );

    for file in all_files(out.path()) {
        let text = std::fs::read_to_string(&file).expect("utf-8");
        assert!(!text.contains(CANARY_KEY), "{}", file.display());
        assert!(
            !text.contains(INVALID_KEY),
            "request headers are not written: {}",
            file.display()
        );
        assert!(
            !text.contains("AbCdEfGh"),
            "org/project ids scrubbed: {}",
            file.display()
        );
        assert!(!text.contains("__cf_bm"), "{}", file.display());
        if file.extension().is_some_and(|e| e == "json") {
            let fixture = Fixture::load_from(&file);
            assert_eq!(fixture.meta.provider, "toy");
            assert_eq!(fixture.meta.source, "recorded");
            for field in ["model", "recorded_at", "recorder_version", "scenario_id"] {
                assert!(
                    fixture.meta.extra.contains_key(field),
                    "{field} in {}",
                    file.display()
                );
            }
            for name in fixture.response.headers.keys() {
                assert!(
                    scrub::is_allowed_header(name),
                    "{name} in {}",
                    file.display()
                );
            }
            assert_eq!(fixture.request.method, "POST");
            assert_eq!(fixture.request.path, "/v1/chat/completions");
        }
    }

    // The stream body is byte for byte what the upstream sent.
    assert_eq!(
        std::fs::read_to_string(dir.join("chat.stream.sse")).expect("sse"),
        SSE
    );
    let success = Fixture::load_from(&dir.join("chat.success.json"));
    assert_eq!(
        success.response.headers.keys().collect::<Vec<_>>(),
        [
            "content-type",
            "x-ratelimit-remaining-requests",
            "x-request-id"
        ]
    );
    assert_eq!(
        success.response.body.as_ref().expect("json body")["system_fingerprint"],
        "org-REDACTED"
    );
    assert_eq!(
        success.request.body.as_ref().expect("request body")["max_tokens"],
        16
    );
    let auth = Fixture::load_from(&dir.join("error.401.auth.json"));
    assert_eq!(auth.meta.extra["error_kind"], "auth");
    assert_eq!(auth.meta.extra["scenario_id"], "error.auth");
    let recorded_at = success.meta.extra["recorded_at"].as_str().expect("string");
    assert!(
        recorded_at.ends_with('Z') && recorded_at.len() == 20,
        "{recorded_at}"
    );

    // Replayable: served from the files, our provider decodes them.
    let replay = MockServer::start().await;
    success
        .mount(&replay, "POST", "/v1/chat/completions", 1)
        .await;
    let provider = (toy::registration().build)(
        &MapEnv::new()
            .with("TOY_API_KEY", CANARY_KEY)
            .with("TOY_BASE_URL", format!("{}/v1", replay.uri())),
    )
    .expect("provider");
    let answer = provider
        .chat(&ChatRequest::from_prompt("hi"))
        .await
        .expect("replayed");
    assert_eq!(answer.content, "Hello there, friend");

    let checked = xtask::check::check_all(&registry, out.path()).await;
    assert_eq!(checked.len(), 6);
    for c in &checked {
        assert!(c.verdict.is_ok(), "{}: {:?}", c.file.display(), c.verdict);
    }
}

#[tokio::test]
async fn a_key_in_a_response_fails_the_run_and_writes_nothing() {
    let mut leaking = completion("ok", "stop");
    leaking["debug"] = json!(format!("authenticated with {CANARY_KEY}"));
    let server = upstream(leaking).await;
    let env = env_for(&server);
    let registry = toy::registry();
    let list = scenarios::load(&xtask::scenario_file()).expect("scenario list");
    let out = tempfile::tempdir().expect("temp dir");
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &[],
        fixtures_dir: out.path(),
        local_probe: Duration::from_secs(2),
    };
    let err = record::record(&recorder).await.expect_err("leak");
    match &err {
        RecordError::SecretLeak { var, file } => {
            assert_eq!(var, "TOY_API_KEY");
            assert!(
                file.ends_with("toy/recorded/chat.success.json"),
                "{}",
                file.display()
            );
        }
        other => panic!("expected a leak, got {other:?}"),
    }
    assert!(!err.to_string().contains(CANARY_KEY));
    assert!(all_files(out.path()).is_empty(), "nothing written");
}

#[tokio::test]
async fn unconfigured_providers_are_skipped_with_the_variable_that_enables_them() {
    let registry = toy::registry();
    let list = scenarios::load(&xtask::scenario_file()).expect("scenario list");
    let out = tempfile::tempdir().expect("temp dir");
    let env = MapEnv::new();
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &[],
        fixtures_dir: out.path(),
        local_probe: Duration::from_secs(2),
    };
    let plan = record::plan(&recorder);
    assert!(plan.contains("toy: skipped (set TOY_API_KEY)"), "{plan}");
    let report = record::record(&recorder).await.expect("nothing to record");
    assert!(report.written.is_empty());
    let summary = report.summary(list.len());
    assert!(summary.contains("set TOY_API_KEY"), "{summary}");
    assert!(
        summary
            .lines()
            .any(|l| l.split_whitespace().take(4).collect::<Vec<_>>() == ["toy", "0", "6", "0"]),
        "{summary}"
    );
}

#[tokio::test]
async fn dry_run_lists_every_call_of_a_configured_provider() {
    let registry = toy::registry();
    let list = scenarios::load(&xtask::scenario_file()).expect("scenario list");
    let env = MapEnv::new()
        .with("TOY_API_KEY", CANARY_KEY)
        .with("TOY_BASE_URL", "http://127.0.0.1:9/v1");
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &[],
        fixtures_dir: Path::new("fixtures"),
        local_probe: Duration::from_secs(2),
    };
    let plan = record::plan(&recorder);
    assert_eq!(plan.lines().count(), 1 + list.len(), "{plan}");
    assert!(plan.contains(&format!("model={UNKNOWN_MODEL}")), "{plan}");
    assert!(plan.contains("fault=invalid_key"), "{plan}");
    assert!(!plan.contains(CANARY_KEY));
}

#[tokio::test]
async fn re_recording_replaces_the_scenarios_files_and_leaves_hand_built_ones() {
    let server = upstream(completion("Hi", "stop")).await;
    let env = env_for(&server);
    let registry = toy::registry();
    let list = scenarios::load(&xtask::scenario_file()).expect("scenario list");
    let out = tempfile::tempdir().expect("temp dir");
    let recorded = out.path().join("toy/recorded");
    std::fs::create_dir_all(&recorded).expect("dirs");
    // An earlier recording of error.auth under another name, and a hand-built fixture beside.
    let stale = json!({"meta": {"provider": "toy", "scenario": "chat.invalid_key_accepted",
        "source": "recorded", "scenario_id": "error.auth"}, "response": {"status": 200}});
    std::fs::write(
        recorded.join("chat.invalid_key_accepted.json"),
        stale.to_string(),
    )
    .expect("write");
    std::fs::write(out.path().join("toy/chat.success.json"), "{}").expect("write");
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &["toy".to_owned()],
        fixtures_dir: out.path(),
        local_probe: Duration::from_secs(2),
    };
    let report = record::record(&recorder).await.expect("recorded");
    assert_eq!(
        report.removed,
        [recorded.join("chat.invalid_key_accepted.json")]
    );
    assert!(recorded.join("error.401.auth.json").is_file());
    assert_eq!(
        std::fs::read_to_string(out.path().join("toy/chat.success.json")).expect("kept"),
        "{}"
    );
}
