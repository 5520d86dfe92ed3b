//! `cascade providers`: what is compiled in and configured, without touching the network.

use llm_cascade::{EnvSource, ProviderRegistration, Registry, provider_order};
use serde::Serialize;

use crate::args::ProvidersArgs;
use crate::{EXIT_OK, EXIT_USAGE};

/// One row of the listing.
#[derive(Debug, Serialize)]
struct Row {
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
}

/// Runs `cascade providers`; returns the exit code.
pub fn run(args: &ProvidersArgs, env: &dyn EnvSource) -> u8 {
    let rows = match rows(env) {
        Ok(rows) => rows,
        Err(error) => {
            eprintln!("error: {error}");
            return EXIT_USAGE;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else {
        print_table(&rows);
    }
    EXIT_OK
}

fn rows(env: &dyn EnvSource) -> Result<Vec<Row>, llm_cascade::Error> {
    let registry = llm_cascade::registry()?;
    let chain: Vec<&str> = provider_order(env, &registry)?
        .into_iter()
        .filter(|id| configured(&registry, env, id))
        .collect();
    Ok(registry.iter().map(|r| row(r, env, &chain)).collect())
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
        position: chain
            .iter()
            .position(|id| *id == registration.id)
            .map(|p| p + 1),
        error,
    }
}

fn print_table(rows: &[Row]) {
    let status = |r: &Row| match (
        &r.error,
        r.configured,
        &r.configured_by,
        &r.set_to_configure,
    ) {
        (Some(error), _, _, _) => format!("invalid: {error}"),
        (None, true, Some(by), _) => format!("yes ({by})"),
        (None, true, None, _) => "yes".to_owned(),
        (None, false, _, Some(set)) => format!("no: set {set}"),
        (None, false, _, None) => "no".to_owned(),
    };
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.position
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".to_owned()),
                r.id.to_owned(),
                status(r),
                r.model.clone(),
                r.base_url.clone(),
            ]
        })
        .collect();
    let header = ["#", "PROVIDER", "CONFIGURED", "MODEL", "BASE URL"].map(str::to_owned);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            std::iter::once(&header)
                .chain(&table)
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
