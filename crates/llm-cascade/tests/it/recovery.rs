//! Streams that recover: a failure after text was delivered is continued, by prefill or by a restart
//! that drops the delivered text, and the stream and the attempt record say so.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use llm_cascade::{
    Cascade, CascadeBuilder, CascadeConfig, CascadeEvent, ChatRequest, Decision, Error, ErrorKind,
    Message, MoveReason, Outcome, ResumeMode, StreamEvent,
};

use crate::fake::{Fake, Item, Step, fast_config};

fn chain(providers: &[&Arc<Fake>], config: CascadeConfig) -> Cascade {
    providers
        .iter()
        .fold(CascadeBuilder::new().config(config), |b, p| {
            b.provider_arc((*p).clone())
        })
        .build()
}

/// Everything a stream yielded: the text, the `Resumed` events, and the error it ended with.
struct Read {
    text: String,
    resumed: Vec<(String, ResumeMode)>,
    error: Option<Error>,
    attempts: Vec<llm_cascade::Attempt>,
    provider: String,
}

async fn read(cascade: &Cascade, prompt: &str) -> Read {
    let mut stream = cascade
        .chat_stream(ChatRequest::from_prompt(prompt))
        .await
        .expect("a provider streams");
    let (mut text, mut resumed, mut error) = (String::new(), Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamEvent::Delta { text: piece }) => text.push_str(&piece),
            Ok(StreamEvent::Resumed { provider, mode, .. }) => resumed.push((provider, mode)),
            Ok(_) => {}
            Err(e) => error = Some(e),
        }
    }
    Read {
        text,
        resumed,
        error,
        attempts: stream.attempts(),
        provider: stream.provider().to_owned(),
    }
}

fn outcomes(attempts: &[llm_cascade::Attempt]) -> Vec<(&str, u32, Outcome)> {
    attempts
        .iter()
        .map(|a| (a.provider.as_str(), a.attempt, a.outcome))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_cut_after_some_tokens_is_continued_by_prefill_on_the_same_provider() {
    let claude = Arc::new(
        Fake::new(
            "anthropic",
            vec![
                Step::Stream(vec![
                    Item::Text("One, "),
                    Item::Text("two, "),
                    Item::Error(ErrorKind::StreamTruncated),
                ]),
                Step::Stream(vec![Item::Text(" three."), Item::Finish]),
            ],
        )
        .with_prefill(),
    );
    let read = read(&chain(&[&claude], fast_config()), "Count").await;
    assert!(read.error.is_none(), "{:?}", read.error);
    // The whitespace left out of the prefill and repeated by the continuation is not doubled.
    assert_eq!(read.text, "One, two, three.");
    assert_eq!(
        read.resumed,
        vec![("anthropic".to_owned(), ResumeMode::Prefill)]
    );
    let requests = claude.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].messages,
        vec![Message::user("Count"), Message::assistant("One, two,")],
        "the partial answer is the final assistant message"
    );
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("anthropic", 1, Outcome::Failed(ErrorKind::StreamTruncated)),
            ("anthropic", 2, Outcome::Ok),
        ]
    );
    assert_eq!(
        read.attempts[0].decision,
        Some(Decision::Retry { waited_ms: 5 })
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_a_provider_without_prefill_drops_the_delivered_text() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![
                Item::Text("Hello "),
                Item::Text("wor"),
                Item::Error(ErrorKind::Network),
            ]),
            Step::Stream(vec![
                Item::Text("Hel"),
                Item::Text("lo world"),
                Item::Text("!"),
                Item::Finish,
            ]),
        ],
    ));
    let read = read(&chain(&[&groq], fast_config()), "Greet").await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.text, "Hello world!");
    assert_eq!(read.resumed, vec![("groq".to_owned(), ResumeMode::Restart)]);
    assert_eq!(
        groq.requests()[1].messages,
        vec![Message::user("Greet")],
        "a restart asks the same question again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_whose_text_diverges_ends_with_an_honest_error() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![
                Item::Text("Paris is"),
                Item::Error(ErrorKind::Network),
            ]),
            Step::Stream(vec![Item::Text("The capital"), Item::Finish]),
        ],
    ));
    let read = read(&chain(&[&groq], fast_config()), "Capital?").await;
    assert_eq!(read.text, "Paris is");
    let error = read.error.expect("ends in an error");
    assert_eq!(error.kind(), ErrorKind::StreamTruncated);
    assert!(
        error
            .message()
            .contains("did not repeat the delivered text"),
        "{error}"
    );
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("groq", 1, Outcome::Failed(ErrorKind::Network)),
            ("groq", 2, Outcome::Failed(ErrorKind::StreamTruncated)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_prefill_rejected_with_400_is_retried_without_prefill() {
    let mistral = Arc::new(
        Fake::new(
            "mistral",
            vec![
                Step::Stream(vec![
                    Item::Text("Alpha "),
                    Item::Error(ErrorKind::ServerError),
                ]),
                Step::Fail(ErrorKind::InvalidRequest, Some(400), None),
                Step::Stream(vec![Item::Text("Alpha beta"), Item::Finish]),
            ],
        )
        .with_prefill(),
    );
    let spare = Arc::new(Fake::new("openai", vec![]));
    let read = read(&chain(&[&mistral, &spare], fast_config()), "Letters").await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.text, "Alpha beta");
    assert_eq!(
        read.resumed,
        vec![("mistral".to_owned(), ResumeMode::Restart)]
    );
    assert_eq!(
        spare.calls(),
        0,
        "a capability mismatch is not a reason to move on"
    );
    let requests = mistral.requests();
    assert_eq!(
        requests[1].messages.last(),
        Some(&Message::assistant("Alpha"))
    );
    assert_eq!(requests[2].messages, vec![Message::user("Letters")]);
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("mistral", 1, Outcome::Failed(ErrorKind::ServerError)),
            ("mistral", 2, Outcome::Failed(ErrorKind::InvalidRequest)),
            ("mistral", 3, Outcome::Ok),
        ]
    );
    assert_eq!(read.attempts[1].status, Some(400));
    assert_eq!(
        read.attempts[1].decision,
        Some(Decision::Retry { waited_ms: 0 })
    );
}

#[tokio::test(start_paused = true)]
async fn an_undecodable_event_is_a_recovery_point() {
    let openai = Arc::new(Fake::new(
        "openai",
        vec![
            Step::Stream(vec![
                Item::Text("a"),
                Item::Error(ErrorKind::MalformedAnswer),
            ]),
            Step::Stream(vec![Item::Text("ab"), Item::Finish]),
        ],
    ));
    let read = read(&chain(&[&openai], fast_config()), "hi").await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.text, "ab");
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("openai", 1, Outcome::Failed(ErrorKind::MalformedAnswer)),
            ("openai", 2, Outcome::Ok),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_stall_moves_on_to_the_next_provider_which_restarts() {
    let stalls = Arc::new(Fake::new(
        "groq",
        vec![Step::Stream(vec![Item::Text("Once upon"), Item::Stall])],
    ));
    let next = Arc::new(Fake::new(
        "openai",
        vec![Step::Stream(vec![
            Item::Text("Once upon a time"),
            Item::Finish,
        ])],
    ));
    let config = fast_config().with_stream_idle_timeout(Duration::from_millis(50));
    let (cascade, events) = observed(chain(&[&stalls, &next], config));
    let read = read(&cascade, "Tell a story").await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.text, "Once upon a time");
    assert_eq!(read.provider, "openai", "the stream names who finished it");
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("groq", 1, Outcome::Failed(ErrorKind::Timeout)),
            ("openai", 1, Outcome::Ok),
        ]
    );
    assert_eq!(
        read.attempts[0].decision,
        Some(Decision::NextProvider {
            reason: MoveReason::NotRetryable
        })
    );
    let events = events.lock().expect("lock").clone();
    assert_eq!(
        events,
        vec![
            "finished groq timeout".to_owned(),
            "fallback groq openai".to_owned(),
            "resumed openai restart".to_owned(),
            "finished openai ok".to_owned(),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn when_no_provider_can_continue_the_cut_ends_the_answer() {
    let groq = Arc::new(Fake::new(
        "groq",
        vec![
            Step::Stream(vec![
                Item::Text("part"),
                Item::Error(ErrorKind::StreamTruncated),
            ]),
            Step::Fail(ErrorKind::Overloaded, Some(529), None),
        ],
    ));
    let config = fast_config().with_max_attempts(2);
    let read = read(&chain(&[&groq], config), "hi").await;
    assert_eq!(read.text, "part");
    let error = read.error.expect("ends in an error");
    assert_eq!(error.kind(), ErrorKind::StreamTruncated);
    assert!(
        error.message().contains("continuing the answer failed"),
        "{error}"
    );
    assert_eq!(
        outcomes(&read.attempts),
        vec![
            ("groq", 1, Outcome::Failed(ErrorKind::StreamTruncated)),
            ("groq", 2, Outcome::Failed(ErrorKind::Overloaded)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_content_filter_before_the_first_token_is_final() {
    let gemini = Arc::new(Fake::new(
        "gemini",
        vec![Step::Stream(vec![Item::Error(ErrorKind::ContentFilter)])],
    ));
    let spare = Arc::new(Fake::new("openai", vec![]));
    let report = chain(&[&gemini, &spare], fast_config())
        .chat_stream(ChatRequest::from_prompt("hi"))
        .await
        .expect_err("the refusal is final");
    assert_eq!(report.category, llm_cascade::Category::ContentFilter);
    assert_eq!(spare.calls(), 0);
}

/// Records the observer events that tell the story of a recovery, one short line each.
fn observed(cascade: Cascade) -> (Cascade, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let cascade = cascade.with_observer(Arc::new(move |event: &CascadeEvent| {
        let line = match event {
            CascadeEvent::AttemptFinished { attempt, .. } => {
                format!("finished {} {}", attempt.provider, attempt.outcome.as_str())
            }
            CascadeEvent::Fallback { from, to } => format!("fallback {from} {to}"),
            CascadeEvent::Resumed { provider, mode, .. } => {
                format!("resumed {provider} {}", mode.as_str())
            }
            _ => return,
        };
        sink.lock().expect("lock").push(line);
    }));
    (cascade, seen)
}
