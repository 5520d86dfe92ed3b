//! Structured output on streams: the JSON answer is validated when the stream ends (nothing can be
//! checked before its first token), tool-call arguments as each call arrives.

use std::sync::Arc;

use futures_util::StreamExt;
use llm_cascade::{
    Attempt, Capabilities, ChatRequest, Error, ErrorKind, FinishReason, Outcome, ResponseFormat,
    StreamEvent, Tool,
};
use serde_json::json;

use crate::fake::{Fake, Item, Step, cascade, fast_config, outcomes};

fn label_request() -> ChatRequest {
    let schema = json!({"type": "object", "properties": {"label": {"type": "string", "enum": ["spam", "ham"]}},
        "required": ["label"], "additionalProperties": false});
    ChatRequest {
        response_format: Some(ResponseFormat::json_schema("label", schema)),
        ..ChatRequest::from_prompt("classify")
    }
}

fn weather_request() -> ChatRequest {
    ChatRequest {
        tools: vec![Tool::new(
            "get_weather",
            "The weather in a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        )],
        ..ChatRequest::from_prompt("weather in Paris?")
    }
}

/// Every item of the stream (events, errors as their kind), the last error's message, and the attempt
/// record once the stream ended.
async fn drain(
    mut stream: llm_cascade::CascadeStream,
) -> (
    Vec<Result<StreamEvent, ErrorKind>>,
    Option<String>,
    Vec<Attempt>,
) {
    let (mut items, mut message) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        items.push(item.map_err(|e: Error| {
            message = Some(e.message().to_owned());
            e.kind()
        }));
    }
    (items, message, stream.attempts())
}

async fn items(stream: llm_cascade::CascadeStream) -> Vec<Result<StreamEvent, ErrorKind>> {
    drain(stream).await.0
}

fn delta(text: &str) -> Result<StreamEvent, ErrorKind> {
    Ok(StreamEvent::Delta {
        text: text.to_owned(),
    })
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_breaks_the_schema_ends_with_malformed_answer_not_finish() {
    let fake = Arc::new(Fake::new(
        "json",
        vec![Step::Stream(vec![
            Item::Text("{\"label\":"),
            Item::Text(" \"eggs\"}"),
            Item::Finish,
        ])],
    ));
    let stream = cascade(vec![fake], fast_config())
        .chat_stream(label_request())
        .await
        .expect("the stream starts");
    let got = items(stream).await;
    // The text already went out; the end says it was not valid, instead of a clean finish.
    assert_eq!(
        got,
        vec![
            delta("{\"label\":"),
            delta(" \"eggs\"}"),
            Err(ErrorKind::MalformedAnswer)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_failed_attempt_is_recorded_with_the_validators_details() {
    let fake = Arc::new(Fake::new(
        "json",
        vec![Step::Stream(vec![
            Item::Text("Sure! It is spam."),
            Item::Finish,
        ])],
    ));
    let stream = cascade(vec![fake], fast_config())
        .chat_stream(label_request())
        .await
        .expect("the stream starts");
    let (items, message, attempts) = drain(stream).await;
    assert_eq!(items.last(), Some(&Err(ErrorKind::MalformedAnswer)));
    let message = message.expect("an error ends it");
    assert!(message.contains("the answer is not JSON"), "{message}");
    assert_eq!(
        outcomes(&attempts),
        vec![(
            "json".into(),
            1,
            Outcome::Failed(ErrorKind::MalformedAnswer)
        )]
    );
    assert!(
        attempts[0]
            .message
            .as_deref()
            .is_some_and(|m| m.contains("not JSON")),
        "{attempts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_valid_answer_in_code_fences_finishes_cleanly() {
    let fake = Arc::new(Fake::new(
        "json",
        vec![Step::Stream(vec![
            Item::Text("```json\n{\"label\":"),
            Item::Text(" \"ham\"}\n```"),
            Item::Finish,
        ])],
    ));
    let stream = cascade(vec![fake], fast_config())
        .chat_stream(label_request())
        .await
        .expect("the stream starts");
    let (got, _, attempts) = drain(stream).await;
    assert!(
        matches!(got.last(), Some(Ok(StreamEvent::Finish { .. }))),
        "{got:?}"
    );
    assert_eq!(outcomes(&attempts), vec![("json".into(), 1, Outcome::Ok)]);
}

#[tokio::test(start_paused = true)]
async fn json_mode_wants_an_object() {
    let fake = Arc::new(Fake::new(
        "json",
        vec![Step::Stream(vec![Item::Text("[1, 2]"), Item::Finish])],
    ));
    let request = ChatRequest {
        response_format: Some(ResponseFormat::JsonObject),
        ..ChatRequest::from_prompt("numbers")
    };
    let stream = cascade(vec![fake], fast_config())
        .chat_stream(request)
        .await
        .expect("the stream starts");
    assert_eq!(
        items(stream).await,
        vec![delta("[1, 2]"), Err(ErrorKind::MalformedAnswer)]
    );
}

#[tokio::test(start_paused = true)]
async fn invalid_streamed_tool_arguments_fail_the_attempt_before_anything_is_delivered() {
    let tools = Arc::new(
        Fake::new(
            "tools",
            vec![
                Step::Stream(vec![
                    Item::Call("get_weather", r#"{"town":"Paris"}"#),
                    Item::FinishWith(FinishReason::ToolCalls),
                ]),
                Step::Stream(vec![
                    Item::Call("get_weather", r#"{"city":"Paris"}"#),
                    Item::FinishWith(FinishReason::ToolCalls),
                ]),
            ],
        )
        .with_capabilities(Capabilities::ALL),
    );
    let stream = cascade(vec![tools], fast_config())
        .chat_stream(weather_request())
        .await
        .expect("the retry streams a valid call");
    let (got, _, attempts) = drain(stream).await;
    let Some(Ok(StreamEvent::ToolCall { call })) = got.first() else {
        panic!("{got:?}");
    };
    assert_eq!(call.arguments, r#"{"city":"Paris"}"#);
    assert_eq!(
        outcomes(&attempts),
        vec![
            (
                "tools".into(),
                1,
                Outcome::Failed(ErrorKind::MalformedAnswer)
            ),
            ("tools".into(), 2, Outcome::Ok)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_invalid_tool_call_after_text_ends_the_stream_with_an_error() {
    let tools = Arc::new(
        Fake::new(
            "tools",
            vec![Step::Stream(vec![
                Item::Text("Let me look that up."),
                Item::Call("get_time", "{}"),
                Item::FinishWith(FinishReason::ToolCalls),
            ])],
        )
        .with_capabilities(Capabilities::ALL),
    );
    let stream = cascade(vec![tools], fast_config())
        .chat_stream(weather_request())
        .await
        .expect("the stream starts");
    assert_eq!(
        items(stream).await,
        vec![
            delta("Let me look that up."),
            Err(ErrorKind::MalformedAnswer)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn with_one_call_at_a_time_a_second_call_is_dropped_before_it_is_checked() {
    // A second call naming a tool the request does not offer: it would end the stream as
    // malformed, but one call at a time was asked for, so it is dropped unchecked.
    let script = || {
        Step::Stream(vec![
            Item::Call("get_weather", r#"{"city":"Paris"}"#),
            Item::Call("get_time", "{}"),
            Item::FinishWith(FinishReason::ToolCalls),
        ])
    };
    let tools =
        Arc::new(Fake::new("tools", vec![script(), script()]).with_capabilities(Capabilities::ALL));
    let chain = cascade(vec![tools], fast_config());
    let one_at_a_time = ChatRequest {
        parallel_tool_calls: Some(false),
        ..weather_request()
    };
    let (got, _, attempts) = drain(chain.chat_stream(one_at_a_time).await.expect("starts")).await;
    let names: Vec<&str> = got
        .iter()
        .filter_map(|item| match item {
            Ok(StreamEvent::ToolCall { call }) => Some(call.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["get_weather"]);
    assert!(
        matches!(got.last(), Some(Ok(StreamEvent::Finish { .. }))),
        "{got:?}"
    );
    assert_eq!(outcomes(&attempts), vec![("tools".into(), 1, Outcome::Ok)]);

    // Parallel calls allowed: the second call is checked, and the stream ends with the error.
    let parallel = chain.chat_stream(weather_request()).await.expect("starts");
    assert_eq!(
        items(parallel).await.last(),
        Some(&Err(ErrorKind::MalformedAnswer))
    );
}
