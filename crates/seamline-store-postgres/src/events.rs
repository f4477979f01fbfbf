//! The event log and its outbox.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use seamline_core::WorkspaceId;
use seamline_store::*;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::{backend, rows};

/// Rows per INSERT statement. UNNEST takes one array per column, so the
/// statement has 11 parameters whatever the chunk size; the limit only bounds
/// the size of one message to the server.
const ROWS_PER_STATEMENT: usize = 5000;

/// How often an append that lost a deadlock to a concurrent append is tried
/// in all. Only appends of several chunks can deadlock (see [`INSERT_EVENTS`]).
const APPEND_ATTEMPTS: u32 = 4;

/// Pause before retrying, times the attempt number: lets the winner commit.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// One statement inserts a whole chunk; rows whose `(workspace, messageId)`
/// is already stored, or repeated earlier in the chunk, are skipped.
///
/// Seqs are drawn in input order, so the log keeps the order of the input;
/// rows are then inserted in key order, so concurrent appends wait on each
/// other's keys in one global order and cannot deadlock (within a chunk).
const INSERT_EVENTS: &str = "\
WITH input AS MATERIALIZED ( \
    SELECT nextval('events_seq_seq') AS seq, e.* \
    FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[]) \
         WITH ORDINALITY AS e(id, workspace_id, message_id, type, event_name, user_id, \
                              anonymous_id, timestamp, received_at, enrichment, payload, position) \
    ORDER BY position \
) \
INSERT INTO events (seq, id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
                    timestamp, received_at, enrichment, payload) \
SELECT seq, id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
       timestamp, received_at, enrichment::jsonb, payload::json \
FROM input \
ORDER BY workspace_id, message_id COLLATE \"C\", position \
ON CONFLICT (workspace_id, message_id) DO NOTHING \
RETURNING seq, workspace_id, message_id";

/// A row the append stored: its seq and its dedupe key.
type Inserted = (i64, Uuid, String);

/// What one append wrote.
pub(crate) struct Written {
    /// Per input event: whether it was new.
    pub new: Vec<bool>,
    /// The seqs of the new events, in input order.
    pub seqs: Vec<i64>,
    /// The claimed consumer's outbox entry, if any was new.
    pub outbox_id: Option<i64>,
}

/// Appends; `claim` names a consumer whose entry is leased until the given time.
pub(crate) async fn append(
    pool: &PgPool,
    events: &[NewEvent],
    claim: Option<(&str, DateTime<Utc>)>,
) -> StoreResult<Written> {
    if events.is_empty() {
        return Ok(Written {
            new: Vec::new(),
            seqs: Vec::new(),
            outbox_id: None,
        });
    }
    let chunks = events
        .chunks(ROWS_PER_STATEMENT)
        .map(Columns::new)
        .collect::<StoreResult<Vec<_>>>()?;
    let mut attempt = 1;
    let (inserted, outbox_id) = loop {
        match append_once(pool, &chunks, claim).await {
            Ok(done) => break done,
            Err(error) if attempt < APPEND_ATTEMPTS && is_retryable(&error) => {
                tokio::time::sleep(RETRY_PAUSE * attempt).await;
                attempt += 1;
            }
            Err(error) => return Err(backend(error)),
        }
    };
    let (new, seqs) = match_inserted(events, inserted);
    Ok(Written {
        new,
        seqs,
        outbox_id,
    })
}

/// The events and their outbox entries, in one transaction.
async fn append_once(
    pool: &PgPool,
    chunks: &[Columns<'_>],
    claim: Option<(&str, DateTime<Utc>)>,
) -> Result<(Vec<Inserted>, Option<i64>), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = insert_in(&mut tx, chunks, &OUTBOX_CONSUMERS, claim).await?;
    tx.commit().await?;
    Ok(done)
}

/// [`append`] inside the caller's transaction (no retry: a deadlock aborts
/// the caller's whole transaction), without outbox entries.
pub(crate) async fn append_in(
    conn: &mut PgConnection,
    events: &[NewEvent],
) -> StoreResult<Written> {
    let chunks = events
        .chunks(ROWS_PER_STATEMENT)
        .map(Columns::new)
        .collect::<StoreResult<Vec<_>>>()?;
    let (inserted, outbox_id) = insert_in(conn, &chunks, &[], None).await.map_err(backend)?;
    let (new, seqs) = match_inserted(events, inserted);
    Ok(Written {
        new,
        seqs,
        outbox_id,
    })
}

async fn insert_in(
    conn: &mut PgConnection,
    chunks: &[Columns<'_>],
    consumers: &[&str],
    claim: Option<(&str, DateTime<Utc>)>,
) -> Result<(Vec<Inserted>, Option<i64>), sqlx::Error> {
    let mut inserted = Vec::new();
    for chunk in chunks {
        inserted.extend(insert_chunk(&mut *conn, chunk).await?);
    }
    let mut claimed = None;
    if !inserted.is_empty() {
        let mut seqs: Vec<i64> = inserted.iter().map(|(seq, _, _)| *seq).collect();
        seqs.sort_unstable();
        claimed = insert_outbox(&mut *conn, seqs, consumers, claim).await?;
    }
    Ok((inserted, claimed))
}

/// One entry per consumer, in one statement; `claim`'s is leased and its id returned.
pub(crate) async fn insert_outbox(
    conn: &mut PgConnection,
    seqs: Vec<i64>,
    consumers: &[&str],
    claim: Option<(&str, DateTime<Utc>)>,
) -> Result<Option<i64>, sqlx::Error> {
    let (claimed, lease_until) = claim.unzip();
    let ids: Vec<(i64, bool)> = sqlx::query_as(
        "INSERT INTO outbox (consumer, event_seqs, created_at, leased_until) \
         SELECT c, $2, $3, CASE WHEN c = $4 THEN $5::timestamptz END FROM UNNEST($1::text[]) AS c \
         RETURNING id, COALESCE(consumer = $4, false)",
    )
    .bind(consumers)
    .bind(seqs)
    .bind(Utc::now())
    .bind(claimed)
    .bind(lease_until)
    .fetch_all(conn)
    .await?;
    Ok(ids
        .into_iter()
        .find(|(_, is_claimed)| *is_claimed)
        .map(|(id, _)| id))
}

/// A deadlock (or serialization failure) aborts the whole transaction, which
/// is then safe to run again.
fn is_retryable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("40P01" | "40001")),
        _ => false,
    }
}

/// Per input event: was it the one stored, and the seqs of those that were.
/// The first occurrence of a `(workspace, messageId)` in the input claims
/// the stored row.
fn match_inserted(events: &[NewEvent], inserted: Vec<Inserted>) -> (Vec<bool>, Vec<i64>) {
    let mut stored: HashMap<(Uuid, String), i64> = inserted
        .into_iter()
        .map(|(seq, ws, id)| ((ws, id), seq))
        .collect();
    let mut seqs = Vec::with_capacity(stored.len());
    let new = events
        .iter()
        .map(|e| {
            let key = (e.workspace_id.as_uuid(), e.event.message_id.clone());
            stored.remove(&key).map(|seq| seqs.push(seq)).is_some()
        })
        .collect();
    (new, seqs)
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

async fn insert_chunk(
    conn: &mut PgConnection,
    c: &Columns<'_>,
) -> Result<Vec<Inserted>, sqlx::Error> {
    sqlx::query_as(INSERT_EVENTS)
        .bind(&c.ids)
        .bind(&c.workspace_ids)
        .bind(&c.message_ids)
        .bind(&c.types)
        .bind(&c.event_names)
        .bind(&c.user_ids)
        .bind(&c.anonymous_ids)
        .bind(&c.timestamps)
        .bind(&c.received_ats)
        .bind(&c.enrichments)
        .bind(&c.payloads)
        .fetch_all(conn)
        .await
}

/// A chunk of events flattened to one array per column.
struct Columns<'a> {
    ids: Vec<Uuid>,
    workspace_ids: Vec<Uuid>,
    message_ids: Vec<&'a str>,
    types: Vec<&'static str>,
    event_names: Vec<Option<&'a str>>,
    user_ids: Vec<Option<&'a str>>,
    anonymous_ids: Vec<Option<&'a str>>,
    timestamps: Vec<DateTime<Utc>>,
    received_ats: Vec<DateTime<Utc>>,
    enrichments: Vec<String>,
    payloads: Vec<String>,
}

impl<'a> Columns<'a> {
    fn new(chunk: &'a [NewEvent]) -> StoreResult<Self> {
        let mut c = Self::with_capacity(chunk.len());
        for e in chunk {
            c.push(e)?;
        }
        Ok(c)
    }

    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            workspace_ids: Vec::with_capacity(n),
            message_ids: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            event_names: Vec::with_capacity(n),
            user_ids: Vec::with_capacity(n),
            anonymous_ids: Vec::with_capacity(n),
            timestamps: Vec::with_capacity(n),
            received_ats: Vec::with_capacity(n),
            enrichments: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, e: &'a NewEvent) -> StoreResult<()> {
        let event = &e.event;
        self.enrichments
            .push(serde_json::to_string(&event.enrichment).map_err(backend)?);
        self.payloads
            .push(serde_json::to_string(&event.payload).map_err(backend)?);
        self.ids.push(e.id.as_uuid());
        self.workspace_ids.push(e.workspace_id.as_uuid());
        self.message_ids.push(&event.message_id);
        self.types.push(event.event_type.as_str());
        self.event_names.push(event.event_name.as_deref());
        self.user_ids.push(event.user_id.as_deref());
        self.anonymous_ids.push(event.anonymous_id.as_deref());
        self.timestamps.push(event.timestamp);
        self.received_ats.push(event.received_at);
        Ok(())
    }
}

pub(crate) async fn list(
    pool: &PgPool,
    ws: WorkspaceId,
    q: &EventQuery,
) -> StoreResult<Vec<StoredEvent>> {
    let mut select: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT e.* FROM events e WHERE e.workspace_id = ");
    select.push_bind(ws.as_uuid());
    fetch_page(pool, select, q).await
}

/// Adds `q`'s filters, order and page to a query over events aliased `e`
/// (the event list and a profile's timeline share it) and runs it.
pub(crate) async fn fetch_page(
    pool: &PgPool,
    mut select: QueryBuilder<'_, Postgres>,
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
        select.push(" AND e.timestamp >= ").push_bind(since);
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

/// Leases up to `limit` claimable entries. `SKIP LOCKED` lets several relays
/// claim at once without waiting on, or handing out, each other's entries.
pub(crate) async fn claim_outbox(
    pool: &PgPool,
    consumer: &str,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<OutboxEntry>> {
    let mut claimed: Vec<(i64, Vec<i64>)> = sqlx::query_as(
        "UPDATE outbox SET leased_until = $1
         WHERE id IN (SELECT id FROM outbox WHERE consumer = $4 AND (leased_until IS NULL OR leased_until < $2)
                      ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id, event_seqs",
    )
    .bind(lease_until)
    .bind(now)
    .bind(i64::from(limit))
    .bind(consumer)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    claimed.sort_by_key(|(id, _)| *id);
    let seqs: Vec<i64> = claimed
        .iter()
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    let events = events_by_seq(pool, &seqs).await?;
    Ok(group_by_entry(claimed, events))
}

/// Hands each event (in seq order) to the claimed entry that lists its seq.
fn group_by_entry(claimed: Vec<(i64, Vec<i64>)>, events: Vec<StoredEvent>) -> Vec<OutboxEntry> {
    let entry_of: HashMap<i64, usize> = claimed
        .iter()
        .enumerate()
        .flat_map(|(index, (_, seqs))| seqs.iter().map(move |seq| (*seq, index)))
        .collect();
    let mut entries: Vec<OutboxEntry> = claimed
        .into_iter()
        .map(|(id, seqs)| OutboxEntry {
            id,
            events: Vec::with_capacity(seqs.len()),
        })
        .collect();
    for event in events {
        if let Some(entry) = entry_of.get(&event.seq).and_then(|&i| entries.get_mut(i)) {
            entry.events.push(event);
        }
    }
    entries
}

/// The events with these seqs, in seq order.
async fn events_by_seq(pool: &PgPool, seqs: &[i64]) -> StoreResult<Vec<StoredEvent>> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let found = sqlx::query("SELECT * FROM events WHERE seq = ANY($1) ORDER BY seq")
        .bind(seqs)
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    found.iter().map(rows::event).collect()
}

pub(crate) async fn complete_outbox(pool: &PgPool, ids: &[i64]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}
