//! Streams that recover: continuing an answer whose stream failed after text was delivered.
//!
//! The text delivered so far is kept. Within the deadline the answer is continued: the same provider
//! again when the policy retries the failure, else the next ones in the chain. A provider that accepts
//! an assistant prefill ([`Provider::supports_prefill`]) gets the delivered text as a final assistant
//! message and streams only the remainder; any other provider is asked again from the start and the
//! delivered text is dropped from its new stream ([`Skip`]). A prefill the provider rejects with HTTP
//! 400 is a capability mismatch: the same provider is asked again without it.

use std::sync::Arc;
use std::time::Duration;

use llm_core::{ChatRequest, Error, ErrorKind, Message, Provider, ResumeMode, Role};
use tokio::time::Instant;
use tracing::{info, warn};

use crate::engine::{AttemptFuture, Call, Cascade, set_decision};
use crate::report::Decision;

/// The first-token wait for a provider with `remaining` time before the deadline. While a later
/// provider is left (`later`), the wait is at most half the time left: a silent provider never takes
/// the time the next one needs (with the default 10 s and a deadline of 120 s this changes nothing
/// until fewer than 20 s are left).
pub(crate) fn first_token_wait(configured: Duration, remaining: Duration, later: bool) -> Duration {
    if later && !remaining.is_zero() {
        configured.min(remaining / 2)
    } else {
        configured
    }
}

/// The request that continues `delivered` by prefill: the delivered text, without its trailing
/// whitespace (Anthropic rejects a final assistant turn that ends with whitespace), as the final
/// assistant message (appended to the request's own final assistant message, when it ends with one).
/// Also returns the whitespace left out, which the continuation may repeat.
pub(crate) fn with_prefill(request: &ChatRequest, delivered: &str) -> (ChatRequest, String) {
    let prefill = delivered.trim_end();
    let left_out = delivered[prefill.len()..].to_owned();
    let mut request = request.clone();
    match request.messages.last_mut() {
        Some(last) if last.role == Role::Assistant => last.content.push_str(prefill),
        _ => request.messages.push(Message::assistant(prefill)),
    }
    (request, left_out)
}

/// Text to drop from the start of a continued stream because the caller already has it.
#[derive(Debug, Default)]
pub(crate) struct Skip {
    text: String,
    /// How much was dropped so far (for saying where a restart diverged).
    dropped: usize,
    /// Restart: the new stream must repeat `text` exactly, or the answer cannot go on. Otherwise
    /// (the whitespace a prefill left out) the new stream may or may not repeat it.
    strict: bool,
}

impl Skip {
    /// After a restart: the whole delivered text must come again first.
    pub(crate) fn restart(delivered: &str) -> Self {
        Self {
            text: delivered.to_owned(),
            dropped: 0,
            strict: true,
        }
    }

    /// After a prefill: the whitespace left out of it is dropped if the continuation repeats it.
    pub(crate) fn prefill(left_out: String) -> Self {
        Self {
            text: left_out,
            dropped: 0,
            strict: false,
        }
    }

    /// Whether a restart still has delivered text to see again.
    pub(crate) fn pending(&self) -> bool {
        self.strict && !self.text.is_empty()
    }

    /// The part of `text` the caller does not have yet (possibly empty), or `Err` with the byte
    /// offset into the delivered text where a restarted answer diverged.
    pub(crate) fn take(&mut self, text: String) -> Result<String, usize> {
        if self.text.is_empty() {
            return Ok(text);
        }
        if self.strict {
            if let Some(rest) = self.text.strip_prefix(text.as_str()) {
                self.dropped += text.len();
                self.text = rest.to_owned();
                return Ok(String::new());
            }
            if let Some(rest) = text.strip_prefix(self.text.as_str()) {
                let rest = rest.to_owned();
                self.text.clear();
                return Ok(rest);
            }
            let same = self
                .text
                .char_indices()
                .zip(text.chars())
                .find(|((_, a), b)| a != b)
                .map_or(0, |((at, _), _)| at);
            return Err(self.dropped + same);
        }
        let mut skipped = 0;
        for (expected, got) in self.text.chars().zip(text.chars()) {
            if expected != got {
                break;
            }
            skipped += got.len_utf8();
        }
        // Leniently: whatever was not repeated is simply not expected any more.
        self.text.clear();
        Ok(text[skipped..].to_owned())
    }
}

/// A continuation that produced its first token.
pub(crate) struct Continued<T> {
    /// The provider's place in the chain.
    pub(crate) index: usize,
    /// Its attempt number.
    pub(crate) attempt: u32,
    /// How the answer is continued.
    pub(crate) mode: ResumeMode,
    /// What the attempt produced.
    pub(crate) value: T,
}

/// Where a continuation starts, as the retry policy decided after the cut: `(index, attempt)`.
pub(crate) fn start_after_cut(
    cascade: &Cascade,
    call: &mut Call,
    error: &Error,
    index: usize,
    attempt: u32,
) -> Option<(usize, u32, Duration)> {
    let remaining = call.deadline.saturating_duration_since(Instant::now());
    let decision = cascade.policy().decide(error, attempt, remaining);
    set_decision(call, decision);
    match decision {
        Decision::Retry { waited_ms } => {
            Some((index, attempt + 1, Duration::from_millis(waited_ms)))
        }
        Decision::NextProvider { .. } => Some((index + 1, 1, Duration::ZERO)),
        Decision::Stop => None,
    }
}

impl Cascade {
    /// Continues a cut answer from provider `index`, attempt `attempt`, through the rest of the chain,
    /// as the retry policy decides. `open(provider, mode)` opens one continuation attempt.
    pub(crate) async fn continue_stream<T>(
        &self,
        call: &mut Call,
        model: &Option<String>,
        mut index: usize,
        mut attempt: u32,
        open: impl Fn(Arc<dyn Provider>, ResumeMode) -> AttemptFuture<T>,
    ) -> Option<Continued<T>> {
        let mut no_prefill = false;
        while let Some(provider) = self.providers().get(index).cloned() {
            if attempt == 1 && index > 0 {
                self.announce_fallback(index);
                // A first attempt is a request: it pays into the retry budget.
                self.policy().budget().deposit();
            }
            let asked = model.as_deref().unwrap_or(provider.model());
            let mode = if !no_prefill && provider.supports_prefill(asked) {
                ResumeMode::Prefill
            } else {
                ResumeMode::Restart
            };
            info!(
                provider = provider.id(),
                mode = mode.as_str(),
                "continuing the answer with {}",
                provider.id()
            );
            let error = match self
                .attempt(call, &provider, attempt, &|p| open(p, mode))
                .await
            {
                Ok(value) => {
                    return Some(Continued {
                        index,
                        attempt,
                        mode,
                        value,
                    });
                }
                Err(error) => error,
            };
            if mode == ResumeMode::Prefill && error.status() == Some(400) {
                // Our prefill, not the provider, is the problem: ask again without it, at once.
                warn!(
                    provider = provider.id(),
                    "{} rejected the prefill: restarting the answer instead",
                    provider.id()
                );
                no_prefill = true;
                set_decision(call, Decision::Retry { waited_ms: 0 });
                attempt += 1;
                continue;
            }
            let remaining = call.deadline.saturating_duration_since(Instant::now());
            let decision = self.policy().decide(&error, attempt, remaining);
            set_decision(call, decision);
            match decision {
                Decision::Retry { waited_ms } => {
                    self.wait_before_retry(&provider, waited_ms).await;
                    attempt += 1;
                }
                Decision::NextProvider { .. } => {
                    index += 1;
                    attempt = 1;
                    no_prefill = false;
                }
                Decision::Stop => return None,
            }
        }
        None
    }
}

/// The error that ends an answer whose continuation failed: the cut, with a note.
pub(crate) fn not_continued(error: &Error) -> Error {
    let mut ended = Error::new(
        error.kind(),
        format!(
            "{}; continuing the answer failed (see the attempts)",
            error.message()
        ),
    )
    .with_retry_after(error.retry_after());
    if let Some(provider) = error.provider() {
        ended = ended.with_provider(provider);
    }
    if let Some(status) = error.status() {
        ended = ended.with_status(status);
    }
    ended
}

/// The honest end of a restarted answer that did not repeat what was delivered.
pub(crate) fn diverged(provider: &str, delivered: usize, at: Option<usize>) -> Error {
    let what = match at {
        Some(at) => format!("its text differs from the delivered text at byte {at}"),
        None => "it ended before repeating all of it".to_owned(),
    };
    Error::new(
        ErrorKind::StreamTruncated,
        format!(
            "the answer was cut after {delivered} bytes and could not be continued: the restarted \
             answer from {provider} did not repeat the delivered text ({what}); the answer is incomplete"
        ),
    )
    .with_provider(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restart_drops_the_delivered_text_across_pieces_and_reports_divergence() {
        let mut skip = Skip::restart("Hello wor");
        assert_eq!(skip.take("Hel".into()), Ok(String::new()));
        assert!(skip.pending());
        assert_eq!(skip.take("lo world!".into()), Ok("ld!".into()));
        assert!(!skip.pending());
        assert_eq!(skip.take("more".into()), Ok("more".into()));
        let mut other = Skip::restart("Hello");
        assert_eq!(other.take("Help".into()), Err(3));
        let mut later = Skip::restart("Hello");
        assert_eq!(later.take("He".into()), Ok(String::new()));
        assert_eq!(later.take("lp".into()), Err(3));
    }

    #[test]
    fn a_prefill_drops_repeated_whitespace_only_if_repeated() {
        let (request, left_out) = with_prefill(&ChatRequest::from_prompt("hi"), "One two \n");
        assert_eq!(
            request.messages.last(),
            Some(&Message::assistant("One two"))
        );
        assert_eq!(left_out, " \n");
        let mut skip = Skip::prefill(left_out.clone());
        assert_eq!(skip.take(" \nthree".into()), Ok("three".into()));
        let mut skip = Skip::prefill(left_out);
        assert_eq!(skip.take(" three".into()), Ok("three".into()));
        let mut skip = Skip::prefill(" ".into());
        assert_eq!(skip.take("three".into()), Ok("three".into()));
    }

    #[test]
    fn a_callers_own_prefill_is_extended_not_followed() {
        let mut request = ChatRequest::from_prompt("hi");
        request.messages.push(Message::assistant("```rust\n"));
        let (continued, _) = with_prefill(&request, "fn main");
        assert_eq!(continued.messages.len(), 2);
        assert_eq!(continued.messages[1].content, "```rust\nfn main");
    }

    #[test]
    fn the_first_token_wait_leaves_time_for_the_next_provider() {
        let ten = Duration::from_secs(10);
        assert_eq!(first_token_wait(ten, Duration::from_secs(120), true), ten);
        assert_eq!(
            first_token_wait(ten, Duration::from_secs(12), true),
            Duration::from_secs(6)
        );
        assert_eq!(first_token_wait(ten, Duration::from_secs(12), false), ten);
    }
}
