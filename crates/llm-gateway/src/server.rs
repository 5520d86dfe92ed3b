//! The HTTP face: the router, the handlers and the server loop with its graceful drain.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use futures_util::StreamExt;
use llm_cascade::{
    Cascade, CascadeError, CascadeEvent, CascadeStream, Error, ErrorKind, Observer, Provider,
    StreamEvent, Usage,
};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::api::{self, CompletionRequest};
use crate::config::GatewayConfig;
use crate::error::{ApiError, clean};
use crate::monitor::{Monitor, outcome_of};
use crate::page;
use crate::routing::{self, CASCADE, Route};

/// Receives every cascade event of every request, tagged with the request's id (the usage log).
///
/// Called inline on the request path: hand the event off and return (never block).
pub trait RequestObserver: Send + Sync {
    /// One event of request `request_id`.
    fn on_event(&self, request_id: &str, event: &CascadeEvent);

    /// How many events (or rows made of them) were dropped so far because the observer's queue was
    /// full (`/metrics` shows it as `cascade_gateway_usage_rows_dropped_total`). Default: none.
    fn dropped(&self) -> u64 {
        0
    }
}

/// Tags one request's events with its id.
struct Tagged {
    request_id: String,
    inner: Arc<dyn RequestObserver>,
}

impl Observer for Tagged {
    fn on_event(&self, event: &CascadeEvent) {
        self.inner.on_event(&self.request_id, event);
    }
}

struct Shared {
    /// The one cascade every request runs on (the monitor attached): its provider state and retry
    /// budget outlive each request, so a provider that asked for a 20-minute wait is skipped by
    /// the next request too.
    cascade: Cascade,
    config: GatewayConfig,
    monitor: Arc<Monitor>,
    request_observer: Option<Arc<dyn RequestObserver>>,
    limiter: Arc<Semaphore>,
    draining: AtomicBool,
    started: Instant,
}

/// The gateway: a cascade's providers and settings behind an OpenAI-compatible HTTP API.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field(
                "chain",
                &self
                    .shared
                    .chain()
                    .iter()
                    .map(|p| p.id())
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `chatcmpl-<time><counter>`, unique within the process and across restarts.
fn completion_id() -> String {
    format!(
        "chatcmpl-{:x}{:06x}",
        unix_now(),
        REQUESTS.fetch_add(1, Ordering::Relaxed)
    )
}

impl Gateway {
    /// A gateway serving every request on `cascade` (a clone: it shares the caller's provider state
    /// and retry budget). A request that names providers (`model`, `models`) runs on a chain derived
    /// from it ([`Cascade::with_providers`]) that shares them too. Observers attached to `cascade` see
    /// every request's events; to know which request an event belongs to, use
    /// [`Gateway::with_request_observer`].
    pub fn new(cascade: &Cascade, config: GatewayConfig) -> Self {
        let limiter = Arc::new(Semaphore::new(config.max_inflight));
        let monitor = Arc::new(Monitor::default());
        Self {
            shared: Arc::new(Shared {
                cascade: cascade.clone().with_observer(monitor.clone()),
                config,
                monitor,
                request_observer: None,
                limiter,
                draining: AtomicBool::new(false),
                started: Instant::now(),
            }),
        }
    }

    /// Adds the observer that gets every request's events with its id (the usage log). Call it before
    /// serving; on a gateway that was cloned, the result shares the metrics but not the drain state.
    #[must_use]
    pub fn with_request_observer(self, observer: Arc<dyn RequestObserver>) -> Self {
        let shared = match Arc::try_unwrap(self.shared) {
            Ok(mut shared) => {
                shared.request_observer = Some(observer);
                shared
            }
            Err(shared) => Shared {
                cascade: shared.cascade.clone(),
                config: shared.config.clone(),
                monitor: shared.monitor.clone(),
                request_observer: Some(observer),
                limiter: shared.limiter.clone(),
                draining: AtomicBool::new(false),
                started: shared.started,
            },
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// The metrics and the provider board.
    pub fn monitor(&self) -> &Monitor {
        &self.shared.monitor
    }

    /// The routes.
    pub fn router(&self) -> Router {
        let protected = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .route("/v1/providers", get(providers))
            .route("/metrics", get(metrics))
            .route("/", get(status_page))
            .route_layer(middleware::from_fn_with_state(
                self.shared.clone(),
                authenticate,
            ));
        Router::new()
            .merge(protected)
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .fallback(not_found)
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` completes, then stops accepting connections and lets the
    /// requests in flight finish for up to the grace period (`LLM_GATEWAY_GRACE`); requests still
    /// running after it are dropped (their upstream connections closed).
    ///
    /// # Errors
    /// The listener's I/O error.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let (signalled, mut drained) = tokio::sync::watch::channel(false);
        // Every streamed delta is a small write: without TCP_NODELAY, Nagle's algorithm holds each
        // one back until the client has acknowledged the previous one.
        let listener = listener.tap_io(|connection| {
            if let Err(error) = connection.set_nodelay(true) {
                debug!("TCP_NODELAY not set on a client connection: {error}");
            }
        });
        let server = axum::serve(listener, self.router()).with_graceful_shutdown(async move {
            shutdown.await;
            shared.draining.store(true, Ordering::SeqCst);
            info!(
                in_flight = shared.monitor.metrics.in_flight().get(),
                "draining: no new connections; in-flight requests get {:?}", shared.config.grace
            );
            let _ = signalled.send(true);
        });
        let grace = self.shared.config.grace;
        let deadline = async move {
            let _ = drained.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server.into_future() => result,
            () = deadline => {
                warn!("the grace period ended with requests in flight: they are cancelled");
                Ok(())
            }
        }
    }
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::gateway(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "internal",
        "the gateway failed on this request",
        "This is a bug in cascade serve; the request was not answered.",
    )
    .into_response()
}

async fn not_found() -> Response {
    ApiError::gateway(
        StatusCode::NOT_FOUND,
        "invalid_request",
        "not_found",
        "no such route",
        "Routes: POST /v1/chat/completions, GET /v1/models, /v1/providers, /metrics, /healthz, /readyz, /.",
    )
    .into_response()
}

async fn authenticate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if crate::auth::authorized(&shared.config.keys, header) {
        return next.run(request).await;
    }
    shared.monitor.metrics.rejected("unauthorized");
    let mut response = ApiError::gateway(
        StatusCode::UNAUTHORIZED,
        "auth",
        "invalid_api_key",
        "missing or unknown gateway key",
        "Send `Authorization: Bearer <key>` with one of the keys in LLM_GATEWAY_KEYS.",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    if shared.chain().is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no provider is configured\n",
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

async fn models(State(shared): State<Arc<Shared>>) -> Response {
    let mut data =
        vec![json!({"id": CASCADE, "object": "model", "created": 0, "owned_by": "llm-cascade"})];
    for p in shared.chain() {
        data.push(json!({
            "id": format!("{}/{}", p.id(), clean(p.model())),
            "object": "model",
            "created": 0,
            "owned_by": p.id(),
        }));
    }
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

async fn providers(State(shared): State<Arc<Shared>>) -> Response {
    let mut data: Vec<Value> = Vec::new();
    let statuses = shared.cascade.provider_statuses(shared.chain()).await;
    for (i, (p, status)) in shared.chain().iter().zip(statuses).enumerate() {
        data.push(json!({
            "position": i + 1,
            "id": p.id(),
            "model": clean(p.model()),
            "local": p.is_local(),
            "state": status,
            "stats": shared.monitor.board.provider(p.id()),
        }));
    }
    axum::Json(json!({"providers": data, "recent_failures": shared.monitor.board.recent()}))
        .into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let statuses = shared.cascade.provider_statuses(shared.chain()).await;
    for (p, status) in shared.chain().iter().zip(&statuses) {
        shared.monitor.metrics.provider_status(p.id(), status);
    }
    if let Some(observer) = &shared.request_observer {
        shared.monitor.metrics.usage_dropped(observer.dropped());
    }
    if let Some(health) = shared.cascade.state_health() {
        shared.monitor.metrics.store_health(&health);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.monitor.metrics.encode(),
    )
        .into_response()
}

async fn status_page(State(shared): State<Arc<Shared>>) -> Response {
    let statuses = shared.cascade.provider_statuses(shared.chain()).await;
    let rows: Vec<page::Row> = shared
        .chain()
        .iter()
        .zip(statuses)
        .map(|(p, state)| page::Row {
            id: p.id().to_owned(),
            model: clean(p.model()),
            local: p.is_local(),
            state,
            board: shared.monitor.board.provider(p.id()),
        })
        .collect();
    Html(page::render(
        &rows,
        &shared.monitor.board.recent(),
        shared.monitor.metrics.in_flight().get(),
        shared.started.elapsed().as_secs(),
    ))
    .into_response()
}

/// A chat request being served: holds its in-flight permit and counts it once, when dropped (a
/// client that went away is counted as `cancelled`).
struct InFlight {
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
    started: Instant,
    provider: String,
    outcome: Option<&'static str>,
}

impl InFlight {
    fn finish(&mut self, provider: &str, outcome: &'static str) {
        provider.clone_into(&mut self.provider);
        self.outcome = Some(outcome);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let metrics = &self.shared.monitor.metrics;
        metrics.in_flight().dec();
        metrics.request(
            &self.provider,
            self.outcome.unwrap_or("cancelled"),
            self.started.elapsed(),
        );
    }
}

fn admit(shared: &Arc<Shared>) -> Result<InFlight, ApiError> {
    let Ok(permit) = shared.limiter.clone().try_acquire_owned() else {
        shared.monitor.metrics.rejected("overloaded");
        let mut error = ApiError::gateway(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "gateway_overloaded",
            format!(
                "the gateway is serving its maximum of {} requests",
                shared.config.max_inflight
            ),
            "Retry after the announced wait, or raise LLM_GATEWAY_MAX_INFLIGHT.",
        );
        error.retry_after = Some(Duration::from_secs(1));
        return Err(error);
    };
    shared.monitor.metrics.in_flight().inc();
    Ok(InFlight {
        shared: shared.clone(),
        _permit: permit,
        started: Instant::now(),
        provider: "none".to_owned(),
        outcome: None,
    })
}

async fn read_body(shared: &Shared, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let limit = shared.config.body_limit;
    let too_large = || {
        shared.monitor.metrics.rejected("too_large");
        ApiError::gateway(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "body_too_large",
            format!("the request body is larger than {limit} bytes"),
            "Send a shorter conversation, or raise LLM_GATEWAY_MAX_BODY.",
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let is_length = std::error::Error::source(&error)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if is_length {
            too_large()
        } else {
            ApiError::invalid("the request body could not be read", "Send the body again.")
        }
    })
}

impl Shared {
    /// The configured chain, in order.
    fn chain(&self) -> &[Arc<dyn Provider>] {
        self.cascade.providers()
    }

    /// This request's cascade: the gateway's own for the whole chain, else one derived from it for
    /// the routed providers (sharing its state, retry budget and observers); with a request observer,
    /// a derived one that also tags this request's events with its id. Builds nothing.
    fn cascade_for(&self, route: Route, request_id: &str) -> Cow<'_, Cascade> {
        let cascade = match route {
            Route::Chain => Cow::Borrowed(&self.cascade),
            Route::Providers(providers) => Cow::Owned(self.cascade.with_providers(providers)),
        };
        match &self.request_observer {
            None => cascade,
            Some(inner) => Cow::Owned(cascade.into_owned().with_observer(Arc::new(Tagged {
                request_id: request_id.to_owned(),
                inner: inner.clone(),
            }))),
        }
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut flight = match admit(&shared) {
        Ok(flight) => flight,
        Err(error) => return error.into_response(),
    };
    let prepared = prepare(&shared, &headers, body).await;
    let (request, route, id) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => {
            flight.finish("none", "invalid_request");
            return error.into_response();
        }
    };
    let cascade = shared.cascade_for(route, &id);
    if request.stream {
        stream_answer(&cascade, request, id, flight).await
    } else {
        whole_answer(&cascade, request, &id, &mut flight).await
    }
}

async fn prepare(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(CompletionRequest, Route, String), ApiError> {
    let bytes = read_body(shared, headers, body).await?;
    let request = api::parse(&bytes).inspect_err(|_| shared.monitor.metrics.rejected("invalid"))?;
    if shared.chain().is_empty() {
        let error = Error::config("no provider is configured");
        return Err(ApiError::from_cascade(
            &CascadeError::before_any_attempt(&error, ErrorKind::Config.advice()),
            shared.cascade.state_now_ms(),
        ));
    }
    let route = routing::route(
        shared.chain(),
        request.model.as_deref(),
        &request.models,
        shared.config.strict_models,
    )
    .inspect_err(|_| shared.monitor.metrics.rejected("invalid"))?;
    Ok((request, route, completion_id()))
}

pub(crate) fn cascade_headers(response: &mut Response, provider: &str, attempts: usize) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(provider) {
        headers.insert("x-cascade-provider", value);
    }
    headers.insert("x-cascade-attempts", HeaderValue::from(attempts));
}

async fn whole_answer(
    cascade: &Cascade,
    request: CompletionRequest,
    id: &str,
    flight: &mut InFlight,
) -> Response {
    match crate::tools::chat(cascade, request.chat).await {
        Ok(answer) => {
            flight.finish(&answer.response.provider, "ok");
            let body = api::completion(id, unix_now(), &answer.response, &answer.attempts);
            let mut response = axum::Json(body).into_response();
            cascade_headers(
                &mut response,
                &answer.response.provider,
                answer.attempts.len(),
            );
            response
        }
        Err(error) => {
            if let Some(refusal) = crate::tools::refusal(&error) {
                flight.finish(&refusal.provider, outcome_of(error.kind));
                return crate::tools::refusal_answer(cascade, id, &refusal, &error);
            }
            flight.finish("none", outcome_of(error.kind));
            ApiError::from_cascade(&error, cascade.state_now_ms()).into_response()
        }
    }
}

async fn stream_answer(
    cascade: &Cascade,
    request: CompletionRequest,
    id: String,
    mut flight: InFlight,
) -> Response {
    // Nothing is sent until the cascade has a first content token: every failure before it is a real
    // HTTP status.
    let stream = match cascade.chat_stream(request.chat).await {
        Ok(stream) => stream,
        Err(error) => {
            if let Some(refusal) = crate::tools::refusal(&error) {
                flight.finish(&refusal.provider, outcome_of(error.kind));
                return crate::tools::refusal_stream(
                    cascade,
                    &id,
                    &refusal,
                    &error,
                    request.include_usage,
                );
            }
            flight.finish("none", outcome_of(error.kind));
            return ApiError::from_cascade(&error, cascade.state_now_ms()).into_response();
        }
    };
    flight
        .shared
        .monitor
        .metrics
        .first_token(flight.started.elapsed());
    let provider = stream.provider().to_owned();
    let attempts = stream.attempts().len();
    let sse = Sse {
        created: unix_now(),
        model: clean(stream.model()),
        id,
        include_usage: request.include_usage,
        usage: None,
        pending: VecDeque::new(),
        tool_calls: 0,
        done: false,
        flight,
        stream,
    };
    let mut sse = sse;
    sse.push(&api::chunk(
        &sse.id,
        sse.created,
        &sse.model,
        json!({"role": "assistant", "content": ""}),
        None,
    ));
    let body = futures_util::stream::unfold(sse, |mut sse| async move {
        sse.next_frame()
            .await
            .map(|frame| (Ok::<_, std::convert::Infallible>(frame), sse))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    cascade_headers(&mut response, &provider, attempts);
    response
}

/// A started stream, turned into SSE frames.
struct Sse {
    stream: CascadeStream,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    usage: Option<Usage>,
    pending: VecDeque<Bytes>,
    /// Tool calls streamed so far (the next one's `index`).
    tool_calls: usize,
    done: bool,
    flight: InFlight,
}

impl Sse {
    fn push(&mut self, value: &Value) {
        self.pending
            .push_back(Bytes::from(format!("data: {value}\n\n")));
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(frame);
            }
            if self.done {
                return None;
            }
            match self.stream.next().await {
                Some(Ok(event)) => self.on_event(event),
                Some(Err(error)) => self.fail(&error),
                None => {
                    let cut = Error::new(
                        ErrorKind::StreamTruncated,
                        "the stream ended without a finish",
                    )
                    .with_provider(self.stream.provider());
                    self.fail(&cut);
                }
            }
        }
    }

    fn on_event(&mut self, event: StreamEvent) {
        match event {
            StreamEvent::Delta { text } => {
                if !text.is_empty() {
                    let delta = json!({"content": llm_core::redact(&text)});
                    let chunk = api::chunk(&self.id, self.created, &self.model, delta, None);
                    self.push(&chunk);
                }
            }
            StreamEvent::Usage { usage } => self.usage = Some(usage),
            // The answer goes on from another attempt (the text continues seamlessly); the attempt
            // record in the finish chunk's `cascade` field tells the story.
            StreamEvent::Resumed { .. } => {}
            // A whole call (the provider assembled its fragments): one chunk.
            StreamEvent::ToolCall { call } => {
                let delta = crate::tools::tool_call_delta(self.tool_calls, &call);
                self.tool_calls += 1;
                let chunk = api::chunk(&self.id, self.created, &self.model, delta, None);
                self.push(&chunk);
            }
            // The cascade already took it in (the provider cools until the limit resets).
            StreamEvent::RateLimit { .. } => {}
            StreamEvent::Finish { reason, model } => {
                if let Some(model) = model {
                    self.model = clean(&model);
                }
                let finish = api::answer_finish(&reason, self.tool_calls > 0);
                let mut chunk =
                    api::chunk(&self.id, self.created, &self.model, json!({}), Some(finish));
                chunk["cascade"] = api::extension(
                    self.stream.provider(),
                    Some(&reason),
                    &self.stream.attempts(),
                );
                self.push(&chunk);
                if self.include_usage {
                    let usage = api::usage_chunk(&self.id, self.created, &self.model, self.usage);
                    self.push(&usage);
                }
                self.pending
                    .push_back(Bytes::from_static(b"data: [DONE]\n\n"));
                let provider = self.stream.provider().to_owned();
                self.flight.finish(&provider, "ok");
                self.done = true;
            }
        }
    }

    /// A failure after the first token: an `error` event, and no `[DONE]`.
    fn fail(&mut self, error: &Error) {
        let report = CascadeError::interrupted(self.stream.attempts(), error);
        // In a stream there is no header to carry a wait: the clock does not matter.
        let body = ApiError::from_cascade(&report, 0).body();
        self.pending
            .push_back(Bytes::from(format!("event: error\ndata: {body}\n\n")));
        let provider = self.stream.provider().to_owned();
        self.flight.finish(&provider, outcome_of(error.kind()));
        self.done = true;
    }
}
