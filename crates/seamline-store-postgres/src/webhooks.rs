//! Webhook endpoints and their delivery queue. Claims lock with
//! `FOR UPDATE SKIP LOCKED`, so senders on several instances share the
//! queue without waiting for each other.

use chrono::{DateTime, Utc};
use seamline_core::{ProfileId, WebhookDeliveryId, WebhookId, WorkspaceId};
use seamline_store::*;
use sqlx::postgres::PgRow;
use sqlx::PgPool;
use uuid::Uuid;

use crate::backend;
use crate::rows::{get, json};
use crate::workspace::found;

const DELIVERY_COLUMNS: &str = "seq, id, workspace_id, endpoint_id, event, profile_id, payload,
    status, attempts, next_attempt_at, created_at, updated_at";

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn event_names(endpoint: &WebhookEndpoint) -> Vec<&'static str> {
    endpoint.events.iter().map(|e| e.as_str()).collect()
}

fn endpoint(row: &PgRow) -> StoreResult<WebhookEndpoint> {
    let names: Vec<String> = get(row, "events")?;
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
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn delivery(row: &PgRow) -> StoreResult<WebhookDelivery> {
    let event: String = get(row, "event")?;
    let status: String = get(row, "status")?;
    Ok(WebhookDelivery {
        id: WebhookDeliveryId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        endpoint_id: WebhookId(get::<Uuid>(row, "endpoint_id")?),
        event: WebhookEvent::parse(&event).ok_or_else(|| corrupt("webhook event", &event))?,
        profile_id: get::<Option<Uuid>>(row, "profile_id")?.map(ProfileId),
        payload: json(row, "payload")?,
        status: DeliveryState::parse(&status).ok_or_else(|| corrupt("delivery status", &status))?,
        attempts: u32::try_from(get::<i32>(row, "attempts")?).unwrap_or(0),
        next_attempt_at: get(row, "next_attempt_at")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        seq: get(row, "seq")?,
    })
}

fn attempt(row: &PgRow) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        delivery_id: WebhookDeliveryId(get::<Uuid>(row, "delivery_id")?),
        attempted_at: get(row, "attempted_at")?,
        status_code: get::<Option<i32>>(row, "status_code")?.and_then(|c| u16::try_from(c).ok()),
        duration_ms: u32::try_from(get::<i32>(row, "duration_ms")?).unwrap_or(0),
        error: get(row, "error")?,
        response_excerpt: get(row, "response_excerpt")?,
    })
}

pub(crate) async fn create(pool: &PgPool, e: &WebhookEndpoint) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_endpoints
           (id, workspace_id, url, secret, events, active, description, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(e.id.as_uuid())
    .bind(e.workspace_id.as_uuid())
    .bind(&e.url)
    .bind(e.secret.expose())
    .bind(event_names(e))
    .bind(e.active)
    .bind(&e.description)
    .bind(e.created_at)
    .bind(e.updated_at)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn get_one(
    pool: &PgPool,
    ws: WorkspaceId,
    id: WebhookId,
) -> StoreResult<Option<WebhookEndpoint>> {
    sqlx::query("SELECT * FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(endpoint)
        .transpose()
}

pub(crate) async fn list(pool: &PgPool, ws: WorkspaceId) -> StoreResult<Vec<WebhookEndpoint>> {
    sqlx::query("SELECT * FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY created_at, id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?
        .iter()
        .map(endpoint)
        .collect()
}

pub(crate) async fn update(pool: &PgPool, e: &WebhookEndpoint) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_endpoints SET url = $1, secret = $2, events = $3, active = $4,
           description = $5, updated_at = $6
         WHERE workspace_id = $7 AND id = $8",
    )
    .bind(&e.url)
    .bind(e.secret.expose())
    .bind(event_names(e))
    .bind(e.active)
    .bind(&e.description)
    .bind(e.updated_at)
    .bind(e.workspace_id.as_uuid())
    .bind(e.id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "webhook")
}

pub(crate) async fn delete(pool: &PgPool, ws: WorkspaceId, id: WebhookId) -> StoreResult<()> {
    // Deliveries and their attempts go with it (ON DELETE CASCADE).
    let done = sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "webhook")
}

pub(crate) async fn enqueue(pool: &PgPool, deliveries: &[NewDelivery]) -> StoreResult<u32> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let mut new = 0;
    for d in deliveries {
        // Selected through the endpoint so a delivery lands only in its own workspace.
        let done = sqlx::query(
            "INSERT INTO webhook_deliveries (id, workspace_id, endpoint_id, event, dedupe_key,
               profile_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
             SELECT $1, workspace_id, id, $2, $3, $4, $5, 'pending', 0, $6, $6, $6
             FROM webhook_endpoints WHERE workspace_id = $7 AND id = $8
             ON CONFLICT (endpoint_id, dedupe_key) DO NOTHING",
        )
        .bind(d.id.as_uuid())
        .bind(d.event.as_str())
        .bind(&d.dedupe_key)
        .bind(d.profile_id.map(|p| p.as_uuid()))
        .bind(&d.payload)
        .bind(d.created_at)
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
    pool: &PgPool,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let rows = sqlx::query(&format!(
        "UPDATE webhook_deliveries SET leased_until = $1
         WHERE seq IN (SELECT d.seq FROM webhook_deliveries d
                       JOIN webhook_endpoints e ON e.id = d.endpoint_id
                       WHERE d.next_attempt_at <= $2 AND e.active
                         AND (d.leased_until IS NULL OR d.leased_until < $2)
                       ORDER BY d.next_attempt_at, d.seq LIMIT $3
                       FOR UPDATE OF d SKIP LOCKED)
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(lease_until)
    .bind(now)
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
    pool: &PgPool,
    ws: WorkspaceId,
    a: &DeliveryAttempt,
    next: NextStep,
) -> StoreResult<()> {
    let (status, next_at) = match next {
        NextStep::Succeeded => (DeliveryState::Succeeded, None),
        NextStep::RetryAt(at) => (DeliveryState::Failed, Some(at)),
        NextStep::GiveUp => (DeliveryState::GivenUp, None),
    };
    let mut tx = pool.begin().await.map_err(backend)?;
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET attempts = attempts + 1, status = $1, next_attempt_at = $2,
           leased_until = NULL, updated_at = $3
         WHERE workspace_id = $4 AND id = $5",
    )
    .bind(status.as_str())
    .bind(next_at)
    .bind(a.attempted_at)
    .bind(ws.as_uuid())
    .bind(a.delivery_id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "webhook delivery")?;
    sqlx::query(
        "INSERT INTO webhook_attempts (workspace_id, delivery_id, attempted_at, status_code,
           duration_ms, error, response_excerpt)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(ws.as_uuid())
    .bind(a.delivery_id.as_uuid())
    .bind(a.attempted_at)
    .bind(a.status_code.map(i32::from))
    .bind(i32::try_from(a.duration_ms).unwrap_or(i32::MAX))
    .bind(&a.error)
    .bind(&a.response_excerpt)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn deliveries(
    pool: &PgPool,
    ws: WorkspaceId,
    endpoint: WebhookId,
    query: DeliveryQuery,
) -> StoreResult<Vec<WebhookDelivery>> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
         WHERE workspace_id = $1 AND endpoint_id = $2 AND ($3::BIGINT IS NULL OR seq < $3)
         ORDER BY seq DESC LIMIT $4"
    ))
    .bind(ws.as_uuid())
    .bind(endpoint.as_uuid())
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
) -> StoreResult<Option<WebhookDelivery>> {
    sqlx::query(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE workspace_id = $1 AND id = $2"
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
) -> StoreResult<Vec<DeliveryAttempt>> {
    sqlx::query(
        "SELECT * FROM webhook_attempts WHERE workspace_id = $1 AND delivery_id = $2 ORDER BY id",
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: WebhookDeliveryId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = $1, updated_at = $1
         WHERE workspace_id = $2 AND id = $3",
    )
    .bind(now)
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
        "DELETE FROM webhook_deliveries WHERE workspace_id = $1 AND profile_id IN {person}"
    )]
}
