//! The command line.

use clap::{Args, Parser, Subcommand};

/// Ask LLM providers in order, falling back from one to the next until one answers.
///
/// Providers join the chain when their key is set (local ones always, and are skipped in
/// milliseconds when not running). Configure with environment variables or a `.env` file in the
/// current directory.
///
/// Exit codes: 0 success; 1 every provider failed or none is configured; 2 bad flags or invalid
/// configuration.
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
    Ask(AskArgs),
    /// List every compiled-in provider: configured or not, model, base URL (no network).
    Providers(ProvidersArgs),
    /// Download a model into the local Ollama server, with progress.
    Pull(PullArgs),
}

/// `cascade pull`.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// The model to pull; the configured `OLLAMA_MODEL` (or Ollama's default) when omitted.
    pub model: Option<String>,
    /// Print progress events as JSON lines, then a summary line.
    #[arg(long)]
    pub json: bool,
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
    /// The most tokens to generate.
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[arg(long, value_name = "T")]
    pub temperature: Option<f32>,
}

/// `cascade providers`.
#[derive(Debug, Args)]
pub struct ProvidersArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
