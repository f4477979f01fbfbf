//! The outbox relay: publishes committed events on the bus, then marks them
//! done. Entries are leased, so with several instances each entry is
//! published by one relay, and a crashed relay's entries are retried after
//! the lease (the bus drops re-published ids within its dedupe window).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use seamline_bus::{Bus, Message};
use seamline_store::{OutboxEntry, Store, BUS_CONSUMER};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::views::EventView;

const CLAIM_LIMIT: u32 = 200;
const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// Also poll, for entries committed by other instances or left by a crash.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// The bus subject of a workspace's events.
pub fn events_subject(workspace: seamline_core::WorkspaceId) -> String {
    format!("events.{workspace}")
}

pub async fn run(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    committed: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        let notified = committed.notified();
        match relay_once(store.as_ref(), bus.as_ref()).await {
            Ok(0) => {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = notified => {}
                    _ = tokio::time::sleep(POLL_EVERY) => {}
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "outbox relay failed; retrying"
                );
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Publishes one claim's worth of entries; returns how many.
pub async fn relay_once(store: &dyn Store, bus: &dyn Bus) -> anyhow::Result<usize> {
    let now = Utc::now();
    let entries = store
        .claim_outbox(BUS_CONSUMER, CLAIM_LIMIT, now, now + LEASE)
        .await?;
    let mut done = Vec::with_capacity(entries.len());
    for entry in &entries {
        publish_entry(bus, entry).await?;
        done.push(entry.id);
    }
    store.complete_outbox(&done).await?;
    Ok(entries.len())
}

async fn publish_entry(bus: &dyn Bus, entry: &OutboxEntry) -> anyhow::Result<()> {
    for event in &entry.events {
        let payload = serde_json::to_vec(&EventView::from(event))?;
        bus.publish(Message {
            subject: events_subject(event.workspace_id),
            id: event.id.to_string(),
            payload: payload.into(),
        })
        .await?;
    }
    metrics::counter!("seamline_outbox_published_total").increment(entry.events.len() as u64);
    Ok(())
}
