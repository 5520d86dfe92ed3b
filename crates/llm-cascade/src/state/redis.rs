//! Provider state shared through Redis (`LLM_STATE_URL=redis://…`): several gateway or app instances
//! see each other's cooling, breaker transitions and budget counters.
//!
//! Each provider and model is one Redis string, `<prefix><provider>/<model>`, holding a version token
//! (16 hex digits) and then the state as JSON. A write sends this process's copy, changed, with the
//! token that copy was read at, to a Lua script that writes it only when the stored token still
//! matches: one round trip. Otherwise the script returns the stored value, and the changes are
//! applied again to that (optimistic compare-and-set; the engine's changes are pure functions of the
//! state, so applying one again is safe). Tokens are random, so a key that expired and was written
//! again never matches an old copy. Within a process, changes to one key take turns, so only other
//! instances can conflict.
//!
//! One round trip per attempt: the check before an attempt ([`StateStore::modify`]) is always one
//! atomic write, fresh from Redis (it takes the request slot, or the half-open probe, for all
//! instances at once). What an attempt did ([`StateStore::defer`]) is applied to this process's copy
//! at once, and written at once only when it changes what a check decides (cooling starts or moves,
//! the breaker opens, closes or its open time moves, a probe ends, a key is disabled: see
//! [`ProviderState::decisive`]). Anything else (token counts, failures below the breaker's threshold)
//! is kept pending and carried by the next check of that key, or by a background flush at most
//! `flush_after` (1 s by default) later when no check comes: other instances see token budgets that
//! late at most. A report that changes nothing in the copy costs nothing. So a healthy attempt costs
//! one round trip, an attempt that changes a provider's state for everyone two. A process that ends
//! awaits [`StateStore::flush`] (the CLI does); a dropped store's scheduled flushes still run while
//! the runtime does.
//!
//! Keys expire by themselves: each write sets a TTL of two days (a day's budget window and more), or
//! an hour past the latest cooling or breaker time when that is further ahead.
//!
//! Redis never fails a request: when it is unreachable, erroring or slower than the timeout (100 ms
//! by default, for connecting and the whole write together; also when other instances kept changing
//! the key first for that long), the change (and what was pending) is applied to the local copy,
//! [`StoreHealth::fallbacks`] counts it, and one warning is logged for the outage. While it is down no
//! request waits for it: a background task tries to reconnect at most once a second; once it has, the
//! next write goes to Redis again and carries what this process learned meanwhile (unless another
//! instance changed that state first: then the shared state wins).
//!
//! The timeouts run on tokio's clock: under a paused test clock, which jumps ahead while a socket is
//! read, use a [`super::MemoryStore`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_core::Error;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex as AsyncMutex;
use tracing::{debug, info, warn};

use super::shared::STATE_URL_VAR;
use super::{Change, Deferred, ProviderState, StateStore, StoreHealth};

/// The default key prefix; `v1` names the value's format.
pub(crate) const DEFAULT_PREFIX: &str = "llm-cascade:state:v1:";
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_TTL: Duration = Duration::from_secs(2 * 86_400);
const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(1);
const DEFAULT_FLUSH_AFTER: Duration = Duration::from_secs(1);
const HOUR_MS: u64 = 3_600_000;
/// The length of a version token; the script reads the same number of characters.
const TOKEN_LEN: usize = 16;

/// KEYS[1]: the key. ARGV[1]: the token the caller's copy was read at (`''`: no value was stored).
/// ARGV[2]: the new value (`''`: nothing to write). ARGV[3]: its TTL in milliseconds.
/// Returns `{1, ''}` when the copy was current (and the value written), else `{0, stored value}`.
const SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
local token = ''
if current then token = string.sub(current, 1, 16) end
if token ~= ARGV[1] then return {0, current or ''} end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return {1, ''}
";

/// Provider state in Redis, shared by every process that uses the same URL and key prefix. See the
/// module documentation for the protocol; [`RedisStore::health`](StateStore::health) reports how it
/// is doing.
pub struct RedisStore {
    prefix: String,
    timing: Timing,
    /// This process's copy of each key's state, each behind its own lock.
    copies: Mutex<HashMap<String, Arc<AsyncMutex<Held>>>>,
    link: Arc<Link>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.link.target)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timing.timeout)
            .field("flush_after", &self.timing.flush_after)
            .finish_non_exhaustive()
    }
}

/// The store's times, copied into the tasks that write in the background.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// Bounds connecting and one write, all its rounds together.
    timeout: Duration,
    /// The shortest TTL of a written key.
    ttl: Duration,
    /// While Redis is down, reconnect at most this often.
    probe_every: Duration,
    /// Pending changes are written at most this long after the first of them.
    flush_after: Duration,
}

/// A copy of one key's state, and the version of the stored value it was read at.
#[derive(Default)]
struct Held {
    /// The version token (`""`: no value was stored).
    token: String,
    /// The stored state at `token`, with `pending` applied.
    state: ProviderState,
    /// Changed while Redis was unreachable: the next write writes it even when it changes nothing.
    dirty: bool,
    /// Changes applied to `state` but not written yet: the next write carries them (applied again
    /// to the stored value when another instance wrote first).
    pending: Vec<Deferred>,
    /// When the background flush of `pending` is due (`None`: none is scheduled).
    flush_due: Option<std::time::Instant>,
}

impl Held {
    /// The copy of a stored value (`""`: none). A value this build cannot read (a newer format)
    /// reads as the default state, so that the next change replaces it.
    fn parse(value: &str) -> Self {
        if value.is_empty() {
            return Self::default();
        }
        let token = value.get(..TOKEN_LEN).unwrap_or(value);
        let state = value
            .get(TOKEN_LEN..)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        Self {
            token: token.to_owned(),
            state,
            ..Self::default()
        }
    }

    /// Takes `value` (another instance's write) as the base, with this copy's pending changes
    /// applied to it again.
    fn rebase(&mut self, value: &str) {
        let fresh = Self::parse(value);
        self.token = fresh.token;
        self.state = fresh.state;
        self.dirty = false;
        for change in &self.pending {
            change(&mut self.state);
        }
    }

    /// Redis did not take the last write: what was pending stays in the local state, written with
    /// the first write after the outage.
    fn keep_locally(&mut self) {
        self.dirty = true;
        self.pending.clear();
    }
}

/// Why a change did not reach Redis: it is unreachable or answered with an error.
struct Failure(String);

/// The connection and what is known about Redis's health; shared with the background tasks.
struct Link {
    client: redis::Client,
    /// The URL without its user and password, for messages.
    target: String,
    script: redis::Script,
    connection: AsyncMutex<Option<MultiplexedConnection>>,
    /// Redis is considered unreachable: changes stay local until a reconnection succeeds.
    down: AtomicBool,
    /// A reconnecting task is running.
    probing: AtomicBool,
    /// When the last outage began or the last reconnection was tried.
    last_probe: Mutex<Option<std::time::Instant>>,
    round_trips: AtomicU64,
    conflicts: AtomicU64,
    fallbacks: AtomicU64,
    outages: AtomicU64,
    /// Writes of pending changes alone (background flushes and [`StateStore::flush`]).
    flushes: AtomicU64,
}

impl RedisStore {
    /// A store in the Redis at `url` (`redis://[user][:password@]host[:port][/db]`, `rediss://…`
    /// for TLS with the server's certificate verified against the system's CAs, or
    /// `redis+unix:///path`), with the default prefix, a 100 ms timeout, a two-day TTL and pending
    /// changes flushed within a second. Does no network I/O: the connection is made by the first
    /// change. A password in the URL is registered for redaction and never shown.
    ///
    /// # Errors
    /// A config error naming `LLM_STATE_URL` when `url` is not a Redis URL this build can use.
    pub fn new(url: &str) -> Result<Self, Error> {
        Self::open(url, None)
    }

    /// A store in the Redis at a `rediss://` `url` whose certificate is signed by the CA in `ca_pem`
    /// (PEM), instead of one this system trusts (a private CA: `LLM_STATE_CA_FILE`).
    ///
    /// # Errors
    /// As [`RedisStore::new`], and when `ca_pem` is not a PEM certificate.
    pub fn with_ca_certificate(url: &str, ca_pem: &[u8]) -> Result<Self, Error> {
        Self::open(url, Some(ca_pem))
    }

    fn open(url: &str, ca_pem: Option<&[u8]>) -> Result<Self, Error> {
        if let Some(password) = password(url) {
            llm_core::register_secret(password);
        }
        let target = without_credentials(url);
        let client = match ca_pem {
            None => redis::Client::open(url),
            Some(pem) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
        };
        let client = client.map_err(|e| {
            Error::config(format!(
                "{STATE_URL_VAR}: `{target}` is not a usable Redis URL (redis://host:port/db, or \
                 rediss:// for TLS): {}",
                llm_core::sanitize(&e.to_string())
            ))
        })?;
        Ok(Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            timing: Timing {
                timeout: DEFAULT_TIMEOUT,
                ttl: DEFAULT_TTL,
                probe_every: DEFAULT_PROBE_EVERY,
                flush_after: DEFAULT_FLUSH_AFTER,
            },
            copies: Mutex::default(),
            link: Arc::new(Link {
                client,
                target,
                script: redis::Script::new(SCRIPT),
                connection: AsyncMutex::new(None),
                down: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                last_probe: Mutex::new(None),
                round_trips: AtomicU64::new(0),
                conflicts: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
                outages: AtomicU64::new(0),
                flushes: AtomicU64::new(0),
            }),
        })
    }

    /// The store for `url`, `prefix` and CA certificate (see [`RedisStore::with_ca_certificate`]) in
    /// this process: one per triple while it is in use, so that cascades built one per request share
    /// its connection and copies.
    ///
    /// # Errors
    /// As [`RedisStore::new`] and [`RedisStore::with_ca_certificate`].
    pub fn shared(url: &str, prefix: &str, ca_pem: Option<&[u8]>) -> Result<Arc<Self>, Error> {
        type Stores = Vec<(String, String, Option<Vec<u8>>, Weak<RedisStore>)>;
        static STORES: Mutex<Stores> = Mutex::new(Vec::new());
        let mut stores = STORES.lock().unwrap_or_else(PoisonError::into_inner);
        stores.retain(|(.., store)| store.strong_count() > 0);
        let found = stores
            .iter()
            .find(|(u, p, c, _)| u == url && p == prefix && c.as_deref() == ca_pem)
            .and_then(|(.., store)| store.upgrade());
        if let Some(store) = found {
            return Ok(store);
        }
        let store = Arc::new(Self::open(url, ca_pem)?.with_prefix(prefix));
        stores.push((
            url.to_owned(),
            prefix.to_owned(),
            ca_pem.map(<[u8]>::to_vec),
            Arc::downgrade(&store),
        ));
        Ok(store)
    }

    /// Puts every key under `prefix` (default `llm-cascade:state:v1:`), so that several deployments
    /// can share one Redis without sharing state.
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Bounds connecting and each write (all its rounds together) by `timeout` (default 100 ms);
    /// past it the change is served on local state.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timing.timeout = timeout;
        self
    }

    /// Sets the shortest TTL of a written key (default two days; longer when a cooling or breaker
    /// time lies further ahead).
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.timing.ttl = ttl;
        self
    }

    /// While Redis is down, tries to reconnect at most this often (default every second).
    #[must_use]
    pub fn with_probe_interval(mut self, every: Duration) -> Self {
        self.timing.probe_every = every;
        self
    }

    /// Writes pending changes (token counts, failures below the breaker's threshold) at most this
    /// long after the first of them when no check of their key carries them first (default one
    /// second): how late other instances may see this one's token counts.
    #[must_use]
    pub fn with_flush_interval(mut self, after: Duration) -> Self {
        self.timing.flush_after = after;
        self
    }

    /// This process's copy of `key`, created empty on first use.
    fn copy(&self, key: &str) -> Arc<AsyncMutex<Held>> {
        let mut copies = self.copies.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(copy) = copies.get(key) {
            return copy.clone();
        }
        copies.entry(key.to_owned()).or_default().clone()
    }

    /// This process's copy of `key`, if it has one (a read makes none).
    fn existing_copy(&self, key: &str) -> Option<Arc<AsyncMutex<Held>>> {
        let copies = self.copies.lock().unwrap_or_else(PoisonError::into_inner);
        copies.get(key).cloned()
    }

    /// The stored values of `keys` (`None` for a key with none), in one `MGET`.
    async fn get_all(&self, keys: &[String]) -> Result<Vec<Option<String>>, Failure> {
        let mut connection = self.link.connection().await?;
        let names: Vec<String> = keys.iter().map(|k| format!("{}{k}", self.prefix)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&names)
            .query_async(&mut connection)
            .await
            .map_err(|e| Failure(e.to_string()))?;
        self.link.round_trips.fetch_add(1, Ordering::Relaxed);
        Ok(values)
    }

    /// The stored values of `keys`, or `None` when Redis is down or fails now (then it is taken as
    /// down, as after a failed change).
    async fn stored(&self, keys: &[String]) -> Option<Vec<Option<String>>> {
        if self.link.down.load(Ordering::Acquire) {
            return None;
        }
        let why = match tokio::time::timeout(self.timing.timeout, self.get_all(keys)).await {
            Ok(Ok(values)) if values.len() == keys.len() => return Some(values),
            Ok(Ok(_)) => "MGET answered a different number of values".to_owned(),
            Ok(Err(Failure(why))) => why,
            Err(_) => format!("no answer within {} ms", self.timing.timeout.as_millis()),
        };
        self.link.fail(&why);
        self.link.fallbacks.fetch_add(1, Ordering::Relaxed);
        probe_later(&self.link, self.timing);
        None
    }

    /// The writer of `key`.
    fn writer(&self, key: &str) -> Writer {
        Writer {
            link: self.link.clone(),
            timing: self.timing,
            key: format!("{}{key}", self.prefix),
        }
    }

    /// Writes the pending changes of `key` (held in `copy`) within the flush interval, unless one is
    /// scheduled already or there is no runtime to run it (then the next check carries them).
    fn flush_later(&self, key: &str, copy: &Arc<AsyncMutex<Held>>, held: &mut Held) {
        let now = std::time::Instant::now();
        // A flush past due by more than a write's timeout was lost with its runtime: schedule anew.
        if held
            .flush_due
            .is_some_and(|due| now < due + self.timing.timeout)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        held.flush_due = Some(now + self.timing.flush_after);
        let writer = self.writer(key);
        let copy = copy.clone();
        // The task owns the copy and the connection: it runs also when the store is dropped first.
        runtime.spawn(async move {
            tokio::time::sleep(writer.timing.flush_after).await;
            writer.flush(&copy).await;
        });
    }
}

/// Writes one key: the connection, the store's times and the key's full name.
struct Writer {
    link: Arc<Link>,
    timing: Timing,
    key: String,
}

impl Writer {
    /// Writes `copy` changed by `change` (and its pending changes) to Redis, else applies it
    /// locally (Redis unreachable, erroring or too slow) and counts a fallback.
    async fn write(&self, copy: &mut Held, change: &mut Change<'_>) {
        if !self.link.down.load(Ordering::Acquire) {
            let answered = AtomicU64::new(0);
            let shared = self.shared_change(copy, change, &answered);
            match tokio::time::timeout(self.timing.timeout, shared).await {
                Ok(Ok(())) => return,
                Ok(Err(Failure(why))) => self.link.fail(&why),
                // Redis answers, but other instances kept changing this key first: not an outage.
                Err(_) if answered.load(Ordering::Relaxed) > 0 => {
                    debug!(
                        key = self.key,
                        "provider state: other instances kept changing it; applied locally"
                    );
                }
                Err(_) => self.link.fail(&format!(
                    "no answer within {} ms",
                    self.timing.timeout.as_millis()
                )),
            }
        }
        self.link.fallbacks.fetch_add(1, Ordering::Relaxed);
        change(&mut copy.state);
        copy.keep_locally();
        probe_later(&self.link, self.timing);
    }

    /// Applies `change` through Redis: compare-and-set rounds until one is current (the caller
    /// bounds them by the timeout). Counts the rounds Redis answered in `answered`. Between its
    /// awaits `copy` is always whole (the stored value at its token with its pending changes), so
    /// that the timeout may drop this future at any of them.
    async fn shared_change(
        &self,
        copy: &mut Held,
        change: &mut Change<'_>,
        answered: &AtomicU64,
    ) -> Result<(), Failure> {
        let mut connection = self.link.connection().await?;
        loop {
            let mut next = copy.state.clone();
            change(&mut next);
            let write = copy.dirty || !copy.pending.is_empty() || next != copy.state;
            let (token, value) = if write {
                let token = format!("{:016x}", fastrand::u64(..));
                let json = serde_json::to_string(&next)
                    .map_err(|e| Failure(format!("state not serialisable: {e}")))?;
                let value = format!("{token}{json}");
                (token, value)
            } else {
                (String::new(), String::new())
            };
            let (current, stored): (i64, String) = self
                .link
                .script
                .key(&self.key)
                .arg(&copy.token)
                .arg(&value)
                .arg(ttl_ms(self.timing.ttl, &next))
                .invoke_async(&mut connection)
                .await
                .map_err(|e| Failure(e.to_string()))?;
            self.link.round_trips.fetch_add(1, Ordering::Relaxed);
            answered.fetch_add(1, Ordering::Relaxed);
            if current == 1 {
                if write {
                    copy.token = token;
                    copy.state = next;
                    copy.dirty = false;
                    copy.pending.clear();
                }
                return Ok(());
            }
            self.link.conflicts.fetch_add(1, Ordering::Relaxed);
            copy.rebase(&stored);
        }
    }

    /// Writes what is pending in `copy`, if anything still is (a check may have carried it).
    async fn flush(&self, copy: &AsyncMutex<Held>) {
        let mut held = copy.lock().await;
        held.flush_due = None;
        if held.pending.is_empty() {
            return;
        }
        self.link.flushes.fetch_add(1, Ordering::Relaxed);
        self.write(&mut held, &mut |_| {}).await;
    }
}

/// The state to show for a key stored as `value` (`""`: nothing stored; `None`: Redis unread) of
/// which this process holds `copy`: the stored one with the copy's pending changes; the copy itself when
/// Redis was not read or the copy holds what an outage kept from it.
fn shown(value: Option<&str>, copy: &Held) -> ProviderState {
    match value {
        Some(value) if !copy.dirty => {
            let mut fresh = Held::parse(value);
            for change in &copy.pending {
                change(&mut fresh.state);
            }
            fresh.state
        }
        _ => copy.state.clone(),
    }
}

/// The TTL of a key holding `state`: `floor`, or an hour past its latest time when later.
fn ttl_ms(floor: Duration, state: &ProviderState) -> u64 {
    let floor = millis(floor);
    let latest = [
        state.cooling_until_ms,
        state.open_until_ms,
        state.probe_until_ms,
    ]
    .into_iter()
    .flatten()
    .max();
    latest.map_or(floor, |until| {
        floor.max(until.saturating_sub(wall_ms()).saturating_add(HOUR_MS))
    })
}

/// Starts a reconnection in the background when Redis is down and none was tried lately.
fn probe_later(link: &Arc<Link>, timing: Timing) {
    let due = link
        .last_probe
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_none_or(|at| at.elapsed() >= timing.probe_every);
    if !link.down.load(Ordering::Relaxed) || !due || link.probing.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        link.probing.store(false, Ordering::Release);
        return;
    };
    let link = link.clone();
    runtime.spawn(async move {
        let back = matches!(
            tokio::time::timeout(timing.timeout, link.reconnect()).await,
            Ok(Ok(()))
        );
        link.probed();
        if back {
            link.down.store(false, Ordering::Release);
            info!(redis = %link.target, "provider state is shared through Redis again");
        }
        link.probing.store(false, Ordering::Release);
    });
}

impl Link {
    /// The connection, made when there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, Failure> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let connection = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| Failure(e.to_string()))?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// A new connection that answers `PING`, kept for the next changes.
    async fn reconnect(&self) -> Result<(), redis::RedisError> {
        let mut connection = self.client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await?;
        *self.connection.lock().await = Some(connection);
        Ok(())
    }

    fn probed(&self) {
        *self
            .last_probe
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
    }

    /// Takes Redis as down after `why`: drops the connection and warns once per outage.
    fn fail(&self, why: &str) {
        // A connection being made holds the slot; it is bounded by its own timeout.
        if let Ok(mut slot) = self.connection.try_lock() {
            *slot = None;
        }
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.probed();
        self.outages.fetch_add(1, Ordering::Relaxed);
        warn!(
            redis = %self.target,
            "provider state is not shared: Redis at {} failed ({}); using this process's memory until it is back",
            self.target,
            llm_core::sanitize(why)
        );
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStore {
    /// One write, fresh from Redis (a check takes its request slot for every instance), carrying
    /// what is pending for `key`.
    async fn modify(&self, key: &str, change: &mut Change<'_>) {
        let copy = self.copy(key);
        let mut held = copy.lock().await;
        self.writer(key).write(&mut held, change).await;
    }

    /// Applied to this process's copy at once; written at once only when it changes what a check
    /// decides, else kept for the next check of `key` or the flush within the flush interval.
    async fn defer(&self, key: &str, change: Deferred) {
        let copy = self.copy(key);
        let mut held = copy.lock().await;
        let mut next = held.state.clone();
        change(&mut next);
        if next == held.state {
            return;
        }
        let decides = next.decisive() != held.state.decisive();
        if decides || self.link.down.load(Ordering::Acquire) {
            self.writer(key)
                .write(&mut held, &mut |state| change(state))
                .await;
            return;
        }
        held.state = next;
        held.pending.push(change);
        self.flush_later(key, &copy, &mut held);
    }

    async fn local_copy(&self, key: &str) -> Option<ProviderState> {
        let copy = self.existing_copy(key)?;
        let held = copy.lock().await;
        Some(held.state.clone())
    }

    /// One `MGET` for every key (Redis down: this process's copies), with this process's pending
    /// changes applied, as the next write would carry them. Makes no copies and writes nothing.
    async fn read(&self, keys: &[String]) -> Vec<ProviderState> {
        let stored = self.stored(keys).await;
        let mut states = Vec::with_capacity(keys.len());
        for (at, key) in keys.iter().enumerate() {
            // `Some("")`: read, nothing stored; `None`: Redis unread.
            let value = stored
                .as_ref()
                .map(|values| values[at].as_deref().unwrap_or_default());
            let state = match self.existing_copy(key) {
                Some(copy) => shown(value, &*copy.lock().await),
                None => Held::parse(value.unwrap_or_default()).state,
            };
            states.push(state);
        }
        states
    }

    async fn flush(&self) {
        let copies: Vec<(String, Arc<AsyncMutex<Held>>)> = self
            .copies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(key, copy)| (key.clone(), copy.clone()))
            .collect();
        for (key, copy) in copies {
            self.writer(&key).flush(&copy).await;
        }
    }

    fn health(&self) -> Option<StoreHealth> {
        let link = &self.link;
        Some(StoreHealth {
            reachable: !link.down.load(Ordering::Acquire),
            fallbacks: link.fallbacks.load(Ordering::Relaxed),
            outages: link.outages.load(Ordering::Relaxed),
            round_trips: link.round_trips.load(Ordering::Relaxed),
            conflicts: link.conflicts.load(Ordering::Relaxed),
            flushes: link.flushes.load(Ordering::Relaxed),
            ..StoreHealth::new("redis")
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn wall_ms() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// The authority part of `url` (`user:password@host:port`), when it has one.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// The password in `url` (`redis://user:password@host`, or `redis://:password@host`).
fn password(url: &str) -> Option<&str> {
    let (userinfo, _) = authority(url)?.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// `url` without its user and password, to name it in messages.
fn without_credentials(url: &str) -> String {
    match authority(url).and_then(|a| a.rsplit_once('@')) {
        Some((userinfo, _)) => url.replacen(&format!("{userinfo}@"), "", 1),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_and_left_out_of_the_shown_url() {
        let url = "redis://app:canary-pass-0000@cache.internal:6380/2";
        assert_eq!(password(url), Some("canary-pass-0000"));
        assert_eq!(without_credentials(url), "redis://cache.internal:6380/2");
        assert_eq!(
            password("redis://:canary-pass-0000@h/0"),
            Some("canary-pass-0000")
        );
        assert_eq!(password("redis://user@h/0"), None);
        assert_eq!(password("redis://127.0.0.1:6379"), None);
        assert_eq!(
            without_credentials("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn a_stored_value_parses_into_its_token_and_state() {
        let state = ProviderState {
            failures: 2,
            ..ProviderState::default()
        };
        let value = format!(
            "0123456789abcdef{}",
            serde_json::to_string(&state).unwrap_or_default()
        );
        let copy = Held::parse(&value);
        assert_eq!(
            (copy.token.as_str(), copy.state),
            ("0123456789abcdef", state)
        );
        assert_eq!(Held::parse("").token, "");
        // A value of a newer format: its token (so that the next write replaces it), default state.
        let copy = Held::parse("fedcba9876543210{\"unknown\": [");
        assert_eq!(
            (copy.token.as_str(), copy.state),
            ("fedcba9876543210", ProviderState::default())
        );
    }

    #[test]
    fn the_ttl_covers_a_day_and_the_latest_time_in_the_state() {
        assert_eq!(
            ttl_ms(DEFAULT_TTL, &ProviderState::default()),
            2 * 86_400_000
        );
        let cooling = ProviderState {
            cooling_until_ms: Some(wall_ms() + 5 * 86_400_000),
            ..ProviderState::default()
        };
        let ttl = ttl_ms(DEFAULT_TTL, &cooling);
        assert!(
            ttl > 5 * 86_400_000 && ttl <= 5 * 86_400_000 + HOUR_MS,
            "{ttl}"
        );
    }

    #[test]
    fn a_url_that_is_not_redis_is_a_config_error_without_its_password() {
        let error = RedisStore::new("http://user:canary-pass-1111@h/").expect_err("not redis");
        assert_eq!(error.kind(), llm_core::ErrorKind::Config);
        assert!(
            error.message().starts_with("LLM_STATE_URL: `http://h/`"),
            "{}",
            error.message()
        );
        assert!(!error.to_string().contains("canary-pass-1111"));
    }
}
