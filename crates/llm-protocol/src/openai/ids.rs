//! Tool-call ids as each provider of the dialect accepts them.
//!
//! A conversation that started on one provider carries its ids (`toolu_…` from Anthropic, `call_…`
//! from OpenAI, `call_<turn>_<index>` made up for Gemini and Ollama) when it goes on at another. Most
//! providers take any string; Mistral takes only nine ASCII letters and digits and answers anything
//! else with a 400 ("Tool call id was … but must be a-z, A-Z, 0-9, with a length of 9"). Foreign ids
//! are mapped deterministically, so an assistant's call and the tool result that answers it still
//! match, in this request and in every later turn of the same conversation.

use std::borrow::Cow;

use llm_core::ChatRequest;

/// Which tool-call ids a provider accepts in the conversation it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolCallIds {
    /// Any string (OpenAI, Groq, Together, DeepSeek, LM Studio): ids are sent as they are.
    AsIs,
    /// Exactly nine ASCII letters and digits (Mistral).
    Alphanumeric9,
    /// [`ToolCallIds::Alphanumeric9`] for models whose id starts with this prefix, as they are for
    /// the others (OpenRouter's `mistralai/` models, which Mistral serves with its own rule).
    Alphanumeric9For(&'static str),
}

/// How many characters a Mistral id has.
const ALNUM_LEN: usize = 9;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

impl ToolCallIds {
    /// Whether ids sent with `model` must be mapped.
    fn restricts(self, model: &str) -> bool {
        match self {
            ToolCallIds::AsIs => false,
            ToolCallIds::Alphanumeric9 => true,
            ToolCallIds::Alphanumeric9For(prefix) => model.starts_with(prefix),
        }
    }

    /// The id to send for `id` with `model`: itself when the provider accepts it, else its mapping.
    pub fn id_for<'a>(self, id: &'a str, model: &str) -> Cow<'a, str> {
        if self.restricts(model) && !is_alphanumeric9(id) {
            Cow::Owned(alphanumeric9(id))
        } else {
            Cow::Borrowed(id)
        }
    }
}

fn is_alphanumeric9(id: &str) -> bool {
    id.len() == ALNUM_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Nine letters and digits from a hash of `id` (64-bit FNV-1a, in base 62): the same id always maps
/// to the same nine characters. 62⁹ ≈ 1.4·10¹⁶ values: two ids of one conversation do not collide.
fn alphanumeric9(id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (0..ALNUM_LEN)
        .map(|_| {
            let digit = usize::try_from(hash % 62).unwrap_or(0);
            hash /= 62;
            char::from(ALPHABET[digit])
        })
        .collect()
}

/// `request` with every tool-call id (the assistant's calls and the tool results answering them) as
/// the provider accepts it for `model`; the request itself when nothing needs mapping.
pub fn with_tool_call_ids<'a>(
    request: &'a ChatRequest,
    rule: ToolCallIds,
    model: &str,
) -> Cow<'a, ChatRequest> {
    let mut ids = request.messages.iter().flat_map(|m| {
        m.tool_calls
            .iter()
            .map(|c| c.id.as_str())
            .chain(m.tool_call_id.as_deref())
    });
    if !ids.any(|id| matches!(rule.id_for(id, model), Cow::Owned(_))) {
        return Cow::Borrowed(request);
    }
    let mut mapped = request.clone();
    for message in &mut mapped.messages {
        for call in &mut message.tool_calls {
            call.id = rule.id_for(&call.id, model).into_owned();
        }
        if let Some(id) = &mut message.tool_call_id {
            *id = rule.id_for(id, model).into_owned();
        }
    }
    Cow::Owned(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use llm_core::{Message, ToolCall};

    #[test]
    fn foreign_ids_map_to_nine_alphanumerics_deterministically() {
        let rule = ToolCallIds::Alphanumeric9;
        let mapped = rule.id_for("toolu_01A09q90qw90lq917835lq9", "m");
        assert!(is_alphanumeric9(&mapped), "{mapped}");
        assert_eq!(mapped, rule.id_for("toolu_01A09q90qw90lq917835lq9", "m"));
        assert_ne!(mapped, rule.id_for("toolu_01A09q90qw90lq917835lq8", "m"));
        assert!(is_alphanumeric9(&rule.id_for("call_0_0", "m")));
        // Mistral's own ids pass unchanged.
        assert_eq!(rule.id_for("rHU0eZiMa", "m"), "rHU0eZiMa");
        assert_eq!(ToolCallIds::AsIs.id_for("toolu_x", "m"), "toolu_x");
        let openrouter = ToolCallIds::Alphanumeric9For("mistralai/");
        assert_eq!(openrouter.id_for("toolu_x", "openai/gpt-4o"), "toolu_x");
        assert!(is_alphanumeric9(
            &openrouter.id_for("toolu_x", "mistralai/mistral-small")
        ));
    }

    #[test]
    fn a_request_without_foreign_ids_is_not_copied() {
        let request = ChatRequest {
            messages: vec![
                Message::assistant_tool_calls("", vec![ToolCall::new("rHU0eZiMa", "f", "{}")]),
                Message::tool_result("rHU0eZiMa", "ok"),
            ],
            ..ChatRequest::default()
        };
        let same = with_tool_call_ids(&request, ToolCallIds::Alphanumeric9, "m");
        assert!(matches!(same, Cow::Borrowed(_)));
    }
}
