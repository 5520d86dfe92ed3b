//! `cargo xtask new-provider`: scaffolds an OpenAI-compatible provider crate and wires it in.
//!
//! What it writes: the crate (`Cargo.toml`, `README.md`, `src/lib.rs` with its settings and
//! registration, `tests/it/` replay and request tests) and `fixtures/<id>/README.md` (what to record:
//! a wire format is never invented, so the replay tests fail until real fixtures are there). What it
//! edits: the workspace dependency, the feature and optional dependency of `llm-cascade`, the mirrored
//! feature of `llm-cli`, and the row of the provider table (`crates/llm-cascade/src/providers.rs`).
//!
//! [`plan`] is pure (current file contents in, new contents out); [`apply`] writes the result.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What the new provider is.
#[derive(Debug, Clone)]
pub struct NewProvider {
    /// The id: lower-case ASCII letters and digits (`fireworks`).
    pub id: String,
    /// A human name (`Fireworks`).
    pub display_name: String,
    /// The base URL of its OpenAI-compatible API (`https://api.fireworks.ai/inference/v1`).
    pub base_url: String,
    /// The variable that holds its key (`FIREWORKS_API_KEY`).
    pub key_env: String,
    /// The model used when `<ID>_MODEL` is not set.
    pub model: String,
    /// Its position in the default order (lower is tried first); unique.
    pub priority: u16,
}

/// The files the scaffold creates or changes, by path relative to the workspace root.
pub type Plan = BTreeMap<PathBuf, String>;

/// The files edited in place (the rest of a [`Plan`] is created).
pub const EDITED: [&str; 4] = [
    "Cargo.toml",
    "crates/llm-cascade/Cargo.toml",
    "crates/llm-cli/Cargo.toml",
    "crates/llm-cascade/src/providers.rs",
];

/// Checks `new` against the workspace (`existing` ids and priorities) and computes every file.
///
/// # Errors
/// A message when the id is not a plain lower-case id, is taken, the priority is taken, the crate
/// already exists, or a file to edit does not have the expected shape.
pub fn plan(root: &Path, new: &NewProvider, existing: &[(&str, u16)]) -> Result<Plan, String> {
    validate(new, existing)?;
    let crate_dir = PathBuf::from(format!("crates/llm-provider-{}", new.id));
    if root.join(&crate_dir).exists() {
        return Err(format!("{} already exists", crate_dir.display()));
    }
    let mut plan = Plan::new();
    for file in EDITED {
        let text = std::fs::read_to_string(root.join(file))
            .map_err(|e| format!("cannot read {file}: {e}"))?;
        let edited = match file {
            "Cargo.toml" => edit_workspace(&text, new),
            "crates/llm-cascade/Cargo.toml" => edit_cascade(&text, new),
            "crates/llm-cli/Cargo.toml" => edit_cli(&text, new),
            _ => edit_table(&text, new),
        }
        .map_err(|why| format!("{file}: {why}"))?;
        plan.insert(PathBuf::from(file), edited);
    }
    plan.insert(crate_dir.join("Cargo.toml"), crate_manifest(new));
    plan.insert(crate_dir.join("README.md"), crate_readme(new));
    plan.insert(crate_dir.join("src/lib.rs"), crate_lib(new));
    plan.insert(crate_dir.join("tests/it/main.rs"), tests_main(new));
    plan.insert(crate_dir.join("tests/it/replay.rs"), tests_replay(new));
    plan.insert(crate_dir.join("tests/it/requests.rs"), tests_requests(new));
    plan.insert(
        PathBuf::from(format!("fixtures/{}/README.md", new.id)),
        fixtures_readme(new),
    );
    Ok(plan)
}

/// Writes every file of `plan` under `root`.
///
/// # Errors
/// A message naming the file that could not be written.
pub fn apply(root: &Path, plan: &Plan) -> Result<(), String> {
    for (path, text) in plan {
        let full = root.join(path);
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(&full, text).map_err(|e| format!("{}: {e}", full.display()))?;
    }
    Ok(())
}

fn validate(new: &NewProvider, existing: &[(&str, u16)]) -> Result<(), String> {
    let id = new.id.as_str();
    let plain = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !plain {
        return Err(format!(
            "`{id}` is not an id: use lower-case letters and digits, starting with a letter"
        ));
    }
    if existing.iter().any(|(taken, _)| *taken == id) {
        return Err(format!("provider `{id}` already exists"));
    }
    if let Some((other, _)) = existing.iter().find(|(_, p)| *p == new.priority) {
        return Err(format!(
            "priority {} is taken by `{other}`; pick another",
            new.priority
        ));
    }
    if !(new.base_url.starts_with("https://") || new.base_url.starts_with("http://")) {
        return Err(format!(
            "--base-url `{}` is not an http(s) URL",
            new.base_url
        ));
    }
    let key_ok = !new.key_env.is_empty()
        && new
            .key_env
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    if !key_ok {
        return Err(format!(
            "--key-env `{}` is not a variable name (upper case, digits, `_`)",
            new.key_env
        ));
    }
    Ok(())
}

/// `text` with `insertion` placed after the last line that starts with `prefix`.
fn after_last_line(text: &str, prefix: &str, insertion: &str) -> Result<String, String> {
    let start = text
        .match_indices(&format!("\n{prefix}"))
        .last()
        .map(|(at, _)| at + 1)
        .ok_or_else(|| format!("no line starting with `{prefix}`"))?;
    let end = text[start..]
        .find('\n')
        .map_or(text.len(), |n| start + n + 1);
    Ok(format!("{}{insertion}{}", &text[..end], &text[end..]))
}

/// `text` with `entry` added as the last element of the list `name = [ … ]` (spanning lines).
fn append_to_list(text: &str, name: &str, entry: &str) -> Result<String, String> {
    let start = text
        .find(&format!("\n{name} = ["))
        .ok_or_else(|| format!("no `{name} = [` list"))?;
    let close = text[start..]
        .find("\n]")
        .map(|n| start + n + 1)
        .ok_or_else(|| format!("`{name}` is not a multi-line list ending in `]`"))?;
    Ok(format!(
        "{}    \"{entry}\",\n{}",
        &text[..close],
        &text[close..]
    ))
}

fn edit_workspace(text: &str, new: &NewProvider) -> Result<String, String> {
    let id = &new.id;
    after_last_line(
        text,
        "llm-provider-",
        &format!("llm-provider-{id} = {{ path = \"crates/llm-provider-{id}\" }}\n"),
    )
}

fn edit_cascade(text: &str, new: &NewProvider) -> Result<String, String> {
    let id = &new.id;
    let text = append_to_list(text, "all-providers", &format!("provider-{id}"))?;
    let text = after_last_line(
        &text,
        "provider-",
        &format!("provider-{id} = [\"dep:llm-provider-{id}\"]\n"),
    )?;
    after_last_line(
        &text,
        "llm-provider-",
        &format!("llm-provider-{id} = {{ workspace = true, optional = true }}\n"),
    )
}

fn edit_cli(text: &str, new: &NewProvider) -> Result<String, String> {
    let id = &new.id;
    let text = append_to_list(text, "all-providers", &format!("provider-{id}"))?;
    after_last_line(
        &text,
        "provider-",
        &format!("provider-{id} = [\"llm-cascade/provider-{id}\"]\n"),
    )
}

/// The table keeps its rows in id order: the new row goes before the first greater id.
fn edit_table(text: &str, new: &NewProvider) -> Result<String, String> {
    let id = &new.id;
    let open = "\nprovider_table! {\n";
    let start = text
        .find(open)
        .map(|at| at + open.len())
        .ok_or("no `provider_table! {` invocation")?;
    let close = text[start..]
        .find("\n}")
        .map(|n| start + n + 1)
        .ok_or("the `provider_table!` invocation does not end")?;
    let mut at = start;
    for line in text[start..close].split_inclusive('\n') {
        let row_id = line.trim_start().trim_start_matches('"');
        if row_id
            .split('"')
            .next()
            .is_some_and(|row_id| row_id > id.as_str())
        {
            break;
        }
        at += line.len();
    }
    let row = format!("    \"{id}\" => \"provider-{id}\", llm_provider_{id};\n");
    Ok(format!("{}{row}{}", &text[..at], &text[at..]))
}

/// `fireworks` → `Fireworks`: the type names of the crate.
fn type_name(new: &NewProvider) -> String {
    let mut chars = new.id.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn crate_manifest(new: &NewProvider) -> String {
    format!(
        r#"[package]
name = "llm-provider-{id}"
description = "The {id} provider for llm-cascade (OpenAI chat-completions dialect)."
version.workspace = true
edition.workspace = true
license.workspace = true
publish.workspace = true

[dependencies]
llm-protocol.workspace = true

[dev-dependencies]
insta.workspace = true
llm-core.workspace = true
llm-test-support.workspace = true
serde_json.workspace = true
tokio.workspace = true
wiremock.workspace = true

[[test]]
name = "it"
path = "tests/it/main.rs"

[lints]
workspace = true
"#,
        id = new.id
    )
}

fn crate_readme(new: &NewProvider) -> String {
    let (id, name, ty) = (&new.id, &new.display_name, type_name(new));
    let prefix = new.id.to_ascii_uppercase();
    format!(
        r#"# llm-provider-{id}

The {name} provider of llm-cascade (id `{id}`, default priority {priority}). {name} speaks the OpenAI
chat-completions dialect, so this crate only declares its settings and quirks; requests, decoding and error
classification are `llm_protocol::openai` (the generic `OpenAiCompatible` provider).

Public items: `ID`, `{ty}` (the provider, `{ty}::from_env(&env)`), `{ty}Config` and the marker
type `{ty}Spec`. The crate registers itself with the llm-cascade registry; the cargo feature
`provider-{id}` of `llm-cascade` and `llm-cli` compiles it in.

## Configuration

| variable | meaning |
|---|---|
| `{key}` | the API key |
| `{prefix}_MODEL` | model (default `{model}`) |
| `{prefix}_BASE_URL` | base URL (default `{base_url}`) |
| `{prefix}_TIMEOUT` | per-attempt timeout (default 60 s; `30`, `500ms`, `2m`) |

## Quirks

None recorded yet: the dialect's defaults apply. Record fixtures (see `fixtures/{id}/README.md`), and
write here what they show that the dialect does not expect (extra headers, error codes, usage fields).

Fixtures: `fixtures/{id}/`.
"#,
        priority = new.priority,
        key = new.key_env,
        model = new.model,
        base_url = new.base_url,
    )
}

fn crate_lib(new: &NewProvider) -> String {
    let ty = type_name(new);
    format!(
        r#"#![doc = include_str!("../README.md")]

use llm_protocol::openai::CompatSpec;
use llm_protocol::{{CLOUD_TIMEOUT, SettingsSpec}};

/// The provider id.
pub const ID: &str = "{id}";

const SETTINGS: SettingsSpec = SettingsSpec {{
    id: ID,
    display_name: "{name}",
    env_prefix: "{prefix}",
    key_env: &["{key}"],
    default_model: "{model}",
    default_base_url: "{base_url}",
    default_timeout: CLOUD_TIMEOUT,
    local: false,
    priority: {priority},
    aliases: &[],
}};

const SPEC: CompatSpec = CompatSpec::new(SETTINGS);

llm_protocol::compat_provider!({ty}Spec, {ty}, {ty}Config, "{name}", SPEC);
"#,
        id = new.id,
        name = new.display_name,
        prefix = new.id.to_ascii_uppercase(),
        key = new.key_env,
        model = new.model,
        base_url = new.base_url,
        priority = new.priority,
    )
}

fn tests_main(new: &NewProvider) -> String {
    let ty = type_name(new);
    format!(
        r#"//! Integration tests of the {name} provider: fixture replays of `fixtures/{id}/` through wiremock.

mod replay;
mod requests;

use llm_core::MapEnv;
use llm_provider_{id}::{ty};
use llm_test_support::CANARY_KEY;

/// The environment of a provider pointed at the mock server at `uri`.
fn env(uri: &str) -> MapEnv {{
    MapEnv::new()
        .with("{key}", CANARY_KEY)
        .with("{prefix}_BASE_URL", uri)
}}

/// The provider pointed at the mock server at `uri`.
fn provider(uri: &str) -> Box<{ty}> {{
    Box::new({ty}::from_env(&env(uri)).expect("a valid configuration"))
}}
"#,
        id = new.id,
        name = new.display_name,
        key = new.key_env,
        prefix = new.id.to_ascii_uppercase(),
    )
}

fn tests_replay(new: &NewProvider) -> String {
    format!(
        r#"//! Every fixture of the provider replayed once, checked for its error kind and snapshotted.
//!
//! The fixtures come from `cargo xtask record-fixtures --provider {id}` (see `fixtures/{id}/README.md`);
//! until they are committed, this test fails naming the missing file.

use llm_provider_{id}::ID;
use llm_test_support::replay::{{Case, check_all}};

use crate::provider;

const CASES: &[Case] = &[
    Case::chat("chat.success", None),
    Case::stream("chat.stream", None),
    Case::chat("error.401.auth", Some("auth")),
];

#[tokio::test]
async fn fixtures_replay_to_their_snapshots() {{
    check_all(ID, CASES, provider, |name, outcome| {{
        insta::assert_json_snapshot!(name, outcome);
    }})
    .await;
}}
"#,
        id = new.id
    )
}

fn tests_requests(new: &NewProvider) -> String {
    format!(
        r#"//! What the provider sends, and its registration.

use llm_core::Registry;
use llm_provider_{id}::ID;
use llm_test_support::replay::sent_request;

use crate::provider;

#[tokio::test]
async fn stream_request_carries_bearer_key_and_default_model() {{
    insta::assert_json_snapshot!(sent_request(ID, "chat.stream", true, provider).await);
}}

#[test]
fn registers_with_its_defaults() {{
    let registry = Registry::from_inventory().expect("no duplicate ids");
    let found = registry.get(ID).expect("registered");
    assert_eq!(
        (found.priority, found.default_model, found.default_base_url),
        ({priority}, "{model}", "{base_url}")
    );
}}
"#,
        id = new.id,
        priority = new.priority,
        model = new.model,
        base_url = new.base_url,
    )
}

fn fixtures_readme(new: &NewProvider) -> String {
    format!(
        r#"# {name} fixtures

Nothing here yet: fixtures are real exchanges, never written by hand from a guess. Record them through our
own provider code (see `../README.md`):

```sh
{key}=... cargo xtask record-fixtures --provider {id}
```

then move `recorded/chat.success.json`, `recorded/chat.stream.json` (+ its `.sse`) and
`recorded/error.401.auth.json` here (or point the cases of
`crates/llm-provider-{id}/tests/it/replay.rs` at what you have), run `cargo test -p llm-provider-{id}`,
review the new snapshots and delete this file.
"#,
        name = new.display_name,
        key = new.key_env,
        id = new.id,
    )
}
