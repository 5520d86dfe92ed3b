//! A conversation in the shape of the APIs that keep instructions apart from the turns and want the
//! turns to alternate, starting with the user (Anthropic's Messages API, Gemini's `generateContent`).
//!
//! [`Conversation::from_messages`] is pure: every such dialect maps its output to its own wire roles
//! (`user` / `assistant`, `user` / `model`) and its own place for the system text.

use llm_core::{Message, Role};

/// The user turn put first when a conversation does not start with a user message (it starts with an
/// assistant message, or has only system messages, or none at all).
pub const LEADING_USER_TURN: &str = "(start of conversation)";

/// What joins system messages, and consecutive messages of the same speaker: a blank line.
const JOIN: &str = "\n\n";

/// Who speaks a [`Turn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// The person asking.
    User,
    /// The model.
    Assistant,
}

/// One turn of a [`Conversation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Who speaks it.
    pub speaker: Speaker,
    /// Its text: one message, or several consecutive messages joined by a blank line.
    pub text: String,
}

/// A request's messages split into the system text and alternating turns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The system messages, wherever they stood, joined by a blank line; `None` when there are none.
    pub system: Option<String>,
    /// The other messages in order, consecutive messages of the same speaker merged (joined by a blank
    /// line). Never empty, and the first turn is always the user's ([`LEADING_USER_TURN`] when the
    /// messages do not start with one).
    pub turns: Vec<Turn>,
}

impl Conversation {
    /// Normalises `messages`: system messages are collected into [`Conversation::system`]; user
    /// messages become [`Speaker::User`] turns and assistant messages [`Speaker::Assistant`] turns;
    /// consecutive turns of the same speaker are merged (a system message between them does not
    /// separate them); a user turn [`LEADING_USER_TURN`] is put first when the first turn is not the
    /// user's.
    pub fn from_messages(messages: &[Message]) -> Self {
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let mut turns: Vec<Turn> = Vec::new();
        for message in messages.iter().filter(|m| m.role != Role::System) {
            // A tool result is the caller's side of the conversation (these dialects get tool
            // requests only through their own encoders; the cascade skips them otherwise).
            let speaker = if matches!(message.role, Role::User | Role::Tool) {
                Speaker::User
            } else {
                Speaker::Assistant
            };
            match turns.last_mut() {
                Some(last) if last.speaker == speaker => {
                    last.text.push_str(JOIN);
                    last.text.push_str(&message.content);
                }
                _ => turns.push(Turn {
                    speaker,
                    text: message.content.clone(),
                }),
            }
        }
        if turns
            .first()
            .is_none_or(|first| first.speaker != Speaker::User)
        {
            turns.insert(
                0,
                Turn {
                    speaker: Speaker::User,
                    text: LEADING_USER_TURN.to_owned(),
                },
            );
        }
        Self {
            system: (!system.is_empty()).then(|| system.join(JOIN)),
            turns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: Speaker, text: &str) -> Turn {
        Turn {
            speaker,
            text: text.to_owned(),
        }
    }

    #[test]
    fn a_single_user_message_is_one_turn() {
        assert_eq!(
            Conversation::from_messages(&[Message::user("Hi")]),
            Conversation {
                system: None,
                turns: vec![turn(Speaker::User, "Hi")],
            }
        );
    }

    #[test]
    fn systems_are_collected_and_same_speaker_runs_merge() {
        let conversation = Conversation::from_messages(&[
            Message::system("S1"),
            Message::user("a"),
            Message::system("S2"),
            Message::user("b"),
            Message::assistant("c"),
            Message::assistant("d"),
            Message::user("e"),
        ]);
        assert_eq!(
            conversation,
            Conversation {
                system: Some("S1\n\nS2".into()),
                turns: vec![
                    turn(Speaker::User, "a\n\nb"),
                    turn(Speaker::Assistant, "c\n\nd"),
                    turn(Speaker::User, "e"),
                ],
            }
        );
    }

    #[test]
    fn a_leading_assistant_turn_gets_a_user_turn_first() {
        let conversation =
            Conversation::from_messages(&[Message::assistant("Hello!"), Message::user("Hi")]);
        assert_eq!(
            conversation.turns,
            vec![
                turn(Speaker::User, LEADING_USER_TURN),
                turn(Speaker::Assistant, "Hello!"),
                turn(Speaker::User, "Hi"),
            ]
        );
    }

    #[test]
    fn only_system_messages_or_none_still_give_a_user_turn() {
        let only_system = Conversation::from_messages(&[Message::system("")]);
        assert_eq!(only_system.system.as_deref(), Some(""));
        assert_eq!(
            only_system.turns,
            vec![turn(Speaker::User, LEADING_USER_TURN)]
        );
        assert_eq!(
            Conversation::from_messages(&[]),
            Conversation {
                system: None,
                turns: vec![turn(Speaker::User, LEADING_USER_TURN)],
            }
        );
    }

    #[test]
    fn empty_texts_are_kept_and_still_joined() {
        let conversation = Conversation::from_messages(&[Message::user(""), Message::user("b")]);
        assert_eq!(conversation.turns, vec![turn(Speaker::User, "\n\nb")]);
    }
}
