//! The model itself: a GGUF file loaded with candle, its tokenizer and chat template from the file's
//! metadata, and the generation loop. Synchronous and CPU-bound: it runs on the provider's own thread.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::LogitsProcessor;
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use llm_core::{Error, ErrorKind, FinishReason, Message};
use tokenizers::Tokenizer;

use crate::ID;
use crate::stop::StopScanner;
use crate::template::ChatTemplate;

/// The tokens that end an answer in the chat formats we render, besides the file's own end token.
const END_TOKENS: [&str; 3] = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"];

/// A loaded model, ready to answer.
pub(crate) struct Engine {
    weights: Weights,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    /// Tokens that end an answer.
    end_ids: Vec<u32>,
    /// The BOS token to put first when the file asks for one and the template did not write it.
    bos: Option<(u32, String)>,
    /// How many tokens (prompt and answer) the model can attend to.
    context: usize,
}

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(input, position),
            Weights::Qwen2(m) => m.forward(input, position),
        }
    }

    fn clear_kv_cache(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
        }
    }
}

/// How to generate one answer.
#[derive(Debug, Clone)]
pub(crate) struct Params {
    /// Upper bound on generated tokens.
    pub(crate) max_tokens: u32,
    /// Sampling temperature; `None` or 0 is greedy decoding.
    pub(crate) temperature: Option<f64>,
    /// The sampling seed.
    pub(crate) seed: u64,
    /// Sequences that end the answer (not shown).
    pub(crate) stop: Vec<String>,
}

/// How an answer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Why generation ended.
    pub(crate) reason: FinishReason,
    /// Prompt tokens.
    pub(crate) input_tokens: u64,
    /// Generated tokens.
    pub(crate) output_tokens: u64,
}

impl Engine {
    /// Reads the GGUF file at `path`: weights, tokenizer and chat template.
    ///
    /// # Errors
    /// `model_not_found` when the file is missing; `config` when it is not a GGUF model this provider
    /// can run (another architecture, another tokenizer).
    pub(crate) fn load(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| {
            Error::new(
                ErrorKind::ModelNotFound,
                format!("cannot open the model file {}: {e}", path.display()),
            )
            .with_provider(ID)
        })?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let content = gguf_file::Content::read(&mut reader).map_err(|e| bad_file(path, &e))?;
        let mut tokenizer = Tokenizer::from_gguf(&content).map_err(|e| bad_file(path, &e))?;
        let text = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_string().ok())
                .cloned()
        };
        fix_pre_tokenizer(&mut tokenizer, text("tokenizer.ggml.pre").as_deref());
        let number = |key: &str| content.metadata.get(key).and_then(|v| v.to_u32().ok());
        let tokens = content
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .cloned()
            .unwrap_or_default();
        let token = |id: Option<u32>| {
            id.and_then(|id| tokens.get(id as usize))
                .and_then(|v| v.to_string().ok())
                .cloned()
        };
        let bos_id = number("tokenizer.ggml.bos_token_id");
        let eos_id = number("tokenizer.ggml.eos_token_id");
        let bos_text = token(bos_id).unwrap_or_default();
        let eos_text = token(eos_id).unwrap_or_default();
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let template = ChatTemplate::new(text("tokenizer.chat_template"), &bos_text, &eos_text);
        let mut end_ids: Vec<u32> = END_TOKENS
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        end_ids.extend(eos_id);
        let architecture = text("general.architecture").unwrap_or_default();
        let device = Device::Cpu;
        let (weights, context) = match architecture.as_str() {
            "llama" => {
                // candle's llama precomputes rotary tables for MAX_SEQ_LEN positions only.
                let context = number("llama.context_length")
                    .map_or(quantized_llama::MAX_SEQ_LEN, |n| n as usize)
                    .min(quantized_llama::MAX_SEQ_LEN);
                let model = quantized_llama::ModelWeights::from_gguf(content, &mut reader, &device)
                    .map_err(|e| bad_file(path, &e))?;
                (Weights::Llama(model), context)
            }
            "qwen2" => {
                let context = number("qwen2.context_length").map_or(32_768, |n| n as usize);
                let model = quantized_qwen2::ModelWeights::from_gguf(content, &mut reader, &device)
                    .map_err(|e| bad_file(path, &e))?;
                (Weights::Qwen2(model), context)
            }
            other => {
                return Err(Error::config(format!(
                    "{}: architecture `{other}` is not supported (llama and qwen2 are)",
                    path.display()
                ))
                .with_provider(ID));
            }
        };
        Ok(Self {
            weights,
            tokenizer,
            template,
            end_ids,
            bos: bos_id.filter(|_| add_bos).map(|id| (id, bos_text)),
            context,
        })
    }

    /// The tokens of `text` as the model sees them (special tokens included), for tests.
    #[cfg(test)]
    fn token_strings(&self, text: &str) -> Vec<String> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_tokens().to_vec())
            .unwrap_or_default()
    }

    /// The prompt's tokens for `messages`.
    fn encode(&self, messages: &[Message]) -> Result<Vec<u32>, Error> {
        let prompt = self.template.render(messages)?;
        let encoding = self
            .tokenizer
            .encode(prompt.as_str(), false)
            .map_err(|e| internal(&format!("tokenizing the prompt failed: {e}")))?;
        let mut ids = encoding.get_ids().to_vec();
        if let Some((bos, text)) = &self.bos
            && !prompt.starts_with(text.as_str())
        {
            ids.insert(0, *bos);
        }
        Ok(ids)
    }

    /// Generates an answer to `messages`, passing text to `emit` as it is decoded; `emit` returns
    /// false when nobody listens any more (generation then stops).
    ///
    /// # Errors
    /// `context_length` when the prompt does not fit the model's context window; `server_error` when
    /// the computation fails.
    pub(crate) fn generate(
        &mut self,
        messages: &[Message],
        params: &Params,
        emit: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Outcome, Error> {
        let prompt = self.encode(messages)?;
        if prompt.len() >= self.context {
            return Err(Error::new(
                ErrorKind::ContextLength,
                format!(
                    "the prompt is {} tokens; the model's context window is {}",
                    prompt.len(),
                    self.context
                ),
            )
            .with_provider(ID));
        }
        let room = self.context - prompt.len();
        let budget = (params.max_tokens as usize).min(room);
        let mut sampler = LogitsProcessor::new(params.seed, params.temperature, None);
        let mut stops = StopScanner::new(&params.stop);
        let mut generated: Vec<u32> = Vec::new();
        let mut shown = 0;
        self.weights.clear_kv_cache();
        let mut next = self.step(&prompt, 0, &mut sampler)?;
        let mut reason = FinishReason::Length;
        while generated.len() < budget {
            if self.end_ids.contains(&next) {
                reason = FinishReason::Stop;
                break;
            }
            generated.push(next);
            let text = self.decode(&generated)?;
            // A token can end inside a UTF-8 character: wait for the rest of it.
            if !text.ends_with('\u{fffd}') && text.len() >= shown {
                let scan = stops.push(&text[shown..]);
                shown = text.len();
                if !scan.text.is_empty() && !emit(&scan.text) {
                    break;
                }
                if scan.stopped {
                    reason = FinishReason::Stop;
                    break;
                }
            }
            if generated.len() == budget {
                break;
            }
            let position = prompt.len() + generated.len() - 1;
            next = self.step(&[next], position, &mut sampler)?;
        }
        let rest = stops.finish();
        if !rest.is_empty() {
            emit(&rest);
        }
        Ok(Outcome {
            reason,
            input_tokens: prompt.len() as u64,
            output_tokens: generated.len() as u64,
        })
    }

    /// Runs `tokens` through the model at `position` and picks the next token.
    fn step(
        &mut self,
        tokens: &[u32],
        position: usize,
        sampler: &mut LogitsProcessor,
    ) -> Result<u32, Error> {
        let input = Tensor::new(tokens, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|e| internal(&e.to_string()))?;
        let logits = self
            .weights
            .forward(&input, position)
            .and_then(|l| l.squeeze(0))
            .and_then(|l| l.to_dtype(DType::F32))
            .map_err(|e| internal(&e.to_string()))?;
        sampler
            .sample(&logits)
            .map_err(|e| internal(&e.to_string()))
    }

    fn decode(&self, ids: &[u32]) -> Result<String, Error> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| internal(&format!("decoding failed: {e}")))
    }
}

/// candle gives every GGUF pre-tokenizer type it does not know GPT-2's `ByteLevel` defaults, which add a
/// space before each piece of text (after every special token: `<|im_start|>` then ` user`) and keep
/// digit runs together. GPT-2-style vocabularies as llama.cpp reads them add no space; SmolLM's
/// (`smollm`) also splits numbers into single digits. The types candle handles itself are left alone.
fn fix_pre_tokenizer(tokenizer: &mut Tokenizer, pre: Option<&str>) {
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;

    let byte_level = ByteLevel::new(false, true, true);
    match pre {
        Some("qwen2" | "smaug-bpe" | "lfm2" | "llama3") => {}
        Some("smollm") => {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                byte_level.into(),
            ])));
        }
        _ => {
            tokenizer.with_pre_tokenizer(Some(byte_level));
        }
    }
}

fn bad_file(path: &Path, error: &dyn std::fmt::Display) -> Error {
    Error::config(format!(
        "{} is not a GGUF model this provider can run: {error}",
        path.display()
    ))
    .with_provider(ID)
}

fn internal(message: &str) -> Error {
    Error::new(
        ErrorKind::ServerError,
        format!("the local model failed: {message}"),
    )
    .with_provider(ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2's tokenizer as Hugging Face's `tokenizer.json` defines it: special tokens whole, no space
    /// added after them, digits one by one. Needs the real file (`LLM_TEST_GGUF`; required in CI).
    #[test]
    fn smollm2_prompts_tokenize_as_its_own_tokenizer_does() {
        let Some(path) = std::env::var_os("LLM_TEST_GGUF") else {
            assert!(
                !std::env::var("CI").is_ok_and(|v| v == "true"),
                "LLM_TEST_GGUF is not set: CI must provide the SmolLM2-135M GGUF (see .ci/run)"
            );
            return;
        };
        let engine = Engine::load(Path::new(&path)).expect("load");
        assert_eq!(
            engine.token_strings("<|im_start|>user\nHi 2024<|im_end|>"),
            [
                "<|im_start|>",
                "user",
                "Ċ",
                "Hi",
                "Ġ",
                "2",
                "0",
                "2",
                "4",
                "<|im_end|>"
            ]
        );
    }

    /// The tiny qwen2 file (`tests/data/tiny-qwen2.gguf`): Qwen's pre-tokenizer as candle builds it
    /// (special tokens whole, no space added after them, digits one by one), and its Qwen2.5 template,
    /// which would add "You are Qwen…", replaced by plain ChatML for a conversation without a system turn.
    #[test]
    fn qwen2_prompts_are_plain_chatml_in_qwen_tokens() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tiny-qwen2.gguf");
        let engine = Engine::load(Path::new(path)).expect("load");
        assert_eq!(
            engine.token_strings("<|im_start|>user\nHi 2024<|im_end|>"),
            [
                "<|im_start|>",
                "u",
                "s",
                "er",
                "Ċ",
                "H",
                "i",
                "Ġ",
                "2",
                "0",
                "2",
                "4",
                "<|im_end|>"
            ]
        );
        let ids = engine.encode(&[Message::user("Hi")]).expect("encode");
        assert_eq!(
            engine.tokenizer.decode(&ids, false).expect("decode"),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let ids = engine
            .encode(&[Message::system("Be brief."), Message::user("Hi")])
            .expect("encode");
        assert_eq!(
            engine.tokenizer.decode(&ids, false).expect("decode"),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }
}
