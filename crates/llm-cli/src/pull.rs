//! `cascade pull [MODEL]`: download a model into Ollama, or (`cascade pull local`) the embedded
//! model's file, with a progress bar (or JSON lines).

use llm_cascade::EnvSource;

use crate::args::PullArgs;

/// The `MODEL` that means the embedded model's file rather than an Ollama model.
pub const LOCAL: &str = "local";

/// Runs `cascade pull`; returns the exit code.
pub async fn run(args: &PullArgs, env: &dyn EnvSource) -> u8 {
    if args.model.as_deref() == Some(LOCAL) {
        return pull_local(args, env).await;
    }
    pull_ollama(args, env).await
}

/// `cascade pull local`: downloads the embedded model's GGUF file (see `llm-provider-local`).
#[cfg(feature = "provider-local")]
async fn pull_local(args: &PullArgs, env: &dyn EnvSource) -> u8 {
    use llm_cascade::{CascadeError, ErrorKind, Progress};
    use llm_provider_local::Local;

    use crate::output;
    use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

    let local = match Local::from_env(env) {
        Ok(local) => local,
        Err(error) => {
            let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
            return output::fail(&report, args.json, EXIT_USAGE);
        }
    };
    let model = local.config().model.clone();
    let bar = progress_bar(args.json);
    let json = args.json;
    let on_progress = |event: Progress| progress(&bar, json, &event);
    let result = local.pull(&on_progress).await;
    bar.finish_and_clear();
    match result {
        Ok(()) => {
            let path = local
                .config()
                .model_path
                .as_ref()
                .map(|p| p.display().to_string());
            if json {
                output::print_json(
                    &serde_json::json!({"success": true, "model": model, "path": path}),
                );
            } else {
                crate::output::err(&format!("pulled {model} ({})", path.unwrap_or_default()));
            }
            EXIT_OK
        }
        Err(error) => output::fail(
            &CascadeError::before_any_attempt(&error, error.kind().advice()),
            json,
            EXIT_FAILED,
        ),
    }
}

/// Without the embedded provider compiled in there is no model file to download.
#[cfg(not(feature = "provider-local"))]
async fn pull_local(_args: &PullArgs, _env: &dyn EnvSource) -> u8 {
    crate::output::err(
        "error: this build has no embedded model (enable the `provider-local` feature)",
    );
    crate::EXIT_USAGE
}

/// A model downloaded while `ask` or `chat` waits (the last-resort pull, or `LLM_LOCAL_PULL=eager`),
/// shown as `cascade pull` shows it: the bar (bytes, rate, ETA) on a terminal's stderr, nothing on
/// any other stderr; in JSON-lines output (`ask --stream --json`, `chat --json`) the same
/// `{"type": "progress", …}` lines as `pull --json` instead.
pub(crate) struct PullProgress {
    json_lines: bool,
    /// The bar of the download under way; a new one per download.
    bar: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl PullProgress {
    /// An observer to attach to the cascade; `json_lines` when stdout is a stream of JSON lines.
    pub(crate) fn new(json_lines: bool) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            json_lines,
            bar: std::sync::Mutex::default(),
        })
    }

    /// Removes the bar: the download is over, and the answer (or the error) is about to be printed.
    pub(crate) fn clear(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut bar| bar.take()) {
            bar.finish_and_clear();
        }
    }
}

impl llm_cascade::Observer for PullProgress {
    fn on_event(&self, event: &llm_cascade::CascadeEvent) {
        let llm_cascade::CascadeEvent::Progress(event) = event else {
            // Anything else happens after the download: the attempt that uses the model.
            self.clear();
            return;
        };
        let Ok(mut bar) = self.bar.lock() else {
            return;
        };
        let bar = bar.get_or_insert_with(|| progress_bar(self.json_lines));
        progress(bar, self.json_lines, event);
    }
}

/// One progress event: a JSON line with `--json`, else the bar.
fn progress(bar: &indicatif::ProgressBar, json: bool, event: &llm_cascade::Progress) {
    if json {
        crate::output::print_json(
            &serde_json::json!({"type": "progress", "provider": event.provider,
            "status": event.status, "completed": event.completed, "total": event.total}),
        );
    } else {
        show(bar, event);
    }
}

/// `cascade pull [MODEL]` into Ollama.
#[cfg(feature = "provider-ollama")]
async fn pull_ollama(args: &PullArgs, env: &dyn EnvSource) -> u8 {
    use llm_cascade::{CascadeError, ErrorKind, Progress};
    use llm_provider_ollama::Ollama;

    use crate::output;
    use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

    let ollama = match Ollama::from_env(env) {
        Ok(ollama) => ollama,
        Err(error) => {
            let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
            return output::fail(&report, args.json, EXIT_USAGE);
        }
    };
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| ollama.config().model.clone());
    let bar = progress_bar(args.json);
    let json = args.json;
    let on_progress = |event: Progress| progress(&bar, json, &event);
    let result = ollama.pull(Some(&model), &on_progress).await;
    bar.finish_and_clear();
    match result {
        Ok(()) => {
            if json {
                output::print_json(&serde_json::json!({"success": true, "model": model}));
            } else {
                crate::output::err(&format!("pulled {model}"));
            }
            EXIT_OK
        }
        Err(error) => output::fail(
            &CascadeError::before_any_attempt(&error, error.kind().advice()),
            json,
            EXIT_FAILED,
        ),
    }
}

/// A bar on stderr, drawn only on a terminal (indicatif hides it otherwise) and never with `--json`.
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
async fn pull_ollama(_args: &PullArgs, _env: &dyn EnvSource) -> u8 {
    crate::output::err(
        "error: this build has no Ollama provider (enable the `provider-ollama` feature)",
    );
    crate::EXIT_USAGE
}
