//! The command line.

use clap::{Args, Parser, Subcommand};

/// Ask LLM providers in order, falling back from one to the next until one answers.
///
/// Providers join the chain when their key is set (local ones always, and are skipped in
/// milliseconds when not running). Configure with environment variables or a `.env` file in the
/// current directory. Every attempt of `ask`, `chat` and `test` is counted in a local usage log
/// (`LLM_USAGE_DB`, `off` to disable; prompts and answers only with `LLM_USAGE_LOG_CONTENT=true`).
///
/// Exit codes: 0 success; 1 every provider failed or none is configured (`providers --check`: no
/// configured provider is reachable; `test`: the test answer failed; `chat`: a question went
/// unanswered); 2 bad flags or invalid configuration; 130 SIGINT, 143 SIGTERM (the request cancelled;
/// in `chat` Ctrl-C cancels only the answer); 141 stdout was closed (a broken pipe).
#[derive(Debug, Parser)]
#[command(name = "cascade", version, about, long_about)]
pub struct Cli {
    /// Show what the cascade does on stderr (-v: attempts and fallbacks; -vv: more).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask one question and print the answer.
    ///
    /// Exit codes: 0 answered; 1 every provider failed or none is configured; 2 bad flags or
    /// configuration.
    Ask(AskArgs),
    /// Talk: a multi-turn conversation, answers streamed as they arrive.
    ///
    /// Type `/help` for the commands (`/llm providers`, `/llm switch <id|auto>`, `/llm stats`,
    /// `/llm test [id]`, `/exit`). Ctrl-C cancels the answer in progress, not the session. When
    /// standard input is not a terminal, lines are read plainly (one question per line).
    ///
    /// Exit codes: 0 every question was answered; 1 at least one was not; 2 bad flags or
    /// configuration.
    Chat(ChatArgs),
    /// List every compiled-in provider: configured or not, model, base URL; `--check` probes them.
    ///
    /// Exit codes: 0 listed (with `--check`: at least one configured provider is reachable); 1 with
    /// `--check`, no configured provider is reachable; 2 invalid configuration.
    Providers(ProvidersArgs),
    /// Check the providers, then get one short answer through the cascade.
    ///
    /// Step 1 probes each provider (the given ones, or every one in the chain); step 2 asks the
    /// cascade, restricted to the given ids in that order, for a short answer.
    ///
    /// Exit codes: 0 the answer came; 1 it did not; 2 bad flags, an unknown id or invalid
    /// configuration.
    Test(TestArgs),
    /// Per-provider statistics from the usage log: requests, failures by kind, latency, tokens.
    ///
    /// Exit codes: 0 shown (also when nothing was recorded yet); 1 the log cannot be read; 2 bad
    /// flags, or the log is off (`LLM_USAGE_DB=off`).
    Stats(StatsArgs),
    /// Download a model into the local Ollama server, with progress.
    Pull(PullArgs),
    /// Serve the cascade over HTTP as an OpenAI-compatible API (`/v1/chat/completions`).
    ///
    /// Point an OpenAI SDK's base URL at `http://127.0.0.1:8787/v1`. Settings: `LLM_GATEWAY_ADDR`,
    /// `LLM_GATEWAY_KEYS` (bearer keys, comma-separated), `LLM_GATEWAY_MAX_INFLIGHT`,
    /// `LLM_GATEWAY_MAX_BODY`, `LLM_GATEWAY_GRACE`, `LLM_GATEWAY_STRICT_MODELS`. SIGTERM/SIGINT stop
    /// accepting and drain the requests in flight.
    ///
    /// Exit codes: 0 stopped by a signal after draining; 1 the address cannot be bound; 2 bad flags or
    /// configuration (including a public address without keys).
    Serve(ServeArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    ///
    /// Example: `cascade completions bash > ~/.local/share/bash-completion/completions/cascade`.
    Completions(CompletionsArgs),
}

/// `cascade pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The model to pull; the configured `OLLAMA_MODEL` (or Ollama's default) when omitted; `local`
    /// downloads the embedded model's file (`LOCAL_MODEL`) instead.
    pub model: Option<String>,
    /// Print progress events as JSON lines, then a summary line.
    #[arg(long)]
    pub json: bool,
}

/// `cascade serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen (default `LLM_GATEWAY_ADDR`, else 127.0.0.1:8787).
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: Option<String>,
    /// Allow a non-loopback address without `LLM_GATEWAY_KEYS`.
    #[arg(long)]
    pub allow_unauthenticated: bool,
}

/// `cascade ask`.
#[derive(Debug, Args)]
pub struct AskArgs {
    /// The prompt; `-` reads it from standard input.
    pub prompt: String,
    /// Print one JSON object (with --stream: JSON lines, the last one the summary).
    #[arg(long)]
    pub json: bool,
    /// Print the answer as it arrives.
    #[arg(long)]
    pub stream: bool,
    /// Use only this provider (no fallback).
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
    /// A system prompt.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// The most tokens to generate (at least 1).
    #[arg(long, value_name = "N", value_parser = llm_cascade::parse_max_tokens)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature, from 0 to 2.
    #[arg(long, value_name = "T", value_parser = llm_cascade::parse_temperature)]
    pub temperature: Option<f32>,
    /// Ask for JSON that validates against this JSON Schema file and print it (every provider is
    /// tried until one answers valid JSON; exit 1 with the validation details when none does).
    #[arg(long, value_name = "FILE.json", conflicts_with = "stream")]
    pub schema: Option<std::path::PathBuf>,
}

/// `cascade chat`.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Start pinned to this provider (same as typing `/llm switch ID`).
    #[arg(long, value_name = "ID")]
    pub provider: Option<String>,
    /// A system prompt for the whole conversation.
    #[arg(long, value_name = "TEXT")]
    pub system: Option<String>,
    /// Print JSON lines: deltas, then one summary per answer; command results as objects.
    #[arg(long)]
    pub json: bool,
}

/// `cascade providers`.
#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Probe every configured provider (concurrently, each bounded by its timeout).
    #[arg(long)]
    pub check: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cascade test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Providers to test, in the order to try them; every provider in the chain when omitted.
    #[arg(value_name = "ID")]
    pub ids: Vec<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `cascade stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only attempts newer than this (`30m`, `24h`, `7d`); everything when omitted.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `cascade completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
