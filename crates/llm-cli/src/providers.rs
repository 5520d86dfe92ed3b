//! `cascade providers`: what is compiled in and configured; with `--check`, a live probe of each
//! configured provider.

use comfy_table::{Cell, Color, ColumnConstraint};
use llm_cascade::{
    CascadeError, EnvSource, ErrorKind, ProviderRegistration, Registry, provider_order,
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
    let mut rows = match rows(env) {
        Ok(rows) => rows,
        Err(error) => {
            let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
            return output::fail(&report, args.json, EXIT_USAGE);
        }
    };
    let mut code = EXIT_OK;
    if args.check {
        let registry = match llm_cascade::registry() {
            Ok(registry) => registry,
            Err(error) => {
                let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
                return output::fail(&report, args.json, EXIT_USAGE);
            }
        };
        let configured: Vec<&ProviderRegistration> = registry
            .iter()
            .filter(|r| rows.iter().any(|row| row.id == r.id && row.configured))
            .collect();
        let checks = check_registrations(&configured, env).await;
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
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        if rows.iter().any(|r| r.excluded.is_some()) {
            println!(
                "privacy mode is on (LLM_PRIVATE=true): only local providers are called; cloud keys are ignored"
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
pub fn rows(env: &dyn EnvSource) -> Result<Vec<Row>, llm_cascade::Error> {
    let registry = llm_cascade::registry()?;
    let chain: Vec<&str> = provider_order(env, &registry)?
        .into_iter()
        .filter(|id| configured(&registry, env, id))
        .collect();
    let private = llm_cascade::private_mode(env)?;
    Ok(registry
        .iter()
        .map(|r| {
            let mut row = row(r, env, &chain);
            if private && !r.local {
                row.excluded = Some(PRIVATE.to_owned());
            }
            row.model_file = model_file(r.id, env);
            row
        })
        .collect())
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

fn configured(registry: &Registry, env: &dyn EnvSource, id: &str) -> bool {
    registry.get(id).is_some_and(|r| r.is_configured(env))
}

fn row(registration: &ProviderRegistration, env: &dyn EnvSource, chain: &[&str]) -> Row {
    let configured = registration.is_configured(env);
    let configured_by = if registration.local {
        Some("local".to_owned())
    } else {
        env.first_of(registration.key_env)
            .map(|(name, _)| name.to_owned())
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
        let var = |suffix: &str| env.non_empty(&format!("{}_{suffix}", registration.env_prefix));
        (
            var("MODEL").unwrap_or_else(|| registration.default_model.to_owned()),
            var("BASE_URL").unwrap_or_else(|| registration.default_base_url.to_owned()),
            None,
        )
    };
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
        (None, true, Some(by), _) => format!("yes ({by})"),
        (None, true, None, _) => "yes".to_owned(),
        // The first variable is the canonical one; `--json` lists them all.
        (None, false, _, Some(set)) => {
            format!("no: set {}", set.split(" or ").next().unwrap_or(set))
        }
        (None, false, _, None) => "no".to_owned(),
    }
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

/// The listing as a table; with checks, a CHECK column instead of the base URL (which `--json`
/// still has), so that the table fits a terminal.
pub fn print_table(rows: &[Row]) {
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
                Cell::new(status(r))
            },
            Cell::new(&r.model),
        ];
        cells.push(match (&r.check, checked) {
            (Some(check), _) if check.ok => output::colored(check.describe(), Color::Green),
            (Some(check), _) => output::colored(check.describe(), Color::Red),
            (None, true) => Cell::new("-"),
            (None, false) => Cell::new(location(r)),
        });
        table.add_row(cells);
    }
    // Ids and models stay whole; the other columns wrap.
    for index in [0, 1, 3] {
        if let Some(column) = table.column_mut(index) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
    }
    println!("{table}");
}
