//! The events every measurement uses: realistic ~150-byte tracking messages
//! with unique `messageId`s, as `/v1/batch` bodies and as encoded rows.

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use seamline_core::tracking::{self, Envelope, TrackedEvent};
use serde_json::{json, Value};
use uuid::Uuid;

/// One run's events, prepared before any clock starts.
pub struct Workload {
    /// The messages as clients send them.
    pub messages: Vec<Value>,
    /// Mean size of one message as JSON text, in bytes.
    pub mean_message_bytes: usize,
}

impl Workload {
    /// `count` messages with unique ids.
    pub fn new(count: usize) -> Self {
        let now = Utc::now();
        let messages: Vec<Value> = (0..count).map(|i| message(i, now)).collect();
        let total: usize = messages.iter().map(|m| m.to_string().len()).sum();
        Self {
            mean_message_bytes: total / count.max(1),
            messages,
        }
    }

    /// `/v1/batch` request bodies of `batch_size` messages each.
    pub fn bodies(&self, batch_size: usize) -> anyhow::Result<Vec<Vec<u8>>> {
        let sent_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        let bodies = self
            .messages
            .chunks(batch_size.max(1))
            .map(|batch| serde_json::to_vec(&json!({"batch": batch, "sentAt": sent_at})))
            .collect::<Result<Vec<_>, _>>()?;
        let largest = bodies.iter().map(Vec::len).max().unwrap_or(0);
        anyhow::ensure!(
            largest <= tracking::MAX_BATCH_BYTES,
            "a batch body of {largest} bytes is over the server's limit; use a smaller --batch-size"
        );
        Ok(bodies)
    }

    /// The messages validated as the server would, for the raw baselines.
    pub fn rows(&self) -> anyhow::Result<Vec<Row>> {
        let envelope = Envelope {
            received_at: Utc::now(),
            request_ip: Some("127.0.0.1".into()),
        };
        let workspace = Uuid::now_v7();
        let mut no_id = || String::from("unused: every message has an id");
        self.messages
            .iter()
            .map(|m| {
                let event = tracking::parse_message(&m.to_string(), &envelope, &mut no_id)
                    .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))
                    .context("a generated message is invalid")?;
                Row::new(workspace, event)
            })
            .collect()
    }
}

/// Three kinds of call in equal parts, ~150 bytes each. Message ids are
/// random UUIDs, as the common tracking libraries make them, so the dedupe
/// index sees random inserts as it would in production.
fn message(i: usize, now: DateTime<Utc>) -> Value {
    let message_id = Uuid::new_v4().to_string();
    let anonymous_id = format!("a-{:05}", i % 50_000);
    let timestamp = (now - chrono::Duration::milliseconds((i % 5_000) as i64))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    match i % 3 {
        0 => json!({
            "type": "track", "messageId": message_id, "anonymousId": anonymous_id,
            "event": "Product Viewed", "properties": {"sku": format!("SKU-{:04}", i % 10_000)},
            "timestamp": timestamp,
        }),
        1 => json!({
            "type": "page", "messageId": message_id, "anonymousId": anonymous_id,
            "name": "Pricing", "timestamp": timestamp,
        }),
        _ => json!({
            "type": "identify", "messageId": message_id, "userId": format!("u-{:05}", i % 20_000),
            "traits": {"plan": "pro"}, "timestamp": timestamp,
        }),
    }
}

/// An event flattened to the `events` table's column values.
pub struct Row {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub message_id: String,
    pub event_type: &'static str,
    pub event_name: Option<String>,
    pub user_id: Option<String>,
    pub anonymous_id: Option<String>,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub enrichment: String,
    pub payload: String,
}

impl Row {
    fn new(workspace_id: Uuid, event: TrackedEvent) -> anyhow::Result<Self> {
        Ok(Self {
            id: Uuid::now_v7(),
            workspace_id,
            enrichment: serde_json::to_string(&event.enrichment)?,
            payload: serde_json::to_string(&event.payload)?,
            message_id: event.message_id,
            event_type: event.event_type.as_str(),
            event_name: event.event_name,
            user_id: event.user_id,
            anonymous_id: event.anonymous_id,
            timestamp: event.timestamp,
            received_at: event.received_at,
        })
    }
}
