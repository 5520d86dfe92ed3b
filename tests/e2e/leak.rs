//! The canary key never leaks: every provider × every way a provider echoes a key × every output of
//! the `cascade` binary (plain stderr, `--json`, `-v`, `-vv`, `RUST_LOG=trace`, `providers --check`
//! and `--check --json`, `test`, `chat --json`, and the usage log's SQLite file).
//!
//! The echo bodies are the providers' real error bodies from `fixtures/`, with the canary spliced in
//! where a provider quotes its input: at the start of the message text (OpenAI and DeepSeek quote a
//! masked key in theirs today; a proxy, a misconfigured gateway or a future version that echoes the key
//! unmasked would put it there).
//! Each run must show `[REDACTED]` where the echo was, so the test fails if the echo never reached an
//! output (a test that cannot see the key proves nothing).

use std::path::Path;

use llm_test_support::{CANARY_KEY, Fixture};
use serde_json::Value;
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{Run, cascade, cascade_in, cascade_with_stdin, fast, locals_down, order};

const MARKER: &str = "[REDACTED]";

/// One provider: its id, env prefix, and the fixtures its echo shapes are built from.
struct Spec {
    id: &'static str,
    prefix: &'static str,
    /// The key-refusal body (`provider`, `scenario`).
    auth: (&'static str, &'static str),
    /// An `{"error": …}` body, served in a 200.
    error_in_200: (&'static str, &'static str),
    /// A stream with an error event in it.
    stream_error: (&'static str, &'static str),
    /// A streamed answer.
    stream: (&'static str, &'static str),
    /// A successful answer, and where its text is.
    success: (&'static str, &'static str, &'static str),
}

const OPENAI_TEXT: &str = "/choices/0/message/content";

/// Every provider. Mistral's refusal has no `error` object (`{"message": …}`), so its error inside a
/// 200 is OpenRouter's captured one (the same OpenAI dialect). LM Studio has no captured 401 or stream error: it speaks the OpenAI dialect, so it
/// gets OpenAI's 401 and Groq's stream error. Ollama has no 401 capture: its documented error body
/// (`{"error": "…"}`, the same on every status) is served with 401.
const SPECS: [Spec; 10] = [
    Spec {
        id: "openai",
        prefix: "OPENAI",
        auth: ("openai", "error.401.auth"),
        error_in_200: ("openai", "error.401.auth"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("openai", "chat.stream"),
        success: ("openai", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "groq",
        prefix: "GROQ",
        auth: ("groq", "error.401.auth"),
        error_in_200: ("groq", "error.401.auth"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("groq", "chat.stream"),
        success: ("groq", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "mistral",
        prefix: "MISTRAL",
        auth: ("mistral", "error.401.auth"),
        error_in_200: ("openrouter", "chat.error_in_200"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("mistral", "chat.stream"),
        success: ("mistral", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "deepseek",
        prefix: "DEEPSEEK",
        auth: ("deepseek", "error.401.auth"),
        error_in_200: ("deepseek", "error.401.auth"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("deepseek", "chat.stream"),
        success: ("deepseek", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "together",
        prefix: "TOGETHER",
        auth: ("together", "error.401.auth"),
        error_in_200: ("together", "error.401.auth"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("together", "chat.stream"),
        success: ("together", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "openrouter",
        prefix: "OPENROUTER",
        auth: ("openrouter", "error.401.auth"),
        error_in_200: ("openrouter", "error.401.auth"),
        stream_error: ("openrouter", "chat.stream.error_in_200"),
        stream: ("openrouter", "chat.stream"),
        success: ("openrouter", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "lmstudio",
        prefix: "LM_STUDIO",
        auth: ("openai", "error.401.auth"),
        error_in_200: ("openai", "error.401.auth"),
        stream_error: ("groq", "chat.stream.error_in_200"),
        stream: ("lmstudio", "chat.stream"),
        success: ("lmstudio", "chat.success", OPENAI_TEXT),
    },
    Spec {
        id: "anthropic",
        prefix: "ANTHROPIC",
        auth: ("anthropic", "error.401.auth"),
        error_in_200: ("anthropic", "error.401.auth"),
        stream_error: ("anthropic", "chat.stream.error_event"),
        stream: ("anthropic", "chat.stream"),
        success: ("anthropic", "chat.success", "/content/0/text"),
    },
    Spec {
        id: "gemini",
        prefix: "GEMINI",
        // Gemini refuses a bad key with 400 API_KEY_INVALID.
        auth: ("gemini", "error.400.api_key_invalid"),
        error_in_200: ("gemini", "error.400.api_key_invalid"),
        // No capture of an error event inside a Gemini stream exists: this is the real error the
        // stream endpoint sends (content-type text/event-stream, a JSON error body).
        stream_error: ("gemini", "error.400.api_key_invalid"),
        stream: ("gemini", "chat.stream"),
        success: (
            "gemini",
            "chat.success",
            "/candidates/0/content/parts/0/text",
        ),
    },
    Spec {
        id: "ollama",
        prefix: "OLLAMA",
        auth: ("ollama", "error.500.server"),
        error_in_200: ("ollama", "error.500.server"),
        stream_error: ("ollama", "chat.stream.error"),
        stream: ("ollama", "chat.stream"),
        success: ("ollama", "chat.success", "/message/content"),
    },
];

/// The ways a provider echoes the key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Shape {
    /// The key-refusal body (401; Gemini's 400), key quoted in its message.
    Auth,
    /// A proxy's 5xx page that is not JSON, key in its title.
    ServerPage,
    /// The provider's error object inside an HTTP 200.
    ErrorIn200,
    /// An error event inside a streamed answer.
    StreamError,
    /// A redirect whose `location` header (quoted into our message) holds the key.
    Header,
}

/// `text` quoting the canary first, as "Incorrect API key provided: …" does (first, so that the
/// 60-character cells of `providers --check` show where it was).
fn splice(text: &str) -> String {
    format!("key {CANARY_KEY}: {text}")
}

/// Splices the canary into every message string of a JSON error body (`message`, or Ollama's
/// `error` string).
fn splice_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, field) in map.iter_mut() {
                match field {
                    Value::String(text) if name == "message" || name == "error" => {
                        *text = splice(text);
                    }
                    other => splice_json(other),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(splice_json),
        _ => {}
    }
}

/// A stream body with the canary spliced into its (first) error message.
fn splice_stream(body: &str) -> String {
    let spliced = [r#""message":""#, r#"{"error":""#]
        .iter()
        .find(|opening| body.contains(**opening))
        .map(|opening| body.replacen(opening, &format!("{opening}key {CANARY_KEY}: "), 1))
        .expect("the stream has an error message to splice into");
    assert!(spliced.contains(CANARY_KEY));
    spliced
}

/// The fixture's response with the canary spliced into its JSON body, served with `status`.
fn spliced_fixture(provider: &str, scenario: &str, status: u16) -> ResponseTemplate {
    let mut fixture = Fixture::load(provider, scenario);
    let body = fixture.response.body.as_mut().expect("a JSON error body");
    splice_json(body);
    assert!(
        body.to_string().contains(CANARY_KEY),
        "{provider}/{scenario}"
    );
    fixture.response.status = status;
    fixture.response_template()
}

/// What the mock provider answers for `shape`.
fn echo(spec: &Spec, shape: Shape) -> ResponseTemplate {
    let (provider, scenario) = spec.auth;
    match shape {
        Shape::Auth => {
            let status = Fixture::load(provider, scenario).response.status;
            let status = if status >= 500 { 401 } else { status };
            spliced_fixture(provider, scenario, status)
        }
        Shape::ErrorIn200 => {
            let (provider, scenario) = spec.error_in_200;
            spliced_fixture(provider, scenario, 200)
        }
        Shape::ServerPage => {
            // The Cloudflare 502 page any proxy in front of any provider returns; the title is what
            // our message quotes of a page.
            let mut fixture = Fixture::load("openai", "error.502.html");
            let page = fixture.response.body_text.take().expect("an HTML page");
            let page = page.replacen("</title>", &format!(" {CANARY_KEY}</title>"), 1);
            assert!(page.contains(CANARY_KEY));
            fixture.response.body_text = Some(page);
            fixture.response_template()
        }
        Shape::StreamError => {
            let (provider, scenario) = spec.stream_error;
            let mut fixture = Fixture::load(provider, scenario);
            if fixture.response.body.is_some() {
                return spliced_fixture(provider, scenario, fixture.response.status);
            }
            let body = String::from_utf8(fixture.body_bytes()).expect("a text stream");
            let content_type = fixture
                .response
                .headers
                .remove("content-type")
                .expect("a content type");
            ResponseTemplate::new(fixture.response.status)
                .set_body_raw(splice_stream(&body), &content_type)
        }
        Shape::Header => ResponseTemplate::new(307).insert_header(
            "location",
            format!("https://{CANARY_KEY}.invalid/v1/chat/completions").as_str(),
        ),
    }
}

/// The environment that points `spec` (only) at `server`, stores content in the usage log at `db`,
/// and makes one attempt per provider.
fn env_for(spec: &Spec, server: &MockServer, db: &Path) -> Vec<(String, String)> {
    let mut env = fast();
    env.extend(locals_down());
    env.extend([
        (format!("{}_API_KEY", spec.prefix), CANARY_KEY.to_owned()),
        (format!("{}_BASE_URL", spec.prefix), server.uri()),
        order(spec.id),
        ("LLM_MAX_ATTEMPTS".to_owned(), "1".to_owned()),
        ("LLM_LOCAL_PULL".to_owned(), "never".to_owned()),
        ("LLM_USAGE_LOG_CONTENT".to_owned(), "true".to_owned()),
        ("LLM_USAGE_DB".to_owned(), db.display().to_string()),
        // Every command of the matrix must reach the provider: a remembered auth failure or cooling
        // from the previous command would skip it.
        ("LLM_STATE".to_owned(), "off".to_owned()),
    ]);
    if matches!(spec.id, "ollama" | "lmstudio") {
        // A model the captured Ollama tag list has; set for LM Studio too, which otherwise asks the
        // server for its loaded model before the chat that carries the echo.
        env.push((format!("{}_MODEL", spec.prefix), "gemma2:27b".to_owned()));
    }
    env
}

/// One output of the binary: its arguments, extra environment, and stdin.
struct Output {
    args: Vec<String>,
    rust_log: bool,
    stdin: Option<&'static str>,
}

fn output(args: &[&str]) -> Output {
    Output {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        rust_log: false,
        stdin: None,
    }
}

/// Every output, for an `ask` that streams or not.
fn outputs(spec: &Spec, stream: bool) -> Vec<Output> {
    let ask = |global: &[&str], own: &[&str]| {
        let mut args: Vec<&str> = global.to_vec();
        args.push("ask");
        args.extend(own);
        if stream {
            args.push("--stream");
        }
        args.push("hi");
        output(&args)
    };
    let mut trace = ask(&[], &[]);
    trace.rust_log = true;
    let mut chat = output(&["chat", "--json"]);
    chat.stdin = Some("hi\n");
    vec![
        ask(&[], &[]),
        ask(&[], &["--json"]),
        ask(&["-v"], &[]),
        ask(&["-vv"], &[]),
        trace,
        output(&["providers", "--check"]),
        output(&["providers", "--check", "--json"]),
        output(&["test", spec.id]),
        output(&["test", spec.id, "--json"]),
        chat,
    ]
}

async fn run(output: &Output, env: &[(String, String)]) -> Run {
    let mut env = env.to_vec();
    if output.rust_log {
        env.push(("RUST_LOG".to_owned(), "trace".to_owned()));
    }
    let args: Vec<&str> = output.args.iter().map(String::as_str).collect();
    cascade_with_stdin(&args, &env, output.stdin).await
}

/// Every file of the usage log (the database and any journal beside it), as text.
fn usage_log_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).expect("read the temp dir") {
        let path = entry.expect("entry").path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("usage.db"))
        {
            text.push_str(&String::from_utf8_lossy(
                &std::fs::read(&path).expect("read the usage log"),
            ));
        }
    }
    text
}

/// Whether `output` reaches the echo of `shape` at all. Probes (`providers --check`, `test`) list
/// models and ask without streaming, and a streamed answer (`chat`) does not read a JSON body served in a
/// 200 as an error; those runs must still not leak, but have no echo to show.
fn shows_the_echo(shape: Shape, output: &Output) -> bool {
    let command = output.args.iter().find(|a| !a.starts_with('-'));
    match (shape, command.map(String::as_str)) {
        (Shape::StreamError, Some("providers" | "test")) => false,
        // Anthropic's probe reads the model list's status only.
        (Shape::ErrorIn200, Some("chat" | "providers")) => false,
        _ => true,
    }
}

/// Runs every output against every provider echoing the key in `shape`.
async fn assert_never_leaks(shape: Shape) {
    for spec in &SPECS {
        let server = MockServer::start().await;
        if spec.id == "ollama" && shape == Shape::ErrorIn200 {
            // Ollama lists its models before a chat; an error in a 200 there reads as "not installed"
            // and the chat (where the echo is) would never be sent.
            Mock::given(method("GET"))
                .and(path("/api/tags"))
                .respond_with(Fixture::load("ollama", "tags.success").response_template())
                .with_priority(1)
                .expect(1..)
                .mount(&server)
                .await;
        }
        Mock::given(any())
            .respond_with(echo(spec, shape))
            .expect(1..)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env_for(spec, &server, &dir.path().join("usage.db"));
        for output in outputs(spec, shape == Shape::StreamError) {
            let run = run(&output, &env).await;
            let what = format!("{} {shape:?} `{}`", spec.id, output.args.join(" "));
            assert!(
                !run.stdout.contains(CANARY_KEY) && !run.stderr.contains(CANARY_KEY),
                "{what} leaked the key:\nstdout: {}\nstderr: {}",
                run.stdout,
                run.stderr
            );
            if !shows_the_echo(shape, &output) {
                continue;
            }
            assert!(
                run.stdout.contains(MARKER) || run.stderr.contains(MARKER),
                "{what} shows no {MARKER} where the echo was:\nstdout: {}\nstderr: {}",
                run.stdout,
                run.stderr
            );
        }
        let log = usage_log_text(dir.path());
        assert!(!log.is_empty(), "{} {shape:?}: no usage log", spec.id);
        assert!(
            !log.contains(CANARY_KEY),
            "{} {shape:?}: key in the usage log",
            spec.id
        );
    }
}

#[tokio::test]
async fn a_key_echoed_in_a_refusal_never_leaks() {
    assert_never_leaks(Shape::Auth).await;
}

#[tokio::test]
async fn a_key_echoed_in_a_proxy_page_never_leaks() {
    assert_never_leaks(Shape::ServerPage).await;
}

#[tokio::test]
async fn a_key_echoed_in_an_error_inside_a_200_never_leaks() {
    assert_never_leaks(Shape::ErrorIn200).await;
}

#[tokio::test]
async fn a_key_echoed_in_a_stream_error_event_never_leaks() {
    assert_never_leaks(Shape::StreamError).await;
}

#[tokio::test]
async fn a_key_in_a_redirect_header_never_leaks() {
    assert_never_leaks(Shape::Header).await;
}

/// The successful answer of `spec`, with the canary spliced into its text (a model repeating a key it
/// was shown).
fn echoing_answer(spec: &Spec) -> ResponseTemplate {
    let (provider, scenario, text_at) = spec.success;
    let mut fixture = Fixture::load(provider, scenario);
    let body = fixture.response.body.as_mut().expect("a JSON answer");
    let text = body
        .pointer_mut(text_at)
        .unwrap_or_else(|| panic!("{provider}/{scenario} has no text at {text_at}"));
    *text = Value::from(format!("{} {CANARY_KEY}", text.as_str().expect("text")));
    fixture.response_template()
}

#[tokio::test]
async fn a_key_in_the_prompt_or_the_answer_never_reaches_the_output_or_the_usage_log() {
    let prompt = format!("my key is {CANARY_KEY}");
    for spec in &SPECS {
        let server = MockServer::start().await;
        if spec.id == "ollama" {
            Mock::given(method("GET"))
                .and(path("/api/tags"))
                .respond_with(Fixture::load("ollama", "tags.success").response_template())
                .expect(1..)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .respond_with(echoing_answer(spec))
            .expect(4)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env_for(spec, &server, &dir.path().join("usage.db"));
        let mut trace = env.clone();
        trace.push(("RUST_LOG".to_owned(), "trace".to_owned()));
        for (args, env) in [
            (vec!["ask", prompt.as_str()], &env),
            (vec!["ask", "--json", prompt.as_str()], &env),
            (vec!["-vv", "ask", prompt.as_str()], &env),
            (vec!["ask", prompt.as_str()], &trace),
        ] {
            let run = cascade_with_stdin(&args, env, None).await;
            let what = format!("{} `{}`", spec.id, args[..args.len() - 1].join(" "));
            assert_eq!(run.code, Some(0), "{what}: {}", run.stderr);
            run.assert_no_key();
            assert!(run.stdout.contains(MARKER), "{what}: {}", run.stdout);
        }
        let log = usage_log_text(dir.path());
        assert!(
            !log.contains(CANARY_KEY),
            "{}: key in the usage log",
            spec.id
        );
        assert!(
            log.matches(MARKER).count() >= 8,
            "{}: the prompt and answer columns should hold {MARKER} (4 runs)",
            spec.id
        );
    }
}

/// A provider at `from` that redirects every request to `to`.
async fn redirecting(to: &MockServer) -> MockServer {
    let from = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}/v1/steal", to.uri()).as_str()),
        )
        .expect(1..)
        .mount(&from)
        .await;
    from
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_and_carries_no_key_there() {
    const KEY_HEADERS: [&str; 3] = ["authorization", "x-api-key", "x-goog-api-key"];
    for spec in SPECS
        .iter()
        .filter(|s| matches!(s.id, "openai" | "anthropic" | "gemini"))
    {
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let provider = redirecting(&elsewhere).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let run = cascade_with_stdin(
            &["ask", "hi"],
            &env_for(spec, &provider, &dir.path().join("usage.db")),
            None,
        )
        .await;
        assert_eq!(run.code, Some(1), "{}: {}", spec.id, run.stderr);
        run.assert_no_key();
        let host = elsewhere.uri().trim_start_matches("http://").to_owned();
        assert!(
            run.stderr.contains("HTTP 307") && run.stderr.contains(&format!("redirect to {host}")),
            "{}: the error names neither the status nor the target: {}",
            spec.id,
            run.stderr
        );
        let reached = elsewhere.received_requests().await.expect("recording");
        let keyed = reached
            .iter()
            .filter(|r| KEY_HEADERS.iter().any(|h| r.headers.contains_key(*h)))
            .count();
        assert_eq!((reached.len(), keyed), (0, 0), "{}", spec.id);
    }
}

#[tokio::test]
async fn a_malformed_env_file_is_reported_by_line_and_variable_never_quoted() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        format!("# keys\nLLM_DEADLINE=30s\nGROQ_API_KEY={CANARY_KEY} pasted twice\n"),
    )
    .expect("write .env");
    let run = cascade_in(dir.path(), &["ask", "hi"], &[], None).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    run.assert_no_key();
    assert!(
        run.stderr
            .contains(".env line 3: cannot parse the value of GROQ_API_KEY"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn a_key_pasted_into_a_setting_is_redacted_from_its_error() {
    let mut env = fast();
    env.push(("OPENAI_API_KEY".to_owned(), CANARY_KEY.to_owned()));
    env.push(order(CANARY_KEY));
    let run = cascade(&["ask", "--json", "hi"], &env).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    run.assert_no_key();
    assert!(run.stdout.contains(MARKER), "{}", run.stdout);
}

/// A stream body with the canary spliced into its first piece of answer text (a model repeating a key
/// it was shown, in one delta).
fn splice_answer_stream(body: &str) -> String {
    let openings = [
        r#""text_delta","text":""#,
        r#""content":""#,
        r#""text": ""#,
        r#""text":""#,
    ];
    let at = openings
        .iter()
        .find_map(|opening| {
            body.match_indices(opening)
                .map(|(at, _)| at + opening.len())
                .find(|end| !body[*end..].starts_with('"'))
        })
        .expect("the stream has answer text");
    format!("{}{CANARY_KEY} {}", &body[..at], &body[at..])
}

#[tokio::test]
async fn a_key_echoed_in_a_streamed_answer_never_reaches_the_output() {
    for spec in &SPECS {
        let (provider, scenario) = spec.stream;
        let fixture = Fixture::load(provider, scenario);
        let body = splice_answer_stream(&String::from_utf8(fixture.body_bytes()).expect("text"));
        let content_type = fixture.response.headers["content-type"].clone();
        let server = MockServer::start().await;
        if spec.id == "ollama" {
            Mock::given(method("GET"))
                .and(path("/api/tags"))
                .respond_with(Fixture::load("ollama", "tags.success").response_template())
                .expect(1..)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, &content_type))
            .expect(2)
            .mount(&server)
            .await;
        let dir = tempfile::tempdir().expect("temp dir");
        let env = env_for(spec, &server, &dir.path().join("usage.db"));
        for (args, stdin) in [
            (vec!["ask", "--stream", "hi"], None),
            (vec!["chat", "--json"], Some("hi\n")),
        ] {
            let run = cascade_with_stdin(&args, &env, stdin).await;
            let what = format!("{} `{}`", spec.id, args.join(" "));
            assert_eq!(run.code, Some(0), "{what}: {}", run.stderr);
            run.assert_no_key();
            assert!(run.stdout.contains(MARKER), "{what}: {}", run.stdout);
        }
        assert!(
            !usage_log_text(dir.path()).contains(CANARY_KEY),
            "{}",
            spec.id
        );
    }
}
