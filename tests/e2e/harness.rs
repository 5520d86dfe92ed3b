//! Running the `cascade` binary with a clean environment.

use std::path::PathBuf;
use std::process::Output;

use llm_test_support::{CANARY_KEY, Fixture, refused_port};
use wiremock::MockServer;

/// The `cascade` binary built by this workspace's test run.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join(format!("cascade{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run the whole workspace's tests (`cargo test --workspace`), which build it",
        binary.display()
    );
    binary
}

/// A finished run.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as one JSON value.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON value ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts the canary key appears nowhere in the output.
    pub fn assert_no_key(&self) {
        assert!(
            !self.stdout.contains(CANARY_KEY),
            "key in stdout: {}",
            self.stdout
        );
        assert!(
            !self.stderr.contains(CANARY_KEY),
            "key in stderr: {}",
            self.stderr
        );
    }
}

impl From<Output> for Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

/// Runs `cascade` with exactly `env` (nothing inherited) in an empty directory (no `.env`). The usage
/// log goes into that directory unless `env` sets `LLM_USAGE_DB` (never into the real data directory).
pub async fn cascade(args: &[&str], env: &[(String, String)]) -> Run {
    cascade_with_stdin(args, env, None).await
}

/// Like [`cascade`], with `stdin` piped to the process (closed after it is written).
pub async fn cascade_with_stdin(
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&str>,
) -> Run {
    let dir = tempfile::tempdir().expect("temp dir");
    cascade_in(dir.path(), args, env, stdin).await
}

/// Like [`cascade_with_stdin`], in `dir` (which may hold a `.env`); the usage log goes there too.
pub async fn cascade_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(String, String)],
    stdin: Option<&str>,
) -> Run {
    use tokio::io::AsyncWriteExt;

    let mut child = tokio::process::Command::new(binary())
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("LLM_USAGE_DB", dir.join("usage.db"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cascade");
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
    }
    let output = child.wait_with_output().await.expect("wait for cascade");
    Run::from(output)
}

/// Settings that keep runs fast and deterministic: short backoff, no waiting on hints.
pub fn fast() -> Vec<(String, String)> {
    [("LLM_BACKOFF_MS", "10"), ("LLM_MAX_RETRY_WAIT", "0s")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Configures provider `prefix` (e.g. `OPENAI`) with the canary key against `base_url`.
pub fn provider(prefix: &str, base_url: String) -> Vec<(String, String)> {
    vec![
        (format!("{prefix}_API_KEY"), CANARY_KEY.to_owned()),
        (format!("{prefix}_BASE_URL"), base_url),
    ]
}

/// The order variable.
pub fn order(ids: &str) -> (String, String) {
    ("LLM_FALLBACK_ORDER".to_owned(), ids.to_owned())
}

/// A mock server answering `route` with the fixture, expecting `times` calls.
pub async fn serve(provider: &str, scenario: &str, route: &str, times: u64) -> MockServer {
    let server = MockServer::start().await;
    Fixture::load(provider, scenario)
        .mount(&server, "POST", route, times)
        .await;
    server
}

/// The content of a non-streamed fixture (`choices[0].message.content`).
pub fn fixture_content(provider: &str, scenario: &str) -> String {
    let fixture = Fixture::load(provider, scenario);
    let body = fixture.response.body.expect("a JSON body");
    body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned()
}

/// The settings that point both local providers at a refused port, so runs never reach a real server.
pub fn locals_down() -> Vec<(String, String)> {
    vec![
        (
            "OLLAMA_BASE_URL".to_owned(),
            format!("http://127.0.0.1:{}", refused_port()),
        ),
        (
            "LM_STUDIO_BASE_URL".to_owned(),
            format!("http://127.0.0.1:{}/v1", refused_port()),
        ),
    ]
}

/// A `cascade` command like [`cascade`]'s (clean environment, `NO_COLOR`, the usage log in `dir`
/// unless `env` sets it), every stdio piped, for tests that talk to the process while it runs.
pub fn command(
    args: &[&str],
    env: &[(String, String)],
    dir: &std::path::Path,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(binary());
    command
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("LLM_USAGE_DB", dir.join("usage.db"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Sends `signal` (`INT`, `TERM`) to the process, as a user or a service manager would.
pub fn send_signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("the process is running");
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Like [`cascade`], with `raw` variables whose values are bytes, not necessarily UTF-8 (Unix).
#[cfg(unix)]
pub async fn cascade_with_raw_env(
    args: &[&str],
    env: &[(String, String)],
    raw: &[(&str, &[u8])],
) -> Run {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = tempfile::tempdir().expect("temp dir");
    let output = tokio::process::Command::new(binary())
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .env("LLM_USAGE_DB", dir.path().join("usage.db"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(raw.iter().map(|(k, v)| (k, OsStr::from_bytes(v))))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("run cascade");
    Run::from(output)
}
