//! The event log and its outbox.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use seamline_core::WorkspaceId;
use seamline_store::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::{backend, millis, rows};

/// Rows per INSERT statement: 12 parameters each stays well under SQLite's
/// 32,766-parameter limit, and full chunks reuse one cached statement.
const ROWS_PER_STATEMENT: usize = 1000;

pub(crate) async fn append(pool: &SqlitePool, events: &[NewEvent]) -> StoreResult<Vec<bool>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = pool.begin().await.map_err(backend)?;
    let mut inserted: Vec<(i64, Uuid, String)> = Vec::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        inserted.extend(insert_chunk(&mut tx, chunk).await?);
    }
    if !inserted.is_empty() {
        let seqs: Vec<i64> = inserted.iter().map(|(seq, _, _)| *seq).collect();
        let seqs = serde_json::to_string(&seqs).map_err(backend)?;
        for consumer in OUTBOX_CONSUMERS {
            sqlx::query("INSERT INTO outbox (consumer, event_seqs, created_at) VALUES (?, ?, ?)")
                .bind(consumer)
                .bind(&seqs)
                .bind(millis(Utc::now()))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
    }
    tx.commit().await.map_err(backend)?;
    Ok(mark_new(
        events,
        inserted.into_iter().map(|(_, ws, id)| (ws, id)),
    ))
}

/// Per input event: was it the one stored? The first occurrence of a
/// `(workspace, messageId)` in the input claims the stored row.
pub(crate) fn mark_new(
    events: &[NewEvent],
    stored: impl Iterator<Item = (Uuid, String)>,
) -> Vec<bool> {
    let mut stored: HashSet<(Uuid, String)> = stored.collect();
    events
        .iter()
        .map(|e| stored.remove(&(e.workspace_id.as_uuid(), e.event.message_id.clone())))
        .collect()
}

async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[NewEvent],
) -> StoreResult<Vec<(i64, Uuid, String)>> {
    let mut rows = Vec::with_capacity(chunk.len());
    for e in chunk {
        rows.push(EncodedEvent::new(e)?);
    }
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO events (id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
         timestamp, received_at, enrichment, payload) ",
    );
    insert.push_values(rows, |mut b, row| {
        b.push_bind(row.id)
            .push_bind(row.workspace_id)
            .push_bind(row.message_id)
            .push_bind(row.event_type)
            .push_bind(row.event_name)
            .push_bind(row.user_id)
            .push_bind(row.anonymous_id)
            .push_bind(row.timestamp)
            .push_bind(row.received_at)
            .push_bind(row.enrichment)
            .push_bind(row.payload);
    });
    insert.push(" ON CONFLICT (workspace_id, message_id) DO NOTHING RETURNING seq, workspace_id, message_id");
    let returned = insert.build().fetch_all(conn).await.map_err(backend)?;
    returned
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(backend)?,
                r.try_get(1).map_err(backend)?,
                r.try_get(2).map_err(backend)?,
            ))
        })
        .collect()
}

/// An event flattened to column values.
struct EncodedEvent<'a> {
    id: Uuid,
    workspace_id: Uuid,
    message_id: &'a str,
    event_type: &'static str,
    event_name: Option<&'a str>,
    user_id: Option<&'a str>,
    anonymous_id: Option<&'a str>,
    timestamp: i64,
    received_at: i64,
    enrichment: String,
    payload: String,
}

impl<'a> EncodedEvent<'a> {
    fn new(e: &'a NewEvent) -> StoreResult<Self> {
        let event = &e.event;
        Ok(Self {
            id: e.id.as_uuid(),
            workspace_id: e.workspace_id.as_uuid(),
            message_id: &event.message_id,
            event_type: event.event_type.as_str(),
            event_name: event.event_name.as_deref(),
            user_id: event.user_id.as_deref(),
            anonymous_id: event.anonymous_id.as_deref(),
            timestamp: millis(event.timestamp),
            received_at: millis(event.received_at),
            enrichment: serde_json::to_string(&event.enrichment).map_err(backend)?,
            payload: serde_json::to_string(&event.payload).map_err(backend)?,
        })
    }
}

pub(crate) async fn list(
    pool: &SqlitePool,
    ws: WorkspaceId,
    q: &EventQuery,
) -> StoreResult<Vec<StoredEvent>> {
    let mut select: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT * FROM events WHERE workspace_id = ");
    select.push_bind(ws.as_uuid());
    if let Some(t) = q.event_type {
        select.push(" AND type = ").push_bind(t.as_str());
    }
    if let Some(user_id) = &q.user_id {
        select.push(" AND user_id = ").push_bind(user_id.clone());
    }
    if let Some(anonymous_id) = &q.anonymous_id {
        select
            .push(" AND anonymous_id = ")
            .push_bind(anonymous_id.clone());
    }
    if let Some(since) = q.since {
        select.push(" AND timestamp >= ").push_bind(millis(since));
    }
    let (after, direction) = match q.order {
        Order::NewestFirst => (" AND seq < ", " ORDER BY seq DESC"),
        Order::OldestFirst => (" AND seq > ", " ORDER BY seq ASC"),
    };
    if let Some(seq) = q.after_seq {
        select.push(after).push_bind(seq);
    }
    select
        .push(direction)
        .push(" LIMIT ")
        .push_bind(i64::from(q.limit));
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::event).collect()
}

pub(crate) async fn claim_outbox(
    pool: &SqlitePool,
    consumer: &str,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<OutboxEntry>> {
    let claimed = sqlx::query(
        "UPDATE outbox SET leased_until = ?
         WHERE id IN (SELECT id FROM outbox WHERE consumer = ? AND (leased_until IS NULL OR leased_until < ?)
                      ORDER BY id LIMIT ?)
         RETURNING id, event_seqs",
    )
    .bind(millis(lease_until))
    .bind(consumer)
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let mut entries = Vec::with_capacity(claimed.len());
    for row in &claimed {
        let id: i64 = row.try_get("id").map_err(backend)?;
        let seqs_text: String = row.try_get("event_seqs").map_err(backend)?;
        let seqs: Vec<i64> =
            serde_json::from_str(&seqs_text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        entries.push(OutboxEntry {
            id,
            events: events_by_seq(pool, &seqs).await?,
        });
    }
    entries.sort_by_key(|e| e.id);
    Ok(entries)
}

pub(crate) async fn events_by_seq(
    pool: &SqlitePool,
    seqs: &[i64],
) -> StoreResult<Vec<StoredEvent>> {
    let mut events = Vec::with_capacity(seqs.len());
    for chunk in seqs.chunks(ROWS_PER_STATEMENT) {
        let mut select: QueryBuilder<Sqlite> =
            QueryBuilder::new("SELECT * FROM events WHERE seq IN (");
        let mut list = select.separated(", ");
        for seq in chunk {
            list.push_bind(*seq);
        }
        select.push(") ORDER BY seq");
        let found = select.build().fetch_all(pool).await.map_err(backend)?;
        for row in &found {
            events.push(rows::event(row)?);
        }
    }
    Ok(events)
}

pub(crate) async fn complete_outbox(pool: &SqlitePool, ids: &[i64]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut delete: QueryBuilder<Sqlite> = QueryBuilder::new("DELETE FROM outbox WHERE id IN (");
    let mut list = delete.separated(", ");
    for id in ids {
        list.push_bind(*id);
    }
    delete.push(")");
    delete.build().execute(pool).await.map_err(backend)?;
    Ok(())
}
