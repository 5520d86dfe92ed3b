//! The `cascade` binary's flags, exit codes and offline commands.

use std::process::{Command, Output};

fn cascade(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("run cascade")
}

fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(
        cascade(&["ask", "--max-tokens", "lots", "hi"], &[])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(cascade(&["ask"], &[]).status.code(), Some(2));
    assert_eq!(cascade(&["frobnicate"], &[]).status.code(), Some(2));
}

#[test]
fn help_documents_exit_codes() {
    let output = cascade(&["--help"], &[]);
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("Exit codes: 0 success; 1 every provider failed"),
        "{help}"
    );
}

#[test]
fn invalid_config_exits_2_and_names_the_valid_ids() {
    let output = cascade(
        &["ask", "--json", "hi"],
        &[("LLM_FALLBACK_ORDER", "groq,gtp4")],
    );
    assert_eq!(output.status.code(), Some(2));
    let json = stdout_json(&output);
    assert_eq!(json["success"], false);
    assert_eq!(json["error"], "config");
    let message = json["message"].as_str().expect("message");
    assert!(
        message.contains("`gtp4`") && message.contains("groq"),
        "{message}"
    );
}

#[test]
fn empty_prompt_from_stdin_exits_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["ask", "-"])
        .env_clear()
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("the prompt is empty"));
}

#[test]
fn providers_lists_every_compiled_in_provider_without_network() {
    let output = cascade(
        &["providers", "--json"],
        &[("GROQ_API_KEY", "canary-key-0000-never-print-me")],
    );
    assert_eq!(output.status.code(), Some(0));
    let rows = stdout_json(&output);
    let rows = rows.as_array().expect("array");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(
        ids,
        vec![
            "ollama",
            "lmstudio",
            "groq",
            "gemini",
            "openrouter",
            "together",
            "mistral",
            "openai",
            "deepseek",
            "anthropic",
            "local"
        ]
    );
    let groq = &rows[2];
    assert_eq!(
        (groq["configured"].as_bool(), groq["configured_by"].as_str()),
        (Some(true), Some("GROQ_API_KEY"))
    );
    let openai = &rows[7];
    assert_eq!(openai["configured"], false);
    assert_eq!(openai["set_to_configure"], "OPENAI_API_KEY");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("canary-key"));
}

#[test]
fn dotenv_in_the_working_directory_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        "MISTRAL_API_KEY=from-dotenv\nMISTRAL_MODEL=mistral-tiny-test\n",
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["providers", "--json"])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .expect("run");
    let rows = stdout_json(&output);
    let mistral = rows
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"] == "mistral"))
        .expect("mistral")
        .clone();
    assert_eq!(mistral["configured"], true);
    assert_eq!(mistral["model"], "mistral-tiny-test");
}

#[test]
fn each_command_documents_its_exit_codes() {
    for command in ["ask", "chat", "providers", "test", "stats"] {
        let output = cascade(&[command, "--help"], &[]);
        assert_eq!(output.status.code(), Some(0));
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(help.contains("Exit codes: 0 "), "{command}: {help}");
    }
}

#[test]
fn completions_are_generated_for_each_command() {
    let output = cascade(&["completions", "bash"], &[]);
    assert_eq!(output.status.code(), Some(0));
    let script = String::from_utf8_lossy(&output.stdout);
    for command in [
        "ask",
        "chat",
        "providers",
        "test",
        "stats",
        "pull",
        "completions",
    ] {
        assert!(script.contains(command), "{command} missing");
    }
    assert_eq!(
        cascade(&["completions", "tcsh"], &[]).status.code(),
        Some(2)
    );
}

#[test]
fn chat_without_any_provider_fails_each_question_but_ends_cleanly() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cascade"))
        .args(["chat", "--json"])
        .env_clear()
        .env("LLM_USAGE_DB", "off")
        .env("LLM_FALLBACK_ORDER", "openai")
        .current_dir(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n/llm stats\n/exit\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["type"], "error");
    assert_eq!(lines[0]["error"], "config");
    assert_eq!(lines[1]["type"], "stats");
    assert_eq!(lines[1]["total"]["requests"], 0);
}
