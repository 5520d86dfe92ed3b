//! `cascade chat`: a multi-turn conversation with streamed answers and `/llm` commands.
//!
//! On a terminal, lines are edited with rustyline (history in memory only: prompts are never written
//! to disk); otherwise stdin is read line by line, so scripts and tests can drive a session. Ctrl-C
//! during an answer cancels that answer (the conversation goes on without it); at the prompt it just
//! gives a new prompt.

use std::future::Future;
use std::io::{BufRead, IsTerminal, Write};
use std::pin::Pin;
use std::time::Instant;

use futures_util::StreamExt;
use llm_cascade::{
    Cascade, CascadeError, CascadeEvent, ChatRequest, ErrorKind, Message, StreamEvent,
};
use rustyline::error::ReadlineError;
use serde_json::json;

use crate::args::ChatArgs;
use crate::output;
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
    Plain(std::io::StdinLock<'static>),
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
        Self::Plain(std::io::stdin().lock())
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
                    eprintln!("error: cannot read input: {error}");
                    Read::Eof
                }
            },
            Self::Plain(stdin) => {
                let mut line = String::new();
                match stdin.read_line(&mut line) {
                    Ok(0) => Read::Eof,
                    Ok(_) => Read::Line(line.trim_end_matches(['\n', '\r']).to_owned()),
                    Err(error) => {
                        eprintln!("error: cannot read input: {error}");
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
    Cancelled,
}

/// Resolves when the user presses Ctrl-C; never when the signal cannot be listened for.
fn ctrl_c() -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    })
}

/// Runs `cascade chat`; returns the exit code.
pub async fn run(args: ChatArgs, ctx: &Ctx) -> u8 {
    let cascade = match build(ctx, args.provider.as_deref()) {
        Ok(cascade) => cascade,
        Err(report) => return output::fail(&report, args.json, EXIT_USAGE),
    };
    let mut session = Session {
        ctx,
        cascade,
        pinned: args.provider,
        system: args.system,
        history: Vec::new(),
        json: args.json,
        failed_turns: 0,
    };
    let mut input = Input::open();
    if matches!(input, Input::Editor(_)) && !session.json {
        output::print_dim(&format!(
            "cascade chat · {} · /help for commands, /exit to leave",
            session.chain()
        ));
    }
    loop {
        let line = match input.read() {
            Read::Line(line) => line,
            Read::Interrupted => continue,
            Read::Eof => break,
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
        }
    }
    if session.failed_turns > 0 {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// The cascade, or one pinned provider, with this process's observers attached.
fn build(ctx: &Ctx, pin: Option<&str>) -> Result<Cascade, CascadeError> {
    let built = match pin {
        Some(id) => Cascade::pinned(ctx.env.as_ref(), id),
        None => Cascade::from_env_source(ctx.env.as_ref()),
    };
    built
        .map(|cascade| ctx.attach(cascade))
        .map_err(|error| CascadeError::before_any_attempt(&error, ErrorKind::Config.advice()))
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
        let started = Instant::now();
        let mut cancel = ctrl_c();
        let opened = tokio::select! {
            opened = self.cascade.chat_stream(request) => opened,
            () = &mut cancel => {
                self.history.pop();
                self.cancelled();
                return Turn::Cancelled;
            }
        };
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
        let mut stdout = std::io::stdout();
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                () = &mut cancel => {
                    // The engine reports an attempt when its stream ends; this one never will.
                    if let Some(last) = stream.attempts().last() {
                        self.ctx.emit(&CascadeEvent::AttemptFinished {
                            attempt: last.clone(),
                            model: model.clone(),
                            usage,
                        });
                    }
                    if !self.json {
                        println!();
                    }
                    self.history.pop();
                    self.cancelled();
                    return Turn::Cancelled;
                }
            };
            match item {
                Some(Ok(StreamEvent::Delta { text })) => {
                    if self.json {
                        output::print_json(&json!({"type": "delta", "text": text}));
                    } else {
                        let _ = write!(stdout, "{text}");
                        let _ = stdout.flush();
                    }
                    content.push_str(&text);
                }
                Some(Ok(StreamEvent::Usage { usage: u })) => usage = Some(u),
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
                        println!();
                        output::print_dim(&output::summary_line(
                            stream.provider(),
                            &model,
                            &attempts,
                            started.elapsed(),
                        ));
                    }
                    self.history.push(Message::assistant(content.clone()));
                    return Turn::Answered;
                }
                Some(Err(error)) => {
                    if !self.json {
                        println!();
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

    fn cancelled(&self) {
        if self.json {
            output::print_json(&json!({"type": "cancelled"}));
        } else {
            output::print_dim("(cancelled)");
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
            ["/llm", "providers"] => self.providers(),
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
            println!("{text}");
        }
    }

    fn providers(&self) {
        let rows = match crate::providers::rows(self.ctx.env.as_ref()) {
            Ok(rows) => rows,
            Err(error) => {
                self.failure(&CascadeError::before_any_attempt(
                    &error,
                    ErrorKind::Config.advice(),
                ));
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
            println!("Answering now: {}", self.chain());
        }
    }

    fn switch(&mut self, id: &str) {
        let pin = (id != "auto").then_some(id);
        match build(self.ctx, pin) {
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
                    println!("Answering now: {}", self.chain());
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
            println!("No attempts yet in this session.");
        } else {
            println!("{}", output::stats_table(&snapshot));
        }
    }
}
