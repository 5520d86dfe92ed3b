//! `cascade ask`.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use llm_cascade::{
    Attempt, Cascade, CascadeError, ChatRequest, Error, ErrorKind, Role, StreamEvent,
};

use crate::args::AskArgs;
use crate::interrupt::{Interrupt, Tracker, Watch};
use crate::output::{self, fail};
use crate::pull::PullProgress;
use crate::{Ctx, EXIT_BROKEN_PIPE, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Runs `cascade ask`; returns the exit code.
pub async fn run(args: AskArgs, ctx: &Ctx) -> u8 {
    let env = ctx.env.as_ref();
    let request = match build_request(&args) {
        Ok(request) => request,
        Err(error) => {
            return fail(
                &CascadeError::before_any_attempt(&error, "Give a prompt."),
                args.json,
                EXIT_USAGE,
            );
        }
    };
    let cascade = match Cascade::from_env_pinned(env, args.provider.as_deref()) {
        Ok(cascade) => ctx.attach(cascade),
        Err(error) => return fail(&CascadeError::from(error), args.json, EXIT_USAGE),
    };
    let tracker = Tracker::new();
    // `--stream --json` is JSON lines: download progress goes there too; otherwise a bar on a terminal.
    let pulling = PullProgress::new(args.json && args.stream);
    let mut asking = Asking {
        cascade: cascade
            .with_observer(tracker.clone())
            .with_observer(pulling.clone()),
        tracker,
        pulling,
        // Listening starts here, after the prompt was read: Ctrl-C while typing it still just quits.
        watch: Watch::new(),
        json: args.json,
        ctx,
        started: Instant::now(),
    };
    ctx.usage.begin_call(&last_user_message(&request));
    if let Some(path) = &args.schema {
        return match read_schema(path) {
            Ok((name, schema)) => asking.structured(request, &name, schema).await,
            Err(error) => fail(
                &CascadeError::before_any_attempt(&error, "Give a JSON Schema file."),
                args.json,
                EXIT_USAGE,
            ),
        };
    }
    if args.stream {
        asking.stream(request).await
    } else {
        asking.complete(request).await
    }
}

fn build_request(args: &AskArgs) -> Result<ChatRequest, Error> {
    let prompt = if args.prompt == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("cannot read the prompt from stdin: {e}"),
            )
        })?;
        text
    } else {
        args.prompt.clone()
    };
    if prompt.trim().is_empty() {
        return Err(Error::new(ErrorKind::InvalidRequest, "the prompt is empty"));
    }
    let mut request = ChatRequest::from_prompt(prompt);
    if let Some(system) = &args.system {
        request = request.with_system(system.clone());
    }
    request.max_tokens = args.max_tokens;
    request.temperature = args.temperature;
    Ok(request)
}

/// The schema in `path` and a name for it (the file's stem).
fn read_schema(path: &std::path::Path) -> Result<(String, serde_json::Value), Error> {
    let invalid = |what: String| Error::new(ErrorKind::InvalidRequest, what);
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(format!("cannot read the schema {}: {e}", path.display())))?;
    let schema = serde_json::from_str(&text)
        .map_err(|e| invalid(format!("the schema {} is not JSON: {e}", path.display())))?;
    let name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("answer")
        .to_owned();
    Ok((name, schema))
}

/// The text of the last user message: what the usage log stores as the prompt (with the opt-in).
pub fn last_user_message(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find(|m| m.role == Role::User)
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// One `ask` call: the cascade (with a tracker of its attempts) and what can cut it short.
struct Asking<'a> {
    cascade: Cascade,
    tracker: Arc<Tracker>,
    /// The bar of a model downloaded during the call (cleared before anything else is printed).
    pulling: Arc<PullProgress>,
    watch: Watch,
    json: bool,
    ctx: &'a Ctx,
    started: Instant,
}

/// What the stream loop waits for: the next item, or an interrupt.
enum Next {
    Item(Option<Result<StreamEvent, Error>>),
    Interrupted(Interrupt),
}

impl Asking<'_> {
    async fn complete(&mut self, request: ChatRequest) -> u8 {
        let result = tokio::select! {
            result = self.cascade.chat(request) => result,
            interrupt = self.watch.next() => return self.interrupted(interrupt, false),
        };
        self.pulling.clear();
        let result = match result {
            Ok(result) => result,
            Err(report) => return fail(&report, self.json, EXIT_FAILED),
        };
        let r = &result.response;
        self.ctx.usage.record_answer(&r.content);
        if self.json {
            output::print_json(&output::success_json(
                &r.provider,
                &r.model,
                &r.content,
                Some(&r.finish_reason),
                r.usage,
                &result.attempts,
            ));
            return EXIT_OK;
        }
        if output::answer(&r.content)
            .and_then(|()| output::out("\n"))
            .is_err()
        {
            // The answer is whole already: nothing upstream to cancel, nothing more to say.
            return EXIT_BROKEN_PIPE;
        }
        let cut = output::truncated(Some(&r.finish_reason));
        after_answer(&r.provider, &r.model, &result.attempts, self.started, cut);
        EXIT_OK
    }

    /// `--schema`: the validated JSON, printed as JSON (with `--json`, inside the usual summary).
    async fn structured(
        &mut self,
        request: ChatRequest,
        name: &str,
        schema: serde_json::Value,
    ) -> u8 {
        let result = tokio::select! {
            result = self.cascade.chat_json_schema(request, name, schema) => result,
            interrupt = self.watch.next() => return self.interrupted(interrupt, false),
        };
        self.pulling.clear();
        let answer = match result {
            Ok(answer) => answer,
            Err(report) => return fail(&report, self.json, EXIT_FAILED),
        };
        let r = &answer.response.response;
        self.ctx.usage.record_answer(&r.content);
        if self.json {
            let mut summary = output::success_json(
                &r.provider,
                &r.model,
                &r.content,
                Some(&r.finish_reason),
                r.usage,
                &answer.response.attempts,
            );
            summary["value"] = answer.value;
            output::print_json(&summary);
            return EXIT_OK;
        }
        output::print_json(&answer.value);
        after_answer(
            &r.provider,
            &r.model,
            &answer.response.attempts,
            self.started,
            false,
        );
        EXIT_OK
    }

    async fn stream(&mut self, request: ChatRequest) -> u8 {
        let opened = tokio::select! {
            opened = self.cascade.chat_stream(request) => opened,
            interrupt = self.watch.next() => return self.interrupted(interrupt, false),
        };
        self.pulling.clear();
        let mut stream = match opened {
            Ok(stream) => stream,
            Err(report) => return fail(&report, self.json, EXIT_FAILED),
        };
        let (mut content, mut usage, mut finish, mut model) =
            (String::new(), None, None, stream.model().to_owned());
        loop {
            let next = tokio::select! {
                item = stream.next() => Next::Item(item),
                interrupt = self.watch.next() => Next::Interrupted(interrupt),
            };
            let item = match next {
                Next::Item(Some(item)) => item,
                Next::Item(None) => break,
                Next::Interrupted(interrupt) => {
                    // Dropping the stream closes the connection: the provider stops generating.
                    drop(stream);
                    return self.interrupted(interrupt, !content.is_empty());
                }
            };
            match item {
                Ok(StreamEvent::Delta { text }) => {
                    let written = if self.json {
                        output::try_json(&serde_json::json!({"type": "delta", "text": text}))
                    } else {
                        output::answer(&text)
                    };
                    if written.is_err() {
                        drop(stream);
                        return self.interrupted(Interrupt::StdoutClosed, false);
                    }
                    content.push_str(&text);
                }
                Ok(StreamEvent::Usage { usage: u }) => usage = Some(u),
                // The answer goes on from where it was cut; `--json` says so on its own line.
                Ok(StreamEvent::Resumed {
                    provider,
                    model: resumed,
                    mode,
                }) => {
                    let line = serde_json::json!({"type": "resumed", "provider": provider, "model": resumed, "mode": mode.as_str()});
                    model = resumed;
                    if self.json && output::try_json(&line).is_err() {
                        drop(stream);
                        return self.interrupted(Interrupt::StdoutClosed, false);
                    }
                }
                // The CLI offers the model no tools, so no provider sends a call; a spent rate limit
                // is the cascade's to act on.
                Ok(StreamEvent::ToolCall { .. } | StreamEvent::RateLimit { .. }) => {}
                Ok(StreamEvent::Finish {
                    reason,
                    model: reported,
                }) => {
                    finish = Some(reason);
                    model = reported.unwrap_or(model);
                }
                Err(error) => {
                    if !self.json {
                        let _ = output::out("\n");
                    }
                    return fail(
                        &CascadeError::interrupted(stream.attempts(), &error),
                        self.json,
                        EXIT_FAILED,
                    );
                }
            }
        }
        let attempts = stream.attempts();
        self.ctx.usage.record_answer(&content);
        if self.json {
            output::print_json(&output::success_json(
                stream.provider(),
                &model,
                &content,
                finish.as_ref(),
                usage,
                &attempts,
            ));
        } else if output::out("\n").is_ok() {
            let cut = output::truncated(finish.as_ref());
            after_answer(stream.provider(), &model, &attempts, self.started, cut);
        }
        EXIT_OK
    }

    /// Ends a call cut short: the attempt in flight recorded as cancelled; on a signal, the cut marked
    /// (`[cancelled]` on stderr, or the final `--json` object); on a closed stdout, nothing more said.
    fn interrupted(&self, interrupt: Interrupt, mid_line: bool) -> u8 {
        self.pulling.clear();
        let attempts = self.tracker.cancel(|event| self.ctx.emit(event));
        if interrupt != Interrupt::StdoutClosed {
            if self.json {
                output::print_json(&output::cancelled_json(interrupt.message(), &attempts));
            } else {
                if mid_line {
                    let _ = output::out("\n");
                }
                output::print_dim(output::CANCELLED_MARK);
            }
        }
        interrupt.exit_code()
    }
}

/// After a plain answer: the note when the token limit cut it, and the summary line on a terminal.
fn after_answer(provider: &str, model: &str, attempts: &[Attempt], started: Instant, cut: bool) {
    if cut {
        output::err(output::CUT_NOTE);
    }
    output::print_summary(provider, model, attempts, started.elapsed());
}
