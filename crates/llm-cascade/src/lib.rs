#![doc = include_str!("../README.md")]

mod config;
mod dotenv;
mod engine;
mod observer;
mod policy;
mod providers;
mod report;
mod spans;
mod state;
mod stats;
mod stream;

pub use config::{
    CascadeConfig, LocalPull, TEMPERATURE_RANGE, parse_max_tokens, parse_temperature,
    provider_order, resolve_provider,
};
pub use dotenv::{DOTENV_SOURCE, env_with_dotenv};
pub use engine::{Cascade, CascadeBuilder};
pub use llm_core::{
    Category, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind, FinishReason,
    LayeredEnv, MapEnv, Message, Overlay, ProcessEnv, Progress, ProgressSink, Provider,
    ProviderRegistration, Registry, Role, StreamEvent, Usage,
};
pub use observer::{CascadeEvent, Observer};
pub use providers::{ENABLED, KNOWN_PROVIDERS, KnownProvider};
pub use report::{Attempt, CascadeError, CascadeResponse, Decision, MoveReason, Outcome};
pub use state::{
    Budget, Change, MemoryStore, ProviderState, Report, Skip, SkipReason, StateClock,
    StateSettings, StateStore, Verdict, Window, clock_time, fingerprint,
};
pub use stats::{ProviderSummary, Stats, StatsSnapshot};
pub use stream::CascadeStream;

/// The registry of every provider compiled into this build.
///
/// # Errors
/// A config error when two crates register the same id.
pub fn registry() -> Result<Registry, Error> {
    Registry::from_inventory()
}

/// The workspace README's library example, compiled (not run) as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct WorkspaceReadme;
