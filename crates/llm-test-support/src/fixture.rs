//! The fixture format: `fixtures/<provider>/<scenario>.json`.
//!
//! ```json
//! {
//!   "meta": { "provider": "groq", "scenario": "chat.success", "source": "wire-sample",
//!             "origin": "where the bytes came from", "notes": "…" },
//!   "request": { "method": "POST", "path": "/openai/v1/chat/completions", "body": { … } },
//!   "response": { "status": 200, "headers": { "content-type": "application/json" },
//!                 "body": { … } }
//! }
//! ```
//! The response body is one of `body` (JSON), `body_text` (any other text, e.g. an HTML page) or
//! `body_file` (a sibling file served byte for byte, e.g. `chat.stream.sse`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Where the fixture's bytes came from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixtureMeta {
    /// Provider id.
    pub provider: String,
    /// Scenario name.
    pub scenario: String,
    /// `recorded` (by `cargo xtask record-fixtures`), `wire-sample` (a real capture from a public
    /// project) or `documented` (the provider's documentation).
    pub source: String,
    /// The capture's origin.
    #[serde(default)]
    pub origin: String,
    /// Anything a reader should know.
    #[serde(default)]
    pub notes: String,
    /// Other recorder fields (model, recorded-at, recorder version).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The request side of a fixture.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FixtureRequest {
    /// HTTP method.
    #[serde(default)]
    pub method: String,
    /// Path (and query) the client called.
    #[serde(default)]
    pub path: String,
    /// The JSON body sent, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
}

/// The response side of a fixture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FixtureResponse {
    /// HTTP status.
    pub status: u16,
    /// Allow-listed headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<serde_json::Value>,
    /// A non-JSON text body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_text: Option<String>,
    /// A sibling file with the exact body bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_file: Option<String>,
}

/// One loaded fixture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    /// Provenance.
    pub meta: FixtureMeta,
    /// What was sent.
    #[serde(default)]
    pub request: FixtureRequest,
    /// What came back.
    pub response: FixtureResponse,
    /// The directory the fixture was loaded from (to resolve `body_file`).
    #[serde(skip)]
    pub dir: PathBuf,
}

/// The workspace root (the directory holding `fixtures/`), found from this crate's location.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|dir| dir.join("fixtures").is_dir() && dir.join("Cargo.toml").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

impl Fixture {
    /// Loads `fixtures/<provider>/<scenario>.json`. Panics with the path when it is missing or malformed:
    /// a test without its fixture cannot run.
    pub fn load(provider: &str, scenario: &str) -> Self {
        Self::load_from(
            &workspace_root()
                .join("fixtures")
                .join(provider)
                .join(format!("{scenario}.json")),
        )
    }

    /// Loads a fixture file by path.
    pub fn load_from(file: &Path) -> Self {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        let mut fixture: Fixture = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        fixture.dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        fixture
    }

    /// The exact response body bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        let response = &self.response;
        if let Some(file) = &response.body_file {
            let path = self.dir.join(file);
            return std::fs::read(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        }
        if let Some(text) = &response.body_text {
            return text.clone().into_bytes();
        }
        response
            .body
            .as_ref()
            .map(|b| serde_json::to_vec(b).expect("serialising JSON"))
            .unwrap_or_default()
    }

    /// A wiremock response with the fixture's status, headers and exact body.
    pub fn response_template(&self) -> ResponseTemplate {
        // `set_body_raw` sets the content type; keep the recorded one when there is one.
        let content_type = self
            .response
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| "application/json".to_owned());
        let mut template = ResponseTemplate::new(self.response.status)
            .set_body_raw(self.body_bytes(), &content_type);
        for (name, value) in &self.response.headers {
            if !name.eq_ignore_ascii_case("content-type")
                && !name.eq_ignore_ascii_case("content-length")
            {
                template = template.insert_header(name.as_str(), value.as_str());
            }
        }
        template
    }

    /// Mounts the fixture at `method` + `route` on `server`, expecting exactly `times` calls.
    pub async fn mount(&self, server: &MockServer, http_method: &str, route: &str, times: u64) {
        Mock::given(method(http_method))
            .and(path(route))
            .respond_with(self.response_template())
            .expect(times)
            .mount(server)
            .await;
    }
}
