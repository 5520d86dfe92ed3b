//! `cascade test [ID…]`: probe each provider, then get one short answer through the cascade.

use std::time::Instant;

use comfy_table::{Cell, Color};
use llm_cascade::{
    Cascade, CascadeError, ChatRequest, Error, ProviderRegistration, provider_order,
    resolve_provider,
};
use serde_json::json;

use crate::args::TestArgs;
use crate::check::check_registrations;
use crate::output;
use crate::{Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// What step 2 asks.
pub const TEST_PROMPT: &str = "Reply with one short sentence saying hello.";

/// Runs `cascade test`; returns the exit code.
pub async fn run(args: &TestArgs, ctx: &Ctx) -> u8 {
    test(&args.ids, ctx, args.json).await
}

/// Probes `ids` (or the chain), then asks the cascade restricted to them. 0 only when the answer came.
pub async fn test(ids: &[String], ctx: &Ctx, json: bool) -> u8 {
    let env = ctx.env.as_ref();
    let registry = match llm_cascade::registry() {
        Ok(registry) => registry,
        Err(error) => return config_failure(error, json),
    };
    // The arguments are resolved here, so that an error blames them.
    let mut named: Vec<&str> = Vec::new();
    for name in ids {
        match resolve_provider(name, &registry) {
            // A provider named twice is probed once.
            Ok(id) if named.contains(&id) => {}
            Ok(id) => named.push(id),
            Err(error) => {
                let error = Error::config(format!("cascade test {name}: {}", error.message()));
                return config_failure(error, json);
            }
        }
    }
    // The whole configuration is checked before anything is probed.
    let full = match Cascade::from_env_source(env) {
        Ok(cascade) => ctx.attach(cascade),
        Err(error) => return config_failure(error, json),
    };
    // Named providers are probed even when not configured (the probe then says what to set); the
    // cascade is asked through the configured ones, in the order given.
    let probed: Vec<&ProviderRegistration> = if named.is_empty() {
        match provider_order(env, &registry) {
            Ok(order) => order
                .iter()
                .filter_map(|id| registry.get(id))
                .filter(|r| r.is_configured(env))
                .collect(),
            Err(error) => return config_failure(error, json),
        }
    } else {
        named.iter().filter_map(|id| registry.get(id)).collect()
    };
    let cascade = if named.is_empty() {
        full
    } else {
        let configured: Vec<&str> = probed
            .iter()
            .filter(|r| r.is_configured(env))
            .map(|r| r.id)
            .collect();
        match full.restricted(&configured) {
            Ok(cascade) => cascade,
            Err(error) => return config_failure(error, json),
        }
    };

    if !json {
        let _ = output::outln(&format!(
            "Step 1: probing {} provider{}",
            probed.len(),
            if probed.len() == 1 { "" } else { "s" }
        ));
    }
    let checks = check_registrations(&probed, env, cascade.config().deadline).await;
    if !json {
        let mut table = output::table(&["PROVIDER", "CHECK"]);
        for check in &checks {
            let color = if check.ok { Color::Green } else { Color::Red };
            table.add_row(vec![
                Cell::new(&check.provider),
                output::colored(check.describe(), color),
            ]);
        }
        let _ = output::outln(&table.to_string());
    }

    if !json {
        let chain: Vec<&str> = cascade.providers().iter().map(|p| p.id()).collect();
        let _ = output::outln(&format!(
            "Step 2: asking the cascade ({})",
            chain.join(" → ")
        ));
    }
    ctx.usage.begin_call(TEST_PROMPT);
    let started = Instant::now();
    let result = cascade.chat(ChatRequest::from_prompt(TEST_PROMPT)).await;
    let (code, generation) = match &result {
        Ok(answer) => {
            let r = &answer.response;
            ctx.usage.record_answer(&r.content);
            if !json {
                let _ = output::outln(&format!(
                    "✅ {}",
                    output::summary_line(
                        &r.provider,
                        &r.model,
                        &answer.attempts,
                        started.elapsed()
                    )
                    .trim_start_matches("— ")
                ));
                let _ = output::answer(&format!("{}\n", r.content.trim()));
            }
            let value = output::success_json(
                &r.provider,
                &r.model,
                &r.content,
                Some(&r.finish_reason),
                r.usage,
                &answer.attempts,
            );
            (EXIT_OK, value)
        }
        Err(report) => {
            if !json {
                println!("❌ no answer: {}", report.message);
                output::print_failure(report);
            }
            (EXIT_FAILED, output::failure_json(report))
        }
    };
    if json {
        output::print_json(&json!({
            "success": code == EXIT_OK,
            "checks": checks,
            "generation": generation,
        }));
    }
    code
}

fn config_failure(error: Error, json: bool) -> u8 {
    output::fail(&CascadeError::from(error), json, EXIT_USAGE)
}
