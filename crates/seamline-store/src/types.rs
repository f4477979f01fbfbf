//! The domain records the store keeps.

use chrono::{DateTime, Utc};
use seamline_core::tracking::{EventType, TrackedEvent};
use seamline_core::{EventId, KeyId, MemberId, Role, WorkspaceId};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// Everything a new workspace starts with, written in one transaction.
#[derive(Debug, Clone)]
pub struct WorkspaceSetup {
    pub workspace: Workspace,
    pub owner: NewMember,
    pub keys: Vec<ApiKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub id: MemberId,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

pub type NewMember = Member;

/// A login session. Only the token's hash is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub member_id: MemberId,
    pub workspace_id: WorkspaceId,
    /// Sent back with every state-changing form or request.
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Public-ish: embedded in sites and apps, only sends tracking calls.
    Write,
    /// Secret: the REST API, with admin rights on its workspace.
    Secret,
}

impl KeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Write => "write",
            KeyKind::Secret => "secret",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "write" => Some(KeyKind::Write),
            "secret" => Some(KeyKind::Secret),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKey {
    pub id: KeyId,
    pub workspace_id: WorkspaceId,
    pub kind: KeyKind,
    pub name: String,
    /// The first characters of the key, to tell keys apart in lists.
    pub prefix: String,
    /// Write keys are kept readable (they are pasted into sites);
    /// secret keys are shown once and only their hash is kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<String>,
    #[serde(skip)]
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub event: TrackedEvent,
}

/// Each appended event's seq, in input order, or `None` where the event
/// was a duplicate: from a per-event "was new" flag and the new events'
/// seqs in order, as an append reports them.
pub fn seq_per_event(new: &[bool], seqs: &[i64]) -> Vec<Option<i64>> {
    let mut seqs = seqs.iter().copied();
    new.iter()
        .map(|&is_new| if is_new { seqs.next() } else { None })
        .collect()
}

/// An event as stored in the log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Position in this store's log; increases with every append.
    pub seq: i64,
    pub id: EventId,
    pub workspace_id: WorkspaceId,
    pub message_id: String,
    pub event_type: EventType,
    pub event_name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// [`seamline_core::tracking::Enrichment`] as JSON.
    pub enrichment: Value,
    /// The message as the client sent it.
    pub payload: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Filters and page for [`crate::Store::list_events`].
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    /// Only events whose (corrected) timestamp is at or after this.
    pub since: Option<DateTime<Utc>>,
    /// Continue after this sequence number (exclusive), in `order`.
    pub after_seq: Option<i64>,
    pub limit: u32,
    pub order: Order,
}

/// A committed append, waiting to be published.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: i64,
    pub events: Vec<StoredEvent>,
}

/// What [`crate::Store::append_and_claim`] did.
#[derive(Debug, Clone)]
pub struct Appended {
    /// Per input event: whether it was new.
    pub new: Vec<bool>,
    /// The claimed consumer's entry for the new events, leased to the
    /// caller; `None` when nothing was new.
    pub entry: Option<OutboxEntry>,
}
