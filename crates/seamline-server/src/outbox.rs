//! The outbox relay: publishes committed events on the bus, then marks them
//! done. Entries are leased, so with several instances each entry is
//! published by one relay, and a crashed relay's entries are retried after
//! the lease (the bus drops re-published ids within its dedupe window).
//!
//! This process's ingest writers hand their committed entries over from
//! memory, already leased to this relay (no read back from the store); the
//! relay also polls the store for entries nobody holds: those of other
//! instances, of a crash, or committed while the hand-over queue was full.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use seamline_bus::{Bus, Message};
use seamline_store::{OutboxEntry, Store, BUS_CONSUMER};
use tokio::sync::{mpsc, Notify};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::views::EventView;

const CLAIM_LIMIT: u32 = 200;
/// How long an entry belongs to the relay that claimed it.
pub const LEASE: chrono::Duration = chrono::Duration::seconds(30);
/// Also poll, for entries committed by other instances or left by a crash.
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Committed entries that may wait in memory for the relay; past that,
/// writers leave entries to the poll, so a slow bus never holds up ingest.
const HANDOFF_CAPACITY: usize = 64;

/// Where ingest writers hand their committed, leased bus entries to the relay.
#[derive(Clone)]
pub struct Handoff {
    entries: mpsc::Sender<OutboxEntry>,
    left_in_store: Arc<Notify>,
}

/// The relay's end of the [`Handoff`].
pub struct Handed {
    entries: mpsc::Receiver<OutboxEntry>,
    left_in_store: Arc<Notify>,
}

/// The hand-over queue between the ingest writers and the relay.
pub fn handoff() -> (Handoff, Handed) {
    let (sender, receiver) = mpsc::channel(HANDOFF_CAPACITY);
    let left_in_store = Arc::new(Notify::new());
    let handoff = Handoff {
        entries: sender,
        left_in_store: left_in_store.clone(),
    };
    let handed = Handed {
        entries: receiver,
        left_in_store,
    };
    (handoff, handed)
}

impl Handoff {
    /// Room for one entry, if the relay is keeping up.
    pub fn reserve(&self) -> Option<mpsc::Permit<'_, OutboxEntry>> {
        self.entries.try_reserve().ok()
    }

    /// Tells the relay that an entry waits in the store instead.
    pub fn left_in_store(&self) {
        self.left_in_store.notify_waiters();
    }
}

/// The bus subject of a workspace's events.
pub fn events_subject(workspace: seamline_core::WorkspaceId) -> String {
    format!("events.{workspace}")
}

/// Relays until `stop`, then publishes what was handed over and returns.
pub async fn run(
    store: Arc<dyn Store>,
    bus: Arc<dyn Bus>,
    handed: Handed,
    stop: CancellationToken,
) {
    let Handed {
        entries: mut handed,
        left_in_store,
    } = handed;
    let (store, bus) = (store.as_ref(), bus.as_ref());
    // An interval, not a sleep per turn: hand-overs must not keep postponing the poll.
    let mut poll_timer = tokio::time::interval(POLL_EVERY);
    poll_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut poll = true;
    loop {
        let notified = left_in_store.notified();
        if poll {
            match relay_once(store, bus).await {
                Ok(0) => poll = false,
                Ok(_) => continue,
                Err(error) => {
                    warn(&error);
                    tokio::select! {
                        _ = stop.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(entry) = handed.recv() => relay_handed(store, bus, entry, &mut handed).await,
            _ = notified => poll = true,
            _ = poll_timer.tick() => poll = true,
        }
    }
    while let Ok(entry) = handed.try_recv() {
        relay_handed(store, bus, entry, &mut handed).await;
    }
}

/// Publishes one claim's worth of entries; returns how many.
pub async fn relay_once(store: &dyn Store, bus: &dyn Bus) -> anyhow::Result<usize> {
    let now = Utc::now();
    let entries = store
        .claim_outbox(BUS_CONSUMER, CLAIM_LIMIT, now, now + LEASE)
        .await?;
    let count = entries.len();
    publish_all(store, bus, entries).await?;
    Ok(count)
}

/// Publishes `first` and whatever else is already handed over, then marks
/// them done in one go. On failure they stay leased and the poll retries
/// them after the lease.
async fn relay_handed(
    store: &dyn Store,
    bus: &dyn Bus,
    first: OutboxEntry,
    handed: &mut mpsc::Receiver<OutboxEntry>,
) {
    let mut entries = vec![first];
    while let Ok(entry) = handed.try_recv() {
        entries.push(entry);
    }
    if let Err(error) = publish_all(store, bus, entries).await {
        warn(&error);
    }
}

async fn publish_all(
    store: &dyn Store,
    bus: &dyn Bus,
    entries: Vec<OutboxEntry>,
) -> anyhow::Result<()> {
    let mut done = Vec::with_capacity(entries.len());
    for entry in entries {
        done.push(entry.id);
        publish_entry(bus, entry).await?;
    }
    store.complete_outbox(&done).await?;
    Ok(())
}

async fn publish_entry(bus: &dyn Bus, entry: OutboxEntry) -> anyhow::Result<()> {
    let count = entry.events.len() as u64;
    for event in entry.events {
        let subject = events_subject(event.workspace_id);
        let id = event.id.to_string();
        let payload = serde_json::to_vec(&EventView::from(event))?;
        bus.publish(Message {
            subject,
            id,
            payload: payload.into(),
        })
        .await?;
    }
    metrics::counter!("seamline_outbox_published_total").increment(count);
    Ok(())
}

fn warn(error: &anyhow::Error) {
    tracing::warn!(
        error = format!("{error:#}"),
        "outbox relay failed; retrying"
    );
}
