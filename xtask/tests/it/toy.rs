//! A minimal OpenAI-dialect provider, registered only in these tests: it shows the recorder and the
//! checker work for any registration, independent of the real provider crates.

use async_trait::async_trait;
use futures_util::StreamExt as _;
use llm_cascade::{
    ChatRequest, ChatResponse, ChatStream, EnvSource, Error, ErrorKind, FinishReason, Provider,
    ProviderRegistration, Registry, StreamEvent,
};
use llm_protocol::sse::{SseDecoder, SseEvent};
use llm_protocol::{FrameDecoder, HttpClient, HttpFailure, ProviderSettings, SettingsSpec};
use serde_json::{Value, json};

pub const SPEC: SettingsSpec = SettingsSpec {
    id: "toy",
    display_name: "Toy",
    env_prefix: "TOY",
    key_env: &["TOY_API_KEY"],
    default_model: "toy-model",
    default_base_url: "http://127.0.0.1:9/v1",
    default_timeout: std::time::Duration::from_secs(10),
    local: false,
    priority: 1,
    aliases: &[],
};

pub fn registry() -> Registry {
    Registry::from_registrations([registration()]).expect("one registration")
}

pub fn registration() -> ProviderRegistration {
    SPEC.registration(build)
}

fn build(env: &dyn EnvSource) -> Result<Box<dyn Provider>, Error> {
    let settings = ProviderSettings::from_env(&SPEC, env)?;
    let http = HttpClient::new(SPEC.id, false, parse_error)?;
    Ok(Box::new(Toy { settings, http }))
}

fn parse_error(failure: &HttpFailure) -> Error {
    let body: Value = serde_json::from_slice(&failure.body).unwrap_or(Value::Null);
    let kind = match body["error"]["code"].as_str() {
        Some("invalid_api_key") => ErrorKind::Auth,
        Some("model_not_found") => ErrorKind::ModelNotFound,
        _ => llm_protocol::error_map::kind_for_status(failure.status),
    };
    Error::new(kind, "toy error")
}

#[derive(Debug)]
struct Toy {
    settings: ProviderSettings,
    http: HttpClient,
}

impl Toy {
    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        json!({
            "model": request.model.clone().unwrap_or_else(|| self.settings.model.clone()),
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "stream": stream,
        })
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let key = self
            .settings
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .unwrap_or_default();
        self.http
            .post(format!("{}/chat/completions", self.settings.base_url))
            .bearer_auth(key)
            .json(body)
    }
}

fn finish(reason: &str) -> FinishReason {
    serde_json::from_value(json!(reason)).unwrap_or(FinishReason::Other(reason.to_owned()))
}

struct Chunks;

impl FrameDecoder<SseEvent> for Chunks {
    fn frame(&mut self, frame: SseEvent) -> Result<Vec<StreamEvent>, Error> {
        if frame.data == "[DONE]" {
            return Ok(vec![]);
        }
        let chunk: Value = serde_json::from_str(&frame.data)
            .map_err(|e| Error::new(ErrorKind::MalformedAnswer, e.to_string()))?;
        let choice = &chunk["choices"][0];
        let mut events = Vec::new();
        if let Some(text) = choice["delta"]["content"].as_str() {
            events.push(StreamEvent::Delta {
                text: text.to_owned(),
            });
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            events.push(StreamEvent::Finish {
                reason: finish(reason),
                model: chunk["model"].as_str().map(str::to_owned),
            });
        }
        Ok(events)
    }

    fn end(&mut self) -> Result<Vec<StreamEvent>, Error> {
        Ok(vec![])
    }
}

#[async_trait]
impl Provider for Toy {
    fn id(&self) -> &str {
        SPEC.id
    }
    fn model(&self) -> &str {
        &self.settings.model
    }
    fn base_url(&self) -> &str {
        &self.settings.base_url
    }
    fn timeout(&self) -> std::time::Duration {
        self.settings.timeout
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, Error> {
        let response = self
            .http
            .send(self.post(&self.body(request, false)))
            .await?;
        let body: Value = self.http.read_json(response).await?;
        let choice = body["choices"]
            .get(0)
            .ok_or_else(|| self.http.error(ErrorKind::MalformedAnswer, "no choices"))?;
        Ok(ChatResponse {
            tool_calls: Vec::new(),
            content: choice["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            provider: SPEC.id.to_owned(),
            model: body["model"].as_str().unwrap_or_default().to_owned(),
            finish_reason: finish(choice["finish_reason"].as_str().unwrap_or("stop")),
            usage: None,
            rate_limit: None,
        })
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, Error> {
        let response = self.http.send(self.post(&self.body(request, true))).await?;
        let bytes = self.http.body_stream(response).boxed();
        Ok(llm_protocol::decode_stream(
            SPEC.id,
            bytes,
            SseDecoder::new(),
            Chunks,
        ))
    }

    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}
