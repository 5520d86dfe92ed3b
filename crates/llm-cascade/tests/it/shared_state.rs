//! Provider state shared through Redis: two cascades with two `RedisStore`s share one Redis, as two
//! instances would (`LLM_TEST_REDIS_URL`, started by `.ci/run`). Each test writes under its own key
//! prefix, so they run in parallel and again on the same Redis. These run on the real clock (a paused
//! one would fire the store's timeouts while Redis answers); none asserts on time.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use llm_cascade::{
    Attempt, Cascade, CascadeBuilder, ChatRequest, Condition, Deferred, ErrorKind, MapEnv, Outcome,
    ProviderState, RedisStore, SkipReason, StateClock, StateStore,
};
use llm_test_support::{CANARY_KEY, Fixture, required_in_ci};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use wiremock::MockServer;

use crate::fake::{Fake, Step, fast_config};

const OPENAI_ROUTE: &str = "/v1/chat/completions";
const GROQ_ROUTE: &str = "/openai/v1/chat/completions";
/// Long enough for any change on a loaded machine: these tests are about sharing, not timeouts.
const PATIENT: Duration = Duration::from_secs(10);

/// The test Redis (`LLM_TEST_REDIS_URL`); see [`required_in_ci`].
fn redis_url() -> Option<String> {
    required_in_ci("LLM_TEST_REDIS_URL", "a redis-server")
}

/// The TLS port of the test Redis (`LLM_TEST_REDIS_TLS_URL`, `rediss://`) and the CA certificate that
/// signed its certificate (`LLM_TEST_REDIS_CA`, a PEM file), both made by `.ci/run`.
fn redis_tls() -> Option<(String, Vec<u8>)> {
    let url = required_in_ci("LLM_TEST_REDIS_TLS_URL", "a redis-server with TLS")?;
    let ca = required_in_ci("LLM_TEST_REDIS_CA", "the test CA of the TLS redis-server")?;
    Some((url, std::fs::read(&ca).expect("the test CA certificate")))
}

/// A key prefix of this test run alone.
fn prefix(test: &str) -> String {
    format!("llm-cascade-test:{test}:{:016x}:", fastrand::u64(..))
}

/// A store that never flushes in the background within a test: what another instance sees, it
/// sees because a check or a write carried it (or because the test flushed).
fn store(url: &str, prefix: &str) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::new(url)
            .expect("a Redis URL")
            .with_prefix(prefix)
            .with_timeout(PATIENT)
            .with_flush_interval(Duration::from_secs(3600)),
    )
}

async fn serve(provider: &str, scenario: &str, route: &str, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Fixture::load(provider, scenario)
        .mount(&server, "POST", route, times)
        .await;
    server
}

/// OpenAI at `openai` and Groq at `groq` with the canary key, in `order`; waits longer than 0 s cool.
fn env(openai: &MockServer, groq: &MockServer, order: &str) -> MapEnv {
    MapEnv::new()
        .with("OPENAI_API_KEY", CANARY_KEY)
        .with("OPENAI_BASE_URL", format!("{}/v1", openai.uri()))
        .with("GROQ_API_KEY", CANARY_KEY)
        .with("GROQ_BASE_URL", format!("{}/openai/v1", groq.uri()))
        .with("LLM_FALLBACK_ORDER", order)
        .with("LLM_BACKOFF_MS", "10")
        .with("LLM_MAX_RETRY_WAIT", "0s")
}

/// One instance: a cascade from `env` with its own store on the shared Redis.
fn instance(env: &MapEnv, url: &str, prefix: &str) -> Cascade {
    Cascade::from_env_source(env)
        .expect("valid configuration")
        .with_state_store(store(url, prefix))
}

fn hi() -> ChatRequest {
    ChatRequest::from_prompt("hi")
}

fn outcomes(attempts: &[Attempt]) -> Vec<(&str, Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.outcome))
        .collect()
}

fn skip_reason(attempt: &Attempt) -> &SkipReason {
    &attempt.skip.as_ref().expect("a skip").reason
}

#[tokio::test]
async fn a_rate_limit_met_by_one_instance_keeps_the_other_from_calling_that_provider() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("cooling");
    let openai_one = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 1).await;
    let openai_two = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 0).await;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 2).await;
    let one = instance(&env(&openai_one, &groq, "openai,groq"), &url, &prefix);
    let two = instance(&env(&openai_two, &groq, "openai,groq"), &url, &prefix);

    let first = one.chat(hi()).await.expect("groq answers");
    assert_eq!(
        outcomes(&first.attempts),
        [
            ("openai", Outcome::Failed(ErrorKind::RateLimit)),
            ("groq", Outcome::Ok)
        ]
    );
    let second = two.chat(hi()).await.expect("groq answers");
    assert_eq!(
        outcomes(&second.attempts),
        [("openai", Outcome::Skipped), ("groq", Outcome::Ok)]
    );
    assert!(
        matches!(skip_reason(&second.attempts[0]), SkipReason::Cooling { source } if source == "Retry-After")
    );
    // `openai_two` expects no request: checked when it is dropped.
}

#[tokio::test]
async fn a_budget_is_spent_across_both_instances() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("budget");
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 2).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let env = env(&openai, &groq, "groq,openai").with("GROQ_RPM", "2");
    // One clock for both, a second into a minute: the two requests cannot straddle two windows.
    let clock = minute_start_clock();
    let one = instance(&env, &url, &prefix).with_state_clock(clock);
    let two = instance(&env, &url, &prefix).with_state_clock(clock);

    for cascade in [&one, &two] {
        let answer = cascade.chat(hi()).await.expect("groq answers");
        assert_eq!(outcomes(&answer.attempts), [("groq", Outcome::Ok)]);
    }
    for cascade in [&two, &one] {
        let answer = cascade.chat(hi()).await.expect("openai answers");
        assert_eq!(
            outcomes(&answer.attempts),
            [("groq", Outcome::Skipped), ("openai", Outcome::Ok)]
        );
        assert!(
            matches!(skip_reason(&answer.attempts[0]), SkipReason::Budget { setting } if setting == "GROQ_RPM=2")
        );
    }
}

/// The state clock shifted to one second past the start of the next minute.
fn minute_start_clock() -> StateClock {
    let now = StateClock::default().now_ms();
    let to_next_minute = 60_000 - now % 60_000;
    StateClock::with_offset(i64::try_from(to_next_minute + 1_000).expect("small"))
}

#[tokio::test]
async fn a_breaker_opened_by_one_instance_is_seen_by_the_other() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("breaker");
    let groq_one = serve("groq", "error.500.server", GROQ_ROUTE, 1).await;
    let groq_two = serve("groq", "error.500.server", GROQ_ROUTE, 0).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let breaker = |env: MapEnv| {
        env.with("LLM_BREAKER_FAILURES", "1")
            .with("LLM_MAX_ATTEMPTS", "1")
    };
    let one = instance(
        &breaker(env(&openai, &groq_one, "groq,openai")),
        &url,
        &prefix,
    );
    let two = instance(
        &breaker(env(&openai, &groq_two, "groq,openai")),
        &url,
        &prefix,
    );

    let first = one.chat(hi()).await.expect("openai answers");
    assert_eq!(
        outcomes(&first.attempts),
        [
            ("groq", Outcome::Failed(ErrorKind::ServerError)),
            ("openai", Outcome::Ok)
        ]
    );
    let second = two.chat(hi()).await.expect("openai answers");
    assert_eq!(
        outcomes(&second.attempts),
        [("groq", Outcome::Skipped), ("openai", Outcome::Ok)]
    );
    assert_eq!(skip_reason(&second.attempts[0]), &SkipReason::CircuitOpen);
}

#[tokio::test]
async fn a_copy_that_says_ready_still_asks_redis_and_sees_the_others_breaker() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("ready-copy");
    let groq_up = serve("groq", "chat.success", GROQ_ROUTE, 1).await;
    let groq_down = serve("groq", "error.500.server", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 2).await;
    let breaker = |groq: &MockServer| {
        env(&openai, groq, "groq,openai")
            .with("LLM_BREAKER_FAILURES", "1")
            .with("LLM_MAX_ATTEMPTS", "1")
    };
    let one = instance(&breaker(&groq_down), &url, &prefix);
    let two = instance(&breaker(&groq_up), &url, &prefix);

    // Two's copy of Groq says ready; then one's failure opens Groq's breaker in Redis.
    let healthy = two.chat(hi()).await.expect("groq answers");
    assert_eq!(outcomes(&healthy.attempts), [("groq", Outcome::Ok)]);
    one.chat(hi()).await.expect("openai answers");
    // A copy only ever skips on its own: one that says ready asks Redis, which says open.
    let after = two.chat(hi()).await.expect("openai answers");
    assert_eq!(
        outcomes(&after.attempts),
        [("groq", Outcome::Skipped), ("openai", Outcome::Ok)]
    );
}

/// The state under `key`, as a fresh instance reads it.
async fn read(url: &str, prefix: &str, key: &str) -> ProviderState {
    let mut seen = ProviderState::default();
    store(url, prefix)
        .modify(key, &mut |state| seen = state.clone())
        .await;
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_changes_from_two_stores_lose_no_update() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("concurrent");
    let stores = [store(&url, &prefix), store(&url, &prefix)];
    let changes = (0..50).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move {
            store
                .modify("counter/m", &mut |state| state.minute.requests += 1)
                .await;
        })
    });
    for change in join_all(changes).await {
        change.expect("the change ran");
    }
    for store in &stores {
        let health = store.health().expect("a Redis store reports its health");
        assert_eq!((health.fallbacks, health.outages), (0, 0), "{health:?}");
        assert!(health.round_trips >= 25, "{health:?}");
    }
    assert_eq!(read(&url, &prefix, "counter/m").await.minute.requests, 50);
}

#[tokio::test]
async fn keys_carry_a_ttl_covering_a_day_and_the_longest_cooling() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("ttl");
    let store = store(&url, &prefix);
    store
        .modify("groq/m", &mut |state| state.day.requests += 1)
        .await;
    let day_ms = 86_400_000;
    let ttl = pttl(&url, &format!("{prefix}groq/m")).await;
    assert!(ttl > day_ms && ttl <= 2 * day_ms, "{ttl} ms");
    let in_five_days = StateClock::default().now_ms() + 5 * day_ms as u64;
    store
        .modify("groq/m", &mut |state| {
            state.cooling_until_ms = Some(in_five_days);
        })
        .await;
    let ttl = pttl(&url, &format!("{prefix}groq/m")).await;
    assert!(ttl > 5 * day_ms, "{ttl} ms");
}

async fn pttl(url: &str, key: &str) -> i64 {
    let client = redis::Client::open(url).expect("url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut connection)
        .await
        .expect("PTTL")
}

#[tokio::test]
async fn the_environment_chooses_redis_and_rejects_a_url_that_is_not_one() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("env");
    let env = MapEnv::new()
        .with("GROQ_API_KEY", CANARY_KEY)
        .with("LLM_STATE_URL", url.as_str())
        .with("LLM_STATE_PREFIX", prefix.as_str());
    let cascade = Cascade::from_env_source(&env).expect("valid configuration");
    let health = cascade.state_health().expect("a shared store");
    assert_eq!((health.backend, health.reachable), ("redis", true));
    let memory = Cascade::from_env_source(&MapEnv::new().with("GROQ_API_KEY", CANARY_KEY))
        .expect("valid configuration");
    assert_eq!(memory.state_health(), None);
    let wrong = env
        .clone()
        .with("LLM_STATE_URL", "http://app:canary-pass-2222@cache:6379/");
    let error = Cascade::from_env_source(&wrong).expect_err("not a Redis URL");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.message().starts_with("LLM_STATE_URL:"), "{error}");
    assert!(!error.to_string().contains("canary-pass-2222"), "{error}");
    let no_ca = env.with("LLM_STATE_CA_FILE", "/nonexistent/ca.pem");
    let error = Cascade::from_env_source(&no_ca).expect_err("an unreadable CA file");
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(
        error
            .message()
            .starts_with("LLM_STATE_CA_FILE: cannot read the CA certificate `/nonexistent/ca.pem`"),
        "{error}"
    );
}

/// Captured log output.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn count(&self, needle: &str) -> usize {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).matches(needle).count()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn an_unreachable_redis_serves_every_request_on_local_state_and_warns_once() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test (the reconnect one) may have been registering the warning's callsite while this
    // subscriber was being set: without this, that callsite can keep a stale "nobody listens".
    tracing::callsite::rebuild_interest_cache();
    let store = Arc::new(
        RedisStore::new(&format!(
            "redis://127.0.0.1:{}/",
            llm_test_support::refused_port()
        ))
        .expect("url"),
    );
    let groq = Arc::new(Fake::new(
        "groq",
        vec![Step::Fail(
            ErrorKind::RateLimit,
            Some(429),
            Some(Duration::from_secs(600)),
        )],
    ));
    let openai = Arc::new(Fake::new(
        "openai",
        vec![Step::Reply("one"), Step::Reply("two"), Step::Reply("three")],
    ));
    let cascade = CascadeBuilder::new()
        .config(fast_config())
        .provider_arc(groq.clone())
        .provider_arc(openai.clone())
        .build()
        .with_state_store(store.clone());
    for _ in 0..3 {
        cascade.chat(hi()).await.expect("served without Redis");
    }
    // The cooling learned by the first request lives on locally: groq was not asked again.
    assert_eq!(groq.calls(), 1);
    // And a status read shows it from the same local state.
    let statuses = cascade.provider_statuses(cascade.providers()).await;
    assert!(
        matches!(statuses[0].condition, Condition::Cooling { .. }),
        "{:?}",
        statuses[0]
    );
    let health = store.health().expect("health");
    assert!(!health.reachable);
    assert_eq!((health.outages, health.round_trips), (1, 0), "{health:?}");
    assert!(health.fallbacks >= 3, "{health:?}");
    assert_eq!(logs.count("provider state is not shared"), 1);
}

/// A loopback TCP proxy in front of Redis that can be cut (every connection closed, new ones closed
/// at once) and restored: Redis going away and coming back.
struct Proxy {
    url: String,
    up: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(redis: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("redis://{}/", listener.local_addr().expect("addr"));
        let up = Arc::new(AtomicBool::new(true));
        let pipes = Arc::new(Mutex::new(Vec::new()));
        let (accepting, piping) = (up.clone(), pipes.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(redis).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                piping
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(pipe);
            }
        });
        Self { url, up, pipes }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for pipe in self
            .pipes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            pipe.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn socket_address(url: &str) -> SocketAddr {
    let authority = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap_or_default();
    tokio::net::lookup_host(authority)
        .await
        .expect("resolve")
        .next()
        .expect("an address")
}

#[tokio::test]
async fn a_store_reconnects_when_redis_is_back_and_shares_what_it_learned_meanwhile() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("reconnect");
    let proxy = Proxy::start(socket_address(&url).await).await;
    let store = Arc::new(
        RedisStore::new(&proxy.url)
            .expect("url")
            .with_prefix(prefix.as_str())
            .with_timeout(PATIENT)
            .with_probe_interval(Duration::ZERO),
    );
    let fail = |state: &mut ProviderState| state.failures += 1;
    store.modify("groq/m", &mut |s| fail(s)).await;
    assert_eq!(store.health().expect("health").round_trips, 1);

    proxy.cut();
    store.modify("groq/m", &mut |s| fail(s)).await;
    let health = store.health().expect("health");
    assert!(
        !health.reachable && health.outages == 1 && health.fallbacks == 1,
        "{health:?}"
    );
    assert_eq!(
        read(&url, &prefix, "groq/m").await.failures,
        1,
        "not shared yet"
    );

    proxy.restore();
    // Changes while down start a reconnection in the background; wait until one succeeded.
    for _ in 0..500 {
        if store.health().expect("health").reachable {
            break;
        }
        store.modify("groq/m", &mut |_| {}).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(store.health().expect("health").reachable, "reconnected");
    store.modify("groq/m", &mut |_| {}).await;
    assert_eq!(
        read(&url, &prefix, "groq/m").await.failures,
        2,
        "the outage's change is shared"
    );
    assert_eq!(store.health().expect("health").outages, 1);
}

fn round_trips(cascade: &Cascade) -> u64 {
    cascade.state_health().expect("a Redis store").round_trips
}

#[tokio::test]
async fn a_healthy_attempt_costs_one_round_trip_and_a_transition_one_more() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("rounds");
    let calls = 5;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, calls).await;
    let openai = serve("openai", "error.500.server", OPENAI_ROUTE, 1).await;
    let env = env(&openai, &groq, "openai,groq")
        .with("LLM_BREAKER_FAILURES", "1")
        .with("LLM_MAX_ATTEMPTS", "1");
    let cascade = instance(&env, &url, &prefix);

    // OpenAI fails and its breaker opens: its check, the opening written at once, Groq's check.
    let first = cascade.chat(hi()).await.expect("groq answers");
    assert_eq!(
        outcomes(&first.attempts),
        [
            ("openai", Outcome::Failed(ErrorKind::ServerError)),
            ("groq", Outcome::Ok)
        ]
    );
    assert_eq!(round_trips(&cascade), 3);
    // Then OpenAI is skipped on this process's copy (its breaker is open until a time no other
    // instance can bring forward: no round trip) and Groq answers (its check carries the last tokens).
    for _ in 1..calls {
        let before = round_trips(&cascade);
        let answer = cascade.chat(hi()).await.expect("groq answers");
        assert_eq!(
            outcomes(&answer.attempts),
            [("openai", Outcome::Skipped), ("groq", Outcome::Ok)]
        );
        assert_eq!(round_trips(&cascade) - before, 1);
    }
    let health = cascade.state_health().expect("a Redis store");
    assert_eq!((health.flushes, health.fallbacks), (0, 0), "{health:?}");
}

#[tokio::test]
async fn healthy_calls_cost_one_round_trip_each() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("healthy");
    let calls = 10;
    let groq = serve("groq", "chat.success", GROQ_ROUTE, calls).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 0).await;
    let cascade = instance(&env(&openai, &groq, "groq"), &url, &prefix)
        .with_state_clock(minute_start_clock());
    for _ in 0..calls {
        cascade.chat(hi()).await.expect("groq answers");
    }
    assert_eq!(round_trips(&cascade), calls);
    // The last call's tokens are pending: the next read of the key carries them.
    let groq_provider = cascade.providers()[0].clone();
    let mine = cascade.provider_state(groq_provider.as_ref()).await;
    cascade.flush_state().await;
    let key = format!("groq/{}", groq_provider.model());
    let shared = read(&url, &prefix, &key).await;
    assert_eq!(shared.minute.requests, calls);
    assert!(shared.minute.tokens >= calls, "{shared:?}");
    assert_eq!(shared.minute.tokens, mine.minute.tokens);
    let health = cascade.state_health().expect("a Redis store");
    // `provider_state` read the key (one round trip that writes nothing, showing the pending tokens
    // as they will be); the flush then wrote them.
    assert_eq!(
        (health.round_trips, health.flushes),
        (calls + 2, 1),
        "{health:?}"
    );
}

#[tokio::test]
async fn the_chains_status_is_one_read_that_shows_what_another_instance_learned() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("statuses");
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 2).await;
    // "Please try again in 26.604s": longer than LLM_MAX_RETRY_WAIT, so OpenAI cools.
    let openai = serve("openai", "error.429.rate_limit", OPENAI_ROUTE, 1).await;
    let env = env(&openai, &groq, "openai,groq");
    let one = instance(&env, &url, &prefix);
    let two = instance(&env, &url, &prefix);
    one.chat(hi()).await.expect("groq answers");

    let statuses = two.provider_statuses(two.providers()).await;
    assert_eq!(round_trips(&two), 1, "one read for the whole chain");
    assert!(
        matches!(&statuses[0].condition, Condition::Cooling { source, .. } if source == "Retry-After"),
        "{:?}",
        statuses[0]
    );
    assert_eq!(statuses[1].condition, Condition::Ready);
    assert_eq!(statuses[1].failures, 0);
    // A read changes nothing: the next instance still finds OpenAI cooling, and only Groq is called.
    let answer = two.chat(hi()).await.expect("groq answers");
    assert_eq!(
        outcomes(&answer.attempts),
        [("openai", Outcome::Skipped), ("groq", Outcome::Ok)]
    );
}

/// OpenAI and Groq, Groq first with a budget of one token a minute, on one clock a second into a
/// minute (so that both instances count in one window).
fn token_budget_env(openai: &MockServer, groq: &MockServer) -> MapEnv {
    env(openai, groq, "groq,openai").with("GROQ_TPM", "1")
}

fn expect_groq_over_budget(answer: &llm_cascade::CascadeResponse) {
    assert_eq!(
        outcomes(&answer.attempts),
        [("groq", Outcome::Skipped), ("openai", Outcome::Ok)]
    );
    assert!(
        matches!(skip_reason(&answer.attempts[0]), SkipReason::Budget { setting } if setting == "GROQ_TPM=1")
    );
}

#[tokio::test]
async fn tokens_counted_by_one_instance_reach_the_others_budget_once_flushed() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("tokens");
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 1).await;
    let env = token_budget_env(&openai, &groq);
    let clock = minute_start_clock();
    let one = instance(&env, &url, &prefix).with_state_clock(clock);
    let two = instance(&env, &url, &prefix).with_state_clock(clock);

    let first = one.chat(hi()).await.expect("groq answers");
    assert_eq!(outcomes(&first.attempts), [("groq", Outcome::Ok)]);
    one.flush_state().await;
    assert_eq!(one.state_health().expect("redis").flushes, 1);
    expect_groq_over_budget(&two.chat(hi()).await.expect("openai answers"));
}

/// Reads `key` until `seen` says yes; a change flushed in the background arrives within the flush
/// interval, polled here without asserting on time.
async fn eventually(url: &str, prefix: &str, key: &str, seen: impl Fn(&ProviderState) -> bool) {
    for _ in 0..1000 {
        if seen(&read(url, prefix, key).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{key} never showed the change: {:?}",
        read(url, prefix, key).await
    );
}

#[tokio::test]
async fn pending_tokens_are_flushed_in_the_background_also_after_the_cascade_is_dropped() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("flush");
    let groq = serve("groq", "chat.success", GROQ_ROUTE, 1).await;
    let openai = serve("openai", "chat.success", OPENAI_ROUTE, 0).await;
    let store = Arc::new(
        RedisStore::new(&url)
            .expect("a Redis URL")
            .with_prefix(prefix.as_str())
            .with_timeout(PATIENT)
            .with_flush_interval(Duration::from_millis(20)),
    );
    let cascade = Cascade::from_env_source(&env(&openai, &groq, "groq"))
        .expect("valid configuration")
        .with_state_store(store.clone());
    cascade.chat(hi()).await.expect("groq answers");
    let key = format!("groq/{}", cascade.providers()[0].model());
    drop((cascade, store));
    eventually(&url, &prefix, &key, |state| state.minute.tokens > 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_deferred_changes_from_two_stores_are_all_counted_once_flushed() {
    let Some(url) = redis_url() else { return };
    let prefix = prefix("deferred");
    let stores = [store(&url, &prefix), store(&url, &prefix)];
    let changes = (0..50).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move {
            let change: Deferred = Arc::new(|state: &mut ProviderState| state.minute.tokens += 1);
            store.defer("counter/m", change).await;
        })
    });
    for change in join_all(changes).await {
        change.expect("the change ran");
    }
    for store in &stores {
        assert_eq!(
            store.health().expect("health").round_trips,
            0,
            "all pending"
        );
    }
    join_all(stores.iter().map(|store| store.flush())).await;
    for store in &stores {
        let health = store.health().expect("health");
        assert_eq!((health.flushes, health.fallbacks), (1, 0), "{health:?}");
    }
    assert_eq!(read(&url, &prefix, "counter/m").await.minute.tokens, 50);
}

#[tokio::test]
async fn state_is_shared_over_tls_and_the_server_certificate_is_verified() {
    let Some((url, ca)) = redis_tls() else {
        return;
    };
    let prefix = prefix("tls");
    let trusting = || {
        RedisStore::with_ca_certificate(&url, &ca)
            .expect("a rediss:// URL")
            .with_prefix(&prefix)
            .with_timeout(PATIENT)
    };
    let (a, b) = (trusting(), trusting());
    a.modify("groq/m", &mut |state| state.failures = 2).await;
    let mut seen = 0;
    b.modify("groq/m", &mut |state| seen = state.failures).await;
    assert_eq!(seen, 2, "one instance's change is the other's, over TLS");
    let health = a.health().expect("health");
    assert!(health.reachable && health.fallbacks == 0, "{health:?}");
    // Trusting only the system's CAs, the test server's certificate is refused: no round trip, the
    // change stays local.
    let untrusting = RedisStore::new(&url)
        .expect("a rediss:// URL")
        .with_prefix(&prefix)
        .with_timeout(PATIENT);
    untrusting
        .modify("groq/m", &mut |state| state.failures = 5)
        .await;
    let health = untrusting.health().expect("health");
    assert_eq!(
        (health.reachable, health.round_trips, health.fallbacks),
        (false, 0, 1),
        "{health:?}"
    );
    let mut seen = 0;
    b.modify("groq/m", &mut |state| seen = state.failures).await;
    assert_eq!(seen, 2, "the refused connection wrote nothing");
}
