//! The persistent usage log: every attempt of every `ask`, `chat` and `test`, in a SQLite database.
//!
//! - Where: `LLM_USAGE_DB` (a path), or `usage.db` in the platform's data directory
//!   (`~/.local/share/llm-cascade` on Linux). `LLM_USAGE_DB=off` turns the log off.
//! - What: time, request id (one per cascade call), command, provider, model, attempt number, outcome
//!   (`ok` or the error kind), HTTP status, latency, tokens. Prompts and answers only when
//!   `LLM_USAGE_LOG_CONTENT=true`, in their own nullable columns.
//! - How: a [`UsageRecorder`] is an [`Observer`]; it hands rows to one writer thread, which opens the
//!   database on the first row (commands that record nothing never touch the disk). WAL and a busy
//!   timeout let several `cascade` processes write at once. A write failure never fails the request:
//!   it is reported once on stderr and the log is skipped for the rest of the run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llm_cascade::{
    CascadeEvent, Change, EnvSource, MemoryStore, Observer, Outcome, ProviderState, StateClock,
    StateStore, Stats, Usage,
};
use rusqlite::{Connection, TransactionBehavior, params};

/// The variable naming the database file (or `off`).
pub const DB_VAR: &str = "LLM_USAGE_DB";
/// The opt-in variable for storing prompts and answers.
pub const CONTENT_VAR: &str = "LLM_USAGE_LOG_CONTENT";

/// How many rows may wait for the writer thread; past that, rows are dropped and counted (a slow disk
/// never blocks a request, and a burst never grows memory without bound).
pub const QUEUE: usize = 4096;

/// How long a write waits for another process holding the database lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one migration per version: migration `i` takes `PRAGMA user_version` from `i` to `i+1`.
const MIGRATIONS: &[&str] = &[
    // 1: the attempts table.
    "CREATE TABLE attempts (
        id            INTEGER PRIMARY KEY,
        ts_ms         INTEGER NOT NULL,
        request_id    TEXT    NOT NULL,
        command       TEXT    NOT NULL,
        provider      TEXT    NOT NULL,
        model         TEXT    NOT NULL,
        attempt       INTEGER NOT NULL,
        outcome       TEXT    NOT NULL,
        status        INTEGER,
        latency_ms    INTEGER NOT NULL,
        input_tokens  INTEGER,
        output_tokens INTEGER
    );
    CREATE INDEX attempts_ts ON attempts (ts_ms);
    CREATE INDEX attempts_request ON attempts (request_id);",
    // 2: opt-in content, kept apart from the counts.
    "ALTER TABLE attempts ADD COLUMN prompt TEXT;
    ALTER TABLE attempts ADD COLUMN response TEXT;",
    // 3: provider state remembered across runs (cooling, breaker, budgets), one JSON row per
    // provider and model.
    "CREATE TABLE provider_state (
        key        TEXT    PRIMARY KEY,
        state      TEXT    NOT NULL,
        updated_ms INTEGER NOT NULL
    );",
];

/// Where the log goes, from `LLM_USAGE_DB`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Not recorded.
    Off,
    /// This database file.
    File(PathBuf),
}

impl Target {
    /// `LLM_USAGE_DB`: `off` (or `false`, `0`, `none`) disables; any other value is the path; unset
    /// means `usage.db` in the platform's data directory (off when there is none, or when `HOME` is
    /// not set on Unix).
    ///
    /// # Errors
    /// A config error naming `LLM_USAGE_DB` when it is set but not valid UTF-8.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, llm_core::Error> {
        Ok(match env.non_empty(DB_VAR)? {
            Some(value) => match value.to_ascii_lowercase().as_str() {
                "off" | "false" | "0" | "none" | "no" => Self::Off,
                _ => Self::File(PathBuf::from(value)),
            },
            // Without a home in the environment (a cleared environment, a service account), there is
            // no default place: guessing one could write where nobody looks. Only presence matters.
            None if cfg!(unix) && matches!(env.non_empty("HOME"), Ok(None)) => Self::Off,
            None => directories::ProjectDirs::from("", "", "llm-cascade")
                .map_or(Self::Off, |dirs| {
                    Self::File(dirs.data_dir().join("usage.db"))
                }),
        })
    }

    /// The path, when on.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Off => None,
            Self::File(path) => Some(path),
        }
    }
}

/// Whether prompts and answers are stored (`LLM_USAGE_LOG_CONTENT`, default false).
///
/// # Errors
/// A config error naming the variable when its value is not a boolean (or not valid UTF-8).
pub fn log_content(env: &dyn EnvSource) -> Result<bool, llm_core::Error> {
    env.non_empty(CONTENT_VAR)?
        .map(|v| {
            llm_core::parse_bool(&v)
                .map_err(|why| llm_core::Error::config(format!("{CONTENT_VAR}: {why}")))
        })
        .transpose()
        .map(|v| v.unwrap_or(false))
}

/// One attempt, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// When the attempt finished, in milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The cascade call it belongs to.
    pub request_id: String,
    /// `ask`, `chat` or `test`.
    pub command: String,
    /// Provider id.
    pub provider: String,
    /// Model asked.
    pub model: String,
    /// Attempt number at this provider.
    pub attempt: u32,
    /// `ok`, `cancelled` (the user or a closed output cut it) or the error kind.
    pub outcome: String,
    /// HTTP status, when there was a response.
    pub status: Option<u16>,
    /// How long the attempt took (streams: until the first token).
    pub latency_ms: u64,
    /// Prompt tokens, when reported.
    pub input_tokens: Option<u64>,
    /// Generated tokens, when reported.
    pub output_tokens: Option<u64>,
    /// The prompt (last user message), only with the opt-in.
    pub prompt: Option<String>,
    /// The answer, only with the opt-in and only on the successful attempt.
    pub response: Option<String>,
}

/// Opens (creating it and its directory when missing) and migrates the database.
///
/// # Errors
/// When the file cannot be created or opened, or its schema is newer than this build knows.
pub fn open(path: &Path) -> Result<Connection, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| e.to_string())?;
    // WAL lets readers and one writer work at once; NORMAL sync is safe with WAL (a power cut may lose
    // the last rows, never corrupt the file).
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(|e| e.to_string())?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(|e| e.to_string())?;
    migrate(&mut conn)?;
    Ok(conn)
}

fn user_version(conn: &Connection) -> rusqlite::Result<usize> {
    conn.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

/// Applies the missing migrations in one immediate transaction, so two processes starting at once
/// do not both migrate.
fn migrate(conn: &mut Connection) -> Result<(), String> {
    let known = MIGRATIONS.len();
    if user_version(conn).map_err(|e| e.to_string())? == known {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    let current = user_version(&tx).map_err(|e| e.to_string())?;
    if current > known {
        return Err(format!(
            "the usage log has schema version {current}, newer than this build's {known}; \
             upgrade cascade or point {DB_VAR} elsewhere"
        ));
    }
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)
            .map_err(|e| format!("migration to version {}: {e}", version + 1))?;
    }
    tx.pragma_update(
        None,
        "user_version",
        i64::try_from(known).unwrap_or(i64::MAX),
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Inserts one row.
///
/// # Errors
/// The database's error.
pub fn insert(conn: &Connection, row: &Row) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO attempts (ts_ms, request_id, command, provider, model, attempt, outcome, status,
             latency_ms, input_tokens, output_tokens, prompt, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            row.ts_ms,
            row.request_id,
            row.command,
            row.provider,
            row.model,
            row.attempt,
            row.outcome,
            row.status,
            to_i64(row.latency_ms),
            row.input_tokens.map(to_i64),
            row.output_tokens.map(to_i64),
            row.prompt,
            row.response,
        ],
    )
    .map(|_| ())
}

/// Stores the answer on the successful attempt of `request_id`.
fn set_response(conn: &Connection, request_id: &str, text: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE attempts SET response = ?2 WHERE id =
            (SELECT max(id) FROM attempts WHERE request_id = ?1 AND outcome = 'ok')",
        params![request_id, text],
    )
    .map(|_| ())
}

/// Every row since `since_ms` (all when `None`), oldest first.
///
/// # Errors
/// The database's error.
pub fn rows_since(conn: &Connection, since_ms: Option<i64>) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare(
        "SELECT ts_ms, request_id, command, provider, model, attempt, outcome, status, latency_ms,
                input_tokens, output_tokens, prompt, response
         FROM attempts WHERE ts_ms >= ?1 ORDER BY id",
    )?;
    let rows = statement.query_map([since_ms.unwrap_or(i64::MIN)], |r| {
        Ok(Row {
            ts_ms: r.get(0)?,
            request_id: r.get(1)?,
            command: r.get(2)?,
            provider: r.get(3)?,
            model: r.get(4)?,
            attempt: r.get(5)?,
            outcome: r.get(6)?,
            status: r.get(7)?,
            latency_ms: u64::try_from(r.get::<_, i64>(8)?).unwrap_or(0),
            input_tokens: r
                .get::<_, Option<i64>>(9)?
                .map(|v| u64::try_from(v).unwrap_or(0)),
            output_tokens: r
                .get::<_, Option<i64>>(10)?
                .map(|v| u64::try_from(v).unwrap_or(0)),
            prompt: r.get(11)?,
            response: r.get(12)?,
        })
    })?;
    rows.collect()
}

/// Aggregates rows into the same statistics `/llm stats` shows for one process. A fallback is a
/// request whose next attempt went to another provider.
pub fn aggregate(rows: &[Row]) -> Stats {
    let stats = Stats::new();
    let mut last_provider: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for row in rows {
        if let Some(previous) = last_provider.insert(&row.request_id, &row.provider)
            && previous != row.provider
        {
            stats.on_event(&CascadeEvent::Fallback {
                from: previous.to_owned(),
                to: row.provider.clone(),
            });
        }
        let outcome = match row.outcome.as_str() {
            "ok" => Outcome::Ok,
            "cancelled" => Outcome::Cancelled,
            // A skip sent nothing: not a failure (`Stats` leaves it out).
            "skipped" => Outcome::Skipped,
            name => match llm_core::ErrorKind::from_name(name) {
                Some(kind) => Outcome::Failed(kind),
                // A kind from a newer build: count it as a failure of the closest general kind.
                None => Outcome::Failed(llm_core::ErrorKind::InvalidRequest),
            },
        };
        let usage = match (row.input_tokens, row.output_tokens) {
            (None, None) => None,
            (input, output) => Some(Usage {
                input_tokens: input.unwrap_or(0),
                output_tokens: output.unwrap_or(0),
            }),
        };
        stats.record(
            &row.provider,
            outcome,
            Duration::from_millis(row.latency_ms),
            usage,
        );
    }
    stats
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

enum Message {
    Attempt(Box<Row>),
    Response { request_id: String, text: String },
}

/// The request being recorded: its id and (with the opt-in) its prompt.
#[derive(Default)]
struct Call {
    request_id: String,
    prompt: Option<String>,
}

struct Writer {
    sender: SyncSender<Message>,
    thread: JoinHandle<()>,
}

/// Records every finished attempt into the usage log. Attach it to each cascade as an [`Observer`];
/// call [`UsageRecorder::begin_call`] before each cascade call. Cheap when the log is off.
pub struct UsageRecorder {
    target: Target,
    content: bool,
    command: &'static str,
    call: Mutex<Call>,
    writer: Mutex<Option<Writer>>,
    dropped: AtomicU64,
}

impl std::fmt::Debug for UsageRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageRecorder")
            .field("target", &self.target)
            .field("content", &self.content)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

static CALLS: AtomicU64 = AtomicU64::new(0);

/// A new request id: milliseconds since the epoch, the process id and a counter, in hex
/// (`18f3a2b4c1d-1a2b-0`): unique across processes writing the same log.
pub fn request_id() -> String {
    format!(
        "{:x}-{:x}-{:x}",
        now_ms(),
        std::process::id(),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )
}

impl UsageRecorder {
    /// A recorder for `command` writing to `target`; `content` stores prompts and answers.
    pub fn new(target: Target, content: bool, command: &'static str) -> Self {
        Self {
            target,
            content,
            command,
            call: Mutex::new(Call::default()),
            writer: Mutex::new(None),
            dropped: AtomicU64::new(0),
        }
    }

    /// Starts a new cascade call: a fresh request id, and the prompt kept only with the opt-in.
    pub fn begin_call(&self, prompt: &str) -> String {
        let id = request_id();
        let mut call = self.call.lock().unwrap_or_else(PoisonError::into_inner);
        call.request_id = id.clone();
        // A key pasted into the prompt (or echoed in an answer) is not kept in the log.
        call.prompt = self.content.then(|| llm_core::redact(prompt).into_owned());
        id
    }

    /// Stores the answer of the current call (only with the opt-in).
    pub fn record_answer(&self, text: &str) {
        if !self.content {
            return;
        }
        let request_id = self
            .call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .request_id
            .clone();
        self.send(Message::Response {
            request_id,
            text: llm_core::redact(text).into_owned(),
        });
    }

    /// Waits until every row handed over so far is written (or given up on).
    pub fn close(&self) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(Writer { sender, thread }) = writer {
            drop(sender);
            let _ = thread.join();
        }
    }

    fn send(&self, message: Message) {
        let Some(path) = self.target.path() else {
            return;
        };
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let writer = writer.get_or_insert_with(|| {
            let (sender, receiver) = sync_channel(QUEUE);
            let path = path.to_owned();
            let thread = std::thread::spawn(move || write_all(&path, &receiver));
            Writer { sender, thread }
        });
        // Never blocks: a full queue drops the row and counts it. The thread only stops early when the
        // receiver is gone, which cannot happen before close.
        if let Err(TrySendError::Full(_)) = writer.sender.try_send(message) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Rows dropped because the writer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Records a finished attempt of request `request_id` (for servers, where calls overlap and the
    /// recorder's current call means nothing). Prompts are not stored here.
    pub fn record_for(&self, request_id: &str, event: &CascadeEvent) {
        if let Some(row) = self.row(request_id, None, event) {
            self.send(Message::Attempt(Box::new(row)));
        }
    }

    fn row(&self, request_id: &str, prompt: Option<String>, event: &CascadeEvent) -> Option<Row> {
        let CascadeEvent::AttemptFinished {
            attempt,
            model,
            usage,
        } = event
        else {
            return None;
        };
        if self.target == Target::Off {
            return None;
        }
        Some(Row {
            ts_ms: now_ms(),
            request_id: request_id.to_owned(),
            command: self.command.to_owned(),
            provider: attempt.provider.clone(),
            model: llm_core::redact(model).into_owned(),
            attempt: attempt.attempt,
            outcome: attempt.outcome.as_str().to_owned(),
            status: attempt.status,
            latency_ms: u64::try_from(attempt.elapsed.as_millis()).unwrap_or(u64::MAX),
            input_tokens: usage.map(|u| u.input_tokens),
            output_tokens: usage.map(|u| u.output_tokens),
            prompt,
            response: None,
        })
    }
}

impl Drop for UsageRecorder {
    fn drop(&mut self) {
        self.close();
    }
}

impl Observer for UsageRecorder {
    fn on_event(&self, event: &CascadeEvent) {
        if self.target == Target::Off || !matches!(event, CascadeEvent::AttemptFinished { .. }) {
            return;
        }
        let call = self.call.lock().unwrap_or_else(PoisonError::into_inner);
        let request_id = if call.request_id.is_empty() {
            request_id()
        } else {
            call.request_id.clone()
        };
        let prompt = call.prompt.clone();
        drop(call);
        if let Some(row) = self.row(&request_id, prompt, event) {
            self.send(Message::Attempt(Box::new(row)));
        }
    }
}

/// The writer thread: opens the database on the first message, writes each one; on the first failure,
/// one note on stderr, then the rest of the run's rows are dropped.
fn write_all(path: &Path, receiver: &Receiver<Message>) {
    let mut conn = None;
    let mut failed = false;
    while let Ok(message) = receiver.recv() {
        if failed {
            continue;
        }
        let result = match conn.as_ref() {
            Some(conn) => write(conn, &message),
            None => open(path).and_then(|opened| {
                let result = write(&opened, &message);
                conn = Some(opened);
                result
            }),
        };
        if let Err(error) = result {
            failed = true;
            tracing::warn!(path = %path.display(), "usage log write failed: {error}");
            crate::output::err(&format!(
                "note: not recording usage in {}: {error} (your answers are unaffected; \
                 {DB_VAR}=off turns the log off)",
                path.display()
            ));
        }
    }
}

fn write(conn: &Connection, message: &Message) -> Result<(), String> {
    match message {
        Message::Attempt(row) => insert(conn, row),
        Message::Response { request_id, text } => set_response(conn, request_id, text),
    }
    .map_err(|e| e.to_string())
}

/// Opens an existing log for reading; `None` when the file does not exist yet.
///
/// # Errors
/// When the file exists but cannot be opened or migrated.
pub fn open_existing(path: &Path) -> Result<Option<Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    open(path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_cascade::{Attempt, Error, ErrorKind, MapEnv};

    fn finished(attempt: Attempt, usage: Option<Usage>) -> CascadeEvent {
        CascadeEvent::AttemptFinished {
            attempt,
            model: "gpt-test".to_owned(),
            usage,
        }
    }

    fn auth() -> Error {
        Error::new(ErrorKind::Auth, "bad key").with_status(401)
    }

    #[test]
    fn target_from_env() {
        let target = |env: MapEnv| Target::from_env(&env).expect("readable");
        assert_eq!(target(MapEnv::new().with(DB_VAR, "OFF")), Target::Off);
        assert_eq!(
            target(MapEnv::new().with(DB_VAR, "/tmp/x.db")),
            Target::File(PathBuf::from("/tmp/x.db"))
        );
        if let Target::File(default) = target(MapEnv::new().with("HOME", "/home/u")) {
            assert!(default.ends_with("usage.db"), "{}", default.display());
        }
        if cfg!(unix) {
            assert_eq!(target(MapEnv::new()), Target::Off);
        }
        assert_eq!(log_content(&MapEnv::new()).ok(), Some(false));
        assert_eq!(
            log_content(&MapEnv::new().with(CONTENT_VAR, "true")).ok(),
            Some(true)
        );
        assert!(log_content(&MapEnv::new().with(CONTENT_VAR, "maybe")).is_err());
    }

    #[test]
    fn records_attempts_without_content_by_default() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/dir/usage.db");
        let recorder = UsageRecorder::new(Target::File(path.clone()), false, "ask");
        let id = recorder.begin_call("a secret prompt");
        recorder.on_event(&finished(
            Attempt::failed("groq", 1, Duration::from_millis(12), &auth()),
            None,
        ));
        recorder.on_event(&CascadeEvent::Fallback {
            from: "groq".to_owned(),
            to: "openai".to_owned(),
        });
        recorder.on_event(&finished(
            Attempt::ok("openai", 1, Duration::from_millis(80)),
            Some(Usage {
                input_tokens: 9,
                output_tokens: 3,
            }),
        ));
        recorder.record_answer("a secret answer");
        recorder.close();

        let conn = open(&path).expect("open");
        assert_eq!(user_version(&conn).expect("version"), MIGRATIONS.len());
        let rows = rows_since(&conn, None).expect("rows");
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .all(|r| r.request_id == id && r.command == "ask")
        );
        assert_eq!(
            (
                rows[0].provider.as_str(),
                rows[0].outcome.as_str(),
                rows[0].status
            ),
            ("groq", "auth", Some(401))
        );
        assert_eq!(rows[0].latency_ms, 12);
        assert_eq!(
            (
                rows[1].outcome.as_str(),
                rows[1].input_tokens,
                rows[1].output_tokens
            ),
            ("ok", Some(9), Some(3))
        );
        assert!(
            rows.iter()
                .all(|r| r.prompt.is_none() && r.response.is_none())
        );
        let stats = aggregate(&rows).snapshot();
        assert_eq!(stats.providers["groq"].fallbacks, 1);
        let bytes = std::fs::read(&path).expect("read");
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
    }

    #[test]
    fn a_full_queue_drops_and_counts_rows_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        drop(open(&path).expect("create"));
        // Another writer holds the lock: the writer thread waits in its first insert.
        let holder = Connection::open(&path).expect("open");
        holder.execute_batch("BEGIN EXCLUSIVE").expect("lock");
        let recorder = UsageRecorder::new(Target::File(path.clone()), false, "serve");
        let total = QUEUE + 50;
        for i in 0..total {
            let attempt = Attempt::ok("groq", 1, Duration::from_millis(1));
            recorder.record_for(&format!("req-{i}"), &finished(attempt, None));
        }
        let dropped = recorder.dropped();
        // The thread holds at most one row and the queue QUEUE: the rest were dropped, not waited for.
        assert!(dropped >= 49, "dropped {dropped}");
        holder.execute_batch("COMMIT").expect("unlock");
        recorder.close();
        let rows = rows_since(&open(&path).expect("open"), None).expect("rows");
        assert_eq!(rows.len() as u64 + dropped, total as u64);
        assert!(rows.iter().all(|r| r.command == "serve"));
        assert_ne!(rows[0].request_id, rows[1].request_id);
    }

    #[test]
    fn content_is_stored_only_with_the_opt_in() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        let recorder = UsageRecorder::new(Target::File(path.clone()), true, "chat");
        recorder.begin_call("hello there");
        recorder.on_event(&finished(
            Attempt::ok("openai", 1, Duration::from_millis(5)),
            None,
        ));
        recorder.record_answer("general kenobi");
        recorder.close();
        let rows = rows_since(&open(&path).expect("open"), None).expect("rows");
        assert_eq!(rows[0].prompt.as_deref(), Some("hello there"));
        assert_eq!(rows[0].response.as_deref(), Some("general kenobi"));
    }

    #[test]
    fn a_registered_secret_never_reaches_the_content_columns() {
        llm_core::register_secret("canary-usage-0000-DO-NOT-LEAK");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        let recorder = UsageRecorder::new(Target::File(path.clone()), true, "ask");
        recorder.begin_call("my key is canary-usage-0000-DO-NOT-LEAK");
        recorder.on_event(&finished(
            Attempt::ok("openai", 1, Duration::from_millis(5)),
            None,
        ));
        recorder.record_answer("you said canary-usage-0000-DO-NOT-LEAK");
        recorder.close();
        let rows = rows_since(&open(&path).expect("open"), None).expect("rows");
        assert_eq!(rows[0].prompt.as_deref(), Some("my key is [REDACTED]"));
        assert_eq!(rows[0].response.as_deref(), Some("you said [REDACTED]"));
        let bytes = std::fs::read(&path).expect("read");
        assert!(!String::from_utf8_lossy(&bytes).contains("canary-usage"));
    }

    #[test]
    fn each_call_gets_its_own_request_id() {
        let (a, b) = (request_id(), request_id());
        assert_ne!(a, b);
        assert_eq!(a.split('-').count(), 3);
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        drop(open(&path).expect("first"));
        let conn = open(&path).expect("second");
        assert_eq!(user_version(&conn).expect("version"), MIGRATIONS.len());
        conn.pragma_update(None, "user_version", 99).expect("bump");
        drop(conn);
        let error = open(&path).expect_err("newer");
        assert!(error.contains("schema version 99"), "{error}");
    }

    #[test]
    fn provider_state_survives_the_store_and_falls_back_to_memory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        let first = SqliteStore::new(path.clone());
        first
            .apply("groq/m", &mut |state| state.failures = 2)
            .expect("write");
        let second = SqliteStore::new(path);
        assert_eq!(second.read("groq/m").expect("read").failures, 2);
        assert_eq!(
            second.read("openai/m").expect("read"),
            ProviderState::default()
        );
        // A database that cannot be opened: the change lands in memory, the caller never fails.
        let broken = SqliteStore::new(dir.path().join("usage.db").join("not-a-dir").join("x.db"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(broken.modify("groq/m", &mut |state| state.failures = 5));
        let mut seen = 0;
        broken
            .fallback
            .modify_now("groq/m", &mut |state| seen = state.failures);
        assert_eq!(seen, 5);
    }

    #[test]
    fn a_version_1_log_gains_the_content_columns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(MIGRATIONS[0]).expect("v1");
        conn.pragma_update(None, "user_version", 1)
            .expect("version");
        drop(conn);
        let conn = open(&path).expect("migrate");
        assert_eq!(user_version(&conn).expect("version"), MIGRATIONS.len());
        insert(
            &conn,
            &Row {
                ts_ms: 1,
                request_id: "r".to_owned(),
                command: "ask".to_owned(),
                provider: "groq".to_owned(),
                model: "m".to_owned(),
                attempt: 1,
                outcome: "ok".to_owned(),
                status: None,
                latency_ms: 3,
                input_tokens: None,
                output_tokens: None,
                prompt: Some("p".to_owned()),
                response: None,
            },
        )
        .expect("insert");
    }

    #[test]
    fn a_failed_write_does_not_panic_or_block() {
        let dir = tempfile::tempdir().expect("temp dir");
        // A directory where the file should be: opening fails.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).expect("dir");
        let recorder = UsageRecorder::new(Target::File(path), false, "ask");
        recorder.begin_call("p");
        for _ in 0..3 {
            recorder.on_event(&finished(
                Attempt::ok("openai", 1, Duration::from_millis(5)),
                None,
            ));
        }
        recorder.close();
    }

    #[test]
    fn two_writers_at_once_both_land() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("usage.db");
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let recorder = UsageRecorder::new(Target::File(path), false, "ask");
                    for _ in 0..50 {
                        recorder.begin_call("p");
                        recorder.on_event(&finished(
                            Attempt::ok("openai", 1, Duration::from_millis(5)),
                            None,
                        ));
                    }
                    recorder.close();
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer");
        }
        let rows = rows_since(&open(&path).expect("open"), None).expect("rows");
        assert_eq!(rows.len(), 100);
    }

    #[test]
    fn aggregate_counts_rows_since_a_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open(&dir.path().join("usage.db")).expect("open");
        let row = |ts_ms, provider: &str, outcome: &str, latency_ms| Row {
            ts_ms,
            request_id: "r".to_owned(),
            command: "ask".to_owned(),
            provider: provider.to_owned(),
            model: "m".to_owned(),
            attempt: 1,
            outcome: outcome.to_owned(),
            status: None,
            latency_ms,
            input_tokens: (outcome == "ok").then_some(10),
            output_tokens: (outcome == "ok").then_some(2),
            prompt: None,
            response: None,
        };
        for r in [
            row(100, "groq", "rate_limit", 5),
            row(200, "groq", "ok", 40),
            row(300, "openai", "ok", 60),
            row(400, "openai", "auth", 7),
            row(500, "openai", "ok", 100),
        ] {
            insert(&conn, &r).expect("insert");
        }
        let all = aggregate(&rows_since(&conn, None).expect("rows")).snapshot();
        assert_eq!(all.total.requests, 5);
        let openai = &all.providers["openai"];
        assert_eq!((openai.requests, openai.successes), (3, 2));
        assert_eq!(openai.mean_latency_ms, Some(80));
        assert_eq!((openai.input_tokens, openai.output_tokens), (20, 4));
        let recent = aggregate(&rows_since(&conn, Some(250)).expect("rows")).snapshot();
        assert_eq!(recent.total.requests, 3);
        assert!(!recent.providers.contains_key("groq"));
    }

    #[test]
    fn cancelled_rows_read_back_as_cancelled_not_as_another_kind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open(&dir.path().join("usage.db")).expect("open");
        let mut row = Row {
            ts_ms: 100,
            request_id: "r".to_owned(),
            command: "ask".to_owned(),
            provider: "openai".to_owned(),
            model: "m".to_owned(),
            attempt: 1,
            outcome: Outcome::Cancelled.as_str().to_owned(),
            status: None,
            latency_ms: 5,
            input_tokens: None,
            output_tokens: None,
            prompt: None,
            response: None,
        };
        insert(&conn, &row).expect("insert");
        row.outcome = "ok".to_owned();
        insert(&conn, &row).expect("insert");
        let snapshot = aggregate(&rows_since(&conn, None).expect("rows")).snapshot();
        let openai = &snapshot.providers["openai"];
        assert_eq!((openai.requests, openai.successes), (2, 1));
        assert_eq!(
            openai.failures.iter().collect::<Vec<_>>(),
            vec![(&"cancelled".to_owned(), &1)]
        );
    }
}

/// `LLM_STATE`: `off` keeps provider state in memory only (forgotten when the command ends).
pub const STATE_VAR: &str = "LLM_STATE";
/// Test-only: shifts the provider-state clock by this many seconds (may be negative), so that an
/// end-to-end test can step past a cooling time without waiting.
pub const STATE_CLOCK_VAR: &str = "LLM_STATE_CLOCK_OFFSET_SECS";

/// Provider state in the usage database's `provider_state` table, so that the next `cascade` run
/// knows what this one learned. Each change is one immediate transaction (several processes may
/// share the file). When the database cannot be used, the state lives in memory for the rest of
/// the run, after one `note:` on stderr: the state store never fails a request.
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Option<Connection>>,
    fallback: MemoryStore,
    failed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// A store in the database at `path` (opened on first use).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            conn: Mutex::new(None),
            fallback: MemoryStore::default(),
            failed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The state stored under `key`, read without changing it.
    ///
    /// # Errors
    /// When the database cannot be opened or read.
    #[cfg(test)]
    pub fn read(&self, key: &str) -> Result<ProviderState, String> {
        let mut copy = ProviderState::default();
        self.apply(key, &mut |state| copy = state.clone())?;
        Ok(copy)
    }

    fn apply(&self, key: &str, change: &mut Change<'_>) -> Result<(), String> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(open(&self.path)?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err("no connection".to_owned());
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let stored: Option<String> = tx
            .query_row(
                "SELECT state FROM provider_state WHERE key = ?1",
                params![key],
                |row| row.get(0),
            )
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e.to_string()),
            })?;
        // A row this build cannot read (written by a newer one) starts over rather than failing.
        let mut state: ProviderState = stored
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default();
        let before = state.clone();
        change(&mut state);
        if state != before {
            let json = serde_json::to_string(&state).map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT INTO provider_state (key, state, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET state = ?2, updated_ms = ?3",
                params![key, json, now_ms()],
            )
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl StateStore for SqliteStore {
    async fn modify(&self, key: &str, change: &mut Change<'_>) {
        if !self.failed.load(Ordering::Relaxed) {
            match self.apply(key, change) {
                Ok(()) => return,
                Err(error) => {
                    self.failed.store(true, Ordering::Relaxed);
                    crate::output::err(&format!(
                        "note: provider state is not remembered ({}: {error}); using memory for this run",
                        self.path.display()
                    ));
                }
            }
        }
        self.fallback.modify_now(key, change);
    }
}

/// The store and clock the CLI's cascades share: Redis when `LLM_STATE_URL` is set, else the usage
/// database; memory for this run when `LLM_STATE=off` or the log is off.
#[derive(Clone)]
pub struct StateSetup {
    /// Where provider state outlives this command (Redis or the usage database), when anywhere.
    pub store: Option<std::sync::Arc<dyn StateStore>>,
    /// The clock (shifted only by the test-only offset).
    pub clock: StateClock,
}

impl std::fmt::Debug for StateSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSetup")
            .field("remembered", &self.store.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

impl StateSetup {
    /// From `LLM_STATE`, `LLM_STATE_URL`, `LLM_USAGE_DB` and the test-only clock offset.
    ///
    /// # Errors
    /// A config error naming the variable when `LLM_STATE` is not `on`/`off` (or a boolean),
    /// `LLM_STATE_URL` is not a Redis URL, or the test clock offset is not a whole number.
    pub fn from_env(env: &dyn EnvSource) -> Result<Self, llm_core::Error> {
        let (store, clock) = state_store(env)?;
        Ok(Self { store, clock })
    }

    /// Gives `cascade` this store and clock (memory of its own when state is not remembered, also
    /// over a Redis the library chose from `LLM_STATE_URL`: `LLM_STATE=off` wins).
    pub fn attach(&self, cascade: llm_cascade::Cascade) -> llm_cascade::Cascade {
        let cascade = cascade.with_state_clock(self.clock);
        match &self.store {
            Some(store) => cascade.with_state_store(store.clone()),
            None => cascade.with_state_store(std::sync::Arc::new(MemoryStore::default())),
        }
    }

    /// The remembered states of `keys` (`provider/model`), in one read of the store; the default
    /// for a key with nothing remembered (and for every key when state is off).
    pub async fn read_all(&self, keys: &[String]) -> Vec<ProviderState> {
        match &self.store {
            Some(store) => store.read(keys).await,
            None => vec![ProviderState::default(); keys.len()],
        }
    }
}

/// A remembered store's type, as the CLI holds it.
type Remembered = Option<std::sync::Arc<dyn StateStore>>;

fn state_store(env: &dyn EnvSource) -> Result<(Remembered, StateClock), llm_core::Error> {
    let offset = env
        .non_empty(STATE_CLOCK_VAR)?
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                llm_core::Error::config(format!(
                    "{STATE_CLOCK_VAR}: `{v}` is not a whole number of seconds"
                ))
            })
        })
        .transpose()?
        .unwrap_or(0);
    let clock = StateClock::with_offset(offset.saturating_mul(1000));
    let on = env
        .non_empty(STATE_VAR)?
        .map(|v| {
            llm_core::parse_bool(&v)
                .or_else(|why| {
                    if v.eq_ignore_ascii_case("off") {
                        Ok(false)
                    } else if v.eq_ignore_ascii_case("on") {
                        Ok(true)
                    } else {
                        Err(why)
                    }
                })
                .map_err(|why| llm_core::Error::config(format!("{STATE_VAR}: {why}")))
        })
        .transpose()?
        .unwrap_or(true);
    let target = Target::from_env(env)?;
    let shared = llm_cascade::state_store_from_env(env)?;
    let store: Remembered = match (shared, target) {
        _ if !on => None,
        (Some(shared), _) => Some(shared),
        (None, Target::File(path)) => Some(std::sync::Arc::new(SqliteStore::new(path))),
        (None, _) => None,
    };
    Ok((store, clock))
}
