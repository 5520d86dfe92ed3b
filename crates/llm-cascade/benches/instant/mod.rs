//! The provider the benches call: it answers at once (also as a stream), so what is measured is the
//! cascade around it.

use std::time::Duration;

use async_trait::async_trait;
use llm_cascade::{
    ChatRequest, ChatResponse, ChatStream, Error, FinishReason, Provider, StreamEvent, Usage,
};

/// Answers "ok" at once, with `usage` (reported usage makes the engine record the tokens too).
#[derive(Debug)]
pub struct Instant {
    pub usage: Option<Usage>,
}

#[async_trait]
impl Provider for Instant {
    fn id(&self) -> &str {
        "instant"
    }
    fn model(&self) -> &str {
        "m"
    }
    fn base_url(&self) -> &str {
        "memory://"
    }
    fn timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, Error> {
        Ok(ChatResponse {
            tool_calls: Vec::new(),
            content: "ok".to_owned(),
            provider: "instant".to_owned(),
            model: "m".to_owned(),
            finish_reason: FinishReason::Stop,
            usage: self.usage,
            rate_limit: None,
        })
    }
    async fn chat_stream(&self, _request: &ChatRequest) -> Result<ChatStream, Error> {
        let mut events = vec![Ok(StreamEvent::Delta {
            text: "ok".to_owned(),
        })];
        if let Some(usage) = self.usage {
            events.push(Ok(StreamEvent::Usage { usage }));
        }
        events.push(Ok(StreamEvent::Finish {
            reason: FinishReason::Stop,
            model: Some("m".to_owned()),
        }));
        Ok(Box::pin(futures_util::stream::iter(events)))
    }
    async fn check_available(&self) -> Result<(), Error> {
        Ok(())
    }
}
