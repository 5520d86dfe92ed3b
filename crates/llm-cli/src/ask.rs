//! `cascade ask`.

use std::io::{Read, Write};
use std::time::Instant;

use futures_util::StreamExt;
use llm_cascade::{Cascade, CascadeError, ChatRequest, Error, ErrorKind, Role, StreamEvent};

use crate::args::AskArgs;
use crate::output::{self, fail};
use crate::{Ctx, EXIT_FAILED, EXIT_OK, EXIT_USAGE};

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
    let built = match &args.provider {
        Some(id) => Cascade::pinned(env, id),
        None => Cascade::from_env_source(env),
    };
    let cascade = match built {
        Ok(cascade) => ctx.attach(cascade),
        Err(error) => {
            let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
            return fail(&report, args.json, EXIT_USAGE);
        }
    };
    ctx.usage.begin_call(&last_user_message(&request));
    if args.stream {
        stream(&cascade, request, args.json, ctx).await
    } else {
        complete(&cascade, request, args.json, ctx).await
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

async fn complete(cascade: &Cascade, request: ChatRequest, json: bool, ctx: &Ctx) -> u8 {
    let started = Instant::now();
    match cascade.chat(request).await {
        Ok(result) => {
            let r = &result.response;
            ctx.usage.record_answer(&r.content);
            if json {
                output::print_json(&output::success_json(
                    &r.provider,
                    &r.model,
                    &r.content,
                    Some(&r.finish_reason),
                    r.usage,
                    &result.attempts,
                ));
            } else {
                println!("{}", r.content);
                output::print_summary(&r.provider, &r.model, &result.attempts, started.elapsed());
            }
            EXIT_OK
        }
        Err(report) => fail(&report, json, EXIT_FAILED),
    }
}

async fn stream(cascade: &Cascade, request: ChatRequest, json: bool, ctx: &Ctx) -> u8 {
    let started = Instant::now();
    let mut stream = match cascade.chat_stream(request).await {
        Ok(stream) => stream,
        Err(report) => return fail(&report, json, EXIT_FAILED),
    };
    let (mut content, mut usage, mut finish, mut model) =
        (String::new(), None, None, stream.model().to_owned());
    let mut stdout = std::io::stdout();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Delta { text }) => {
                if json {
                    output::print_json(&serde_json::json!({"type": "delta", "text": text}));
                } else {
                    let _ = write!(stdout, "{text}");
                    let _ = stdout.flush();
                }
                content.push_str(&text);
            }
            Ok(StreamEvent::Usage { usage: u }) => usage = Some(u),
            Ok(StreamEvent::Finish {
                reason,
                model: reported,
            }) => {
                finish = Some(reason);
                model = reported.unwrap_or(model);
            }
            Err(error) => {
                if !json {
                    println!();
                }
                return fail(
                    &CascadeError::interrupted(stream.attempts(), &error),
                    json,
                    EXIT_FAILED,
                );
            }
        }
    }
    let attempts = stream.attempts();
    ctx.usage.record_answer(&content);
    if json {
        output::print_json(&output::success_json(
            stream.provider(),
            &model,
            &content,
            finish.as_ref(),
            usage,
            &attempts,
        ));
    } else {
        println!();
        output::print_summary(stream.provider(), &model, &attempts, started.elapsed());
    }
    EXIT_OK
}
