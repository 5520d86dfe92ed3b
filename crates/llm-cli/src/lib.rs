#![doc = include_str!("../README.md")]

mod args;
mod ask;
mod chat;
mod check;
mod env;
mod output;
mod providers;
mod pull;
mod stats;
mod test_cmd;
mod usage;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use llm_cascade::{Cascade, CascadeEvent, EnvSource, Observer, Stats};

pub use args::{Cli, Command};

/// Exit code: the command worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: every provider failed, or none is configured (and each command's own failure: see
/// `cascade <command> --help`).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad flags or invalid configuration.
pub const EXIT_USAGE: u8 = 2;

/// What every command shares: the configuration, this process's statistics and the usage log.
pub(crate) struct Ctx {
    /// The process environment over `.env`.
    pub env: Box<dyn EnvSource>,
    /// Per-process statistics (`/llm stats`).
    pub stats: Arc<Stats>,
    /// The usage log recorder.
    pub usage: Arc<usage::UsageRecorder>,
}

impl Ctx {
    /// Attaches the statistics and the usage log to `cascade`.
    pub fn attach(&self, cascade: Cascade) -> Cascade {
        cascade
            .with_observer(self.stats.clone())
            .with_observer(self.usage.clone())
    }

    /// Tells the observers about something the engine could not see (an answer cancelled by the user).
    pub fn emit(&self, event: &CascadeEvent) {
        self.stats.on_event(event);
        self.usage.on_event(event);
    }
}

/// Parses the command line, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let env = match env::load() {
        Ok(env) => env,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    env::register_keys(&env);
    let command_name = match &cli.command {
        Command::Ask(_) => "ask",
        Command::Chat(_) => "chat",
        Command::Test(_) => "test",
        _ => "other",
    };
    let content = match usage::log_content(&env) {
        Ok(content) => content,
        Err(message) => {
            let report = output::config_report(message, "Set it to true or false.");
            output::print_failure(&report);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let recorder = usage::UsageRecorder::new(usage::Target::from_env(&env), content, command_name);
    let ctx = Ctx {
        env: Box::new(env),
        stats: Arc::new(Stats::new()),
        usage: Arc::new(recorder),
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Ask(args) => ask::run(args, &ctx).await,
            Command::Chat(args) => chat::run(args, &ctx).await,
            Command::Providers(args) => providers::run(&args, ctx.env.as_ref()).await,
            Command::Test(args) => test_cmd::run(&args, &ctx).await,
            Command::Stats(args) => stats::run(&args, ctx.env.as_ref()),
            Command::Pull(args) => pull::run(&args, ctx.env.as_ref()).await,
            Command::Completions(args) => {
                clap_complete::generate(
                    args.shell,
                    &mut Cli::command(),
                    "cascade",
                    &mut std::io::stdout(),
                );
                EXIT_OK
            }
        }
    });
    // Every row handed to the usage log is written before the process ends.
    ctx.usage.close();
    ExitCode::from(code)
}

/// Logs go to stderr; `-v` shows the cascade's story (trying, retrying, falling back), `-vv` more.
/// `RUST_LOG` overrides.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "off",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
