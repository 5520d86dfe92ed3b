//! `cascade providers`: what is compiled in and configured; with `--check`, a live probe of each
//! configured provider.

use comfy_table::{Cell, Color, ColumnConstraint, Width};
use llm_cascade::{
    CascadeConfig, CascadeError, EnvSource, ProviderRegistration, Registry, provider_order,
};
use serde::Serialize;

use crate::args::ProvidersArgs;
use crate::check::{Check, check_registrations};
use crate::output;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// One row of the listing.
#[derive(Debug, Serialize)]
pub struct Row {
    id: &'static str,
    name: &'static str,
    local: bool,
    configured: bool,
    /// The variable that configured it (`GROQ_API_KEY`), or `local`.
    configured_by: Option<String>,
    /// What to set to configure it, when it is not.
    set_to_configure: Option<String>,
    model: String,
    base_url: String,
    /// 1-based place in the chain, when it is in the chain.
    position: Option<usize>,
    /// Why it is configured but cannot be built (an invalid setting).
    error: Option<String>,
    /// What the cascade remembers about it (`ok`, `cooling until 14:05:12 (Retry-After)`, `circuit
    /// open until …`), when configured and state is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<String>,
    /// What is left of its budgets (`RPM 28/30`), when any is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    budget: Option<String>,
    /// The live probe, with `--check` and when configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<Check>,
    /// Why a configured provider is never called (privacy mode keeps cloud providers out).
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded: Option<String>,
    /// The embedded model's file: where, how big, whether it is there yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_file: Option<ModelFile>,
}

/// The embedded model's file, as `cascade providers` shows it.
#[derive(Debug, Serialize)]
pub struct ModelFile {
    /// Where it is (or will be downloaded to).
    path: Option<String>,
    /// Its size in bytes, when present.
    size: Option<u64>,
    /// Whether it is there.
    present: bool,
}

/// What privacy mode says about a cloud provider.
const PRIVATE: &str = "privacy mode (LLM_PRIVATE=true)";

/// Runs `cascade providers`; returns the exit code: with `--check`, 0 only when at least one
/// configured provider is reachable.
pub async fn run(args: &ProvidersArgs, env: &dyn EnvSource) -> u8 {
    let mut rows = match rows(env).await {
        Ok(rows) => rows,
        Err(error) => return output::fail(&CascadeError::from(error), args.json, EXIT_USAGE),
    };
    let mut code = EXIT_OK;
    if args.check {
        // The probes honour the request deadline (`LLM_DEADLINE`), so the settings must be valid.
        let (registry, config) =
            match llm_cascade::registry().and_then(|r| Ok((r, CascadeConfig::from_env(env)?))) {
                Ok(found) => found,
                Err(error) => {
                    return output::fail(&CascadeError::from(error), args.json, EXIT_USAGE);
                }
            };
        let configured: Vec<&ProviderRegistration> = registry
            .iter()
            .filter(|r| rows.iter().any(|row| row.id == r.id && row.configured))
            .collect();
        let checks = check_registrations(&configured, env, config.deadline).await;
        if !checks.iter().any(|c| c.ok) {
            code = EXIT_FAILED;
        }
        for check in checks {
            if let Some(row) = rows.iter_mut().find(|r| r.id == check.provider) {
                row.check = Some(check);
            }
        }
    }
    if args.json {
        let _ = output::outln(&serde_json::to_string_pretty(&rows).unwrap_or_default());
    } else {
        if rows.iter().any(|r| r.excluded.is_some()) {
            let _ = output::outln(
                "privacy mode is on (LLM_PRIVATE=true): only local providers are called; cloud keys are ignored",
            );
        }
        print_table(&rows);
    }
    code
}

/// Every compiled-in provider, in default order.
///
/// # Errors
/// A config error for an invalid order.
pub async fn rows(env: &dyn EnvSource) -> Result<Vec<Row>, llm_cascade::Error> {
    let registry = llm_cascade::registry()?;
    let chain: Vec<&str> = provider_order(env, &registry)?
        .into_iter()
        .filter(|id| configured(&registry, env, id))
        .collect();
    let private = llm_cascade::private_mode(env)?;
    let mut rows: Vec<Row> = registry.iter().map(|r| row(r, env, &chain)).collect();
    let setup = crate::usage::StateSetup::from_env(env)?;
    // Only a configured provider that builds has a state to show; all are read at once.
    let keys: Vec<String> = rows
        .iter()
        .filter(|row| has_state(row))
        .map(|row| format!("{}/{}", row.id, row.model))
        .collect();
    let mut states = setup.read_all(&keys).await.into_iter();
    for (row, registration) in rows.iter_mut().zip(registry.iter()) {
        if has_state(row) {
            let state = states.next().unwrap_or_default();
            add_state(row, registration, env, &setup, &state)?;
        }
        if private && !registration.local {
            row.excluded = Some(PRIVATE.to_owned());
        }
        row.model_file = model_file(registration.id, env);
    }
    Ok(rows)
}

/// The embedded model's file, for its row.
#[cfg(feature = "provider-local")]
fn model_file(id: &str, env: &dyn EnvSource) -> Option<ModelFile> {
    let local = llm_provider_local::Local::from_env(env)
        .ok()
        .filter(|_| id == llm_provider_local::ID)?;
    Some(ModelFile {
        path: local
            .config()
            .model_path
            .as_ref()
            .map(|p| p.display().to_string()),
        size: local.file_size(),
        present: local.is_present(),
    })
}

/// Without the embedded provider there is no model file.
#[cfg(not(feature = "provider-local"))]
fn model_file(_id: &str, _env: &dyn EnvSource) -> Option<ModelFile> {
    None
}

/// Whether `row`'s provider has a remembered state to show: it is configured and builds.
fn has_state(row: &Row) -> bool {
    row.configured && row.error.is_none()
}

/// Fills in the remembered `state` and the remaining budget of a configured provider.
fn add_state(
    row: &mut Row,
    registration: &ProviderRegistration,
    env: &dyn EnvSource,
    setup: &crate::usage::StateSetup,
    state: &llm_cascade::ProviderState,
) -> Result<(), llm_cascade::Error> {
    let now = setup.clock.now_ms();
    let key = env.first_of(registration.key_env).ok().flatten();
    let fingerprint = llm_cascade::fingerprint(key.as_ref().map(|(_, value)| value.as_str()));
    if setup.store.is_some() {
        row.state = Some(state.describe(now, fingerprint));
    }
    row.budget = llm_cascade::Budget::from_env(env, registration.env_prefix)?.remaining(state, now);
    Ok(())
}

fn configured(registry: &Registry, env: &dyn EnvSource, id: &str) -> bool {
    registry.get(id).is_some_and(|r| r.is_configured(env))
}

fn row(registration: &ProviderRegistration, env: &dyn EnvSource, chain: &[&str]) -> Row {
    let configured = registration.is_configured(env);
    let configured_by = if registration.local {
        Some("local".to_owned())
    } else {
        // An unreadable key counts as set (see `is_configured`); building the provider says why.
        match env.first_of(registration.key_env) {
            Ok(found) => found.map(|(name, _)| name.to_owned()),
            Err(_) => registration.key_env.first().map(|name| (*name).to_owned()),
        }
    };
    let (model, base_url, error) = if configured {
        match (registration.build)(env) {
            Ok(provider) => (
                provider.model().to_owned(),
                provider.base_url().to_owned(),
                None,
            ),
            Err(e) => (
                registration.default_model.to_owned(),
                registration.default_base_url.to_owned(),
                Some(e.to_string()),
            ),
        }
    } else {
        // Display only: an unreadable value shows the default; any run that reads it fails on it.
        let var = |suffix: &str| {
            env.non_empty(&format!("{}_{suffix}", registration.env_prefix))
                .ok()
                .flatten()
        };
        (
            var("MODEL").unwrap_or_else(|| registration.default_model.to_owned()),
            var("BASE_URL").unwrap_or_else(|| registration.default_base_url.to_owned()),
            None,
        )
    };
    // Configuration text shown in a table or JSON: a key pasted into the wrong variable stays hidden,
    // and control characters cannot drive the terminal.
    let (model, base_url) = (
        llm_core::sanitize(&model).into_owned(),
        llm_core::sanitize(&base_url).into_owned(),
    );
    Row {
        id: registration.id,
        name: registration.display_name,
        local: registration.local,
        configured,
        configured_by: configured_by.filter(|_| configured),
        set_to_configure: (!configured).then(|| registration.key_env.join(" or ")),
        model,
        base_url,
        check: None,
        state: None,
        budget: None,
        excluded: None,
        model_file: None,
        position: chain
            .iter()
            .position(|id| *id == registration.id)
            .map(|p| p + 1),
        error,
    }
}

fn status(r: &Row) -> String {
    if r.excluded.is_some() {
        return format!("no: {PRIVATE}");
    }
    match (
        &r.error,
        r.configured,
        &r.configured_by,
        &r.set_to_configure,
    ) {
        (Some(error), _, _, _) => format!("invalid: {error}"),
        (None, true, Some(by), _) => with_state(format!("yes ({by})"), r),
        (None, true, None, _) => with_state("yes".to_owned(), r),
        // The first variable is the canonical one; `--json` lists them all.
        (None, false, _, Some(set)) => {
            format!("no: set {}", set.split(" or ").next().unwrap_or(set))
        }
        (None, false, _, None) => "no".to_owned(),
    }
}

/// `yes (GROQ_API_KEY)`, then the remembered state when it is not plain `ok`, and the budget left.
fn with_state(mut text: String, r: &Row) -> String {
    if let Some(state) = r.state.as_deref().filter(|s| *s != "ok") {
        text.push_str(&format!(" · {state}"));
    }
    if let Some(budget) = &r.budget {
        text.push_str(&format!(" · left: {budget}"));
    }
    text
}

/// The base URL, or for the embedded model its file with its size or "not downloaded yet".
fn location(r: &Row) -> String {
    match &r.model_file {
        Some(ModelFile {
            path: Some(path),
            size: Some(size),
            present: true,
        }) => format!("{path} ({:.1} MB)", *size as f64 / 1e6),
        Some(ModelFile {
            path: Some(path), ..
        }) => format!("{path} (not downloaded yet: cascade pull local)"),
        Some(ModelFile { path: None, .. }) => "(no model file: set LOCAL_MODEL_PATH)".to_owned(),
        None => r.base_url.clone(),
    }
}

/// The width up to which a model id is never wrapped (nearly every model id is shorter).
const MODEL_MIN_WIDTH: u16 = 40;

/// The listing as a table; with checks, a CHECK column instead of the base URL (which `--json`
/// still has), so that the table fits a terminal.
pub fn print_table(rows: &[Row]) {
    let _ = output::outln(&render(rows).to_string());
}

fn render(rows: &[Row]) -> comfy_table::Table {
    let checked = rows.iter().any(|r| r.check.is_some());
    let header: &[&str] = if checked {
        &["#", "PROVIDER", "CONFIGURED", "MODEL", "CHECK"]
    } else {
        &["#", "PROVIDER", "CONFIGURED", "MODEL", "BASE URL"]
    };
    let mut table = output::table(header);
    for r in rows {
        let mut cells = vec![
            Cell::new(r.position.map_or_else(|| "-".to_owned(), |p| p.to_string())),
            Cell::new(r.id),
            if r.configured {
                output::colored(status(r), Color::Green)
            } else {
                output::cell(status(r))
            },
            output::cell(&r.model),
        ];
        cells.push(match (&r.check, checked) {
            (Some(check), _) if check.ok => output::colored(check.describe(), Color::Green),
            (Some(check), _) => output::colored(check.describe(), Color::Red),
            (None, true) => Cell::new("-"),
            (None, false) => output::cell(location(r)),
        });
        table.add_row(cells);
    }
    // Ids stay whole; a model stays whole up to 40 % of the width (a long one, such as the local
    // model's repository and file, wraps rather than squeezing the reasons into a narrow column).
    for index in [0, 1] {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    let longest_model = rows.iter().map(|r| r.model.chars().count()).max();
    if let (Some(column), Some(longest)) = (table.column_mut(3), longest_model) {
        let whole = u16::try_from(longest).unwrap_or(u16::MAX);
        column.set_constraint(ColumnConstraint::Boundaries {
            // The width counts the cell's padding, one space each side.
            lower: Width::Fixed(whole.min(MODEL_MIN_WIDTH) + 2),
            upper: Width::Percentage(40),
        });
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &'static str, model: &str, check: Check) -> Row {
        Row {
            id,
            name: id,
            local: false,
            configured: true,
            configured_by: Some(format!("{}_API_KEY", id.to_uppercase())),
            set_to_configure: None,
            model: model.to_owned(),
            base_url: String::new(),
            position: Some(1),
            error: None,
            state: None,
            budget: None,
            check: Some(check),
            excluded: None,
            model_file: None,
        }
    }

    fn failed(provider: &str, kind: &'static str, message: &str) -> Check {
        Check {
            provider: provider.to_owned(),
            ok: false,
            latency_ms: 3,
            kind: Some(kind),
            status: Some(401),
            message: Some(message.to_owned()),
        }
    }

    #[test]
    fn a_long_model_id_wraps_instead_of_squeezing_the_reasons() {
        let rows = [
            row(
                "together",
                "meta-llama/Llama-3.3-70B-Instruct-Turbo",
                failed("together", "auth", "Invalid API Key"),
            ),
            row(
                "local",
                "HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/smollm2-360m-instruct-q8_0.gguf",
                failed(
                    "local",
                    "model_not_found",
                    "the model file is not downloaded",
                ),
            ),
        ];
        let mut table = render(&rows);
        table.set_width(120);
        let text = table.to_string();
        assert!(
            text.lines().all(|l| l.chars().count() <= 120),
            "wider than the terminal:\n{text}"
        );
        // A usual model id stays whole; the long one is cut across lines.
        assert!(
            text.contains("meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            "{text}"
        );
        assert!(!text.contains("smollm2-360m-instruct-q8_0.gguf/"), "{text}");
        // The other columns keep a readable width: no word is cut (the old layout printed
        // `TOG`/`ETHER_API_K` and `model_n`/`ot_found`).
        for word in ["TOGETHER_API_KEY", "model_not_found", "downloaded"] {
            assert!(text.contains(word), "{word} cut in:\n{text}");
        }
    }
}
