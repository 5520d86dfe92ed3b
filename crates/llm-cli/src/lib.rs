#![doc = include_str!("../README.md")]

mod args;
mod ask;
mod chat;
mod check;
mod env;
mod interrupt;
mod output;
mod providers;
mod pull;
mod serve;
mod stats;
mod test_cmd;
mod usage;

use std::process::ExitCode;
use std::sync::Arc;

use clap::{CommandFactory, Parser};
use llm_cascade::{Cascade, CascadeEvent, EnvSource, ErrorKind, Observer, Stats};

pub use args::{Cli, Command};

/// Exit code: the command worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: every provider failed, or none is configured (and each command's own failure: see
/// `cascade <command> --help`).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad flags or invalid configuration.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: interrupted by SIGINT (Ctrl-C), 128 + 2 as shells report it.
pub const EXIT_SIGINT: u8 = interrupt::EXIT_SIGINT;
/// Exit code: stdout was closed (a broken pipe: `cascade ask hi | head -c1`), 128 + SIGPIPE.
pub const EXIT_BROKEN_PIPE: u8 = output::EXIT_BROKEN_PIPE;
/// Exit code: ended by SIGTERM, 128 + 15.
pub const EXIT_SIGTERM: u8 = interrupt::EXIT_SIGTERM;

/// What every command shares: the configuration, this process's statistics and the usage log.
pub(crate) struct Ctx {
    /// The process environment over `.env`.
    pub env: Box<dyn EnvSource>,
    /// Per-process statistics (`/llm stats`).
    pub stats: Arc<Stats>,
    /// The usage log recorder.
    pub usage: Arc<usage::UsageRecorder>,
    /// Where provider state is remembered across runs.
    pub state: usage::StateSetup,
}

impl Ctx {
    /// Attaches the statistics and the usage log to `cascade`, and says (in its hints) that settings
    /// come from the environment or `.env`.
    pub fn attach(&self, cascade: Cascade) -> Cascade {
        let cascade = self.state.attach(cascade);
        cascade
            .configured_in(llm_cascade::DOTENV_SOURCE)
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
    // A server uses every core; the other commands make one request at a time.
    let runtime = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            output::err(&format!("error: cannot start the async runtime: {error}"));
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let env = match env::load() {
        Ok(env) => env,
        Err(error) => {
            output::err(&format!("error: {error}"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    env::register_keys(&env);
    let command_name = match &cli.command {
        Command::Ask(_) => "ask",
        Command::Chat(_) => "chat",
        Command::Test(_) => "test",
        Command::Serve(_) => "serve",
        _ => "other",
    };
    let (target, content) = match usage::Target::from_env(&env)
        .and_then(|target| Ok((target, usage::log_content(&env)?)))
    {
        Ok(settings) => settings,
        Err(error) => {
            let report = output::config_report(error.message(), ErrorKind::Config.advice());
            output::print_failure(&report);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let recorder = usage::UsageRecorder::new(target, content, command_name);
    let state = match usage::StateSetup::from_env(&env) {
        Ok(state) => state,
        Err(error) => {
            let report = output::config_report(error.message(), ErrorKind::Config.advice());
            output::print_failure(&report);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let ctx = Ctx {
        state,
        env: Box::new(env),
        stats: Arc::new(Stats::new()),
        usage: Arc::new(recorder),
    };
    let code = runtime.block_on(async {
        let code = match cli.command {
            Command::Ask(args) => ask::run(args, &ctx).await,
            Command::Chat(args) => chat::run(args, &ctx).await,
            Command::Providers(args) => providers::run(&args, ctx.env.as_ref()).await,
            Command::Test(args) => test_cmd::run(&args, &ctx).await,
            Command::Stats(args) => stats::run(&args, ctx.env.as_ref()),
            Command::Pull(args) => pull::run(&args, ctx.env.as_ref()).await,
            Command::Serve(args) => serve::run(&args, &ctx).await,
            Command::Completions(args) => {
                let mut script = Vec::new();
                clap_complete::generate(args.shell, &mut Cli::command(), "cascade", &mut script);
                let _ = output::out(&String::from_utf8_lossy(&script));
                EXIT_OK
            }
        };
        // A shared store may keep token counts back for a second: written before the process ends.
        if let Some(store) = &ctx.state.store {
            store.flush().await;
        }
        code
    });
    // Every row handed to the usage log is written before the process ends.
    ctx.usage.close();
    // A line editor may still block a thread on the terminal (chat ended by SIGTERM): leave it.
    runtime.shutdown_background();
    ExitCode::from(final_code(code))
}

/// A signal's status stands; otherwise a stdout that failed decides (141 for a closed pipe).
fn final_code(code: u8) -> u8 {
    if code == EXIT_SIGINT || code == EXIT_SIGTERM {
        return code;
    }
    output::stdout_failure_code().unwrap_or(code)
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
    // Provider text in log fields is escaped by `llm_core::sanitize`; colour codes are ours, and only
    // for a terminal that wants them.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(output::stderr_color())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
