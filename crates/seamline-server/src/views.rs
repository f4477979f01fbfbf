//! JSON shapes of the REST API (a compatibility promise: change with care).

use chrono::{DateTime, Utc};
use seamline_core::tracking::EventType;
use seamline_store::StoredEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
