//! What the `gen_ai.chat` span of one attempt records, in OpenTelemetry's GenAI names: the model
//! actually requested, the model that answered, and the token counts when the provider reported them.
//!
//! The attempt's span is the current span while the attempt's future runs, so these helpers record
//! into `Span::current()` from inside it (and a stream keeps its span to record usage at the end).

use llm_core::{ChatRequest, ChatResponse, Usage};
use tracing::Span;

/// The request's own model, when it overrides the provider's (the span starts with the provider's).
pub(crate) fn record_request(span: &Span, request: &ChatRequest) {
    if let Some(model) = &request.model {
        span.record("gen_ai.request.model", model.as_str());
    }
}

/// The model that answered and its token counts.
pub(crate) fn record_response(span: &Span, response: &ChatResponse) {
    span.record("gen_ai.response.model", response.model.as_str());
    if let Some(usage) = response.usage {
        record_usage(span, usage);
    }
}

/// Token counts, when the provider reported them.
pub(crate) fn record_usage(span: &Span, usage: Usage) {
    span.record("gen_ai.usage.input_tokens", usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", usage.output_tokens);
}
