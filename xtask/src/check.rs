//! `record-fixtures --check`: decodes every committed fixture with the current code.
//!
//! Each fixture is served by its own loopback wiremock server and requested through its provider's
//! `chat` (or `chat_stream` when the body is a stream file). A success fixture must decode to a success;
//! an `error.*` fixture must produce an error, of the kind it names when it names one. Offline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use llm_cascade::{ChatRequest, Error, ErrorKind, MapEnv, Provider, Registry};
use llm_test_support::Fixture;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

use crate::record::{base_url_var, env_prefix, key_vars};

/// The key providers are built with while checking (never a real key).
pub const CHECK_KEY: &str = llm_test_support::CANARY_KEY;

/// The longest one decode may take.
const DECODE_LIMIT: Duration = Duration::from_secs(20);

/// The verdict on one fixture file.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The fixture file.
    pub file: PathBuf,
    /// `Ok(what it decoded to)` or `Err(why it fails the check)`.
    pub verdict: Result<String, String>,
}

/// Every `*.json` under `fixtures_dir` (sorted), at any depth.
pub fn fixture_files(fixtures_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![fixtures_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    // A `body_file` may itself end in `.json` (a JSON array body kept byte for byte): not a fixture.
    let bodies: Vec<PathBuf> = files
        .iter()
        .filter_map(|file| {
            let value: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(file).ok()?).ok()?;
            let body_file = value.get("response")?.get("body_file")?.as_str()?;
            Some(file.parent()?.join(body_file))
        })
        .collect();
    files.retain(|file| !bodies.contains(file));
    files.sort();
    files
}

/// Checks every fixture under `fixtures_dir`.
pub async fn check_all(registry: &Registry, fixtures_dir: &Path) -> Vec<Checked> {
    let mut results = Vec::new();
    for file in fixture_files(fixtures_dir) {
        let verdict = check_file(registry, &file).await;
        results.push(Checked { file, verdict });
    }
    results
}

fn load(file: &Path) -> Result<Fixture, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("unreadable: {e}"))?;
    let mut fixture: Fixture =
        serde_json::from_str(&text).map_err(|e| format!("not a fixture: {e}"))?;
    fixture.dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Some(body_file) = &fixture.response.body_file {
        let sibling = fixture.dir.join(body_file);
        if !sibling.is_file() {
            return Err(format!("body_file `{body_file}` is missing"));
        }
    }
    Ok(fixture)
}

/// Which provider method replays a fixture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Chat,
    Stream,
    /// A `GET` (a models list): `check_available`.
    Available,
    /// A model pull (`…/pull`): `prepare`.
    Prepare,
}

impl Method {
    fn of(fixture: &Fixture) -> Self {
        let path = fixture.request.path.split('?').next().unwrap_or_default();
        if fixture.request.method.eq_ignore_ascii_case("GET") {
            Method::Available
        } else if path.ends_with("/pull") {
            Method::Prepare
        } else if is_stream(fixture) {
            Method::Stream
        } else {
            Method::Chat
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Method::Chat => "chat",
            Method::Stream => "stream",
            Method::Available => "check_available",
            Method::Prepare => "prepare",
        }
    }
}

fn is_stream(fixture: &Fixture) -> bool {
    let by_file = fixture
        .response
        .body_file
        .as_deref()
        .is_some_and(|f| f.ends_with(".sse") || f.ends_with(".ndjson"));
    let by_type = fixture.response.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-type")
            && (value.contains("event-stream") || value.contains("ndjson"))
    });
    by_file || by_type
}

/// What decoding a fixture must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A success.
    Ok,
    /// An error; of this kind when one is named.
    Error(Option<ErrorKind>),
    /// A success, or an error that shows the body was understood (any kind but `validation`): for
    /// answers whose reading is the provider's choice (a blocked answer, an empty model list).
    Understood,
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Ok => f.write_str("ok"),
            Expect::Error(None) => f.write_str("error"),
            Expect::Error(Some(kind)) => write!(f, "error {kind}"),
            Expect::Understood => f.write_str("understood"),
        }
    }
}

/// What a fixture promises.
///
/// `meta.expect` decides when present (`ok`, `error`, `understood` or an error kind such as
/// `stream_truncated`). Otherwise the scenario name does: `error.*` must fail, with the kind in
/// `meta.error_kind` or in the name's last segment when that is a kind (`error.429.rate_limit`); a
/// `truncated` segment must fail with `stream_truncated`; a segment containing `error` must fail; a
/// segment containing `block`, `safety` or `empty` must be understood; anything else must succeed.
pub fn expectation(fixture: &Fixture) -> Expect {
    let meta = &fixture.meta;
    if let Some(expect) = meta.extra.get("expect").and_then(|v| v.as_str()) {
        return match expect {
            "ok" => Expect::Ok,
            "error" => Expect::Error(None),
            "understood" => Expect::Understood,
            kind => Expect::Error(ErrorKind::from_name(kind)),
        };
    }
    let scenario = meta.scenario.as_str();
    let segments: Vec<&str> = scenario.split('.').collect();
    if scenario.starts_with("error.") {
        let named = meta
            .extra
            .get("error_kind")
            .and_then(|v| v.as_str())
            .and_then(ErrorKind::from_name)
            .or_else(|| segments.last().and_then(|s| ErrorKind::from_name(s)));
        Expect::Error(named)
    } else if segments.contains(&"truncated") {
        Expect::Error(Some(ErrorKind::StreamTruncated))
    } else if segments.iter().any(|s| s.contains("error")) {
        Expect::Error(None)
    } else if segments
        .iter()
        .any(|s| s.contains("block") || s.contains("safety") || s.contains("empty"))
    {
        Expect::Understood
    } else {
        Expect::Ok
    }
}

/// The provider's own successful `GET` fixture (its models list), served beside a chat fixture for
/// providers that list or verify models before chatting (Ollama checks `/api/tags` first). Looked up in
/// the fixture's folder and, for `recorded/`, its parent; one that mentions `model` is preferred, and
/// the flag says whether it does.
fn companion(fixture: &Fixture, model: Option<&str>) -> Option<(Fixture, bool)> {
    let mut dirs = vec![fixture.dir.clone()];
    if fixture
        .dir
        .file_name()
        .is_some_and(|n| n == crate::record::RECORDED_DIR)
    {
        dirs.extend(fixture.dir.parent().map(Path::to_path_buf));
    }
    let mut candidates: Vec<(Fixture, bool)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let Ok(candidate) = load(&file) else {
                continue;
            };
            if candidate.request.method.eq_ignore_ascii_case("GET")
                && candidate.meta.provider == fixture.meta.provider
                && expectation(&candidate) == Expect::Ok
            {
                let mentions = model
                    .is_some_and(|m| String::from_utf8_lossy(&candidate.body_bytes()).contains(m));
                candidates.push((candidate, mentions));
            }
        }
    }
    let preferred = candidates
        .iter()
        .position(|(_, mentions)| *mentions)
        .unwrap_or(0);
    (!candidates.is_empty()).then(|| candidates.swap_remove(preferred))
}

/// The first `model` string in `value` (or, in a list, an entry's `id`/`name`).
fn first_model(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Object(map) => map
            .get("model")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .or_else(|| map.values().find_map(first_model)),
        serde_json::Value::Array(items) => items.iter().find_map(|item| {
            first_model(item).or_else(|| {
                ["id", "name"]
                    .iter()
                    .find_map(|key| item.get(key).and_then(|v| v.as_str()))
                    .map(str::to_owned)
            })
        }),
        _ => None,
    }
}

/// The model a fixture is about: `meta.model`, else the request's `model`, else the first `model`
/// (or list entry `id`/`name`) in the response body, else the first `"model":"…"` of a stream body.
pub fn fixture_model(fixture: &Fixture) -> Option<String> {
    let from_meta = fixture.meta.extra.get("model").and_then(|v| v.as_str());
    if let Some(model) = from_meta.filter(|m| !m.is_empty()) {
        return Some(model.to_owned());
    }
    if let Some(model) = fixture.request.body.as_ref().and_then(first_model) {
        return Some(model);
    }
    if let Some(model) = fixture.response.body.as_ref().and_then(first_model) {
        return Some(model);
    }
    let body = fixture.response.body_file.as_ref()?;
    let text = std::fs::read_to_string(fixture.dir.join(body)).ok()?;
    let at = text.find("\"model\"")?;
    let rest = text[at + "\"model\"".len()..]
        .trim_start()
        .strip_prefix(':')?;
    let rest = rest.trim_start().strip_prefix('"')?;
    rest.split('"')
        .next()
        .filter(|m| !m.is_empty())
        .map(str::to_owned)
}

/// Decodes one fixture through its provider and judges the result.
///
/// # Errors
/// Why the fixture fails the check.
pub async fn check_file(registry: &Registry, file: &Path) -> Result<String, String> {
    let fixture = load(file)?;
    let provider_id = fixture.meta.provider.clone();
    let registration = registry
        .get(&provider_id)
        .ok_or_else(|| format!("provider `{provider_id}` is not compiled in"))?;
    let method = Method::of(&fixture);
    let mut model = fixture_model(&fixture);
    let companion = if method == Method::Available {
        None
    } else {
        companion(&fixture, model.as_deref())
    };
    // The configured model must be one the companion lists, or the provider stops before the chat.
    if let Some((listed, false)) = &companion {
        model = listed
            .response
            .body
            .as_ref()
            .and_then(first_model)
            .or(model);
    }
    let server = MockServer::start().await;
    if let Some((companion, _)) = companion {
        let route = companion.request.path.split('?').next().unwrap_or_default();
        Mock::given(wiremock::matchers::method("GET"))
            .and(wiremock::matchers::path(route))
            .respond_with(companion.response_template())
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(any())
        .respond_with(fixture.response_template())
        .mount(&server)
        .await;
    // Keep the upstream's base path: some providers build routes relative to it.
    let base_path = reqwest::Url::parse(registration.default_base_url)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    let mut env = MapEnv::new().with(
        base_url_var(registration.id),
        format!("{}{base_path}", server.uri()),
    );
    for var in key_vars(registration) {
        env = env.with(var, CHECK_KEY);
    }
    // Configure the model the fixture talks about, so that providers that discover or verify their
    // model (a models list first) make the one request the fixture answers.
    if let Some(model) = model {
        env = env.with(format!("{}_MODEL", env_prefix(registration.id)), model);
    }
    let provider = (registration.build)(&env).map_err(|e| format!("cannot build: {e}"))?;
    let request = ChatRequest {
        max_tokens: Some(16),
        ..ChatRequest::from_prompt("fixture check")
    };
    let decoded = tokio::time::timeout(DECODE_LIMIT, decode(provider.as_ref(), &request, method))
        .await
        .map_err(|_| format!("no result within {DECODE_LIMIT:?}"))?;
    let how = method.as_str();
    let expect = expectation(&fixture);
    let got = match &decoded {
        Ok(what) => format!("{how}: {what}"),
        Err(e) => match e.status() {
            Some(status) => format!("{how}: error {} (status {status})", e.kind()),
            None => format!("{how}: error {}", e.kind()),
        },
    };
    let verdict = match (expect, &decoded) {
        (Expect::Ok, Ok(_)) | (Expect::Understood, Ok(_)) | (Expect::Error(None), Err(_)) => Ok(()),
        (Expect::Error(Some(kind)), Err(e)) if e.kind() == kind => Ok(()),
        (Expect::Understood, Err(e)) if e.kind() != ErrorKind::MalformedAnswer => Ok(()),
        (Expect::Error(_), Ok(_)) => Err("error fixture decoded as a success".to_owned()),
        (Expect::Error(Some(kind)), Err(e)) => Err(format!(
            "expected error kind {kind}, got {} ({})",
            e.kind(),
            e.message()
        )),
        (_, Err(e)) => Err(format!("failed to decode: {}", e.message())),
    };
    match verdict {
        Ok(()) => Ok(format!("[{expect}] {got}")),
        Err(why) => Err(format!("[{expect}] {why}; {got}")),
    }
}

async fn decode(
    provider: &dyn Provider,
    request: &ChatRequest,
    method: Method,
) -> Result<String, Error> {
    if method == Method::Available {
        return provider
            .check_available()
            .await
            .map(|()| "available".to_owned());
    }
    if method == Method::Prepare {
        let progress = std::sync::Mutex::new(0_usize);
        let sink = |_: llm_core::Progress| {
            *progress
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        };
        provider.prepare(&sink).await?;
        let events = *progress
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        return Ok(format!("prepared, {events} progress events"));
    }
    if method == Method::Stream {
        let mut events = provider.chat_stream(request).await?;
        let mut count = 0;
        let mut finish = String::from("none");
        while let Some(event) = events.next().await {
            if let llm_cascade::StreamEvent::Finish { reason, .. } = event? {
                finish = reason.as_str().to_owned();
            }
            count += 1;
        }
        Ok(format!("{count} events, finish {finish}"))
    } else {
        let response = provider.chat(request).await?;
        Ok(format!(
            "{} chars, finish {}",
            response.content.chars().count(),
            response.finish_reason.as_str()
        ))
    }
}

/// The report printed by `--check`, one line per fixture, paths relative to `root`.
pub fn render(results: &[Checked], root: &Path) -> String {
    let mut out = String::new();
    for checked in results {
        let file = checked.file.strip_prefix(root).unwrap_or(&checked.file);
        let line = match &checked.verdict {
            Ok(what) => format!("ok    {}  {what}\n", file.display()),
            Err(why) => format!("FAIL  {}  {why}\n", file.display()),
        };
        out.push_str(&line);
    }
    let failed = results.iter().filter(|c| c.verdict.is_err()).count();
    out.push_str(&format!(
        "{} fixtures checked, {} ok, {failed} failed\n",
        results.len(),
        results.len() - failed
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(scenario: &str, extra: &[(&str, &str)]) -> Fixture {
        let meta: serde_json::Map<String, serde_json::Value> = extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
            .collect();
        let mut value = serde_json::json!({
            "meta": {"provider": "p", "scenario": scenario, "source": "documented"},
            "response": {"status": 200},
        });
        value["meta"].as_object_mut().expect("object").extend(meta);
        serde_json::from_value(value).expect("fixture")
    }

    #[test]
    fn expectations_follow_meta_then_the_name() {
        let cases = [
            ("chat.success", &[][..], Expect::Ok),
            ("models.list", &[][..], Expect::Ok),
            (
                "error.429.rate_limit",
                &[][..],
                Expect::Error(Some(ErrorKind::RateLimit)),
            ),
            ("error.500.server", &[][..], Expect::Error(None)),
            (
                "error.401.x",
                &[("error_kind", "auth")][..],
                Expect::Error(Some(ErrorKind::Auth)),
            ),
            (
                "chat.stream.truncated",
                &[][..],
                Expect::Error(Some(ErrorKind::StreamTruncated)),
            ),
            ("chat.stream.error_in_200", &[][..], Expect::Error(None)),
            ("pull.error", &[][..], Expect::Error(None)),
            ("chat.safety_block", &[][..], Expect::Understood),
            ("models.empty", &[][..], Expect::Understood),
            (
                "chat.odd",
                &[("expect", "content_filter")][..],
                Expect::Error(Some(ErrorKind::ContentFilter)),
            ),
            ("error.1.x", &[("expect", "ok")][..], Expect::Ok),
        ];
        for (scenario, extra, expect) in cases {
            assert_eq!(expectation(&named(scenario, extra)), expect, "{scenario}");
        }
    }
}
