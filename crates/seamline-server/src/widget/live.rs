//! What a visitor sees of their conversation.

use seamline_store::StoredMessage;
use serde::Serialize;

/// What a visitor's widget shows of a message: never notes, events or
/// other channels.
#[derive(Debug, Serialize)]
pub struct VisitorMessage<'a> {
    pub id: String,
    /// `inbound` (the visitor), `outbound` (an operator) or `bot`.
    pub kind: &'static str,
    pub body: &'a str,
    pub at: String,
}

impl<'a> VisitorMessage<'a> {
    /// The chat's own messages: what the customer wrote or was answered on
    /// other channels stays there.
    pub fn of(stored: &'a StoredMessage) -> Option<Self> {
        use seamline_core::inbox::conversation::{Channel, MessageKind};
        if stored.message.channel != Channel::WebChat {
            return None;
        }
        let kind = match stored.message.kind {
            MessageKind::Inbound => "inbound",
            MessageKind::Outbound { .. } => "outbound",
            MessageKind::Bot => "bot",
            _ => return None,
        };
        Some(Self {
            id: stored.message.id.to_string(),
            kind,
            body: &stored.message.body,
            at: stored.message.at.to_rfc3339(),
        })
    }
}
