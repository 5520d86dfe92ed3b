use std::path::Path;

use serde_json::{Value, json};
use xtask::check;

use crate::toy;

fn write(dir: &Path, name: &str, fixture: &Value) {
    std::fs::write(
        dir.join(name),
        serde_json::to_vec_pretty(fixture).expect("json"),
    )
    .expect("write");
}

fn fixture(scenario: &str, status: u16, body: Value) -> Value {
    json!({
        "meta": {"provider": "toy", "scenario": scenario, "source": "documented"},
        "request": {"method": "POST", "path": "/v1/chat/completions"},
        "response": {"status": status, "headers": {"content-type": "application/json"}, "body": body},
    })
}

#[tokio::test]
async fn check_reports_fixtures_that_no_longer_decode_as_promised() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ok =
        json!({"model": "m", "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]});
    let auth = json!({"error": {"code": "invalid_api_key", "message": "bad key"}});
    write(
        dir.path(),
        "chat.success.json",
        &fixture("chat.success", 200, ok.clone()),
    );
    write(
        dir.path(),
        "error.401.auth.json",
        &fixture("error.401.auth", 401, auth.clone()),
    );
    // Broken promises: a success that is an error, an error that decodes, a kind that changed.
    write(
        dir.path(),
        "chat.broken.json",
        &fixture("chat.broken", 200, json!({"choices": []})),
    );
    write(
        dir.path(),
        "error.x.json",
        &fixture("error.500.server", 200, ok),
    );
    write(
        dir.path(),
        "error.kind.json",
        &fixture("error.401.rate_limit", 401, auth),
    );
    std::fs::write(dir.path().join("garbage.json"), "{").expect("write");
    let mut stream = fixture("chat.stream", 200, Value::Null);
    stream["response"] = json!({"status": 200, "headers": {"content-type": "text/event-stream"}, "body_file": "missing.sse"});
    write(dir.path(), "chat.stream.json", &stream);

    // A JSON array body kept in a `.json` sibling is a body, not a fixture.
    let mut array = fixture("error.429.rate_limit", 429, Value::Null);
    array["response"] = json!({"status": 429, "headers": {"content-type": "application/json"}, "body_file": "error.429.rate_limit.body.json"});
    write(dir.path(), "error.429.rate_limit.json", &array);
    std::fs::write(
        dir.path().join("error.429.rate_limit.body.json"),
        "[{\"error\":{}}]",
    )
    .expect("write");
    // A stream cut short promises a truncation error.
    let mut truncated = fixture("chat.stream.truncated", 200, Value::Null);
    truncated["response"] = json!({"status": 200, "headers": {"content-type": "text/event-stream"}, "body_file": "chat.stream.truncated.sse"});
    write(dir.path(), "chat.stream.truncated.json", &truncated);
    std::fs::write(
        dir.path().join("chat.stream.truncated.sse"),
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
    )
    .expect("write");

    let results = check::check_all(&toy::registry(), dir.path()).await;
    let verdicts: Vec<(String, bool)> = results
        .iter()
        .map(|c| {
            (
                c.file
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
                c.verdict.is_ok(),
            )
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            ("chat.broken.json".to_owned(), false),
            ("chat.stream.json".to_owned(), false),
            ("chat.stream.truncated.json".to_owned(), true),
            ("chat.success.json".to_owned(), true),
            ("error.401.auth.json".to_owned(), true),
            ("error.429.rate_limit.json".to_owned(), true),
            ("error.kind.json".to_owned(), false),
            ("error.x.json".to_owned(), false),
            ("garbage.json".to_owned(), false),
        ]
    );
    let report = check::render(&results, dir.path());
    assert!(
        report.ends_with("9 fixtures checked, 4 ok, 5 failed\n"),
        "{report}"
    );
    assert!(
        report.contains("FAIL  error.x.json  [error] error fixture decoded as a success"),
        "{report}"
    );
    assert!(
        report.contains("expected error kind rate_limit, got auth"),
        "{report}"
    );
}
