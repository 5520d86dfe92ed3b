//! What cuts a command short: SIGINT, SIGTERM, or the reader of stdout going away. Each has its
//! conventional exit status (128 + the signal number).
//!
//! The closed-stdout watch lets `ask --stream | head -c 10` (or `ask hi | true`) cancel the upstream
//! request as soon as the reader leaves, not at the next write: the kernel reports an error condition
//! on a pipe's write end once it has no reader.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use llm_cascade::{Attempt, CascadeEvent, Observer};

use crate::output::EXIT_BROKEN_PIPE;

/// Exit code after SIGINT (128 + 2).
pub const EXIT_SIGINT: u8 = 130;
/// Exit code after SIGTERM (128 + 15).
pub const EXIT_SIGTERM: u8 = 143;

/// Why a command was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Ctrl-C.
    Sigint,
    /// `kill`, a service manager stopping us.
    Sigterm,
    /// The reader of stdout went away.
    StdoutClosed,
}

impl Interrupt {
    /// The process exit status it calls for.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Sigint => EXIT_SIGINT,
            Self::Sigterm => EXIT_SIGTERM,
            Self::StdoutClosed => EXIT_BROKEN_PIPE,
        }
    }

    /// `cancelled by SIGINT`, for `--json`'s `message`.
    pub fn message(self) -> &'static str {
        match self {
            Self::Sigint => "cancelled by SIGINT (Ctrl-C)",
            Self::Sigterm => "cancelled by SIGTERM",
            Self::StdoutClosed => "cancelled: stdout was closed",
        }
    }
}

type Pending = Pin<Box<dyn Future<Output = Interrupt>>>;

/// Listens for the interrupts of one command. Creating it takes over SIGINT and SIGTERM for the rest
/// of the process (their default action, dying, no longer applies): create it only around the work
/// it guards.
pub struct Watch {
    sigint: Option<Pending>,
    sigterm: Option<Pending>,
    stdout: Option<Pending>,
}

impl Watch {
    /// Watches both signals and, when it is a pipe or socket, stdout.
    pub fn new() -> Self {
        Self {
            sigint: Some(signal(Interrupt::Sigint)),
            sigterm: Some(signal(Interrupt::Sigterm)),
            stdout: Some(stdout_closed()),
        }
    }

    /// The next interrupt; pending forever when none can come.
    pub async fn next(&mut self) -> Interrupt {
        let interrupt = std::future::poll_fn(|cx| {
            for slot in [&mut self.sigint, &mut self.sigterm, &mut self.stdout] {
                if let Some(pending) = slot
                    && let std::task::Poll::Ready(interrupt) = pending.as_mut().poll(cx)
                {
                    // A signal can come again (chat's second Ctrl-C); re-arm it.
                    *slot = (interrupt != Interrupt::StdoutClosed).then(|| signal(interrupt));
                    return std::task::Poll::Ready(interrupt);
                }
            }
            std::task::Poll::Pending
        })
        .await;
        if interrupt == Interrupt::StdoutClosed {
            crate::output::mark_stdout_closed();
        }
        interrupt
    }
}

/// Resolves at each delivery of the signal; never when it cannot be listened for.
#[cfg(unix)]
fn signal(which: Interrupt) -> Pending {
    use tokio::signal::unix::{SignalKind, signal};
    let kind = match which {
        Interrupt::Sigterm => SignalKind::terminate(),
        _ => SignalKind::interrupt(),
    };
    let listener = signal(kind);
    Box::pin(async move {
        match listener {
            Ok(mut listener) => {
                if listener.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
                which
            }
            Err(_) => std::future::pending().await,
        }
    })
}

/// Without Unix signals only Ctrl-C is heard.
#[cfg(not(unix))]
fn signal(which: Interrupt) -> Pending {
    Box::pin(async move {
        if which == Interrupt::Sigint && tokio::signal::ctrl_c().await.is_ok() {
            return which;
        }
        std::future::pending().await
    })
}

/// Resolves when stdout is a pipe or socket whose reader has gone; never otherwise (a terminal, a
/// file, or a platform without the check: the next write finds out instead).
#[cfg(unix)]
fn stdout_closed() -> Pending {
    use std::os::fd::AsFd;
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    Box::pin(async {
        // A regular file cannot be watched (epoll refuses it) and a terminal only closes with us.
        if crate::output::stdout_terminal() {
            return std::future::pending().await;
        }
        // A duplicate we own: nothing else can close it while it is registered, which is what the
        // deprecation of `with_interest` (for borrowed descriptors) is about.
        let Ok(owned) = std::io::stdout().as_fd().try_clone_to_owned() else {
            return std::future::pending().await;
        };
        #[allow(deprecated)] // its replacement is `unsafe`, which this workspace forbids
        let Ok(watched) = AsyncFd::with_interest(owned, Interest::ERROR) else {
            return std::future::pending().await;
        };
        match watched.ready(Interest::ERROR).await {
            Ok(mut guard) => {
                guard.retain_ready();
                Interrupt::StdoutClosed
            }
            Err(_) => std::future::pending().await,
        }
    })
}

#[cfg(not(unix))]
fn stdout_closed() -> Pending {
    Box::pin(std::future::pending())
}

/// The attempt in flight, as far as the observers were told.
#[derive(Debug, Clone)]
struct InFlight {
    provider: String,
    model: String,
    attempt: u32,
    started: Instant,
}

/// Follows a call's attempts through the observer events, so that a call cut short can still say
/// which attempts ran and record the one in flight as cancelled.
#[derive(Debug, Default)]
pub struct Tracker {
    state: Mutex<(Vec<Attempt>, Option<InFlight>)>,
}

impl Tracker {
    /// A tracker for a cascade (attach it with `with_observer`).
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Forgets the previous call (chat asks many times through one cascade).
    pub fn reset(&self) {
        *self.lock() = (Vec::new(), None);
    }

    /// Ends the call as cancelled: the attempt in flight, if any, is recorded as
    /// [`Outcome::Cancelled`] through `emit`; returns every attempt, the cancelled one last. Call it
    /// after dropping the call's future or stream, so that anything they reported on drop is counted
    /// once.
    pub fn cancel(&self, emit: impl Fn(&CascadeEvent)) -> Vec<Attempt> {
        let (mut attempts, in_flight) = std::mem::take(&mut *self.lock());
        if let Some(flight) = in_flight {
            let attempt = cancelled(&flight, flight.started.elapsed());
            emit(&CascadeEvent::AttemptFinished {
                attempt: attempt.clone(),
                model: flight.model,
                usage: None,
            });
            attempts.push(attempt);
        }
        attempts
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Vec<Attempt>, Option<InFlight>)> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cancelled(flight: &InFlight, elapsed: Duration) -> Attempt {
    Attempt::cancelled(&flight.provider, flight.attempt, elapsed)
}

impl Observer for Tracker {
    fn on_event(&self, event: &CascadeEvent) {
        let mut state = self.lock();
        match event {
            CascadeEvent::AttemptStarted {
                provider,
                model,
                attempt,
            } => {
                state.1 = Some(InFlight {
                    provider: provider.clone(),
                    model: model.clone(),
                    attempt: *attempt,
                    started: Instant::now(),
                });
            }
            CascadeEvent::AttemptFinished { attempt, .. } => {
                let same =
                    |f: &InFlight| f.provider == attempt.provider && f.attempt == attempt.attempt;
                if state.1.as_ref().is_some_and(same) {
                    state.1 = None;
                }
                state.0.push(attempt.clone());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_cascade::Outcome;

    fn started(provider: &str, attempt: u32) -> CascadeEvent {
        CascadeEvent::AttemptStarted {
            provider: provider.to_owned(),
            model: "m".to_owned(),
            attempt,
        }
    }

    #[test]
    fn the_attempt_in_flight_is_recorded_once_as_cancelled() {
        let tracker = Tracker::new();
        tracker.on_event(&started("groq", 1));
        tracker.on_event(&CascadeEvent::AttemptFinished {
            attempt: Attempt::ok("groq", 1, Duration::ZERO),
            model: "m".to_owned(),
            usage: None,
        });
        tracker.on_event(&started("openai", 1));
        let emitted = Mutex::new(Vec::new());
        let attempts = tracker.cancel(|event| {
            if let CascadeEvent::AttemptFinished { attempt, .. } = event {
                emitted.lock().expect("lock").push(attempt.outcome);
            }
        });
        let outcomes: Vec<_> = attempts
            .iter()
            .map(|a| (a.provider.as_str(), a.outcome))
            .collect();
        assert_eq!(
            outcomes,
            vec![("groq", Outcome::Ok), ("openai", Outcome::Cancelled)]
        );
        assert_eq!(*emitted.lock().expect("lock"), vec![Outcome::Cancelled]);
        // Nothing is in flight any more: a second cancel records nothing.
        assert!(tracker.cancel(|_| panic!("emitted twice")).is_empty());
    }

    #[test]
    fn an_attempt_the_engine_finished_on_drop_is_not_recorded_again() {
        let tracker = Tracker::new();
        tracker.on_event(&started("openai", 2));
        let mut attempt = Attempt::ok("openai", 2, Duration::ZERO);
        attempt.outcome = Outcome::Cancelled;
        tracker.on_event(&CascadeEvent::AttemptFinished {
            attempt,
            model: "m".to_owned(),
            usage: None,
        });
        let attempts = tracker.cancel(|_| panic!("the engine already reported it"));
        assert_eq!(attempts.len(), 1);
    }

    #[test]
    fn each_interrupt_has_its_conventional_status() {
        assert_eq!(
            [
                Interrupt::Sigint,
                Interrupt::Sigterm,
                Interrupt::StdoutClosed
            ]
            .map(Interrupt::exit_code),
            [130, 143, 141]
        );
    }
}
