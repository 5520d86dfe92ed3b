//! `cascade chat`: a multi-turn conversation with streamed answers and `/llm` commands.
//!
//! On a terminal, lines are edited with rustyline (history in memory only: prompts are never written
//! to disk); otherwise stdin is read line by line, so scripts and tests can drive a session. Ctrl-C
//! during an answer cancels that answer (the conversation goes on without it); at the prompt it just
//! gives a new prompt. SIGTERM ends the session (143, an answer in progress cancelled); a closed
//! stdout ends it quietly (141).

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use llm_cascade::{Cascade, CascadeError, ChatRequest, Message, StreamEvent};
use rustyline::error::ReadlineError;
use serde_json::json;

use crate::args::ChatArgs;
use crate::interrupt::{Interrupt, Tracker, Watch};
use crate::output;
use crate::pull::PullProgress;
use crate::{Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

const HELP: &str = "\
Commands:
  /llm providers        the providers and which ones answer in this session
  /llm switch <id>      use only this provider from now on
  /llm switch auto      back to the whole cascade
  /llm stats            what each provider did in this session
  /llm test [id]        probe the providers and ask for one short test answer
  /help                 this list
  /exit                 leave (also Ctrl-D)
Ctrl-C cancels the answer being written.";

/// Where lines come from.
enum Input {
    Editor(Box<rustyline::DefaultEditor>),
    Plain(std::io::Stdin),
    /// The reading thread was lost: nothing more comes.
    Closed,
}

/// One read from the input.
enum Read {
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    Eof,
}

impl Input {
    fn open() -> Self {
        if std::io::stdin().is_terminal() {
            match rustyline::DefaultEditor::new() {
                Ok(editor) => return Self::Editor(Box::new(editor)),
                Err(error) => tracing::warn!("line editing unavailable: {error}"),
            }
        }
        Self::Plain(std::io::stdin())
    }

    fn read(&mut self) -> Read {
        match self {
            Self::Editor(editor) => match editor.readline("› ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Read::Line(line)
                }
                Err(ReadlineError::Interrupted) => Read::Interrupted,
                Err(ReadlineError::Eof) => Read::Eof,
                Err(error) => {
                    output::err(&format!("error: cannot read input: {error}"));
                    Read::Eof
                }
            },
            Self::Closed => Read::Eof,
            Self::Plain(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => Read::Eof,
                    Ok(_) => Read::Line(line.trim_end_matches(['\n', '\r']).to_owned()),
                    Err(error) => {
                        output::err(&format!("error: cannot read input: {error}"));
                        Read::Eof
                    }
                }
            }
        }
    }
}

/// The conversation and the chain answering it.
struct Session<'a> {
    ctx: &'a Ctx,
    cascade: Cascade,
    /// The attempts of the current turn, attached to every cascade the session builds.
    tracker: Arc<Tracker>,
    /// The bar of a model downloaded during a turn (cleared before the answer is printed).
    pulling: Arc<PullProgress>,
    watch: Watch,
    /// `Some(id)` when pinned with `/llm switch`.
    pinned: Option<String>,
    system: Option<String>,
    history: Vec<Message>,
    json: bool,
    failed_turns: usize,
}

/// How a turn ended.
enum Turn {
    Answered,
    Failed,
    /// Ctrl-C: the answer is dropped, the session goes on.
    Cancelled,
    /// SIGTERM or a closed stdout: the session ends with this status.
    Ended(u8),
}

/// A line read on a blocking thread (rustyline and stdin block), handing the input back with it.
type PendingRead = tokio::task::JoinHandle<(Input, Read)>;

/// What the prompt loop waits for.
enum Prompted {
    Read(Input, Read),
    Interrupted(Interrupt),
}

/// The next line, or an interrupt meanwhile. A read that an interrupt overtook stays in `pending`,
/// so that Ctrl-C at a plain prompt does not start a second reader.
async fn prompt(
    input: &mut Option<Input>,
    pending: &mut Option<PendingRead>,
    watch: &mut Watch,
) -> Prompted {
    if let Some(mut taken) = input.take() {
        *pending = Some(tokio::task::spawn_blocking(move || {
            let read = taken.read();
            (taken, read)
        }));
    }
    let Some(reading) = pending.as_mut() else {
        return Prompted::Read(Input::Closed, Read::Eof);
    };
    tokio::select! {
        joined = reading => {
            *pending = None;
            match joined {
                Ok((input, read)) => Prompted::Read(input, read),
                Err(_) => Prompted::Read(Input::Closed, Read::Eof),
            }
        }
        interrupt = watch.next() => Prompted::Interrupted(interrupt),
    }
}

/// Runs `cascade chat`; returns the exit code.
pub async fn run(args: ChatArgs, ctx: &Ctx) -> u8 {
    let tracker = Tracker::new();
    // `--json` is JSON lines: download progress goes there too; otherwise a bar on a terminal.
    let pulling = PullProgress::new(args.json);
    let cascade = match build(ctx, &tracker, &pulling, args.provider.as_deref()) {
        Ok(cascade) => cascade,
        Err(report) => return output::fail(&report, args.json, EXIT_USAGE),
    };
    let mut session = Session {
        ctx,
        cascade,
        tracker,
        pulling,
        watch: Watch::new(),
        pinned: args.provider,
        system: args.system,
        history: Vec::new(),
        json: args.json,
        failed_turns: 0,
    };
    let opened = Input::open();
    if matches!(opened, Input::Editor(_)) && !session.json {
        output::print_dim(&format!(
            "cascade chat · {} · /help for commands, /exit to leave",
            session.chain()
        ));
    }
    let (mut input, mut pending) = (Some(opened), None);
    loop {
        let line = match prompt(&mut input, &mut pending, &mut session.watch).await {
            Prompted::Read(back, read) => {
                input = Some(back);
                match read {
                    Read::Line(line) => line,
                    Read::Interrupted => continue,
                    Read::Eof => break,
                }
            }
            // Ctrl-C at a plain prompt: a new prompt, as the line editor does.
            Prompted::Interrupted(Interrupt::Sigint) => continue,
            Prompted::Interrupted(interrupt) => return interrupt.exit_code(),
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('/') {
            if session.command(line).await.is_break() {
                break;
            }
            continue;
        }
        match session.turn(line).await {
            Turn::Answered | Turn::Cancelled => {}
            Turn::Failed => session.failed_turns += 1,
            Turn::Ended(code) => return code,
        }
    }
    if session.failed_turns > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// The cascade, or one pinned provider, with this process's observers, the turn tracker and the
/// download progress attached.
fn build(
    ctx: &Ctx,
    tracker: &Arc<Tracker>,
    pulling: &Arc<PullProgress>,
    pin: Option<&str>,
) -> Result<Cascade, CascadeError> {
    Cascade::from_env_pinned(ctx.env.as_ref(), pin)
        .map(|cascade| {
            ctx.attach(cascade)
                .with_observer(tracker.clone())
                .with_observer(pulling.clone())
        })
        .map_err(CascadeError::from)
}

impl Session<'_> {
    /// `groq → openai`, or `openai (pinned)`.
    fn chain(&self) -> String {
        let ids: Vec<&str> = self.cascade.providers().iter().map(|p| p.id()).collect();
        match (&self.pinned, ids.is_empty()) {
            (_, true) => "no provider configured".to_owned(),
            (Some(_), false) => format!("{} (pinned)", ids.join(" → ")),
            (None, false) => ids.join(" → "),
        }
    }

    fn request(&self) -> ChatRequest {
        let mut messages = Vec::with_capacity(self.history.len() + 1);
        if let Some(system) = &self.system {
            messages.push(Message::system(system.clone()));
        }
        messages.extend(self.history.iter().cloned());
        ChatRequest {
            messages,
            ..ChatRequest::default()
        }
    }

    /// Asks the chain with the whole conversation and streams the answer. The question and the answer
    /// join the history only when the answer completes.
    async fn turn(&mut self, line: &str) -> Turn {
        self.history.push(Message::user(line));
        let request = self.request();
        self.ctx.usage.begin_call(line);
        self.tracker.reset();
        let started = Instant::now();
        let opened = tokio::select! {
            opened = self.cascade.chat_stream(request) => opened,
            interrupt = self.watch.next() => return self.cut(interrupt, false),
        };
        self.pulling.clear();
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(report) => {
                self.history.pop();
                self.failure(&report);
                return Turn::Failed;
            }
        };
        let mut content = String::new();
        let mut usage = None;
        let mut model = stream.model().to_owned();
        loop {
            let next = tokio::select! {
                item = stream.next() => Ok(item),
                interrupt = self.watch.next() => Err(interrupt),
            };
            let item = match next {
                Ok(item) => item,
                Err(interrupt) => {
                    // Dropping the stream closes the connection: the provider stops generating.
                    drop(stream);
                    return self.cut(interrupt, !content.is_empty());
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    let written = if self.json {
                        output::try_json(&json!({"type": "delta", "text": text}))
                    } else {
                        output::answer(&text)
                    };
                    if written.is_err() {
                        drop(stream);
                        return self.cut(Interrupt::StdoutClosed, false);
                    }
                    content.push_str(&text);
                }
                Some(Ok(StreamEvent::Usage { usage: u })) => usage = Some(u),
                // The answer goes on from where it was cut; `--json` says so on its own line.
                Some(Ok(StreamEvent::Resumed {
                    provider,
                    model: resumed,
                    mode,
                })) => {
                    let line = json!({"type": "resumed", "provider": provider, "model": resumed, "mode": mode.as_str()});
                    model = resumed;
                    if self.json && output::try_json(&line).is_err() {
                        drop(stream);
                        return self.cut(Interrupt::StdoutClosed, false);
                    }
                }
                // The REPL offers the model no tools, so no provider sends a call; a spent rate limit
                // is the cascade's to act on.
                Some(Ok(StreamEvent::ToolCall { .. } | StreamEvent::RateLimit { .. })) => {}
                Some(Ok(StreamEvent::Finish {
                    reason,
                    model: reported,
                })) => {
                    model = reported.unwrap_or(model);
                    let attempts = stream.attempts();
                    self.ctx.usage.record_answer(&content);
                    if self.json {
                        let mut summary = output::success_json(
                            stream.provider(),
                            &model,
                            &content,
                            Some(&reason),
                            usage,
                            &attempts,
                        );
                        summary["type"] = json!("answer");
                        output::print_json(&summary);
                    } else {
                        let _ = output::out("\n");
                        let mut line = output::summary_line(
                            stream.provider(),
                            &model,
                            &attempts,
                            started.elapsed(),
                        );
                        if output::truncated(Some(&reason)) {
                            line = format!("{line} · {}", output::CUT_AT_LIMIT);
                        }
                        output::print_dim(&line);
                    }
                    self.history.push(Message::assistant(content.clone()));
                    return Turn::Answered;
                }
                Some(Err(error)) => {
                    if !self.json {
                        let _ = output::out("\n");
                    }
                    self.history.pop();
                    self.failure(&CascadeError::interrupted(stream.attempts(), &error));
                    return Turn::Failed;
                }
                None => {
                    // The engine always ends with Finish or an error; be safe anyway.
                    self.history.pop();
                    return Turn::Failed;
                }
            }
        }
    }

    /// Ends a turn cut short (call it after dropping the stream): the attempt in flight recorded as
    /// cancelled, the question dropped from the history; Ctrl-C lets the session go on.
    fn cut(&mut self, interrupt: Interrupt, mid_line: bool) -> Turn {
        self.pulling.clear();
        let attempts = self.tracker.cancel(|event| self.ctx.emit(event));
        self.history.pop();
        if interrupt == Interrupt::StdoutClosed {
            return Turn::Ended(interrupt.exit_code());
        }
        if self.json {
            let mut value = output::cancelled_json(interrupt.message(), &attempts);
            value["type"] = json!("cancelled");
            output::print_json(&value);
        } else {
            if mid_line {
                let _ = output::out("\n");
            }
            output::print_dim(output::CANCELLED_MARK);
        }
        match interrupt {
            Interrupt::Sigint => Turn::Cancelled,
            other => Turn::Ended(other.exit_code()),
        }
    }

    fn failure(&self, report: &CascadeError) {
        if self.json {
            let mut value = output::failure_json(report);
            value["type"] = json!("error");
            output::print_json(&value);
        } else {
            output::print_failure(report);
        }
    }

    /// Runs a slash command; `Break` leaves the session.
    async fn command(&mut self, line: &str) -> std::ops::ControlFlow<()> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["/exit" | "/quit"] => return std::ops::ControlFlow::Break(()),
            ["/help"] => self.say("help", HELP),
            ["/llm", "providers"] => self.providers().await,
            ["/llm", "switch", id] => self.switch(id),
            ["/llm", "stats"] => self.stats(),
            ["/llm", "test", ids @ ..] => {
                let ids: Vec<String> = ids.iter().map(|id| (*id).to_owned()).collect();
                crate::test_cmd::test(&ids, self.ctx, self.json).await;
            }
            _ => self.say(
                "unknown_command",
                &format!("unknown command `{line}`; /help lists the commands"),
            ),
        }
        std::ops::ControlFlow::Continue(())
    }

    fn say(&self, kind: &str, text: &str) {
        if self.json {
            output::print_json(&json!({"type": kind, "text": text}));
        } else {
            let _ = output::outln(text);
        }
    }

    async fn providers(&self) {
        let rows = match crate::providers::rows(self.ctx.env.as_ref()).await {
            Ok(rows) => rows,
            Err(error) => {
                self.failure(&CascadeError::from(error));
                return;
            }
        };
        if self.json {
            output::print_json(&json!({
                "type": "providers",
                "answering": self.cascade.providers().iter().map(|p| p.id()).collect::<Vec<_>>(),
                "pinned": self.pinned,
                "providers": rows,
            }));
        } else {
            crate::providers::print_table(&rows);
            let _ = output::outln(&format!("Answering now: {}", self.chain()));
        }
    }

    fn switch(&mut self, id: &str) {
        let pin = (id != "auto").then_some(id);
        match build(self.ctx, &self.tracker, &self.pulling, pin) {
            Ok(cascade) => {
                self.cascade = cascade;
                self.pinned = pin.map(str::to_owned);
                if self.json {
                    output::print_json(&json!({
                        "type": "switch",
                        "pinned": self.pinned,
                        "answering": self.cascade.providers().iter().map(|p| p.id()).collect::<Vec<_>>(),
                    }));
                } else {
                    let _ = output::outln(&format!("Answering now: {}", self.chain()));
                }
            }
            Err(report) => self.failure(&report),
        }
    }

    fn stats(&self) {
        let snapshot = self.ctx.stats.snapshot();
        if self.json {
            output::print_json(&json!({
                "type": "stats",
                "providers": snapshot.providers,
                "total": snapshot.total,
            }));
        } else if snapshot.providers.is_empty() {
            let _ = output::outln("No attempts yet in this session.");
        } else {
            let _ = output::outln(&output::stats_table(&snapshot).to_string());
        }
    }
}
