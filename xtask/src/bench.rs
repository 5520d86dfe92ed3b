//! `cargo xtask bench-gateway`: the gateway's overhead, measured against an instant upstream in the
//! same run.
//!
//! Three processes on loopback, all release builds: `xtask bench-upstream` (replays the real OpenAI
//! captures `fixtures/openai/chat.success.json` and `chat.stream.sse` with no delay), `cascade serve`
//! in front of it (built with `provider-openai` only, the one provider it calls: the embedded model's
//! crates would make the release build take far longer and change nothing on the request path), and
//! the load generator: `oha`, installed with `cargo install oha --locked` into `~/.cargo/bin` when
//! missing, else Debian's `wrk`. Each measurement runs against the upstream directly, through the
//! gateway, and through a bare axum + reqwest proxy (`xtask bench-passthrough`: the gateway's stack
//! with none of its work, the floor the stack allows on the machine): sequential p50/p99 (one
//! connection), the highest throughput whose p99 stays under 10 ms (growing the connection count),
//! p99 at a fixed 5000 requests per second (`oha -q`, with its latency correction; `wrk` has no fixed
//! rate), streaming time to first byte (our own client, sequential), and peak RSS (`VmHWM`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use llm_test_support::Fixture;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The non-streamed request both targets get.
pub const REQUEST: &str =
    r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Invent a holiday"}]}"#;
const STREAM_REQUEST: &str = r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Invent a holiday"}]}"#;
/// The p99 bound of "max RPS".
const P99_BOUND: Duration = Duration::from_millis(10);
/// The rate of the fixed-rate run.
pub const FIXED_RPS: u32 = 5000;
/// Connections of the fixed-rate run: enough that the rate never waits for a free one.
const FIXED_CONNECTIONS: u32 = 64;

/// Serves the OpenAI captures on `addr` until killed; prints `listening on <addr>` first.
///
/// # Errors
/// When the address cannot be bound.
pub async fn upstream(addr: &str) -> Result<(), String> {
    use axum::http::header::CONTENT_TYPE;
    use axum::response::IntoResponse;

    let json = Fixture::load("openai", "chat.success").body_bytes();
    let sse = Fixture::load("openai", "chat.stream").body_bytes();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (json, sse) = (json.clone(), sse.clone());
            async move {
                let streamed = body.windows(13).any(|w| w == br#""stream":true"#);
                if streamed {
                    ([(CONTENT_TYPE, "text/event-stream")], sse).into_response()
                } else {
                    ([(CONTENT_TYPE, "application/json")], json).into_response()
                }
            }
        }),
    );
    serve_announced(addr, app).await
}

/// A bare pass-through proxy on `addr` to the chat endpoint at `upstream`: axum and reqwest, as the
/// gateway, with none of its work (no JSON either way, no cascade, no metrics). Its column in the
/// table is the floor the gateway's stack allows on this machine. Prints `listening on <addr>` first.
///
/// # Errors
/// When the address cannot be bound.
pub async fn passthrough(addr: &str, upstream: &str) -> Result<(), String> {
    use axum::body::{Body, Bytes};
    use axum::http::header::CONTENT_TYPE;
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::{IntoResponse, Response};

    let client = reqwest::Client::new();
    let endpoint = reqwest::Url::parse(upstream).map_err(|e| format!("{upstream}: {e}"))?;
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |body: Bytes| {
            let (client, endpoint) = (client.clone(), endpoint.clone());
            async move {
                let sent = client
                    .post(endpoint)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                let Ok(answer) = sent else {
                    return StatusCode::BAD_GATEWAY.into_response();
                };
                let kind = answer
                    .headers()
                    .get(CONTENT_TYPE)
                    .cloned()
                    .unwrap_or(HeaderValue::from_static("application/json"));
                // A stream is passed on as it comes; a whole answer is read first, as the gateway does.
                let body = if kind.as_bytes().starts_with(b"text/event-stream") {
                    Body::from_stream(answer.bytes_stream())
                } else {
                    match answer.bytes().await {
                        Ok(bytes) => Body::from(bytes),
                        Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
                    }
                };
                let mut response = Response::new(body);
                response.headers_mut().insert(CONTENT_TYPE, kind);
                response
            }
        }),
    );
    serve_announced(addr, app).await
}

/// Serves `app` on `addr`, first printing `listening on <addr>` (the bench reads the address).
async fn serve_announced(addr: &str, app: axum::Router) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{local}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// One load run's numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// The installed load generator.
#[derive(Debug, Clone)]
pub enum Generator {
    /// `oha` (cargo install oha --locked).
    Oha(PathBuf),
    /// `wrk` (Debian package).
    Wrk(PathBuf),
}

fn which(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

impl Generator {
    /// `oha` if installed, else `wrk`.
    pub fn find() -> Option<Self> {
        which("oha")
            .map(Self::Oha)
            .or_else(|| which("wrk").map(Self::Wrk))
    }

    /// `oha`, installed first with `cargo install oha --locked` (into `~/.cargo/bin`) when missing;
    /// if that fails, `wrk` when installed.
    pub async fn find_or_install() -> Option<Self> {
        if which("oha").is_none() {
            println!("oha is not installed: cargo install oha --locked (into ~/.cargo/bin)");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let installed = Command::new(cargo)
                .args(["install", "oha", "--locked"])
                .status()
                .await
                .is_ok_and(|s| s.success());
            if !installed {
                println!("installing oha failed: falling back to wrk (no fixed-rate row)");
            }
        }
        Self::find()
    }

    /// POSTs [`REQUEST`] to `url` at a fixed `rps` over `connections` connections for `duration`,
    /// with latency measured from when each request was due (no coordinated omission); `None` for
    /// `wrk`, which has no fixed rate.
    ///
    /// # Errors
    /// When the generator fails or its output cannot be read.
    pub async fn run_fixed(
        &self,
        url: &str,
        rps: u32,
        connections: u32,
        duration: Duration,
    ) -> Result<Option<Load>, String> {
        let Self::Oha(path) = self else {
            return Ok(None);
        };
        let output = Command::new(path)
            .args(["--no-tui", "--output-format", "json", "-m", "POST"])
            .args(["-H", "content-type: application/json", "-d", REQUEST])
            .args(["-c", &connections.to_string(), "-q", &rps.to_string()])
            .arg("--latency-correction")
            .args(["-z", &format!("{}ms", duration.as_millis())])
            .arg(url)
            .output()
            .await
            .map_err(|e| format!("oha: {e}"))?;
        parse_oha(&String::from_utf8_lossy(&output.stdout)).map(Some)
    }

    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Oha(_) => "oha",
            Self::Wrk(_) => "wrk",
        }
    }

    /// POSTs [`REQUEST`] to `url` over `connections` connections for `duration`.
    ///
    /// # Errors
    /// When the generator fails or its output cannot be read.
    pub async fn run(
        &self,
        url: &str,
        connections: u32,
        duration: Duration,
    ) -> Result<Load, String> {
        match self {
            Self::Oha(path) => {
                let output = Command::new(path)
                    .args(["--no-tui", "--output-format", "json", "-m", "POST"])
                    .args(["-H", "content-type: application/json", "-d", REQUEST])
                    .args(["-c", &connections.to_string()])
                    .args(["-z", &format!("{}ms", duration.as_millis())])
                    .arg(url)
                    .output()
                    .await
                    .map_err(|e| format!("oha: {e}"))?;
                parse_oha(&String::from_utf8_lossy(&output.stdout))
            }
            Self::Wrk(path) => {
                let script = std::env::temp_dir().join("cascade-bench-post.lua");
                let lua = format!(
                    "wrk.method = \"POST\"\nwrk.headers[\"content-type\"] = \"application/json\"\nwrk.body = [[{REQUEST}]]\n"
                );
                std::fs::write(&script, lua).map_err(|e| e.to_string())?;
                let threads = connections.clamp(1, 2);
                let output = Command::new(path)
                    .args(["--latency", "-t", &threads.to_string()])
                    .args(["-c", &connections.to_string()])
                    .args(["-d", &format!("{}s", duration.as_secs().max(1))])
                    .args(["-s", &script.display().to_string()])
                    .arg(url)
                    .output()
                    .await
                    .map_err(|e| format!("wrk: {e}"))?;
                parse_wrk(&String::from_utf8_lossy(&output.stdout))
            }
        }
    }
}

fn secs(value: &serde_json::Value) -> Result<Duration, String> {
    value
        .as_f64()
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("not a number of seconds: {value}"))
}

/// Reads `oha --output-format json`.
///
/// # Errors
/// When a field is missing.
pub fn parse_oha(text: &str) -> Result<Load, String> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("oha output: {e}: {text}"))?;
    let percentiles = &json["latencyPercentiles"];
    Ok(Load {
        rps: json["summary"]["requestsPerSec"]
            .as_f64()
            .ok_or("oha: no requestsPerSec")?,
        p50: secs(&percentiles["p50"])?,
        p99: secs(&percentiles["p99"])?,
    })
}

fn wrk_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Reads `wrk --latency` output.
///
/// # Errors
/// When a line is missing.
pub fn parse_wrk(text: &str) -> Result<Load, String> {
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .ok_or_else(|| format!("wrk: no `{prefix}` in:\n{text}"))
    };
    Ok(Load {
        rps: field("Requests/sec:")?
            .parse()
            .map_err(|_| "wrk: bad Requests/sec")?,
        p50: wrk_duration(field("50%")?).ok_or("wrk: bad 50%")?,
        p99: wrk_duration(field("99%")?).ok_or("wrk: bad 99%")?,
    })
}

/// A child process started by the benchmark, killed when dropped.
struct Proc {
    child: Child,
    url: String,
}

impl Proc {
    /// Starts `program` and waits for a `listening on http://…` line on stdout or stderr.
    async fn start(program: &Path, args: &[&str], env: &[(&str, String)]) -> Result<Self, String> {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", program.display()))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let err = child.stderr.take().ok_or("no stderr")?;
        let mut lines = futures_util::stream::select(
            tokio_stream_lines(BufReader::new(out)),
            tokio_stream_lines(BufReader::new(err)),
        );
        use futures_util::StreamExt;
        while let Some(line) = lines.next().await {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                return Ok(Self { child, url });
            }
        }
        Err(format!("{} ended before listening", program.display()))
    }

    /// Peak resident memory (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    }
}

fn tokio_stream_lines<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
    reader: R,
) -> futures_util::stream::BoxStream<'static, String> {
    Box::pin(futures_util::stream::unfold(
        reader.lines(),
        |mut lines| async move { lines.next_line().await.ok().flatten().map(|l| (l, lines)) },
    ))
}

/// Sequential streamed requests: time to the first body byte, p50 and p99.
async fn ttfb(url: &str, requests: usize) -> Result<(Duration, Duration), String> {
    let client = reqwest::Client::new();
    let mut samples = Vec::with_capacity(requests);
    for _ in 0..requests {
        let started = Instant::now();
        let mut response = client
            .post(url)
            .header("content-type", "application/json")
            .body(STREAM_REQUEST)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let _ = response.chunk().await.map_err(|e| e.to_string())?;
        samples.push(started.elapsed());
        while response.chunk().await.map_err(|e| e.to_string())?.is_some() {}
    }
    samples.sort();
    let at = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    Ok((at(50), at(99)))
}

/// The highest throughput with p99 under [`P99_BOUND`] over connection counts from 1 to 128.
async fn max_rps(
    generator: &Generator,
    url: &str,
    duration: Duration,
) -> Result<(Load, u32), String> {
    let mut best = (Load::default(), 0);
    for connections in [1, 2, 4, 8, 16, 32, 64, 128] {
        let load = generator.run(url, connections, duration).await?;
        // Every level is tried: on a shared machine one noisy run must not end the search.
        if load.p99 < P99_BOUND && load.rps > best.0.rps {
            best = (load, connections);
        }
    }
    Ok(best)
}

/// The numbers of one target.
#[derive(Debug, Clone, Copy, Default)]
struct Row {
    sequential: Load,
    max: Load,
    max_connections: u32,
    fixed: Option<Load>,
    ttfb: (Duration, Duration),
    rss_kib: Option<u64>,
}

async fn measure(
    generator: &Generator,
    target: &Proc,
    chat: &str,
    duration: Duration,
) -> Result<Row, String> {
    // A warm-up: connection pools, allocator, page cache.
    generator.run(chat, 4, Duration::from_secs(1)).await?;
    let sequential = generator.run(chat, 1, duration).await?;
    let (max, max_connections) = max_rps(generator, chat, duration).await?;
    let fixed = generator
        .run_fixed(chat, FIXED_RPS, FIXED_CONNECTIONS, duration)
        .await?;
    let ttfb = ttfb(chat, 500).await?;
    Ok(Row {
        sequential,
        max,
        max_connections,
        fixed,
        ttfb,
        rss_kib: target.peak_rss_kib(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print_table(generator: &Generator, direct: &Row, gateway: &Row, bare: &Row) {
    println!(
        "\nload generator: {}; one core pair shared by all three processes; load average before: {}\n",
        generator.name(),
        load_average()
    );
    println!(
        "| measure | direct (upstream) | through the gateway | overhead | bare axum + reqwest proxy |"
    );
    println!("| --- | --- | --- | --- | --- |");
    let row = |name: &str, pick: fn(&Row) -> Duration| {
        let (a, b) = (pick(direct), pick(gateway));
        println!(
            "| {name} | {} | {} | {} | {} |",
            ms(a),
            ms(b),
            ms(b.saturating_sub(a)),
            ms(pick(bare))
        );
    };
    row("sequential p50", |r| r.sequential.p50);
    row("sequential p99", |r| r.sequential.p99);
    let share = |r: &Row| {
        if direct.max.rps > 0.0 {
            r.max.rps / direct.max.rps * 100.0
        } else {
            0.0
        }
    };
    let max = |r: &Row| {
        format!(
            "{:.0} ({} conn, p99 {})",
            r.max.rps,
            r.max_connections,
            ms(r.max.p99)
        )
    };
    println!(
        "| max RPS with p99 < 10 ms | {} | {} | {:.0}% of direct | {} = {:.0}% of direct |",
        max(direct),
        max(gateway),
        share(gateway),
        max(bare),
        share(bare),
    );
    match (direct.fixed, gateway.fixed, bare.fixed) {
        (Some(a), Some(b), Some(c)) => println!(
            "| p99 at a fixed {FIXED_RPS} RPS | {} ({:.0} RPS) | {} ({:.0} RPS) | {} | {} ({:.0} RPS) |",
            ms(a.p99),
            a.rps,
            ms(b.p99),
            b.rps,
            ms(b.p99.saturating_sub(a.p99)),
            ms(c.p99),
            c.rps
        ),
        _ => println!("| p99 at a fixed {FIXED_RPS} RPS | not measured (needs oha) | | | |"),
    }
    row("streaming TTFB p50", |r| r.ttfb.0);
    row("streaming TTFB p99", |r| r.ttfb.1);
    let rss = |r: &Row| {
        r.rss_kib
            .map_or("?".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0))
    };
    println!(
        "| peak RSS (VmHWM) | {} | {} | | {} |",
        rss(direct),
        rss(gateway),
        rss(bare)
    );
}

/// `/proc/loadavg`'s first three fields: the machine's load, printed with the numbers.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// The release builds: `cascade` with the one provider the benchmark calls, the upstream without any.
async fn build(root: &Path) -> Result<(), String> {
    let builds: [&[&str]; 2] = [
        &[
            "-p",
            "llm-cli",
            "--no-default-features",
            "--features",
            "provider-openai",
        ],
        &["-p", "xtask", "--no-default-features"],
    ];
    for args in builds {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release"])
            .args(args)
            .current_dir(root)
            .status()
            .await
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!(
                "the release build failed: cargo build --release {args:?}"
            ));
        }
    }
    Ok(())
}

/// Runs the whole benchmark and prints the table.
///
/// # Errors
/// When a build, a process or the load generator fails.
pub async fn bench_gateway(duration: Duration) -> Result<(), String> {
    let root = crate::workspace_root();
    let generator = Generator::find_or_install()
        .await
        .ok_or("no load generator: `cargo install oha --locked`, or `apt-get install wrk`")?;
    build(&root).await?;
    let release = root.join("target/release");
    let upstream = Proc::start(&release.join("xtask"), &["bench-upstream"], &[]).await?;
    let dir = std::env::temp_dir();
    let env = [
        // Obviously not a key: the upstream never checks it.
        ("OPENAI_API_KEY", "bench-placeholder-not-a-key".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", upstream.url)),
        ("LLM_FALLBACK_ORDER", "openai".to_owned()),
        ("LLM_USAGE_DB", "off".to_owned()),
        ("LLM_GATEWAY_ADDR", "127.0.0.1:0".to_owned()),
        ("LLM_GATEWAY_MAX_INFLIGHT", "100000".to_owned()),
        ("OLLAMA_BASE_URL", "http://127.0.0.1:9".to_owned()),
        ("LM_STUDIO_BASE_URL", "http://127.0.0.1:9/v1".to_owned()),
        ("HOME", dir.display().to_string()),
    ];
    let gateway = Proc::start(&release.join("cascade"), &["serve"], &env).await?;
    let chat_path = "/v1/chat/completions";
    let bare = Proc::start(
        &release.join("xtask"),
        &[
            "bench-passthrough",
            "--upstream",
            &format!("{}{chat_path}", upstream.url),
        ],
        &[],
    )
    .await?;
    println!(
        "upstream {}; gateway {}; bare proxy {}",
        upstream.url, gateway.url, bare.url
    );
    let mut rows = Vec::new();
    for target in [&upstream, &gateway, &bare] {
        let url = format!("{}{chat_path}", target.url);
        rows.push(measure(&generator, target, &url, duration).await?);
    }
    if let [direct, through, floor] = rows.as_slice() {
        print_table(&generator, direct, through, floor);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "  Latency Distribution\n     50%  112.00us\n     75%  1.20ms\n     99%    2.50ms\n\
                    Requests/sec:  12345.67\nTransfer/sec: 1MB\n";
        let load = parse_wrk(text).expect("parsed");
        assert_eq!(load.p50, Duration::from_micros(112));
        assert_eq!(load.p99, Duration::from_micros(2500));
        assert!((load.rps - 12345.67).abs() < 1e-6);
    }
}
