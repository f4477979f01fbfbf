//! The raw insert limit: the same rows, batched into 1,000-row transactions,
//! into a plain `raw_events` table (same columns as `events`, no secondary
//! index, no dedupe, no outbox) through the store's own sqlx pool.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgPool, QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use super::workload::Row;

/// Rows per transaction (and per statement).
pub const ROWS_PER_TRANSACTION: usize = 1000;

const SQLITE_TABLE: &str = "CREATE TABLE raw_events (
    seq INTEGER PRIMARY KEY, id BLOB NOT NULL, workspace_id BLOB NOT NULL,
    message_id TEXT NOT NULL, type TEXT NOT NULL, event_name TEXT, user_id TEXT,
    anonymous_id TEXT, timestamp INTEGER NOT NULL, received_at INTEGER NOT NULL,
    enrichment TEXT NOT NULL, payload TEXT NOT NULL)";

const PG_TABLE: &str = "CREATE TABLE raw_events (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id uuid NOT NULL,
    workspace_id uuid NOT NULL, message_id text NOT NULL, type text NOT NULL,
    event_name text, user_id text, anonymous_id text, timestamp timestamptz NOT NULL,
    received_at timestamptz NOT NULL, enrichment jsonb NOT NULL, payload json NOT NULL)";

/// Same casts as the store's append, so the server does the same work per row.
const PG_INSERT: &str = "\
INSERT INTO raw_events (id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
                        timestamp, received_at, enrichment, payload) \
SELECT id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
       timestamp, received_at, enrichment::jsonb, payload::json \
FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
            $7::text[], $8::timestamptz[], $9::timestamptz[], $10::text[], $11::text[]) \
     AS e(id, workspace_id, message_id, type, event_name, user_id, anonymous_id, \
          timestamp, received_at, enrichment, payload)";

/// Inserts every row, one multi-row INSERT per transaction; returns the time taken.
pub async fn sqlite(pool: &SqlitePool, rows: &[Row]) -> anyhow::Result<Duration> {
    sqlx::query(SQLITE_TABLE).execute(pool).await?;
    let started = Instant::now();
    for chunk in rows.chunks(ROWS_PER_TRANSACTION) {
        let mut tx = pool.begin().await?;
        sqlite_insert(chunk).build().execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(started.elapsed())
}

fn sqlite_insert(chunk: &[Row]) -> QueryBuilder<'_, Sqlite> {
    let mut insert = QueryBuilder::new(
        "INSERT INTO raw_events (id, workspace_id, message_id, type, event_name, user_id, \
         anonymous_id, timestamp, received_at, enrichment, payload) ",
    );
    insert.push_values(chunk, |mut b, row| {
        b.push_bind(row.id)
            .push_bind(row.workspace_id)
            .push_bind(row.message_id.as_str())
            .push_bind(row.event_type)
            .push_bind(row.event_name.as_deref())
            .push_bind(row.user_id.as_deref())
            .push_bind(row.anonymous_id.as_deref())
            .push_bind(row.timestamp.timestamp_millis())
            .push_bind(row.received_at.timestamp_millis())
            .push_bind(row.enrichment.as_str())
            .push_bind(row.payload.as_str());
    });
    insert
}

/// Inserts every row with `connections` concurrent writers, one UNNEST
/// INSERT per transaction; returns the time taken.
pub async fn postgres(
    pool: &PgPool,
    rows: Arc<Vec<Row>>,
    connections: usize,
) -> anyhow::Result<Duration> {
    sqlx::query(PG_TABLE).execute(pool).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..connections.max(1))
        .map(|_| tokio::spawn(pg_writer(pool.clone(), rows.clone(), next.clone())))
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(started.elapsed())
}

/// Takes the next chunk until none is left.
async fn pg_writer(
    pool: PgPool,
    rows: Arc<Vec<Row>>,
    next: Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    loop {
        let start = next.fetch_add(ROWS_PER_TRANSACTION, Ordering::Relaxed);
        let Some(chunk) = rows.get(start..rows.len().min(start + ROWS_PER_TRANSACTION)) else {
            return Ok(());
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let mut tx = pool.begin().await?;
        pg_insert(&mut tx, chunk).await?;
        tx.commit().await?;
    }
}

async fn pg_insert(conn: &mut sqlx::PgConnection, chunk: &[Row]) -> anyhow::Result<()> {
    let strs = |f: fn(&Row) -> &str| chunk.iter().map(f).collect::<Vec<&str>>();
    let opts = |f: fn(&Row) -> Option<&str>| chunk.iter().map(f).collect::<Vec<_>>();
    let times = |f: fn(&Row) -> DateTime<Utc>| chunk.iter().map(f).collect::<Vec<_>>();
    let uuids = |f: fn(&Row) -> Uuid| chunk.iter().map(f).collect::<Vec<_>>();
    sqlx::query(PG_INSERT)
        .bind(uuids(|r| r.id))
        .bind(uuids(|r| r.workspace_id))
        .bind(strs(|r| &r.message_id))
        .bind(strs(|r| r.event_type))
        .bind(opts(|r| r.event_name.as_deref()))
        .bind(opts(|r| r.user_id.as_deref()))
        .bind(opts(|r| r.anonymous_id.as_deref()))
        .bind(times(|r| r.timestamp))
        .bind(times(|r| r.received_at))
        .bind(strs(|r| &r.enrichment))
        .bind(strs(|r| &r.payload))
        .execute(conn)
        .await?;
    Ok(())
}
