//! Messages of a conversation, pushed live over the bus to every instance:
//! the visitor's socket and operators' screens wherever they are connected.

use bytes::Bytes;
use seamline_bus::{Bus, BusError, Message};
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::StoredMessage;
use serde::Serialize;

/// The subject a customer's conversation is pushed on.
pub fn subject_of(workspace: WorkspaceId, profile: ProfileId) -> String {
    format!("inbox.{workspace}.{profile}")
}

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

/// Publishes `stored` on its conversation's subject.
pub async fn announce(bus: &dyn Bus, stored: &StoredMessage) -> Result<(), BusError> {
    let payload = serde_json::to_vec(stored).map_err(|e| BusError::Rejected(e.to_string()))?;
    bus.publish(Message {
        subject: subject_of(stored.workspace_id, stored.profile_id),
        id: stored.message.id.to_string(),
        payload: Bytes::from(payload),
    })
    .await
}
