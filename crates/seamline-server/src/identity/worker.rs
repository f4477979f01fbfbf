//! The identity worker: leases the `identity` outbox entries and resolves
//! their events in log order. With several instances each entry is leased by
//! one; the per-workspace lock keeps the graph consistent.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use seamline_store::{Backend, IDENTITY_CONSUMER};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{policy_of, resolve_events};

const CLAIM_LIMIT: u32 = 50;
const EVENTS_PER_TRANSACTION: usize = 64;
const LEASE: chrono::Duration = chrono::Duration::seconds(60);
const POLL_EVERY: Duration = Duration::from_millis(500);

pub async fn run(store: Arc<dyn Backend>, committed: Arc<Notify>, stop: CancellationToken) {
    loop {
        let notified = committed.notified();
        let pause = match resolve_once(store.as_ref(), &stop).await {
            Ok(0) => POLL_EVERY,
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "identity resolution failed; retrying"
                );
                Duration::from_secs(1)
            }
        };
        // A backlog must not hold up shutdown: leases hand the rest on.
        if pause.is_zero() && !stop.is_cancelled() {
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = notified => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Resolves one claim's worth of entries, fewer if told to stop (the rest
/// stay leased and are taken again after the lease); returns how many.
pub async fn resolve_once(store: &dyn Backend, stop: &CancellationToken) -> anyhow::Result<usize> {
    let now = Utc::now();
    let entries = store
        .claim_outbox(IDENTITY_CONSUMER, CLAIM_LIMIT, now, now + LEASE)
        .await?;
    for entry in entries.iter().take_while(|_| !stop.is_cancelled()) {
        let mut workspaces: Vec<_> = entry.events.iter().map(|e| e.workspace_id).collect();
        workspaces.sort();
        workspaces.dedup();
        for workspace in workspaces {
            let policy = policy_of(store, workspace).await?;
            let events: Vec<_> = entry
                .events
                .iter()
                .filter(|e| e.workspace_id == workspace)
                .collect();
            // Short transactions, so ingest gets the (SQLite) write lock in between.
            for chunk in events.chunks(EVENTS_PER_TRANSACTION) {
                resolve_events(store, &policy, workspace, chunk).await?;
            }
        }
        store.complete_outbox(&[entry.id]).await?;
    }
    metrics::counter!("seamline_identity_entries_total").increment(entries.len() as u64);
    // How far resolution lags behind ingest, for operators and alerts.
    let backlog = store.outbox_backlog(IDENTITY_CONSUMER).await?;
    metrics::gauge!("seamline_identity_backlog_entries").set(backlog as f64);
    Ok(entries.len())
}
