//! A rule-based chatbot: flows of messages, buttons and keyword matches
//! that answer FAQs, collect a name, phone and e-mail (normalised like every
//! identifier, so they feed identity resolution) and hand the customer to a
//! person with what they collected.
//!
//! - [`flow`]: the flow definition (JSON) and its validation.
//! - [`engine`]: the pure state machine that runs a flow, one customer
//!   message at a time; the caller stores the [`BotState`] between messages.
//!
//! Out of hours a team can keep the customer company: a separate flow, a
//! message, or the same flow whose hand-off says nobody is in yet (see
//! [`BotSetup::pick`]). A hand-off out of hours still hands off: the
//! conversation waits in the queue with what the bot collected.

pub mod engine;
pub mod flow;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::identity::{Identifier, IdentifierKind, IdentityPolicy};

pub use engine::{advance, start, BotAction, BotContext, BotState, HandOffReason, MAX_ATTEMPTS};
pub use flow::{Answer, Branch, Button, Flow, FlowDefinition, Step};

/// What the bot can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollectField {
    Name,
    Phone,
    Email,
}

impl CollectField {
    pub fn as_str(self) -> &'static str {
        match self {
            CollectField::Name => "name",
            CollectField::Phone => "phone",
            CollectField::Email => "email",
        }
    }

    /// The customer's answer, normalised (phones to E.164, e-mails
    /// lower-cased, per the workspace's identity policy), or `None` when
    /// it is not one.
    pub fn accept(self, answer: &str, policy: &IdentityPolicy) -> Option<String> {
        let kind = match self {
            CollectField::Name => return accept_name(answer),
            CollectField::Phone => IdentifierKind::Phone,
            CollectField::Email => IdentifierKind::Email,
        };
        Identifier::parse(kind, answer, policy)
            .ok()
            .map(|identifier| identifier.value)
    }
}

const MAX_NAME_CHARS: usize = 100;

fn accept_name(answer: &str) -> Option<String> {
    let name = answer.split_whitespace().collect::<Vec<_>>().join(" ");
    let plausible = name.chars().count() <= MAX_NAME_CHARS
        && name.chars().any(char::is_alphabetic)
        && !name.chars().any(|c| c.is_control() || c == '@');
    plausible.then_some(name)
}

/// A value the bot collected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    pub field: CollectField,
    pub value: String,
}

/// A team's bots: one for business hours and what happens outside them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotSetup {
    /// Sent in business hours when a conversation starts or reopens,
    /// before the flow (if there is one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Runs in business hours; none: customers go straight to operators.
    #[serde(default)]
    pub flow: Option<Flow>,
    #[serde(default)]
    pub out_of_hours: Option<OutOfHours>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutOfHours {
    /// An autoreply; the conversation waits for the morning.
    Message { text: String },
    /// A flow of its own (FAQs, a callback request, ...).
    Flow { flow: Flow },
}

/// What greets a new conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Greeting<'a> {
    Flow(&'a Flow),
    Message(&'a str),
    Nothing,
}

impl BotSetup {
    /// What greets a conversation that starts now. Out of hours with nothing
    /// set for it, the business-hours flow runs (its hand-offs use their
    /// `closed_text`).
    pub fn pick(&self, open: bool) -> Greeting<'_> {
        let in_hours = || self.flow.as_ref().map_or(Greeting::Nothing, Greeting::Flow);
        match (&self.out_of_hours, open) {
            (_, true) | (None, false) => in_hours(),
            (Some(OutOfHours::Flow { flow }), false) => Greeting::Flow(flow),
            (Some(OutOfHours::Message { text }), false) if text.trim().is_empty() => in_hours(),
            (Some(OutOfHours::Message { text }), false) => Greeting::Message(text),
        }
    }
}
