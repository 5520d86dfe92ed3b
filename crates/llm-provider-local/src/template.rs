//! The chat template: the GGUF file's own `tokenizer.chat_template` rendered with minijinja, ChatML when
//! the file has none. Pure: no I/O.

use llm_core::{Error, ErrorKind, Message, Role};
use minijinja::{Environment, context};
use serde::Serialize;

use crate::ID;

/// How a conversation becomes the prompt text the model continues.
#[derive(Debug, Clone)]
pub(crate) struct ChatTemplate {
    /// The Jinja source from the GGUF metadata, when the file has one.
    source: Option<String>,
    bos_token: String,
    eos_token: String,
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
}

impl ChatTemplate {
    /// A template from the file's metadata (`None`: plain ChatML).
    pub(crate) fn new(source: Option<String>, bos_token: &str, eos_token: &str) -> Self {
        Self {
            source,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        }
    }

    /// The prompt for `messages`, ending where the assistant's answer begins.
    ///
    /// A ChatML template that adds its own system prompt when the conversation has none (SmolLM2's
    /// "You are a helpful AI assistant named SmolLM…", Qwen2.5's "You are Qwen…") is replaced by plain
    /// ChatML for such conversations: measured with llama.cpp on SmolLM2-135M, that default prompt makes
    /// the model ramble (in French, asked for the capital of France) where plain ChatML answers "Paris".
    /// Only what the request asked for is sent.
    pub(crate) fn render(&self, messages: &[Message]) -> Result<String, Error> {
        let Some(source) = &self.source else {
            return Ok(chatml(messages));
        };
        let has_system = messages.iter().any(|m| m.role == Role::System);
        if !has_system && source.contains("<|im_start|>") && self.injects_system(source)? {
            return Ok(chatml(messages));
        }
        self.render_jinja(source, messages)
    }

    /// Whether the template writes a system turn for a conversation that has none.
    fn injects_system(&self, source: &str) -> Result<bool, Error> {
        let probe = self.render_jinja(source, &[Message::user("\u{e000}")])?;
        Ok(probe.contains("<|im_start|>system"))
    }

    fn render_jinja(&self, source: &str, messages: &[Message]) -> Result<String, Error> {
        let mut env = Environment::new();
        env.add_function("raise_exception", raise_exception);
        env.add_template("chat", source).map_err(template_error)?;
        let messages: Vec<TemplateMessage<'_>> = messages
            .iter()
            .map(|m| TemplateMessage {
                role: m.role.as_str(),
                content: &m.content,
            })
            .collect();
        let template = env.get_template("chat").map_err(template_error)?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(template_error)
    }
}

/// Plain ChatML, with no system turn unless the conversation has one.
pub(crate) fn chatml(messages: &[Message]) -> String {
    let mut prompt = String::new();
    for message in messages {
        prompt.push_str("<|im_start|>");
        prompt.push_str(message.role.as_str());
        prompt.push('\n');
        prompt.push_str(&message.content);
        prompt.push_str("<|im_end|>\n");
    }
    prompt.push_str("<|im_start|>assistant\n");
    prompt
}

/// What HF templates call to reject a conversation (e.g. roles that do not alternate).
fn raise_exception(message: String) -> Result<String, minijinja::Error> {
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        message,
    ))
}

fn template_error(error: minijinja::Error) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("the model's chat template failed: {error}"),
    )
    .with_provider(ID)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SmolLM2-Instruct's template, as its GGUF files carry it.
    const SMOLLM2: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn smollm2() -> ChatTemplate {
        ChatTemplate::new(Some(SMOLLM2.to_owned()), "<|im_start|>", "<|im_end|>")
    }

    #[test]
    fn no_default_system_prompt_is_injected() {
        let prompt = smollm2().render(&[Message::user("Hi")]).expect("render");
        assert_eq!(
            prompt,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_requested_system_prompt_goes_through_the_template() {
        let prompt = smollm2()
            .render(&[Message::system("Be brief."), Message::user("Hi")])
            .expect("render");
        assert_eq!(
            prompt,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_template_that_injects_nothing_is_used_as_is() {
        let template = ChatTemplate::new(
            Some("{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant]".to_owned()),
            "<s>",
            "</s>",
        );
        let prompt = template.render(&[Message::user("Hi")]).expect("render");
        assert_eq!(prompt, "<s>[user] Hi\n[assistant]");
    }

    #[test]
    fn no_template_is_chatml() {
        let template = ChatTemplate::new(None, "", "");
        let prompt = template
            .render(&[
                Message::user("a"),
                Message::assistant("b"),
                Message::user("c"),
            ])
            .expect("render");
        assert_eq!(
            prompt,
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb<|im_end|>\n<|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn a_template_exception_is_an_invalid_request() {
        let template = ChatTemplate::new(
            Some("{{ raise_exception('roles must alternate') }}".to_owned()),
            "",
            "",
        );
        let err = template.render(&[Message::user("a")]).expect_err("raises");
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(err.message().contains("roles must alternate"));
    }
}
