//! The embedded model's speed on the real SmolLM2-135M GGUF: load time, time to first token, tokens
//! per second for a 128-token answer, peak RSS. `LLM_TEST_GGUF=<file> cargo bench -p
//! llm-provider-local`. A plain report rather than criterion: the model loads once per process, and
//! peak memory is not something criterion measures.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use llm_core::{ChatRequest, MapEnv, Provider, StreamEvent};
use llm_provider_local::Local;

/// Answers measured after one warm-up answer.
const RUNS: usize = 5;
/// The answer's length.
const TOKENS: u32 = 128;

struct Run {
    first_token: Duration,
    total: Duration,
    tokens: u64,
}

async fn answer(local: &Local) -> Run {
    let request = ChatRequest {
        temperature: Some(0.0),
        max_tokens: Some(TOKENS),
        ..ChatRequest::from_prompt("Write a long story about a robot who learns to paint.")
    };
    let started = Instant::now();
    let mut stream = local.chat_stream(&request).await.expect("stream");
    let mut first_token = None;
    let mut tokens = 0;
    while let Some(event) = stream.next().await {
        match event.expect("event") {
            StreamEvent::Delta { .. } => {
                first_token.get_or_insert_with(|| started.elapsed());
            }
            StreamEvent::Usage { usage } => tokens = usage.output_tokens,
            StreamEvent::Finish { .. }
            | StreamEvent::ToolCall { .. }
            | StreamEvent::Resumed { .. }
            | StreamEvent::RateLimit { .. } => {}
        }
    }
    Run {
        first_token: first_token.unwrap_or_default(),
        total: started.elapsed(),
        tokens,
    }
}

/// The process's peak resident set (`VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let Some(path) = std::env::var_os("LLM_TEST_GGUF") else {
        eprintln!("set LLM_TEST_GGUF to the SmolLM2-135M-Instruct GGUF file (see .ci/run)");
        return;
    };
    let env = MapEnv::new().with("LOCAL_MODEL_PATH", path.to_string_lossy());
    let local = Local::from_env(&env).expect("config");
    let started = Instant::now();
    local.preload().await.expect("load");
    let load = started.elapsed();
    answer(&local).await;
    let runs: Vec<Run> = futures_util::stream::iter(0..RUNS)
        .then(|_| answer(&local))
        .collect()
        .await;
    let ttft = median(
        runs.iter()
            .map(|r| r.first_token.as_secs_f64() * 1e3)
            .collect(),
    );
    let rate = median(
        runs.iter()
            .map(|r| (r.tokens.saturating_sub(1)) as f64 / (r.total - r.first_token).as_secs_f64())
            .collect(),
    );
    let tokens = runs.iter().map(|r| r.tokens).max().unwrap_or_default();
    println!("model:               {}", local.config().model);
    println!("load:                {:.0} ms", load.as_secs_f64() * 1e3);
    println!("time to first token: {ttft:.0} ms (median of {RUNS})");
    println!("generation:          {rate:.1} tokens/s ({tokens}-token answers, median of {RUNS})");
    if let Some(rss) = peak_rss_mb() {
        println!("peak RSS:            {rss:.0} MB");
    }
}
