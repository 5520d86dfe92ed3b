//! The OpenAI chat-completions dialect, written once for every provider that speaks it (OpenAI, Groq,
//! OpenRouter, Together, Mistral, DeepSeek, LM Studio).
//!
//! - [`wire`]: sans-IO request encoding and tolerant response decoding (`{"error": …}` inside a 200 body
//!   is an error; a body without choices is a validation error).
//! - [`stream`]: [`ChunkDecoder`], the [`FrameDecoder`](crate::FrameDecoder) for `chat.completion.chunk`
//!   server-sent events, ending at `data: [DONE]`.
//! - [`ids`]: tool-call ids as each provider accepts them ([`ToolCallIds`]: Mistral's nine letters
//!   and digits), mapped deterministically from foreign ones.
//! - [`errors`]: [`parse_error`], the dialect's one classification of error bodies, with a hook for a
//!   provider's own rules ([`parse_error_with`]).
//! - [`provider`]: [`OpenAiCompatible`], the generic [`Provider`](llm_core::Provider) that each provider
//!   crate configures with a [`CompatSpec`].

pub mod errors;
pub mod ids;
pub mod provider;
pub mod stream;
pub mod wire;

pub use errors::{ErrorFacts, KindOverride, parse_error, parse_error_with};
pub use ids::{ToolCallIds, with_tool_call_ids};
pub use llm_core::Capabilities;
pub use provider::{
    CompatConfig, CompatProvider, CompatSpec, EnvHeader, OpenAiCompatible, build_boxed,
    same_for_every_model,
};
pub use stream::ChunkDecoder;
pub use wire::{decode_response, encode_request, encode_request_bytes, strict_compatible};

use crate::error_map::LimitHeaders;

/// The dialect's rate-limit headers (OpenAI, Groq, Together, …): what is left of the requests and
/// tokens of the window, and when each resets (a duration like `2m59.56s`).
pub const LIMIT_HEADERS: &[LimitHeaders] = &[
    LimitHeaders {
        remaining: "x-ratelimit-remaining-requests",
        reset: "x-ratelimit-reset-requests",
    },
    LimitHeaders {
        remaining: "x-ratelimit-remaining-tokens",
        reset: "x-ratelimit-reset-tokens",
    },
];

/// Declares a provider crate's public items from its `CompatSpec` constant: the marker type tying the
/// spec to the generic types, `<X>` (the provider), `<X>Config`, and the registry entry.
///
/// ```text
/// llm_protocol::compat_provider!(GroqSpec, Groq, GroqConfig, "Groq", SPEC);
/// ```
#[macro_export]
macro_rules! compat_provider {
    ($marker:ident, $provider:ident, $config:ident, $name:literal, $spec:expr) => {
        #[doc = concat!("Ties ", $name, "'s settings and quirks to the dialect's generic types.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $marker;

        impl $crate::openai::CompatProvider for $marker {
            const SPEC: $crate::openai::CompatSpec = $spec;
        }

        #[doc = concat!("The ", $name, " provider: `", stringify!($provider), "::from_env(&env)` or `",
            stringify!($provider), "::new(config)`.")]
        pub type $provider = $crate::openai::OpenAiCompatible<$marker>;

        #[doc = concat!($name, "'s configuration: `", stringify!($config),
            "::from_env(&env)`; its `Debug` never shows the key.")]
        pub type $config = $crate::openai::CompatConfig<$marker>;

        // Through this crate's re-export: a provider crate needs no `llm-core` dependency of its own.
        $crate::__private::llm_core::register_provider!(
            $spec.settings.registration($crate::openai::build_boxed::<$marker>)
        );
    };
}
