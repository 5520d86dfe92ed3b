//! A hook for watching the cascade work, so callers (the CLI's usage log, a gateway's metrics) can
//! record attempts without the engine knowing about storage.

use std::time::Duration;

use llm_core::Progress;

use crate::report::Attempt;

/// Something that happened inside a cascade call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CascadeEvent {
    /// An attempt is about to start.
    AttemptStarted {
        /// Provider id.
        provider: String,
        /// Model that will be asked.
        model: String,
        /// Attempt number at this provider, from 1.
        attempt: u32,
    },
    /// An attempt ended (successful or not). A streamed attempt that produced its first token is
    /// reported once, when its stream ends: as a success, or as the failure that cut it.
    AttemptFinished {
        /// The record.
        attempt: Attempt,
        /// The model asked.
        model: String,
        /// Tokens used, when the provider reported them (successful attempts).
        usage: Option<llm_core::Usage>,
    },
    /// Waiting before retrying the same provider.
    Waiting {
        /// Provider id.
        provider: String,
        /// The wait.
        wait: Duration,
    },
    /// Moving on from one provider to the next.
    Fallback {
        /// The provider given up on.
        from: String,
        /// The provider tried next.
        to: String,
    },
    /// A local provider is preparing (Ollama pulling its model).
    Progress(Progress),
    /// A stream that failed after text was delivered goes on with this provider (the cut attempt and
    /// any failed continuation were reported as `AttemptFinished` before).
    Resumed {
        /// Provider id.
        provider: String,
        /// The model asked.
        model: String,
        /// How the answer is continued.
        mode: llm_core::ResumeMode,
    },
}

/// Receives [`CascadeEvent`]s. Called inline on the request path: keep it fast and never block.
pub trait Observer: Send + Sync {
    /// One event.
    fn on_event(&self, event: &CascadeEvent);
}

impl<F: Fn(&CascadeEvent) + Send + Sync> Observer for F {
    fn on_event(&self, event: &CascadeEvent) {
        self(event);
    }
}
