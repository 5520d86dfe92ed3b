//! `cargo xtask`: see the library docs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use llm_core::{LayeredEnv, ProcessEnv};
use xtask::record::{RecordError, Recorder};
use xtask::{check, record, scenarios};

#[derive(Parser)]
#[command(name = "xtask", about = "Project automation for llm-cascade")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Record real exchanges of every configured provider into fixtures/<id>/recorded/, or (--check)
    /// decode every committed fixture with the current code.
    RecordFixtures(RecordArgs),
    /// Measure `cascade serve` against an instant loopback upstream, direct vs through the gateway
    /// (release builds; `oha` or `wrk` as the load generator); prints one table.
    BenchGateway(BenchArgs),
    /// The benchmark's upstream: replays the OpenAI captures on `--addr` until killed.
    BenchUpstream(UpstreamArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// Seconds per load run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
}

#[derive(Args)]
struct UpstreamArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
}

#[derive(Args)]
struct RecordArgs {
    /// Only this provider (repeatable).
    #[arg(long = "provider", value_name = "ID")]
    providers: Vec<String>,
    /// Only this scenario of xtask/scenarios.json (repeatable).
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// List the calls without making them.
    #[arg(long, conflicts_with = "check")]
    dry_run: bool,
    /// Decode every committed fixture (fixtures/**/*.json) with the current code; offline.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::RecordFixtures(args) => record_fixtures(args).await,
        Command::BenchGateway(args) => {
            xtask::bench::bench_gateway(Duration::from_secs(args.seconds))
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::BenchUpstream(args) => xtask::bench::upstream(&args.addr)
            .await
            .map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(why) => {
            eprintln!("error: {why}");
            ExitCode::FAILURE
        }
    }
}

async fn record_fixtures(args: RecordArgs) -> Result<ExitCode, String> {
    let registry = llm_cascade::registry().map_err(|e| e.to_string())?;
    let root = xtask::workspace_root();
    let fixtures_dir = root.join("fixtures");
    for id in &args.providers {
        if registry.get(id).is_none() {
            return Err(format!(
                "unknown provider `{id}` (compiled in: {})",
                registry.ids().join(", ")
            ));
        }
    }
    if args.check {
        let results = check::check_all(&registry, &fixtures_dir).await;
        print!("{}", check::render(&results, &root));
        let failed = results.iter().any(|c| c.verdict.is_err());
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }

    let mut list = scenarios::load(&xtask::scenario_file())?;
    for name in &args.scenarios {
        if !list.iter().any(|s| &s.name == name) {
            let known: Vec<_> = list.iter().map(|s| s.name.as_str()).collect();
            return Err(format!(
                "unknown scenario `{name}` (known: {})",
                known.join(", ")
            ));
        }
    }
    if !args.scenarios.is_empty() {
        list.retain(|s| args.scenarios.contains(&s.name));
    }
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let env = LayeredEnv::new()
        .then(ProcessEnv)
        .then(xtask::dotenv_map(&cwd)?);
    let recorder = Recorder {
        registry: &registry,
        env: &env,
        scenarios: &list,
        providers: &args.providers,
        fixtures_dir: &fixtures_dir,
        local_probe: Duration::from_secs(5),
    };
    if args.dry_run {
        print!("{}", record::plan(&recorder));
        return Ok(ExitCode::SUCCESS);
    }
    match record::record(&recorder).await {
        Ok(report) => {
            for file in &report.removed {
                println!(
                    "removed {}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                );
            }
            for file in &report.written {
                println!(
                    "wrote {}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                );
            }
            println!();
            print!("{}", report.summary(list.len()));
            Ok(if report.has_failures() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Err(e @ RecordError::SecretLeak { .. }) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}
