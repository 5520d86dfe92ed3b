#![doc = include_str!("../README.md")]

mod config;
mod engine;
mod observer;
mod providers;
mod report;
mod stats;
mod stream;

pub use config::{CascadeConfig, LocalPull, SERVERLESS_MARKERS, private_mode, provider_order};
pub use engine::{Cascade, CascadeBuilder};
pub use llm_core::{
    Category, ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind, FinishReason,
    LayeredEnv, MapEnv, Message, Overlay, ProcessEnv, Progress, ProgressSink, Provider,
    ProviderRegistration, Registry, Role, StreamEvent, Usage,
};
pub use observer::{CascadeEvent, Observer};
pub use providers::{DEFAULT_ORDER, ENABLED};
pub use report::{
    Attempt, CascadeError, CascadeResponse, Decision, MoveReason, Outcome, describe_attempt,
};
pub use stats::{ProviderSummary, Stats, StatsSnapshot, percentile};
pub use stream::CascadeStream;

/// The registry of every provider compiled into this build.
///
/// # Errors
/// A config error when two crates register the same id.
pub fn registry() -> Result<Registry, Error> {
    Registry::from_inventory()
}
