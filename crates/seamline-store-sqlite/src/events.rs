//! The event log and its outbox.

use chrono::{DateTime, Utc};
use seamline_core::WorkspaceId;
use seamline_store::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::{backend, millis, rows};

/// Rows per INSERT statement: 12 parameters each stays well under SQLite's
/// 32,766-parameter limit, and full chunks reuse one cached statement.
const ROWS_PER_STATEMENT: usize = 1000;

/// What one append wrote.
#[derive(Default)]
pub(crate) struct Written {
    /// Per input event: whether it was new.
    pub new: Vec<bool>,
    /// The seqs of the new events, in input order.
    pub seqs: Vec<i64>,
    /// The claimed consumer's outbox entry, if any was new.
    pub outbox_id: Option<i64>,
}

/// Appends in one transaction that holds the write lock from its start, so
/// the seqs it numbers rows with are its own: input `i` is offered seq
/// `first + i` and keeps it if stored, leaving a gap if it was a duplicate.
/// Knowing the seqs up front spares a row back from SQLite per event.
/// `claim` names a consumer whose entry is leased until the given time.
pub(crate) async fn append(
    pool: &SqlitePool,
    events: &[NewEvent],
    claim: Option<(&str, DateTime<Utc>)>,
) -> StoreResult<Written> {
    if events.is_empty() {
        return Ok(Written::default());
    }
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let written = append_in(&mut tx, events, &OUTBOX_CONSUMERS, claim).await?;
    tx.commit().await.map_err(backend)?;
    Ok(written)
}

/// [`append`] inside the caller's write transaction, with outbox entries
/// for `consumers` only.
pub(crate) async fn append_in(
    conn: &mut SqliteConnection,
    events: &[NewEvent],
    consumers: &[&str],
    claim: Option<(&str, DateTime<Utc>)>,
) -> StoreResult<Written> {
    let mut written = Written {
        new: Vec::with_capacity(events.len()),
        seqs: Vec::with_capacity(events.len()),
        outbox_id: None,
    };
    let mut next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM events")
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let stored = insert_chunk(&mut *conn, chunk, next).await?;
        for (seq, is_new) in (next..).zip(stored) {
            if is_new {
                written.seqs.push(seq);
            }
            written.new.push(is_new);
        }
        next += chunk.len() as i64;
    }
    if !written.seqs.is_empty() {
        written.outbox_id = insert_outbox(&mut *conn, &written.seqs, consumers, claim).await?;
    }
    Ok(written)
}

/// One entry per consumer; `claim`'s is leased and its id returned.
pub(crate) async fn insert_outbox(
    conn: &mut SqliteConnection,
    seqs: &[i64],
    consumers: &[&str],
    claim: Option<(&str, DateTime<Utc>)>,
) -> StoreResult<Option<i64>> {
    let seqs = serde_json::to_string(seqs).map_err(backend)?;
    let mut claimed = None;
    for &consumer in consumers {
        let lease = claim
            .filter(|(c, _)| *c == consumer)
            .map(|(_, until)| millis(until));
        let done = sqlx::query(
            "INSERT INTO outbox (consumer, event_seqs, created_at, leased_until) VALUES (?, ?, ?, ?)",
        )
        .bind(consumer)
        .bind(&seqs)
        .bind(millis(Utc::now()))
        .bind(lease)
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        if lease.is_some() {
            claimed = Some(done.last_insert_rowid());
        }
    }
    Ok(claimed)
}

/// The append's outbox entry as the relay would read it back: the new
/// events, moved out of the input, in the precision this store keeps.
pub(crate) fn entry(written: &Written, events: Vec<NewEvent>) -> StoreResult<Option<OutboxEntry>> {
    let Some(id) = written.outbox_id else {
        return Ok(None);
    };
    let new_events = events
        .into_iter()
        .zip(&written.new)
        .filter_map(|(event, is_new)| is_new.then_some(event));
    let stored = new_events
        .zip(&written.seqs)
        .map(|(event, seq)| rows::stored(event, *seq))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Some(OutboxEntry { id, events: stored }))
}

/// Inserts a chunk numbered from `first`; per row, whether it was stored.
/// Rows whose `(workspace, messageId)` is already stored, or repeated
/// earlier in the chunk, are skipped.
async fn insert_chunk(
    conn: &mut SqliteConnection,
    chunk: &[NewEvent],
    first: i64,
) -> StoreResult<Vec<bool>> {
    let mut rows = Vec::with_capacity(chunk.len());
    for e in chunk {
        rows.push(EncodedEvent::new(e)?);
    }
    let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
        "INSERT INTO events (seq, id, workspace_id, message_id, type, event_name, user_id, \
         anonymous_id, timestamp, received_at, enrichment, payload) ",
    );
    let mut seq = first;
    insert.push_values(rows, |mut b, row| {
        b.push_bind(seq)
            .push_bind(row.id)
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
        seq += 1;
    });
    insert.push(" ON CONFLICT (workspace_id, message_id) DO NOTHING");
    let done = insert.build().execute(&mut *conn).await.map_err(backend)?;
    if done.rows_affected() == chunk.len() as u64 {
        return Ok(vec![true; chunk.len()]);
    }
    stored_seqs(conn, first, chunk.len()).await
}

/// Which of the seqs `first..first + len` a row holds: the rare path, taken
/// only when a chunk had duplicates.
async fn stored_seqs(
    conn: &mut SqliteConnection,
    first: i64,
    len: usize,
) -> StoreResult<Vec<bool>> {
    let last = first + len as i64 - 1;
    let found: Vec<i64> = sqlx::query_scalar("SELECT seq FROM events WHERE seq BETWEEN ? AND ?")
        .bind(first)
        .bind(last)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    let mut stored = vec![false; len];
    for seq in found {
        if let Some(flag) = usize::try_from(seq - first)
            .ok()
            .and_then(|i| stored.get_mut(i))
        {
            *flag = true;
        }
    }
    Ok(stored)
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
        QueryBuilder::new("SELECT e.* FROM events e WHERE e.workspace_id = ");
    select.push_bind(ws.as_uuid());
    fetch_page(pool, select, q).await
}

/// Adds `q`'s filters, order and page to a query over events aliased `e`
/// (the event list and a profile's timeline share it) and runs it.
pub(crate) async fn fetch_page(
    pool: &SqlitePool,
    mut select: QueryBuilder<'_, Sqlite>,
    q: &EventQuery,
) -> StoreResult<Vec<StoredEvent>> {
    if let Some(t) = q.event_type {
        select.push(" AND e.type = ").push_bind(t.as_str());
    }
    if let Some(user_id) = &q.user_id {
        select.push(" AND e.user_id = ").push_bind(user_id.clone());
    }
    if let Some(anonymous_id) = &q.anonymous_id {
        select
            .push(" AND e.anonymous_id = ")
            .push_bind(anonymous_id.clone());
    }
    if let Some(since) = q.since {
        select.push(" AND e.timestamp >= ").push_bind(millis(since));
    }
    let (after, direction) = match q.order {
        Order::NewestFirst => (" AND e.seq < ", " ORDER BY e.seq DESC"),
        Order::OldestFirst => (" AND e.seq > ", " ORDER BY e.seq ASC"),
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

/// Leases up to `limit` of `consumer`'s entries whose lease ran out: the
/// write, to run in the writer's turn. Their events are read after it
/// ([`leased_entries`]): the log never changes, so that needs no turn.
pub(crate) async fn lease_outbox(
    pool: &SqlitePool,
    consumer: &str,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<(i64, Vec<i64>)>> {
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
    let mut leased = Vec::with_capacity(claimed.len());
    for row in &claimed {
        let id: i64 = row.try_get("id").map_err(backend)?;
        let seqs_text: String = row.try_get("event_seqs").map_err(backend)?;
        let seqs: Vec<i64> =
            serde_json::from_str(&seqs_text).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        leased.push((id, seqs));
    }
    Ok(leased)
}

/// The leased entries with their events, in entry order.
pub(crate) async fn leased_entries(
    pool: &SqlitePool,
    leased: Vec<(i64, Vec<i64>)>,
) -> StoreResult<Vec<OutboxEntry>> {
    let mut entries = Vec::with_capacity(leased.len());
    for (id, seqs) in leased {
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
