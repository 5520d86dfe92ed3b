//! `record-fixtures`: runs the canonical scenarios through our own provider code, with a recording
//! proxy in front of the real upstream, and writes scrubbed fixtures to `fixtures/<id>/recorded/`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use llm_cascade::{
    ChatRequest, EnvSource, Error, MapEnv, Overlay, Provider, ProviderRegistration, Registry,
    StreamEvent,
};
use serde::Serialize;
use serde_json::Value;

use crate::proxy::{Exchange, RecordingProxy};
use crate::scenarios::{Call, Fault, INVALID_KEY, Scenario};
use crate::{clock, scrub};

/// What `meta.recorder_version` says.
pub const RECORDER_VERSION: &str = concat!("xtask ", env!("CARGO_PKG_VERSION"));

/// The subfolder of `fixtures/<id>/` that recorded fixtures go to (hand-built ones live beside it).
pub const RECORDED_DIR: &str = "recorded";

/// The longest one recorded call may take.
const CALL_LIMIT: Duration = Duration::from_secs(180);

/// The environment prefix of a provider (`LM_STUDIO` for `lmstudio`, else the id in capitals).
pub fn env_prefix(id: &str) -> String {
    match id {
        "lmstudio" => "LM_STUDIO".to_owned(),
        other => other.to_ascii_uppercase().replace('-', "_"),
    }
}

/// The variable that overrides a provider's base URL.
pub fn base_url_var(id: &str) -> String {
    format!("{}_BASE_URL", env_prefix(id))
}

/// The key variables of a provider: its registration's plus `<PREFIX>_API_KEY` (an optional key of
/// local servers).
pub fn key_vars(registration: &ProviderRegistration) -> Vec<String> {
    let mut vars: Vec<String> = registration
        .key_env
        .iter()
        .map(|v| (*v).to_owned())
        .collect();
    let own = format!("{}_API_KEY", env_prefix(registration.id));
    if !vars.contains(&own) {
        vars.push(own);
    }
    vars
}

/// Every configured key value of every registered provider (what must never reach a fixture).
pub fn configured_secrets(registry: &Registry, env: &dyn EnvSource) -> Vec<scrub::SecretValue> {
    let mut secrets: Vec<scrub::SecretValue> = Vec::new();
    for registration in registry.iter() {
        for var in key_vars(registration) {
            // An unreadable key cannot be sent either: building its provider fails on it.
            if let Ok(Some(value)) = env.non_empty(&var)
                && !secrets.iter().any(|s| s.value == value)
            {
                secrets.push(scrub::SecretValue { var, value });
            }
        }
    }
    secrets
}

/// What to record.
pub struct Recorder<'a> {
    /// The providers that may be recorded.
    pub registry: &'a Registry,
    /// Where keys, models and base URLs come from.
    pub env: &'a dyn EnvSource,
    /// The scenarios to run, in order.
    pub scenarios: &'a [Scenario],
    /// Only these providers (all when empty).
    pub providers: &'a [String],
    /// The `fixtures/` directory to write to.
    pub fixtures_dir: &'a Path,
    /// How long a local server has to answer its availability check.
    pub local_probe: Duration,
}

impl std::fmt::Debug for Recorder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("providers", &self.providers)
            .field("fixtures_dir", &self.fixtures_dir)
            .finish_non_exhaustive()
    }
}

/// How one scenario went.
#[derive(Debug, Clone)]
pub struct ScenarioOutcome {
    /// The scenario's id in the list.
    pub scenario: String,
    /// The fixture scenario written (`error.401.auth`) and a note, or why nothing was recorded.
    pub result: Result<(String, Option<String>), String>,
}

/// How one provider went.
#[derive(Debug, Clone)]
pub enum ProviderOutcome {
    /// Not configured or not reachable: why, and what would enable it.
    Skipped(String),
    /// The scenarios ran.
    Ran(Vec<ScenarioOutcome>),
}

/// One provider's row of the report.
#[derive(Debug, Clone)]
pub struct ProviderReport {
    /// Provider id.
    pub id: String,
    /// What happened.
    pub outcome: ProviderOutcome,
}

/// The result of a recording run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// One row per selected provider, in registry order.
    pub providers: Vec<ProviderReport>,
    /// The files written.
    pub written: Vec<PathBuf>,
    /// The stale recorded files removed (replaced by this run).
    pub removed: Vec<PathBuf>,
}

impl Report {
    /// Whether any scenario failed.
    pub fn has_failures(&self) -> bool {
        self.providers.iter().any(|p| match &p.outcome {
            ProviderOutcome::Ran(outcomes) => outcomes.iter().any(|o| o.result.is_err()),
            ProviderOutcome::Skipped(_) => false,
        })
    }

    /// The summary table: recorded / skipped / failed per provider.
    pub fn summary(&self, scenario_count: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:>8} {:>8} {:>7}  note",
            "provider", "recorded", "skipped", "failed"
        );
        for provider in &self.providers {
            let (recorded, skipped, failed, note) = match &provider.outcome {
                ProviderOutcome::Skipped(why) => (0, scenario_count, 0, why.clone()),
                ProviderOutcome::Ran(outcomes) => {
                    let ok = outcomes.iter().filter(|o| o.result.is_ok()).count();
                    (ok, 0, outcomes.len() - ok, String::new())
                }
            };
            let _ = writeln!(
                out,
                "{:<12} {recorded:>8} {skipped:>8} {failed:>7}  {note}",
                provider.id
            );
        }
        out
    }
}

/// Why a run wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordError {
    /// A configured key value appeared in a file about to be written: nothing was written.
    SecretLeak {
        /// The variable whose value leaked.
        var: String,
        /// The file it would have been written to.
        file: PathBuf,
    },
    /// Reading or writing the fixtures directory failed.
    Io(String),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::SecretLeak { var, file } => write!(
                f,
                "the value of {var} appears in {} after scrubbing: nothing was written",
                file.display()
            ),
            RecordError::Io(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for RecordError {}

/// A file to write.
struct Planned {
    path: PathBuf,
    bytes: Vec<u8>,
}

/// The calls a run would make, one line each, without making any (`--dry-run`).
pub fn plan(recorder: &Recorder<'_>) -> String {
    let mut out = String::new();
    for registration in selected(recorder) {
        let env = recorder.env;
        let upstream = upstream_url(registration, env);
        let model = env
            .non_empty(&format!("{}_MODEL", env_prefix(registration.id)))
            .ok()
            .flatten()
            .unwrap_or_else(|| registration.default_model.to_owned());
        if registration.local {
            let _ = writeln!(
                out,
                "{}: local; recorded if a server answers at {upstream} (set {})",
                registration.id,
                base_url_var(registration.id)
            );
        } else if let Some(why) = unconfigured(registration, env) {
            let _ = writeln!(out, "{}: skipped ({why})", registration.id);
            continue;
        } else {
            let _ = writeln!(out, "{}: {upstream}", registration.id);
        }
        for scenario in recorder.scenarios {
            let request = scenario.request();
            let fault = scenario.fault.map(Fault::as_str).unwrap_or("-");
            let _ = writeln!(
                out,
                "  {:<24} {:<6} model={} max_tokens={} fault={fault} -> {}/{}/{RECORDED_DIR}/",
                scenario.name,
                match scenario.call {
                    Call::Chat => "chat",
                    Call::Stream => "stream",
                },
                request.model.as_deref().unwrap_or(&model),
                scenario.max_tokens,
                recorder.fixtures_dir.display(),
                registration.id,
            );
        }
    }
    out
}

fn selected<'a>(recorder: &Recorder<'a>) -> Vec<&'a ProviderRegistration> {
    recorder
        .registry
        .iter()
        .filter(|r| recorder.providers.is_empty() || recorder.providers.iter().any(|p| p == r.id))
        .collect()
}

fn upstream_url(registration: &ProviderRegistration, env: &dyn EnvSource) -> String {
    // A plan line or a proxy target: an unreadable value fails later, where the provider reads it.
    env.non_empty(&base_url_var(registration.id))
        .ok()
        .flatten()
        .unwrap_or_else(|| registration.default_base_url.to_owned())
}

fn unconfigured(registration: &ProviderRegistration, env: &dyn EnvSource) -> Option<String> {
    if registration.local || registration.is_configured(env) {
        None
    } else {
        Some(format!("set {}", registration.key_env.join(" or ")))
    }
}

/// Records every selected provider, then writes all files, or none when a key would leak.
///
/// # Errors
/// [`RecordError::SecretLeak`] (nothing written) or an I/O failure.
pub async fn record(recorder: &Recorder<'_>) -> Result<Report, RecordError> {
    let secrets = configured_secrets(recorder.registry, recorder.env);
    let recorded_at = clock::rfc3339(SystemTime::now());
    let mut report = Report::default();
    let mut planned = Vec::new();
    let mut replaced: Vec<(String, BTreeSet<String>)> = Vec::new();
    for registration in selected(recorder) {
        println!("{}:", registration.id);
        let outcome = match record_provider(recorder, registration, &recorded_at).await {
            Ok((outcomes, files)) => {
                let ids = outcomes
                    .iter()
                    .filter(|o| o.result.is_ok())
                    .map(|o| o.scenario.clone())
                    .collect();
                replaced.push((registration.id.to_owned(), ids));
                planned.extend(files);
                ProviderOutcome::Ran(outcomes)
            }
            Err(why) => {
                println!("  skipped: {why}");
                ProviderOutcome::Skipped(why)
            }
        };
        report.providers.push(ProviderReport {
            id: registration.id.to_owned(),
            outcome,
        });
    }
    // Every file is checked before any is written.
    for file in &planned {
        if let Some(var) = scrub::find_secret(&file.bytes, &secrets) {
            return Err(RecordError::SecretLeak {
                var: var.to_owned(),
                file: file.path.clone(),
            });
        }
    }
    let new_paths: BTreeSet<PathBuf> = planned.iter().map(|f| f.path.clone()).collect();
    for (id, scenario_ids) in &replaced {
        let dir = recorder.fixtures_dir.join(id).join(RECORDED_DIR);
        report
            .removed
            .extend(remove_stale(&dir, scenario_ids, &new_paths)?);
    }
    for file in planned {
        if let Some(dir) = file.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| RecordError::Io(format!("creating {}: {e}", dir.display())))?;
        }
        std::fs::write(&file.path, &file.bytes)
            .map_err(|e| RecordError::Io(format!("writing {}: {e}", file.path.display())))?;
        report.written.push(file.path);
    }
    Ok(report)
}

/// Removes recorded fixtures of `scenario_ids` that this run replaces under another name.
fn remove_stale(
    dir: &Path,
    scenario_ids: &BTreeSet<String>,
    keep: &BTreeSet<PathBuf>,
) -> Result<Vec<PathBuf>, RecordError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") || keep.contains(&path) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let id = value["meta"]["scenario_id"].as_str().unwrap_or_default();
        if !scenario_ids.contains(id) {
            continue;
        }
        let mut doomed = vec![path.clone()];
        if let Some(body_file) = value["response"]["body_file"].as_str() {
            let sibling = dir.join(body_file);
            if !keep.contains(&sibling) {
                doomed.push(sibling);
            }
        }
        for file in doomed {
            if file.exists() {
                std::fs::remove_file(&file)
                    .map_err(|e| RecordError::Io(format!("removing {}: {e}", file.display())))?;
                removed.push(file);
            }
        }
    }
    Ok(removed)
}

/// A finished call, reduced to what names and describes the fixture.
enum Answer {
    Chat(llm_cascade::ChatResponse),
    Stream(Vec<StreamEvent>),
}

async fn call(provider: &dyn Provider, scenario: &Scenario) -> Result<Answer, Error> {
    let request: ChatRequest = scenario.request();
    match scenario.call {
        Call::Chat => provider.chat(&request).await.map(Answer::Chat),
        Call::Stream => {
            let mut stream = provider.chat_stream(&request).await?;
            let mut events = Vec::new();
            while let Some(event) = stream.next().await {
                events.push(event?);
            }
            Ok(Answer::Stream(events))
        }
    }
}

fn describe(answer: &Answer) -> String {
    match answer {
        Answer::Chat(response) => format!(
            "{} chars, finish {}",
            response.content.chars().count(),
            response.finish_reason.as_str()
        ),
        Answer::Stream(events) => {
            let finish = events.iter().find_map(|e| match e {
                StreamEvent::Finish { reason, .. } => Some(reason.as_str().to_owned()),
                _ => None,
            });
            format!(
                "{} events, finish {}",
                events.len(),
                finish.unwrap_or_else(|| "none".into())
            )
        }
    }
}

fn finish_reason(answer: &Answer) -> Option<String> {
    match answer {
        Answer::Chat(response) => Some(response.finish_reason.as_str().to_owned()),
        Answer::Stream(events) => events.iter().find_map(|e| match e {
            StreamEvent::Finish { reason, .. } => Some(reason.as_str().to_owned()),
            _ => None,
        }),
    }
}

async fn record_provider(
    recorder: &Recorder<'_>,
    registration: &ProviderRegistration,
    recorded_at: &str,
) -> Result<(Vec<ScenarioOutcome>, Vec<Planned>), String> {
    let env = recorder.env;
    if let Some(why) = unconfigured(registration, env) {
        return Err(why);
    }
    let upstream = upstream_url(registration, env);
    let base_var = base_url_var(registration.id);
    if registration.local {
        let provider = (registration.build)(env).map_err(|e| e.to_string())?;
        let probe = tokio::time::timeout(recorder.local_probe, provider.check_available()).await;
        match probe {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(format!(
                    "nothing usable at {upstream} ({}); start the server or set {base_var}",
                    e.kind()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "{upstream} did not answer within {:?}; start the server or set {base_var}",
                    recorder.local_probe
                ));
            }
        }
    }
    let proxy = RecordingProxy::start(&upstream).await?;
    let dir = recorder
        .fixtures_dir
        .join(registration.id)
        .join(RECORDED_DIR);
    let origin = reqwest::Url::parse(&upstream)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    let mut outcomes = Vec::new();
    let mut files = Vec::new();
    for scenario in recorder.scenarios {
        let mut top = MapEnv::new().with(base_var.clone(), proxy.base_url());
        if scenario.fault == Some(Fault::InvalidKey) {
            for var in key_vars(registration) {
                top = top.with(var, INVALID_KEY);
            }
        }
        let scenario_env = Overlay::new(&top, env);
        let result = match (registration.build)(&scenario_env) {
            Err(e) => Err(format!("building the provider failed: {e}")),
            Ok(provider) => {
                let outcome = tokio::time::timeout(CALL_LIMIT, call(provider.as_ref(), scenario))
                    .await
                    .map_err(|_| format!("no answer within {CALL_LIMIT:?}"));
                let (exchanges, failures) = proxy.take();
                match (outcome, exchanges.last()) {
                    (Err(why), _) => Err(why),
                    (Ok(answer), None) => Err(format!(
                        "no exchange reached the upstream ({}){}",
                        match &answer {
                            Ok(_) => "the call succeeded without it".to_owned(),
                            Err(e) => e.to_string(),
                        },
                        if failures.is_empty() {
                            String::new()
                        } else {
                            format!("; proxy: {}", failures.join("; "))
                        }
                    )),
                    (Ok(answer), Some(exchange)) => {
                        let model = scenario
                            .request()
                            .model
                            .unwrap_or_else(|| provider.model().to_owned());
                        fixture_for(
                            registration.id,
                            scenario,
                            &answer,
                            exchange,
                            &FixtureContext {
                                dir: &dir,
                                model: &model,
                                recorded_at,
                                origin: &origin,
                                exchanges: exchanges.len(),
                            },
                        )
                        .map(|(name, note, planned)| {
                            files.extend(planned);
                            (name, note)
                        })
                    }
                }
            }
        };
        match &result {
            Ok((name, note)) => println!(
                "  {:<24} recorded {name}{}",
                scenario.name,
                note.as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ),
            Err(why) => println!("  {:<24} FAILED: {why}", scenario.name),
        }
        outcomes.push(ScenarioOutcome {
            scenario: scenario.name.clone(),
            result,
        });
    }
    Ok((outcomes, files))
}

/// The written form of a fixture (field order as in `fixtures/README.md`; `llm_test_support::Fixture`
/// reads it).
#[derive(Serialize)]
struct RecordedFixture {
    meta: RecordedMeta,
    request: RecordedRequest,
    response: RecordedResponse,
}

#[derive(Serialize)]
struct RecordedMeta {
    provider: String,
    scenario: String,
    source: &'static str,
    origin: String,
    notes: String,
    model: String,
    recorded_at: String,
    recorder_version: &'static str,
    scenario_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_kind: Option<String>,
}

#[derive(Serialize)]
struct RecordedRequest {
    method: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
}

#[derive(Serialize)]
struct RecordedResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_file: Option<String>,
}

struct FixtureContext<'a> {
    dir: &'a Path,
    model: &'a str,
    recorded_at: &'a str,
    origin: &'a str,
    exchanges: usize,
}

type Built = (String, Option<String>, Vec<Planned>);

/// Names the fixture after what happened and renders its files (scrubbed, not yet checked for keys).
fn fixture_for(
    provider: &str,
    scenario: &Scenario,
    answer: &Result<Answer, Error>,
    exchange: &Exchange,
    context: &FixtureContext<'_>,
) -> Result<Built, String> {
    let mut notes = vec![format!(
        "Recorded by `cargo xtask record-fixtures` through the {provider} provider ({}).",
        scenario.description
    )];
    let mut error_kind = None;
    let (name, note) = match (&scenario.expect_error, answer) {
        (None, Ok(answer)) => {
            let mut note = None;
            if scenario.name == "chat.max_tokens"
                && finish_reason(answer).as_deref() != Some("length")
            {
                let text = format!(
                    "expected finish reason length, got {}",
                    finish_reason(answer).unwrap_or_else(|| "none".into())
                );
                notes.push(text.clone());
                note = Some(text);
            }
            notes.push(format!("Decoded as: {}.", describe(answer)));
            (scenario.name.clone(), note)
        }
        (None, Err(e)) => {
            return Err(format!(
                "expected a success, got {} (HTTP {}): {}",
                e.kind(),
                exchange.status,
                e.message()
            ));
        }
        (Some(expected), Err(e)) => {
            let kind = e.kind().as_str();
            error_kind = Some(kind.to_owned());
            let mut note = None;
            if kind != expected {
                let text = format!("expected {expected}, our code classifies it as {kind}");
                notes.push(format!("{text}."));
                note = Some(text);
            }
            (format!("error.{}.{kind}", exchange.status), note)
        }
        (Some(expected), Ok(answer)) => {
            let fault = scenario.fault.map(Fault::as_str).unwrap_or("fault");
            let text = format!(
                "the upstream accepted the request (HTTP {}) instead of answering {expected}",
                exchange.status
            );
            notes.push(format!(
                "{}. Decoded as: {}.",
                capitalise(&text),
                describe(answer)
            ));
            (format!("chat.{fault}_accepted"), Some(text))
        }
    };
    if context.exchanges > 1 {
        notes.push(format!(
            "The call made {} requests; this is the last.",
            context.exchanges
        ));
    }
    let headers = scrub::response_headers(&exchange.response_headers);
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_ascii_lowercase())
        .unwrap_or_default();
    let body = scrub::scrub_ids(&exchange.response_body);
    let mut files = Vec::new();
    let mut response = RecordedResponse {
        status: exchange.status,
        headers,
        body: None,
        body_text: None,
        body_file: None,
    };
    let stream_ext = if content_type.starts_with("text/event-stream") {
        Some("sse")
    } else if content_type.contains("ndjson")
        || (scenario.call == Call::Stream && (200..300).contains(&exchange.status))
    {
        Some("ndjson")
    } else {
        None
    };
    if let Some(ext) = stream_ext {
        let file = format!("{name}.{ext}");
        files.push(Planned {
            path: context.dir.join(&file),
            bytes: body,
        });
        response.body_file = Some(file);
    } else if let Ok(value) = serde_json::from_slice::<Value>(&body) {
        response.body = Some(value);
    } else {
        response.body_text = Some(String::from_utf8_lossy(&body).into_owned());
    }

    let fixture = RecordedFixture {
        meta: RecordedMeta {
            provider: provider.to_owned(),
            scenario: name.clone(),
            source: "recorded",
            origin: format!(
                "cargo xtask record-fixtures, {} via the loopback recording proxy",
                context.origin
            ),
            notes: notes.join(" "),
            model: context.model.to_owned(),
            recorded_at: context.recorded_at.to_owned(),
            recorder_version: RECORDER_VERSION,
            scenario_id: scenario.name.clone(),
            error_kind,
        },
        request: RecordedRequest {
            method: exchange.method.clone(),
            path: scrub::path(&exchange.path),
            body: serde_json::from_slice(&scrub::scrub_ids(&exchange.request_body)).ok(),
        },
        response,
    };
    let mut bytes = serde_json::to_vec_pretty(&fixture).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    files.insert(
        0,
        Planned {
            path: context.dir.join(format!("{name}.json")),
            bytes,
        },
    );
    Ok((name, note, files))
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_variables() {
        assert_eq!(env_prefix("lmstudio"), "LM_STUDIO");
        assert_eq!(base_url_var("groq"), "GROQ_BASE_URL");
        assert_eq!(capitalise("the upstream"), "The upstream");
    }
}
