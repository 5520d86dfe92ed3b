//! The canonical recording scenarios, kept in one list: `xtask/scenarios.json`.

use std::path::Path;

use llm_cascade::ChatRequest;
use serde::Deserialize;

/// The wrong key sent by the `invalid_key` fault. Not a secret: it is meant to be rejected.
pub const INVALID_KEY: &str = "sk-llm-cascade-recorder-invalid-key-0000";

/// The model requested by the `unknown_model` fault.
pub const UNKNOWN_MODEL: &str = "llm-cascade-no-such-model";

/// Which provider method a scenario calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// `Provider::chat`.
    Chat,
    /// `Provider::chat_stream`, read to the end.
    Stream,
}

/// What a scenario breaks on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Every key variable of the provider is set to [`INVALID_KEY`].
    InvalidKey,
    /// The request names [`UNKNOWN_MODEL`].
    UnknownModel,
}

impl Fault {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::InvalidKey => "invalid_key",
            Fault::UnknownModel => "unknown_model",
        }
    }
}

/// One canonical exchange.
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// Stable id (`chat.success`, `error.auth`); error scenarios' files are named after what happened.
    pub name: String,
    /// One line for listings.
    #[serde(default)]
    pub description: String,
    /// Which method to call.
    pub call: Call,
    /// An optional system prompt.
    #[serde(default)]
    pub system: Option<String>,
    /// The user prompt.
    pub prompt: String,
    /// The token limit sent (small: every scenario is a real, paid call).
    pub max_tokens: u32,
    /// What to break on purpose.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// The error kind a well-behaved provider answers with (`auth`, `model_not_found`).
    #[serde(default)]
    pub expect_error: Option<String>,
}

impl Scenario {
    /// The request this scenario sends.
    pub fn request(&self) -> ChatRequest {
        let mut request = ChatRequest::from_prompt(self.prompt.clone());
        if let Some(system) = &self.system {
            request = request.with_system(system.clone());
        }
        request.max_tokens = Some(self.max_tokens);
        if self.fault == Some(Fault::UnknownModel) {
            request.model = Some(UNKNOWN_MODEL.to_owned());
        }
        request
    }
}

#[derive(Deserialize)]
struct ScenarioFile {
    scenarios: Vec<Scenario>,
}

/// Parses the scenario list.
///
/// # Errors
/// A message when the text is not a valid list or names a scenario twice.
pub fn parse(text: &str) -> Result<Vec<Scenario>, String> {
    let file: ScenarioFile =
        serde_json::from_str(text).map_err(|e| format!("invalid scenario list: {e}"))?;
    for (i, scenario) in file.scenarios.iter().enumerate() {
        if file.scenarios[..i].iter().any(|s| s.name == scenario.name) {
            return Err(format!("scenario `{}` is listed twice", scenario.name));
        }
    }
    Ok(file.scenarios)
}

/// Loads the scenario list from `file`.
///
/// # Errors
/// A message naming the file when it cannot be read or parsed.
pub fn load(file: &Path) -> Result<Vec<Scenario>, String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_list_parses_and_covers_the_canonical_scenarios() {
        let list = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios.json"))
            .expect("scenario list");
        let names: Vec<_> = list.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "chat.success",
                "chat.system",
                "chat.stream",
                "chat.max_tokens",
                "error.auth",
                "error.model_not_found"
            ]
        );
        assert!(list.iter().all(|s| s.max_tokens <= 16));
        let system = list[1].request();
        assert_eq!(system.messages.len(), 2);
        assert_eq!(list[5].request().model.as_deref(), Some(UNKNOWN_MODEL));
    }

    #[test]
    fn duplicates_are_rejected() {
        let text = r#"{"scenarios":[
            {"name":"a","call":"chat","prompt":"p","max_tokens":1},
            {"name":"a","call":"stream","prompt":"p","max_tokens":1}]}"#;
        assert!(parse(text).expect_err("duplicate").contains("`a`"));
    }
}
