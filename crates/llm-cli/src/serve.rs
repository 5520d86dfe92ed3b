//! `cascade serve`: the OpenAI-compatible gateway (crate `llm-gateway`) on a socket, with the usage
//! log fed off the request path and a graceful drain on SIGTERM/SIGINT.

use std::sync::Arc;

use llm_cascade::{Cascade, CascadeEvent};
use llm_gateway::{Gateway, GatewayConfig, RequestObserver};

use crate::args::ServeArgs;
use crate::usage::UsageRecorder;
use crate::{Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE, output};

/// The usage log as the gateway's per-request observer: rows tagged with each request's id.
struct UsageRows(Arc<UsageRecorder>);

impl RequestObserver for UsageRows {
    fn on_event(&self, request_id: &str, event: &CascadeEvent) {
        self.0.record_for(request_id, event);
    }

    fn dropped(&self) -> u64 {
        self.0.dropped()
    }
}

fn config(args: &ServeArgs, ctx: &Ctx) -> Result<GatewayConfig, String> {
    let mut config = GatewayConfig::from_env(ctx.env.as_ref()).map_err(|e| e.to_string())?;
    if let Some(addr) = &args.addr {
        config.addr = addr.parse().map_err(|_| {
            format!("--addr: expected host:port such as 127.0.0.1:8787, got {addr:?}")
        })?;
    }
    config.allow_unauthenticated = args.allow_unauthenticated;
    config.check_exposure().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Runs the gateway until SIGTERM or SIGINT, then drains.
pub async fn run(args: &ServeArgs, ctx: &Ctx) -> u8 {
    let config = match config(args, ctx) {
        Ok(config) => config,
        Err(message) => {
            output::err(&format!("error: {}", llm_core::sanitize(&message)));
            return EXIT_USAGE;
        }
    };
    let cascade = match Cascade::from_env_source(ctx.env.as_ref()) {
        Ok(cascade) => cascade,
        Err(error) => {
            output::err(&format!("error: {}", llm_core::sanitize(error.message())));
            return EXIT_USAGE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(error) => {
            output::err(&format!("error: cannot listen on {}: {error}", config.addr));
            return EXIT_FAILED;
        }
    };
    let addr = listener.local_addr().map_or(config.addr, |a| a);
    let ids: Vec<&str> = cascade.providers().iter().map(|p| p.id()).collect();
    output::err(&format!(
        "cascade serve: listening on http://{addr} (providers: {}; auth: {})",
        if ids.is_empty() {
            "none configured".to_owned()
        } else {
            ids.join(", ")
        },
        if config.keys.is_empty() {
            "off"
        } else {
            "bearer keys"
        },
    ));
    let gateway = Gateway::new(&cascade, config)
        .with_request_observer(Arc::new(UsageRows(ctx.usage.clone())));
    let result = gateway.serve(listener, shutdown_signal()).await;
    // A shared state store may still hold token counts back: written before the process ends.
    cascade.flush_state().await;
    if ctx.usage.dropped() > 0 {
        output::err(&format!(
            "note: {} usage log rows were dropped (the writer could not keep up)",
            ctx.usage.dropped()
        ));
    }
    match result {
        Ok(()) => EXIT_OK,
        Err(error) => {
            output::err(&format!("error: the server failed: {error}"));
            EXIT_FAILED
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    output::err("cascade serve: shutting down, draining requests in flight");
}
