//! `cascade pull [MODEL]`: download a model into Ollama with a progress bar (or JSON lines).

use llm_cascade::EnvSource;

use crate::args::PullArgs;

/// Runs `cascade pull`; returns the exit code.
#[cfg(feature = "provider-ollama")]
pub async fn run(args: &PullArgs, env: &dyn EnvSource) -> u8 {
    use llm_cascade::{CascadeError, Progress};
    use llm_provider_ollama::Ollama;

    use crate::output;
    use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

    let ollama = match Ollama::from_env(env) {
        Ok(ollama) => ollama,
        Err(error) => return output::fail(&CascadeError::from(error), args.json, EXIT_USAGE),
    };
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| ollama.config().model.clone());
    let bar = progress_bar(args.json);
    let json = args.json;
    let on_progress = |event: Progress| {
        if json {
            output::print_json(
                &serde_json::json!({"type": "progress", "status": event.status,
                "completed": event.completed, "total": event.total}),
            );
        } else {
            show(&bar, &event);
        }
    };
    let result = ollama.pull(Some(&model), &on_progress).await;
    bar.finish_and_clear();
    match result {
        Ok(()) => {
            if json {
                output::print_json(&serde_json::json!({"success": true, "model": model}));
            } else {
                output::err(&format!("pulled {model}"));
            }
            EXIT_OK
        }
        Err(error) => output::fail(&CascadeError::from(error), json, EXIT_FAILED),
    }
}

/// A bar on stderr, drawn only on a terminal (indicatif hides it otherwise) and never with `--json`.
#[cfg(feature = "provider-ollama")]
fn progress_bar(json: bool) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:20!} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// Updates the bar: the status as its message, bytes summed over layers as its position.
#[cfg(feature = "provider-ollama")]
fn show(bar: &indicatif::ProgressBar, event: &llm_cascade::Progress) {
    if let Some(total) = event.total {
        bar.set_length(total);
    }
    if let Some(completed) = event.completed {
        bar.set_position(completed);
    }
    bar.set_message(event.status.clone());
}

/// Without the Ollama provider compiled in there is nothing to pull into.
#[cfg(not(feature = "provider-ollama"))]
pub async fn run(_args: &PullArgs, _env: &dyn EnvSource) -> u8 {
    crate::output::err(
        "error: this build has no Ollama provider (enable the `provider-ollama` feature)",
    );
    crate::EXIT_USAGE
}
