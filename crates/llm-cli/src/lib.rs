#![doc = include_str!("../README.md")]

mod args;
mod ask;
mod env;
mod output;
mod providers;
mod pull;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};

/// Exit code: the command worked.
pub const EXIT_OK: u8 = 0;
/// Exit code: every provider failed, or none is configured.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad flags or invalid configuration.
pub const EXIT_USAGE: u8 = 2;

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
    let code = runtime.block_on(async {
        match cli.command {
            Command::Ask(args) => ask::run(args, &env).await,
            Command::Providers(args) => providers::run(&args, &env),
            Command::Pull(args) => pull::run(&args, &env).await,
        }
    });
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
