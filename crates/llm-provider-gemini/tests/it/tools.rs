//! Function calling and structured output against the real captures: the bodies we send (compared
//! with what the captured clients sent), the calls we decode, whole and streamed, and conversations
//! that go on after the calls.

use llm_core::{ChatRequest, ChatResponse, Message, Provider, ResponseFormat, Tool};
use llm_test_support::replay::{chat_json, collect, event_list};
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::support::{provider, serve};

/// The JSON body of the one request `server` received.
async fn sent_body(server: &MockServer) -> Value {
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1);
    serde_json::from_slice(&requests[0].body).expect("a JSON body")
}

/// Lower-cases the OpenAPI type names (`OBJECT`, `NUMBER`) of a schema the Python SDK converted.
fn lower_types(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match (key.as_str(), value) {
                    ("type", Value::String(name)) => *name = name.to_lowercase(),
                    (_, value) => lower_types(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(lower_types),
        _ => {}
    }
}

/// A captured body in the form we send, where the two differ only in spelling:
/// - a function's schema: the captured clients sent `parameters` (the OpenAPI subset, upper-case
///   type names) or `parameters_json_schema` (protobuf's field name, which the API takes as well as
///   the documented JSON name); we send the same JSON Schema as `parametersJsonSchema`;
/// - `systemInstruction.role` and an empty `generationConfig`, which we do not send (the API ignores
///   both);
/// - `thoughtSignature`: bytes in base64; the Python SDK re-encodes the signature it received in the
///   URL-safe alphabet, we replay the exact string Gemini sent (standard alphabet, same bytes).
fn as_we_send(capture: &Value) -> Value {
    let mut body = capture.clone();
    if let Some(system) = body
        .get_mut("systemInstruction")
        .and_then(Value::as_object_mut)
    {
        system.remove("role");
    }
    if body["generationConfig"] == json!({}) {
        body.as_object_mut().map(|b| b.remove("generationConfig"));
    }
    for declaration in body["tools"][0]["functionDeclarations"]
        .as_array_mut()
        .into_iter()
        .flatten()
    {
        let object = declaration.as_object_mut().expect("a declaration");
        let mut schema = object
            .remove("parameters")
            .or_else(|| object.remove("parameters_json_schema"))
            .expect("a schema");
        lower_types(&mut schema);
        object.insert("parametersJsonSchema".into(), schema);
    }
    for content in body["contents"].as_array_mut().expect("contents") {
        for part in content["parts"].as_array_mut().expect("parts") {
            if let Some(Value::String(signature)) = part.get_mut("thoughtSignature") {
                *signature = signature.replace('-', "+").replace('_', "/");
            }
        }
    }
    body
}

/// The first request of a captured exchange, as a caller of this library writes it: the captured
/// system text, first user turn, stop sequences and tools (their schemas as JSON Schema).
fn first_request(capture: &Value) -> ChatRequest {
    let mut messages = Vec::new();
    if let Some(system) = capture["systemInstruction"]["parts"][0]["text"].as_str() {
        messages.push(Message::system(system));
    }
    messages.push(Message::user(
        capture["contents"][0]["parts"][0]["text"]
            .as_str()
            .expect("a user turn"),
    ));
    let tools = as_we_send(capture)["tools"][0]["functionDeclarations"]
        .as_array()
        .expect("declarations")
        .iter()
        .map(|d| {
            Tool::new(
                d["name"].as_str().expect("name"),
                d["description"].as_str().expect("description"),
                d["parametersJsonSchema"].clone(),
            )
        })
        .collect();
    let stop = capture["generationConfig"]["stopSequences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    ChatRequest {
        messages,
        tools,
        stop,
        ..ChatRequest::default()
    }
}

/// Replays `scenario` for `request`: the body sent must be the captured one; returns the answer.
async fn exchange(scenario: &str, request: &ChatRequest) -> Result<ChatResponse, llm_core::Error> {
    let (server, fixture) = serve(scenario).await;
    let answer = provider(&server).chat(request).await;
    let capture = fixture.request.body.as_ref().expect("a captured request");
    assert_eq!(sent_body(&server).await, as_we_send(capture), "{scenario}");
    answer
}

fn capture_of(scenario: &str) -> Value {
    llm_test_support::Fixture::load(llm_provider_gemini::ID, scenario)
        .request
        .body
        .expect("a captured request")
}

#[tokio::test]
async fn a_function_call_and_its_result_go_on_as_the_capture_did() {
    let mut request = first_request(&capture_of("chat.function_call"));
    let answer = exchange("chat.function_call", &request).await;
    insta::assert_json_snapshot!("tools.function_call", chat_json(&answer));
    let answer = answer.expect("a call");

    // The follow-up: the call replayed, its result, and the captured next user turn.
    let follow_up = capture_of("chat.function_response.empty");
    request.messages.push(Message::assistant_tool_calls(
        answer.content,
        answer.tool_calls.clone(),
    ));
    request
        .messages
        .push(Message::tool_result(&answer.tool_calls[0].id, "30000"));
    request.messages.push(Message::user(
        follow_up["contents"][3]["parts"][0]["text"]
            .as_str()
            .expect("text"),
    ));
    let reply = exchange("chat.function_response.empty", &request).await;
    insta::assert_json_snapshot!("tools.function_response.empty", chat_json(&reply));
}

#[tokio::test]
async fn parallel_calls_keep_their_signature_and_results_go_back_one_turn_each() {
    let mut request = first_request(&capture_of("chat.function_call.parallel"));
    let answer = exchange("chat.function_call.parallel", &request).await;
    insta::assert_json_snapshot!("tools.function_call.parallel", chat_json(&answer));
    let answer = answer.expect("calls");
    assert!(answer.tool_calls[0].signature.is_some());

    let follow_up = capture_of("chat.function_response.parallel");
    request.messages.push(Message::assistant_tool_calls(
        answer.content,
        answer.tool_calls.clone(),
    ));
    for (call, turn) in answer
        .tool_calls
        .iter()
        .zip(&follow_up["contents"].as_array().expect("contents")[2..])
    {
        let result = turn["parts"][0]["functionResponse"]["response"]["result"]
            .as_str()
            .expect("a result");
        request
            .messages
            .push(Message::tool_result(&call.id, result));
    }
    let reply = exchange("chat.function_response.parallel", &request).await;
    insta::assert_json_snapshot!("tools.function_response.parallel", chat_json(&reply));
}

async fn stream_of(scenario: &str, request: &ChatRequest) -> Value {
    let (server, fixture) = serve(scenario).await;
    let stream = provider(&server)
        .chat_stream(request)
        .await
        .expect("stream starts");
    let events = event_list(&collect(stream).await);
    if let Some(capture) = &fixture.request.body {
        assert_eq!(sent_body(&server).await, as_we_send(capture), "{scenario}");
    }
    events
}

#[tokio::test]
async fn streamed_parallel_calls_are_whole_tool_call_events() {
    let request = first_request(&capture_of("chat.stream.function_call.parallel"));
    insta::assert_json_snapshot!(
        "tools.stream.function_call.parallel",
        stream_of("chat.stream.function_call.parallel", &request).await
    );
}

#[tokio::test]
async fn a_streamed_call_keeps_its_signature_and_ids_follow_the_turn() {
    // One assistant message before the answer: its calls are `call_1_…`.
    let request = ChatRequest {
        messages: vec![
            Message::user("Hi"),
            Message::assistant("Hello!"),
            Message::user("Weather in San Francisco?"),
        ],
        tools: vec![Tool::new(
            "weather",
            "The weather",
            json!({"type": "object", "properties": {"location": {"type": "string"}}}),
        )],
        ..ChatRequest::default()
    };
    insta::assert_json_snapshot!(
        "tools.stream.function_call",
        stream_of("chat.stream.function_call", &request).await
    );
}

#[tokio::test]
async fn streamed_partial_arguments_are_assembled_into_whole_calls() {
    let request = ChatRequest {
        tools: vec![Tool::new(
            "getWeather",
            "The weather",
            json!({"type": "object", "properties": {"location": {"type": "string"}}}),
        )],
        ..ChatRequest::from_prompt("Weather in Boston and San Francisco?")
    };
    insta::assert_json_snapshot!(
        "tools.stream.function_call.partial_args",
        stream_of("chat.stream.function_call.partial_args", &request).await
    );
}

/// Every keyword of a schema is one Gemini's API reference lists for `responseJsonSchema`, and a
/// `$ref` stands alone.
fn assert_gemini_reads(schema: &Value, at: &str) {
    const LISTED: [&str; 21] = [
        "$id",
        "$defs",
        "$ref",
        "$anchor",
        "type",
        "format",
        "title",
        "description",
        "enum",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "anyOf",
        "oneOf",
        "properties",
        "additionalProperties",
        "required",
        "propertyOrdering",
    ];
    let Some(map) = schema.as_object() else {
        return;
    };
    if map.contains_key("$ref") {
        assert!(map.keys().all(|k| k.starts_with('$')), "{at}: {schema}");
    }
    for (key, value) in map {
        assert!(LISTED.contains(&key.as_str()), "{at}: `{key}` in {schema}");
        match key.as_str() {
            "properties" | "$defs" => value
                .as_object()
                .into_iter()
                .flatten()
                .for_each(|(name, s)| assert_gemini_reads(s, &format!("{at}/{key}/{name}"))),
            "anyOf" | "prefixItems" => value
                .as_array()
                .into_iter()
                .flatten()
                .for_each(|s| assert_gemini_reads(s, &format!("{at}/{key}"))),
            "items" | "additionalProperties" => assert_gemini_reads(value, &format!("{at}/{key}")),
            _ => {}
        }
    }
}

/// An invoice, as a caller would describe it with schemars.
#[allow(dead_code)] // only its schema is used
#[derive(schemars::JsonSchema)]
struct Invoice {
    /// Who pays.
    customer: Customer,
    /// What was sold.
    lines: Vec<Line>,
    status: Status,
    note: Option<String>,
    total_cents: u32,
}

#[allow(dead_code)]
#[derive(schemars::JsonSchema)]
struct Customer {
    name: String,
    email: String,
}

#[allow(dead_code)]
#[derive(schemars::JsonSchema)]
struct Line {
    sku: String,
    quantity: u16,
}

#[allow(dead_code)]
#[derive(schemars::JsonSchema)]
enum Status {
    Draft,
    Sent,
    Paid,
}

/// A recursive type: its reference cannot be inlined.
#[allow(dead_code)]
#[derive(schemars::JsonSchema)]
struct Category {
    name: String,
    /// Sub-categories.
    children: Vec<Category>,
}

#[tokio::test]
async fn schemars_schemas_are_normalised_to_what_gemini_reads() {
    let invoice = serde_json::to_value(schemars::schema_for!(Invoice)).expect("schema");
    let category = serde_json::to_value(schemars::schema_for!(Category)).expect("schema");
    assert!(invoice.get("$defs").is_some() && invoice.get("$schema").is_some());
    let request = ChatRequest {
        response_format: Some(ResponseFormat::json_schema("Invoice", invoice)),
        tools: vec![Tool::new("file_under", "Files the invoice", category)],
        ..ChatRequest::from_prompt("Read this invoice.")
    };
    let (server, _fixture) = serve("chat.success").await;
    provider(&server).chat(&request).await.expect("answer");
    let body = sent_body(&server).await;
    let answer_schema = &body["generationConfig"]["responseJsonSchema"];
    let parameters = &body["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"];
    assert_gemini_reads(answer_schema, "responseJsonSchema");
    assert_gemini_reads(parameters, "parametersJsonSchema");
    assert!(
        answer_schema.get("$defs").is_none(),
        "inlined: {answer_schema}"
    );
    insta::assert_json_snapshot!(
        "tools.schemars",
        json!({"responseJsonSchema": answer_schema, "parametersJsonSchema": parameters})
    );
}

#[tokio::test]
async fn a_result_for_an_unknown_call_is_refused_before_sending() {
    let server = MockServer::start().await;
    let request = ChatRequest {
        messages: vec![
            Message::user("Weather?"),
            Message::tool_result("call_9_9", "sunny"),
        ],
        ..ChatRequest::default()
    };
    let err = provider(&server).chat(&request).await.expect_err("refused");
    assert_eq!(err.kind(), llm_core::ErrorKind::InvalidRequest);
    assert_eq!(err.provider(), Some("gemini"));
    assert!(err.message().contains("call_9_9"), "{err}");
    assert!(
        server
            .received_requests()
            .await
            .expect("recorded")
            .is_empty()
    );
}
