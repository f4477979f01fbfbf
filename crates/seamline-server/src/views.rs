//! JSON shapes of the REST API (a compatibility promise: change with care).

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::{StatusName, SystemEvent};
use seamline_core::inbox::template::{Values, Variable};
use seamline_core::inbox::{Channel, Label, MessageKind, Priority, Status};
use seamline_core::tracking::EventType;
use seamline_core::{ConversationId, ConversationMessageId, MemberId, ProfileId, TeamId};
use seamline_store::codec;
use seamline_store::{
    Attachment, CannedResponseRecord, DeliveryStatus, StoredConversation, StoredEvent,
    StoredMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// An event as the REST API, the live stream and the bus show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub id: String,
    pub workspace_id: String,
    pub message_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event name of a track call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The name of a page or screen call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub enrichment: Value,
    pub payload: Value,
}

impl From<&StoredEvent> for EventView {
    fn from(e: &StoredEvent) -> Self {
        Self {
            id: e.id.to_string(),
            workspace_id: e.workspace_id.to_string(),
            message_id: e.message_id.clone(),
            event_type: e.event_type.as_str().to_owned(),
            event: (e.event_type == EventType::Track)
                .then(|| e.event_name.clone())
                .flatten(),
            name: (e.event_type != EventType::Track)
                .then(|| e.event_name.clone())
                .flatten(),
            user_id: e.user_id.clone(),
            anonymous_id: e.anonymous_id.clone(),
            timestamp: e.timestamp,
            received_at: e.received_at,
            enrichment: e.enrichment.clone(),
            payload: e.payload.clone(),
        }
    }
}

/// The same view, taking the event's values instead of copying them.
impl From<StoredEvent> for EventView {
    fn from(e: StoredEvent) -> Self {
        let (event, name) = match e.event_type {
            EventType::Track => (e.event_name, None),
            _ => (None, e.event_name),
        };
        Self {
            id: e.id.to_string(),
            workspace_id: e.workspace_id.to_string(),
            message_id: e.message_id,
            event_type: e.event_type.as_str().to_owned(),
            event,
            name,
            user_id: e.user_id,
            anonymous_id: e.anonymous_id,
            timestamp: e.timestamp,
            received_at: e.received_at,
            enrichment: e.enrichment,
            payload: e.payload,
        }
    }
}

/// Every list endpoint answers `{"data": [...], "next_cursor": ... | null}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A conversation as the REST API shows it.
#[derive(Debug, Serialize)]
pub struct ConversationView {
    pub id: ConversationId,
    pub profile_id: ProfileId,
    /// open, pending, snoozed or resolved.
    pub status: StatusName,
    /// Set while snoozed.
    pub snoozed_until: Option<DateTime<Utc>>,
    pub assignee_id: Option<MemberId>,
    pub team_id: Option<TeamId>,
    pub priority: Priority,
    pub labels: Vec<Label>,
    /// Where a reply goes unless the operator picks another channel.
    pub reply_channel: Option<Channel>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Since when the customer has waited for an answer.
    pub waiting_since: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_channel: Option<Channel>,
    pub unread: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&StoredConversation> for ConversationView {
    fn from(stored: &StoredConversation) -> Self {
        let c = &stored.conversation;
        Self {
            id: c.id,
            profile_id: c.profile,
            status: c.status.name(),
            snoozed_until: match c.status {
                Status::Snoozed { until } => Some(until),
                Status::Open | Status::Pending | Status::Resolved => None,
            },
            assignee_id: c.assignee,
            team_id: c.team,
            priority: c.priority,
            labels: c.labels.iter().cloned().collect(),
            reply_channel: c.last_inbound_channel,
            last_inbound_at: c.last_inbound_at,
            waiting_since: c.waiting_since,
            last_message_at: stored.last_message_at,
            last_message_channel: stored.last_message_channel,
            unread: stored.unread,
            created_at: c.created_at,
            updated_at: stored.updated_at,
        }
    }
}

/// A conversation's timeline entry as the REST API shows it. The body is
/// plain text exactly as written; whoever displays it escapes it.
#[derive(Debug, Serialize)]
pub struct MessageView {
    pub id: ConversationMessageId,
    pub conversation_id: ConversationId,
    /// The customer it was written for (it stays through merges).
    pub profile_id: ProfileId,
    /// inbound, outbound, bot, note or event.
    pub kind: &'static str,
    pub channel: Channel,
    pub body: String,
    pub at: DateTime<Utc>,
    /// The replying operator, the note's author or the event's actor.
    pub author_id: Option<MemberId>,
    /// A note's mentioned members.
    pub mentions: Vec<MemberId>,
    /// What happened, for an event.
    pub event: Option<SystemEvent>,
    pub sender: Option<String>,
    pub attachments: Vec<Attachment>,
    pub external_id: Option<String>,
    pub delivery: Option<DeliveryStatus>,
    /// Why a message failed to go out (the provider's words).
    pub delivery_reason: Option<String>,
}

impl From<StoredMessage> for MessageView {
    fn from(stored: StoredMessage) -> Self {
        let m = stored.message;
        let kind = codec::kind_name(&m.kind);
        let author_id = codec::kind_actor(&m.kind);
        let (mentions, event) = match m.kind {
            MessageKind::Note { mentions, .. } => (mentions, None),
            MessageKind::Event { event, .. } => (Vec::new(), Some(event)),
            MessageKind::Inbound | MessageKind::Outbound { .. } | MessageKind::Bot => {
                (Vec::new(), None)
            }
        };
        Self {
            id: m.id,
            conversation_id: m.conversation,
            profile_id: stored.profile_id,
            kind,
            channel: m.channel,
            body: m.body,
            at: m.at,
            author_id,
            mentions,
            event,
            sender: stored.sender,
            attachments: stored.attachments,
            external_id: stored.external_id,
            delivery: stored.delivery,
            delivery_reason: stored.delivery_reason,
        }
    }
}

/// A saved reply; `rendered` is its text for one conversation's customer
/// and the caller, when the list was asked for one.
#[derive(Debug, Serialize)]
pub struct CannedResponseView {
    pub id: Uuid,
    pub shortcut: String,
    pub body: String,
    pub variables: Vec<Variable>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl CannedResponseView {
    pub fn new(record: CannedResponseRecord, values: Option<&Values>) -> Self {
        let template = &record.response.template;
        Self {
            id: record.id,
            variables: template.variables(),
            rendered: values.map(|v| template.render(v)),
            body: template.as_str().to_owned(),
            shortcut: record.response.shortcut,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}
