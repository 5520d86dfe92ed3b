#![doc = include_str!("../README.md")]

mod chain;
mod config;
mod dotenv;
mod engine;
mod observer;
mod policy;
mod probe;
mod providers;
mod recovery;
mod report;
mod spans;
mod state;
mod stats;
mod stream;
mod structured;

pub use config::{
    CascadeConfig, LocalPull, StreamRecovery, TEMPERATURE_RANGE, parse_max_tokens,
    parse_temperature, private_mode, provider_order, resolve_provider,
};
pub use dotenv::{DOTENV_SOURCE, env_with_dotenv};
pub use engine::{Cascade, CascadeBuilder};
pub use llm_core::{
    Capabilities, Category, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind,
    FinishReason, LayeredEnv, MapEnv, Message, Overlay, ProcessEnv, Progress, ProgressSink,
    Provider, ProviderRegistration, RateLimitSpent, Registry, ResponseFormat, ResumeMode, Role,
    StreamEvent, Tool, ToolCall, ToolChoice, Usage,
};
pub use observer::{CascadeEvent, Observer};
pub use probe::{ProbeResult, probe_provider, probe_registrations};
pub use providers::{ENABLED, KNOWN_PROVIDERS, KnownProvider};
pub use report::{Attempt, CascadeError, CascadeResponse, Decision, MoveReason, Outcome};
#[cfg(feature = "redis")]
pub use state::RedisStore;
pub use state::{
    Budget, BudgetLeft, Change, Condition, Decisive, Deferred, MemoryStore, ProviderState,
    ProviderStatus, Report, STATE_CA_FILE_VAR, STATE_PREFIX_VAR, STATE_URL_VAR, Skip, SkipReason,
    StateClock, StateSettings, StateStore, StoreHealth, Verdict, Window, clock_time, fingerprint,
    state_store_from_env,
};
pub use stats::{ProviderSummary, Stats, StatsSnapshot};
pub use stream::CascadeStream;
pub use structured::{
    StructuredResponse, adapt, check_format, check_tool_calls, parse_and_validate, strip_fences,
};

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
