//! `cargo xtask`: see the library docs.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use llm_core::{LayeredEnv, ProcessEnv};
use xtask::record::{RecordError, Recorder};
use xtask::{check, record, scaffold, scenarios};

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
    /// Scaffold an OpenAI-compatible provider crate (crate, README, registration, tests, fixture
    /// notes) and wire it into the workspace, llm-cascade's and llm-cli's features and the provider table.
    NewProvider(NewProviderArgs),
    /// Measure `cascade serve` against an instant loopback upstream, direct vs through the gateway
    /// (release builds; `oha` or `wrk` as the load generator); prints one table.
    BenchGateway(BenchArgs),
    /// The benchmark's upstream: replays the OpenAI captures on `--addr` until killed.
    BenchUpstream(UpstreamArgs),
    /// The benchmark's floor: a bare axum + reqwest proxy to `--upstream` on `--addr` until killed.
    BenchPassthrough(PassthroughArgs),
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
struct PassthroughArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: String,
    /// The upstream chat endpoint every request is forwarded to.
    #[arg(long)]
    upstream: String,
}

#[derive(Args)]
struct NewProviderArgs {
    /// The id: lower-case letters and digits (`fireworks`).
    id: String,
    /// The base URL of its OpenAI-compatible API (the part before `/chat/completions`).
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// The variable that holds its key (`FIREWORKS_API_KEY`).
    #[arg(long, value_name = "NAME")]
    key_env: String,
    /// The default model (`<ID>_MODEL` overrides it).
    #[arg(long, value_name = "MODEL")]
    model: String,
    /// A human name [default: the id, capitalised].
    #[arg(long, value_name = "NAME")]
    display_name: Option<String>,
    /// Position in the default order, lower first [default: after every existing provider].
    #[arg(long, value_name = "N")]
    priority: Option<u16>,
    /// Print the files that would be written, without writing them.
    #[arg(long)]
    dry_run: bool,
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
        Command::NewProvider(args) => new_provider(args),
        Command::BenchGateway(args) => {
            xtask::bench::bench_gateway(Duration::from_secs(args.seconds))
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::BenchUpstream(args) => xtask::bench::upstream(&args.addr)
            .await
            .map(|()| ExitCode::SUCCESS),
        Command::BenchPassthrough(args) => xtask::bench::passthrough(&args.addr, &args.upstream)
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

fn new_provider(args: NewProviderArgs) -> Result<ExitCode, String> {
    let registry = llm_cascade::registry().map_err(|e| e.to_string())?;
    let mut existing: Vec<(&str, u16)> = registry.iter().map(|r| (r.id, r.priority)).collect();
    // Known but not compiled in: the id is taken all the same (its priority is not known here).
    existing.extend(
        llm_cascade::KNOWN_PROVIDERS
            .iter()
            .filter(|p| registry.get(p.id).is_none())
            .map(|p| (p.id, u16::MAX)),
    );
    let last = registry.iter().map(|r| r.priority).max().unwrap_or(0);
    let new = scaffold::NewProvider {
        display_name: args.display_name.unwrap_or_else(|| capitalised(&args.id)),
        id: args.id,
        base_url: args.base_url,
        key_env: args.key_env,
        model: args.model,
        priority: args.priority.unwrap_or(last.saturating_add(10)),
    };
    let root = xtask::workspace_root();
    let plan = scaffold::plan(&root, &new, &existing)?;
    for path in plan.keys() {
        let verb = if root.join(path).exists() {
            "edit "
        } else {
            "write"
        };
        println!("{verb} {}", path.display());
    }
    if !args.dry_run {
        scaffold::apply(&root, &plan)?;
        // The generated code is laid out by rustfmt, not by the templates (long URLs and models).
        let crate_manifest = root.join(format!("crates/llm-provider-{}/Cargo.toml", new.id));
        let formatted = std::process::Command::new("cargo")
            .args(["fmt", "--manifest-path"])
            .arg(&crate_manifest)
            .status()
            .map_err(|e| format!("cargo fmt: {e}"))?;
        if !formatted.success() {
            return Err("cargo fmt failed on the new crate".to_owned());
        }
        println!(
            "\nNext: record fixtures (fixtures/{id}/README.md), then `cargo test -p llm-provider-{id}`.",
            id = new.id
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn capitalised(id: &str) -> String {
    let mut chars = id.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
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
