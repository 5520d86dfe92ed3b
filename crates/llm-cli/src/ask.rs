//! `cascade ask`.

use std::io::{Read, Write};
use std::time::Instant;

use futures_util::StreamExt;
use llm_cascade::{Cascade, CascadeError, ChatRequest, EnvSource, Error, ErrorKind, StreamEvent};

use crate::args::AskArgs;
use crate::output;
use crate::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

/// Runs `cascade ask`; returns the exit code.
pub async fn run(args: AskArgs, env: &dyn EnvSource) -> u8 {
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
        Ok(cascade) => cascade,
        Err(error) => {
            let report = CascadeError::before_any_attempt(&error, ErrorKind::Config.advice());
            return fail(&report, args.json, EXIT_USAGE);
        }
    };
    if args.stream {
        stream(&cascade, request, args.json).await
    } else {
        complete(&cascade, request, args.json).await
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

fn fail(report: &CascadeError, json: bool, code: u8) -> u8 {
    if json {
        output::print_json(&output::failure_json(report));
    } else {
        output::print_failure(report);
    }
    code
}

async fn complete(cascade: &Cascade, request: ChatRequest, json: bool) -> u8 {
    let started = Instant::now();
    match cascade.chat(request).await {
        Ok(result) => {
            let r = &result.response;
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

async fn stream(cascade: &Cascade, request: ChatRequest, json: bool) -> u8 {
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
