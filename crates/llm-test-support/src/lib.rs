//! Test helpers shared by the llm-cascade crates (a dev-dependency only).
//!
//! - [`Fixture`]: loads `fixtures/<provider>/<scenario>.json` (plus its byte-exact stream body) and
//!   serves it through `wiremock`.
//! - [`ScriptedServer`]: a raw loopback HTTP server that sends a response in timed steps, for what
//!   `wiremock` cannot do (a slow first token, a stream that stalls, a connection that drops).
//! - [`replay`]: replays a fixture against any provider and normalises the outcome for snapshots.
//! - [`CANARY_KEY`]: a fake key that tests look for in every output.
//! - [`required_in_ci`]: a real component a test needs (Redis, the test model): required in CI.
//! - [`refused_port`]: a loopback port where every connection is refused.

mod fixture;
mod manifest;
pub mod replay;
mod scripted;

pub use fixture::{Fixture, FixtureMeta, workspace_root};
pub use manifest::cargo_features;
pub use scripted::{ConnectionEvent, ScriptedServer, Step};

/// A loopback port where every connection is refused, for as long as the test process runs.
///
/// The port stays bound to a socket that never listens. A port that is bound and then released
/// (the usual trick) can be handed to the next server another test binds in the same process, which
/// then answers in place of the "server that is not running".
///
/// # Panics
/// When the loopback interface cannot bind a socket.
pub fn refused_port() -> u16 {
    static REFUSING: std::sync::OnceLock<tokio::net::TcpSocket> = std::sync::OnceLock::new();
    let socket = REFUSING.get_or_init(|| {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind loopback");
        socket
    });
    socket.local_addr().expect("local addr").port()
}

/// A fake API key. Tests configure providers with it and assert it never appears in any output.
pub const CANARY_KEY: &str = "canary-key-0000-never-print-me";

/// The value of `var`, naming a real component a test needs (a Redis, the test model) that `.ci/run`
/// provides. Unset or empty: in CI (`CI=true`) a failure, elsewhere a notice that the test skips
/// (`needs` says what for) and `None`.
///
/// # Panics
/// In CI, when `var` is unset.
pub fn required_in_ci(var: &str, needs: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{var} is not set: CI must provide {needs} (see .ci/run)")
        }
        _ => {
            eprintln!("{var} is not set: skipping a test that needs {needs}");
            None
        }
    }
}
