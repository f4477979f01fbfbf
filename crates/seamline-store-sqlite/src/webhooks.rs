//! Webhook endpoints and their delivery queue. Writes run under the
//! store's writer queue (taken in `lib.rs`); times are epoch milliseconds.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use seamline_core::{ProfileId, WebhookDeliveryId, WebhookId, WorkspaceId};
use seamline_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::rows::{get, time};
use crate::workspace::found;
use crate::{backend, millis};

const DELIVERY_COLUMNS: &str = "seq, id, workspace_id, endpoint_id, event, profile_id, payload,
    status, attempts, next_attempt_at, created_at, updated_at";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn events_text(events: &BTreeSet<WebhookEvent>) -> String {
    serde_json::Value::from(events.iter().map(|e| e.as_str()).collect::<Vec<_>>()).to_string()
}

fn endpoint(row: &SqliteRow) -> StoreResult<WebhookEndpoint> {
    let names: Vec<String> = serde_json::from_str(&get::<String>(row, "events")?)
        .map_err(|e| StoreError::Corrupt(format!("webhook events: {e}")))?;
    let events = names
        .iter()
        .map(|n| WebhookEvent::parse(n).ok_or_else(|| corrupt("webhook event", n)))
        .collect::<StoreResult<_>>()?;
    Ok(WebhookEndpoint {
        id: WebhookId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        url: get(row, "url")?,
        secret: WebhookSecret::new(get(row, "secret")?),
        events,
        active: get(row, "active")?,
        description: get(row, "description")?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

fn delivery(row: &SqliteRow) -> StoreResult<WebhookDelivery> {
    let event: String = get(row, "event")?;
    let status: String = get(row, "status")?;
    let payload: String = get(row, "payload")?;
    Ok(WebhookDelivery {
        id: WebhookDeliveryId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        endpoint_id: WebhookId(get::<Uuid>(row, "endpoint_id")?),
        event: WebhookEvent::parse(&event).ok_or_else(|| corrupt("webhook event", &event))?,
        profile_id: get::<Option<Uuid>>(row, "profile_id")?.map(ProfileId),
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Corrupt(format!("webhook payload: {e}")))?,
        status: DeliveryState::parse(&status).ok_or_else(|| corrupt("delivery status", &status))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: get::<Option<i64>>(row, "next_attempt_at")?
            .map(time)
            .transpose()?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
        seq: get(row, "seq")?,
    })
}

fn attempt(row: &SqliteRow) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        delivery_id: WebhookDeliveryId(get::<Uuid>(row, "delivery_id")?),
        attempted_at: time(get(row, "attempted_at")?)?,
        status_code: get::<Option<i64>>(row, "status_code")?.and_then(|c| u16::try_from(c).ok()),
        duration_ms: u32::try_from(get::<i64>(row, "duration_ms")?).unwrap_or(u32::MAX),
        error: get(row, "error")?,
        response_excerpt: get(row, "response_excerpt")?,
    })
}

pub(crate) async fn create(pool: &SqlitePool, e: &WebhookEndpoint) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints
           (id, workspace_id, url, secret, events, active, description, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(e.id.as_uuid())
    .bind(e.workspace_id.as_uuid())
    .bind(&e.url)
    .bind(e.secret.expose())
    .bind(events_text(&e.events))
    .bind(e.active)
    .bind(&e.description)
    .bind(millis(e.created_at))
    .bind(millis(e.updated_at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn get_one(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: WebhookId,
) -> StoreResult<Option<WebhookEndpoint>> {
    sqlx::query("SELECT * FROM webhook_endpoints WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(endpoint)
        .transpose()
}

pub(crate) async fn list(pool: &SqlitePool, ws: WorkspaceId) -> StoreResult<Vec<WebhookEndpoint>> {
    sqlx::query("SELECT * FROM webhook_endpoints WHERE workspace_id = ? ORDER BY created_at, id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?
        .iter()
        .map(endpoint)
        .collect()
}

pub(crate) async fn update(pool: &SqlitePool, e: &WebhookEndpoint) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = ?, secret = ?, events = ?, active = ?,
           description = ?, updated_at = ?
         WHERE workspace_id = ? AND id = ?",
    )
    .bind(&e.url)
    .bind(e.secret.expose())
    .bind(events_text(&e.events))
    .bind(e.active)
    .bind(&e.description)
    .bind(millis(e.updated_at))
    .bind(e.workspace_id.as_uuid())
    .bind(e.id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "webhook")
}

pub(crate) async fn delete(pool: &SqlitePool, ws: WorkspaceId, id: WebhookId) -> StoreResult<()> {
    // Deliveries and their attempts go with it (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "webhook")
}

pub(crate) async fn enqueue(pool: &SqlitePool, deliveries: &[NewDelivery]) -> StoreResult<u32> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let mut new = 0;
    for d in deliveries {
        // Selected through the endpoint so a delivery lands only in its own workspace.
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, workspace_id, endpoint_id, event, dedupe_key,
               profile_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT ?, workspace_id, id, ?, ?, ?, ?, 'pending', 0, ?, ?, ?
             FROM webhook_endpoints WHERE workspace_id = ? AND id = ?
             ON CONFLICT (endpoint_id, dedupe_key) DO NOTHING",
        )
        .bind(d.id.as_uuid())
        .bind(d.event.as_str())
        .bind(&d.dedupe_key)
        .bind(d.profile_id.map(|p| p.as_uuid()))
        .bind(d.payload.to_string())
        .bind(millis(d.created_at))
        .bind(millis(d.created_at))
        .bind(millis(d.created_at))
        .bind(d.workspace_id.as_uuid())
        .bind(d.endpoint_id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        new += u32::try_from(done.rows_affected()).unwrap_or(0);
    }
    tx.commit().await.map_err(backend)?;
    Ok(new)
}

pub(crate) async fn claim(
    pool: &SqlitePool,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(&format!(
        "UPDATE webhook_deliveries SET leased_until = ?1
         WHERE seq IN (SELECT d.seq FROM webhook_deliveries d
                       JOIN webhook_endpoints e ON e.id = d.endpoint_id
                       WHERE d.next_attempt_at <= ?2 AND e.active
                         AND (d.leased_until IS NULL OR d.leased_until < ?2)
                       ORDER BY d.next_attempt_at, d.seq LIMIT ?3)
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(millis(lease_until))
    .bind(millis(now))
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let delivery = delivery(row)?;
        let target = get_one(pool, delivery.workspace_id, delivery.endpoint_id)
            .await?
            .ok_or(StoreError::NotFound("webhook"))?;
        claimed.push(ClaimedDelivery {
            delivery,
            url: target.url,
            secret: target.secret,
        });
    }
    claimed.sort_by_key(|c| c.delivery.seq);
    Ok(claimed)
}

pub(crate) async fn record_attempt(
    pool: &SqlitePool,
    ws: WorkspaceId,
    a: &DeliveryAttempt,
    next: NextStep,
) -> StoreResult<()> {
    let (status, next_at) = match next {
        NextStep::Succeeded => (DeliveryState::Succeeded, None),
        NextStep::RetryAt(at) => (DeliveryState::Failed, Some(millis(at))),
        NextStep::GiveUp => (DeliveryState::GivenUp, None),
    };
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, status = ?, next_attempt_at = ?,
           leased_until = NULL, updated_at = ?
         WHERE workspace_id = ? AND id = ?",
    )
    .bind(status.as_str())
    .bind(next_at)
    .bind(millis(a.attempted_at))
    .bind(ws.as_uuid())
    .bind(a.delivery_id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "webhook delivery")?;
    sqlx::query(
        "INSERT INTO webhook_attempts (workspace_id, delivery_id, attempted_at, status_code,
           duration_ms, error, response_excerpt)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(ws.as_uuid())
    .bind(a.delivery_id.as_uuid())
    .bind(millis(a.attempted_at))
    .bind(a.status_code.map(i64::from))
    .bind(i64::from(a.duration_ms))
    .bind(&a.error)
    .bind(&a.response_excerpt)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn deliveries(
    pool: &SqlitePool,
    ws: WorkspaceId,
    endpoint: WebhookId,
    query: DeliveryQuery,
) -> StoreResult<Vec<WebhookDelivery>> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE workspace_id = ? AND endpoint_id = ? AND (? IS NULL OR seq < ?)
         ORDER BY seq DESC LIMIT ?"
    ))
    .bind(ws.as_uuid())
    .bind(endpoint.as_uuid())
    .bind(query.before)
    .bind(query.before)
    .bind(i64::from(query.limit))
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(delivery)
    .collect()
}

pub(crate) async fn delivery_by_id(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
) -> StoreResult<Option<WebhookDelivery>> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = ? AND id = ?"
    ))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .as_ref()
    .map(delivery)
    .transpose()
}

pub(crate) async fn attempts(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
) -> StoreResult<Vec<DeliveryAttempt>> {
    sqlx::query(
        "SELECT * FROM webhook_attempts WHERE workspace_id = ? AND delivery_id = ? ORDER BY id",
    )
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(attempt)
    .collect()
}

pub(crate) async fn redeliver(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ?
         WHERE workspace_id = ? AND id = ?",
    )
    .bind(millis(now))
    .bind(millis(now))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "webhook delivery")
}

/// Erasure: a person's deliveries (their words are in the payloads) and,
/// by cascade, the attempts. Binds `(ws, profile)` like the other scrubs.
pub(crate) fn erase_statements(person: &str) -> [String; 1] {
    [format!(
        "DELETE FROM webhook_deliveries WHERE workspace_id = ?1 AND profile_id IN {person}"
    )]
}
