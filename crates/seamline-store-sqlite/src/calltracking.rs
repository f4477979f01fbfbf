//! Call tracking. A reservation runs under the store's writer queue and
//! `BEGIN IMMEDIATE`: SQLite's one writer is the pool's lock. Times are
//! epoch milliseconds; sources are JSON text.

use chrono::{DateTime, TimeDelta, Utc};
use seamline_core::calltracking::{
    Decision, NumberKind, Pool, PoolNumber, Reservation, SourceBinding,
};
use seamline_core::tracking::Attribution;
use seamline_core::WorkspaceId;
use seamline_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::rows::{get, time};
use crate::workspace::found;
use crate::{backend, conflict_or_backend, millis};

fn corrupt(what: &'static str) -> impl Fn(serde_json::Error) -> StoreError {
    move |e| StoreError::Corrupt(format!("{what}: {e}"))
}

fn attribution(text: &str, what: &'static str) -> StoreResult<Attribution> {
    serde_json::from_str(text).map_err(corrupt(what))
}

fn kind(row: &SqliteRow) -> StoreResult<NumberKind> {
    let kind: String = get(row, "kind")?;
    NumberKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("number kind {kind:?}")))
}

fn number(row: &SqliteRow) -> StoreResult<TrackingNumber> {
    let source: Option<String> = get(row, "source")?;
    Ok(TrackingNumber {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        number: get(row, "number")?,
        kind: kind(row)?,
        source: source
            .map(|s| serde_json::from_str(&s).map_err(corrupt("number source")))
            .transpose()?,
        created_at: time(get(row, "created_at")?)?,
    })
}

fn reservation(row: &SqliteRow) -> StoreResult<Reservation> {
    let source: String = get(row, "source")?;
    Ok(Reservation {
        id: get(row, "id")?,
        number_id: get(row, "number_id")?,
        number: get(row, "number")?,
        anonymous_id: get(row, "anonymous_id")?,
        session_id: get(row, "session_id")?,
        source: attribution(&source, "reservation source")?,
        held_from: time(get(row, "held_from")?)?,
        last_seen: time(get(row, "last_seen")?)?,
        expires_at: time(get(row, "expires_at")?)?,
    })
}

fn call(row: &SqliteRow) -> StoreResult<TrackedCall> {
    let source: String = get(row, "source")?;
    Ok(TrackedCall {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        call_id: get(row, "call_id")?,
        number: get(row, "number")?,
        kind: kind(row)?,
        reservation_id: get(row, "reservation_id")?,
        anonymous_id: get(row, "anonymous_id")?,
        source: attribution(&source, "call source")?,
        source_label: get(row, "source_label")?,
        started_at: time(get(row, "started_at")?)?,
    })
}

/// A source as JSON text (these types always serialise).
fn source_text(source: &Attribution) -> String {
    serde_json::to_string(source).unwrap_or_else(|_| "{}".into())
}

fn binding_text(binding: &SourceBinding) -> String {
    serde_json::to_string(binding).unwrap_or_else(|_| "{}".into())
}

/// Erasure, run before the person's identifiers go: their visits lose the
/// anonymous id, session and source; reservations and calls stay for the
/// counts. Binds `(ws, profile)` like the other scrubs.
pub(crate) fn erase_statements(person: &str) -> [String; 2] {
    let visits = format!(
        "(SELECT value FROM profile_identifiers
          WHERE workspace_id = ?1 AND kind = 'anonymous_id' AND profile_id IN {person})"
    );
    [
        format!(
            "UPDATE call_tracking_reservations
             SET anonymous_id = '[erased]', session_id = NULL, source = '{{}}'
             WHERE workspace_id = ?1 AND anonymous_id IN {visits}"
        ),
        format!(
            "UPDATE call_tracking_calls SET anonymous_id = NULL, source = '{{}}'
             WHERE workspace_id = ?1 AND anonymous_id IN {visits}"
        ),
    ]
}

pub(crate) async fn add(pool: &SqlitePool, n: &TrackingNumber) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO call_tracking_numbers (id, workspace_id, number, kind, source, created_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(n.id)
    .bind(n.workspace_id.as_uuid())
    .bind(&n.number)
    .bind(n.kind.as_str())
    .bind(n.source.as_ref().map(binding_text))
    .bind(millis(n.created_at))
    .execute(pool)
    .await
    .map_err(conflict_or_backend("tracking number"))?;
    Ok(())
}

pub(crate) async fn list(pool: &SqlitePool, ws: WorkspaceId) -> StoreResult<Vec<TrackingNumber>> {
    sqlx::query(
        "SELECT * FROM call_tracking_numbers WHERE workspace_id = ?
         ORDER BY kind = 'static', number",
    )
    .bind(ws.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(number)
    .collect()
}

pub(crate) async fn delete(pool: &SqlitePool, ws: WorkspaceId, id: Uuid) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM call_tracking_numbers WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id)
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "tracking number")
}

async fn active(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    now: DateTime<Utc>,
) -> StoreResult<Vec<Reservation>> {
    sqlx::query(
        "SELECT * FROM call_tracking_reservations WHERE workspace_id = ? AND expires_at > ?
         ORDER BY held_from, id",
    )
    .bind(ws.as_uuid())
    .bind(millis(now))
    .fetch_all(conn)
    .await
    .map_err(backend)?
    .iter()
    .map(reservation)
    .collect()
}

async fn pool_of(
    conn: &mut SqliteConnection,
    ws: WorkspaceId,
    now: DateTime<Utc>,
) -> StoreResult<Pool> {
    let rows = sqlx::query(
        "SELECT n.id, n.number,
           (SELECT MAX(r.expires_at) FROM call_tracking_reservations r
            WHERE r.number_id = n.id) AS last_expiry
         FROM call_tracking_numbers n WHERE n.workspace_id = ? AND n.kind = 'pool'",
    )
    .bind(ws.as_uuid())
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    let numbers = rows
        .iter()
        .map(|row| {
            Ok(PoolNumber {
                id: get(row, "id")?,
                number: get(row, "number")?,
                last_expiry: get::<Option<i64>>(row, "last_expiry")?
                    .map(time)
                    .transpose()?,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Pool {
        numbers,
        active: active(conn, ws, now).await?,
    })
}

async fn by_id(conn: &mut SqliteConnection, ws: WorkspaceId, id: Uuid) -> StoreResult<Reservation> {
    let row =
        sqlx::query("SELECT * FROM call_tracking_reservations WHERE workspace_id = ? AND id = ?")
            .bind(ws.as_uuid())
            .bind(id)
            .fetch_one(conn)
            .await
            .map_err(backend)?;
    reservation(&row)
}

pub(crate) async fn reserve(
    pool: &SqlitePool,
    ws: WorkspaceId,
    request: &ReservationRequest,
    decide: Decide<'_>,
) -> StoreResult<Reserved> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let state = pool_of(&mut tx, ws, request.now).await?;
    let now = millis(request.now);
    let reserved = match decide(&state) {
        Decision::Extend { reservation, until } => {
            sqlx::query(
                "UPDATE call_tracking_reservations SET last_seen = ?, expires_at = ?
                 WHERE workspace_id = ? AND id = ?",
            )
            .bind(now)
            .bind(millis(until))
            .bind(ws.as_uuid())
            .bind(reservation)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            Reserved::Held(Box::new(by_id(&mut tx, ws, reservation).await?))
        }
        Decision::Take { number, until } => {
            let called = state
                .numbers
                .iter()
                .find(|n| n.id == number)
                .ok_or(StoreError::NotFound("pool number"))?;
            sqlx::query(
                "INSERT INTO call_tracking_reservations (id, workspace_id, number_id, number,
                   anonymous_id, session_id, source, held_from, last_seen, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(request.id)
            .bind(ws.as_uuid())
            .bind(number)
            .bind(&called.number)
            .bind(&request.anonymous_id)
            .bind(&request.session_id)
            .bind(source_text(&request.source))
            .bind(now)
            .bind(now)
            .bind(millis(until))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            Reserved::Held(Box::new(by_id(&mut tx, ws, request.id).await?))
        }
        Decision::Miss => {
            sqlx::query(
                "INSERT INTO call_tracking_misses (workspace_id, day, count) VALUES (?, ?, 1)
                 ON CONFLICT (workspace_id, day) DO UPDATE SET count = count + 1",
            )
            .bind(ws.as_uuid())
            .bind(request.now.format("%Y-%m-%d").to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            Reserved::Missed
        }
    };
    tx.commit().await.map_err(backend)?;
    Ok(reserved)
}

pub(crate) async fn around(
    pool: &SqlitePool,
    ws: WorkspaceId,
    number: &str,
    at: DateTime<Utc>,
    margin: TimeDelta,
) -> StoreResult<Vec<Reservation>> {
    sqlx::query(
        "SELECT * FROM call_tracking_reservations
         WHERE workspace_id = ? AND number = ? AND held_from <= ? AND expires_at > ?
         ORDER BY held_from, id",
    )
    .bind(ws.as_uuid())
    .bind(number)
    .bind(millis(at + margin))
    .bind(millis(at - margin))
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(reservation)
    .collect()
}

pub(crate) async fn record_call(pool: &SqlitePool, c: &TrackedCall) -> StoreResult<TrackedCall> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query(
        "INSERT INTO call_tracking_calls (id, workspace_id, call_id, number, kind,
           reservation_id, anonymous_id, source, source_label, started_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (workspace_id, call_id) DO NOTHING",
    )
    .bind(c.id)
    .bind(c.workspace_id.as_uuid())
    .bind(&c.call_id)
    .bind(&c.number)
    .bind(c.kind.as_str())
    .bind(c.reservation_id)
    .bind(&c.anonymous_id)
    .bind(source_text(&c.source))
    .bind(&c.source_label)
    .bind(millis(c.started_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let row =
        sqlx::query("SELECT * FROM call_tracking_calls WHERE workspace_id = ? AND call_id = ?")
            .bind(c.workspace_id.as_uuid())
            .bind(&c.call_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    call(&row)
}

pub(crate) async fn stats(
    pool: &SqlitePool,
    ws: WorkspaceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<CallTrackingStats> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT source_label, COUNT(*) AS calls FROM call_tracking_calls
         WHERE workspace_id = ? AND started_at >= ? AND started_at < ?
         GROUP BY source_label ORDER BY calls DESC, source_label",
    )
    .bind(ws.as_uuid())
    .bind(millis(from))
    .bind(millis(to))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let misses: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(count), 0) FROM call_tracking_misses
         WHERE workspace_id = ? AND day >= ? AND day <= ?",
    )
    .bind(ws.as_uuid())
    .bind(from.format("%Y-%m-%d").to_string())
    .bind(to.format("%Y-%m-%d").to_string())
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(CallTrackingStats {
        calls_by_source: rows
            .into_iter()
            .map(|(label, n)| (label, u64::try_from(n).unwrap_or(0)))
            .collect(),
        misses: u64::try_from(misses).unwrap_or(0),
    })
}

#[async_trait::async_trait]
impl CallTrackingStore for crate::SqliteStore {
    async fn add_tracking_number(&self, number: &TrackingNumber) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        add(&self.pool, number).await
    }

    async fn tracking_numbers(&self, workspace: WorkspaceId) -> StoreResult<Vec<TrackingNumber>> {
        list(&self.pool, workspace).await
    }

    async fn delete_tracking_number(&self, workspace: WorkspaceId, id: Uuid) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        delete(&self.pool, workspace, id).await
    }

    async fn reserve_tracking_number(
        &self,
        workspace: WorkspaceId,
        request: &ReservationRequest,
        decide: Decide<'_>,
    ) -> StoreResult<Reserved> {
        let _turn = self.writer.lock().await;
        reserve(&self.pool, workspace, request, decide).await
    }

    async fn active_reservations(
        &self,
        workspace: WorkspaceId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<Reservation>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        active(&mut conn, workspace, now).await
    }

    async fn reservations_around(
        &self,
        workspace: WorkspaceId,
        number: &str,
        at: DateTime<Utc>,
        margin: TimeDelta,
    ) -> StoreResult<Vec<Reservation>> {
        around(&self.pool, workspace, number, at, margin).await
    }

    async fn record_tracked_call(&self, call: &TrackedCall) -> StoreResult<TrackedCall> {
        let _turn = self.writer.lock().await;
        record_call(&self.pool, call).await
    }

    async fn call_tracking_stats(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<CallTrackingStats> {
        stats(&self.pool, workspace, from, to).await
    }
}
