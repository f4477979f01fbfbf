//! Channel accounts and the outbound outbox. Claims lock with
//! `FOR UPDATE SKIP LOCKED`, so senders on several instances share the
//! outbox without waiting for each other.

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::Channel;
use seamline_core::{ChannelAccountId, ConversationMessageId, ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::postgres::PgRow;
use sqlx::PgPool;
use uuid::Uuid;

use crate::backend;
use crate::rows::{get, json};
use crate::workspace::found;

const OUTBOX_COLUMNS: &str = "message_id, workspace_id, profile_id, channel, body, state,
    attempts, next_attempt_at, last_error, provider_id, created_at, updated_at";

/// The messages an enqueue may take: outbound ones still waiting.
const PENDING_OUTBOUND: &str = "INSERT INTO channel_outbox (message_id, workspace_id, profile_id,
      channel, body, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT m.id, m.workspace_id, m.profile_id, m.channel, m.body, 'pending', 0, $1, $1, $1
    FROM conversation_messages m
    WHERE m.kind IN ('outbound', 'bot') AND m.delivery = 'pending'
      AND NOT EXISTS (SELECT 1 FROM channel_outbox o WHERE o.message_id = m.id)";

/// Erasure: the person's outbound messages waiting or sent (their text).
/// Binds `(ws, profile)` like the other scrubs.
pub(crate) fn erase_statements(person: &str) -> [String; 1] {
    [format!(
        "DELETE FROM channel_outbox WHERE workspace_id = $1 AND profile_id IN {person}"
    )]
}

fn channel(row: &PgRow, column: &str) -> StoreResult<Channel> {
    let name: String = get(row, column)?;
    name.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} {name:?}")))
}

fn account(row: &PgRow) -> StoreResult<ChannelAccount> {
    Ok(ChannelAccount {
        id: ChannelAccountId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        kind: channel(row, "kind")?,
        name: get(row, "name")?,
        settings: json(row, "settings")?,
        secrets: SealedSecrets(get(row, "secrets")?),
        path_token: get(row, "path_token")?,
        active: get(row, "active")?,
        status: get(row, "status")?,
        status_detail: get(row, "status_detail")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn entry(row: &PgRow) -> StoreResult<OutboundEntry> {
    let state: String = get(row, "state")?;
    Ok(OutboundEntry {
        message_id: ConversationMessageId(get::<Uuid>(row, "message_id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        channel: channel(row, "channel")?,
        body: get(row, "body")?,
        state: OutboundState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state {state:?}")))?,
        attempts: u32::try_from(get::<i32>(row, "attempts")?).unwrap_or(0),
        next_attempt_at: get(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        provider_id: get(row, "provider_id")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) async fn create(pool: &PgPool, a: &ChannelAccount) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO channel_accounts (id, workspace_id, kind, name, settings, secrets,
           path_token, active, status, status_detail, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(a.id.as_uuid())
    .bind(a.workspace_id.as_uuid())
    .bind(a.kind.as_str())
    .bind(&a.name)
    .bind(&a.settings)
    .bind(&a.secrets.0)
    .bind(&a.path_token)
    .bind(a.active)
    .bind(&a.status)
    .bind(&a.status_detail)
    .bind(a.created_at)
    .bind(a.updated_at)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn get_one(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ChannelAccountId,
) -> StoreResult<Option<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account)
        .transpose()
}

pub(crate) async fn by_token(
    pool: &PgPool,
    kind: Channel,
    token: &str,
) -> StoreResult<Option<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE kind = $1 AND path_token = $2")
        .bind(kind.as_str())
        .bind(token)
        .fetch_optional(pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account)
        .transpose()
}

pub(crate) async fn list(pool: &PgPool, ws: WorkspaceId) -> StoreResult<Vec<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE workspace_id = $1 ORDER BY created_at, id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?
        .iter()
        .map(account)
        .collect()
}

pub(crate) async fn update(pool: &PgPool, a: &ChannelAccount) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE channel_accounts SET name = $1, settings = $2, secrets = $3, active = $4,
           status = $5, status_detail = $6, updated_at = $7
         WHERE workspace_id = $8 AND id = $9",
    )
    .bind(&a.name)
    .bind(&a.settings)
    .bind(&a.secrets.0)
    .bind(a.active)
    .bind(&a.status)
    .bind(&a.status_detail)
    .bind(a.updated_at)
    .bind(a.workspace_id.as_uuid())
    .bind(a.id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "channel account")
}

pub(crate) async fn delete(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ChannelAccountId,
) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM channel_accounts WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "channel account")
}

pub(crate) async fn enqueue(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationMessageId,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(&format!(
        "{PENDING_OUTBOUND} AND m.workspace_id = $2 AND m.id = $3"
    ))
    .bind(now)
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn sweep(
    pool: &PgPool,
    channels: &[Channel],
    now: DateTime<Utc>,
) -> StoreResult<u32> {
    let mut queued = 0;
    for c in channels {
        let done = sqlx::query(&format!("{PENDING_OUTBOUND} AND m.channel = $2"))
            .bind(now)
            .bind(c.as_str())
            .execute(pool)
            .await
            .map_err(backend)?;
        queued += u32::try_from(done.rows_affected()).unwrap_or(u32::MAX);
    }
    Ok(queued)
}

pub(crate) async fn claim(
    pool: &PgPool,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<OutboundEntry>> {
    let mut claimed = sqlx::query(&format!(
        "UPDATE channel_outbox SET leased_until = $1
         WHERE message_id IN (SELECT message_id FROM channel_outbox
                              WHERE state = 'pending' AND next_attempt_at <= $2
                                AND (leased_until IS NULL OR leased_until <= $2)
                              ORDER BY next_attempt_at, message_id LIMIT $3
                              FOR UPDATE SKIP LOCKED)
         RETURNING {OUTBOX_COLUMNS}"
    ))
    .bind(lease_until)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .iter()
    .map(entry)
    .collect::<StoreResult<Vec<_>>>()?;
    claimed.sort_by_key(|e| (e.next_attempt_at, e.message_id));
    Ok(claimed)
}

/// The entry's next `(state, attempts added, next_attempt_at, error, provider id)`.
fn columns(
    step: &OutboundStep,
) -> (
    OutboundState,
    i32,
    Option<DateTime<Utc>>,
    Option<&str>,
    Option<&str>,
) {
    match step {
        OutboundStep::Sent { provider_id } => {
            (OutboundState::Sent, 1, None, None, provider_id.as_deref())
        }
        OutboundStep::Failed { reason } => (OutboundState::Failed, 1, None, Some(reason), None),
        OutboundStep::Unknown { reason } => (OutboundState::Unknown, 1, None, Some(reason), None),
        OutboundStep::Retry { at, reason } => {
            (OutboundState::Pending, 1, Some(*at), Some(reason), None)
        }
        OutboundStep::Defer { at } => (OutboundState::Pending, 0, Some(*at), None, None),
    }
}

pub(crate) async fn finish(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationMessageId,
    step: &OutboundStep,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let (state, counted, next_at, error, provider_id) = columns(step);
    let mut tx = pool.begin().await.map_err(backend)?;
    let done = sqlx::query(
        "UPDATE channel_outbox SET state = $1, attempts = attempts + $2, next_attempt_at = $3,
           last_error = COALESCE($4, last_error), provider_id = $5, leased_until = NULL,
           updated_at = $6
         WHERE workspace_id = $7 AND message_id = $8",
    )
    .bind(state.as_str())
    .bind(counted)
    .bind(next_at)
    .bind(error)
    .bind(provider_id)
    .bind(now)
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "outbound message")?;
    if state != OutboundState::Pending {
        // Only a message still waiting moves: a later receipt may be ahead.
        sqlx::query(
            "UPDATE conversation_messages SET delivery = $1, delivery_reason = $2
             WHERE workspace_id = $3 AND id = $4 AND delivery = 'pending'",
        )
        .bind(state.as_str())
        .bind(error)
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    if let Some(provider_id) = provider_id {
        // The provider's id finds the message for its delivery reports.
        sqlx::query(
            "UPDATE conversation_messages SET external_id = $1
             WHERE workspace_id = $2 AND id = $3 AND external_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM conversation_messages o
                               WHERE o.workspace_id = $2 AND o.channel = conversation_messages.channel
                                 AND o.external_id = $1)",
        )
        .bind(provider_id)
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

pub(crate) async fn outbound(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationMessageId,
) -> StoreResult<Option<OutboundEntry>> {
    sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM channel_outbox WHERE workspace_id = $1 AND message_id = $2"
    ))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .as_ref()
    .map(entry)
    .transpose()
}

pub(crate) async fn park(
    pool: &PgPool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    parked: &ParkedDelivery,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO parked_deliveries (workspace_id, channel, external_id, status, reason, received_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(ws.as_uuid())
    .bind(channel.as_str())
    .bind(external_id)
    .bind(codec::name(&parked.status)?)
    .bind(parked.reason.as_deref())
    .bind(parked.received_at)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn parked(
    pool: &PgPool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Vec<ParkedDelivery>> {
    let rows = sqlx::query(
        "SELECT status, reason, received_at FROM parked_deliveries
         WHERE workspace_id = $1 AND channel = $2 AND external_id = $3
         ORDER BY received_at, status",
    )
    .bind(ws.as_uuid())
    .bind(channel.as_str())
    .bind(external_id)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(ParkedDelivery {
                status: codec::from_name(&get::<String>(row, "status")?, "status")?,
                reason: get(row, "reason")?,
                received_at: get(row, "received_at")?,
            })
        })
        .collect()
}

pub(crate) async fn unpark(
    pool: &PgPool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    status: DeliveryStatus,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM parked_deliveries WHERE workspace_id = $1 AND channel = $2 AND external_id = $3 AND status = $4",
    )
    .bind(ws.as_uuid())
    .bind(channel.as_str())
    .bind(external_id)
    .bind(codec::name(&status)?)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

#[async_trait::async_trait]
impl ChannelStore for crate::PgStore {
    async fn create_channel_account(&self, account: &ChannelAccount) -> StoreResult<()> {
        create(&self.pool, account).await
    }

    async fn channel_account(
        &self,
        workspace: WorkspaceId,
        id: ChannelAccountId,
    ) -> StoreResult<Option<ChannelAccount>> {
        get_one(&self.pool, workspace, id).await
    }

    async fn list_channel_accounts(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<ChannelAccount>> {
        list(&self.pool, workspace).await
    }

    async fn channel_account_by_token(
        &self,
        kind: Channel,
        path_token: &str,
    ) -> StoreResult<Option<ChannelAccount>> {
        by_token(&self.pool, kind, path_token).await
    }

    async fn update_channel_account(&self, account: &ChannelAccount) -> StoreResult<()> {
        update(&self.pool, account).await
    }

    async fn delete_channel_account(
        &self,
        workspace: WorkspaceId,
        id: ChannelAccountId,
    ) -> StoreResult<()> {
        delete(&self.pool, workspace, id).await
    }

    async fn enqueue_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        enqueue(&self.pool, workspace, id, now).await
    }

    async fn sweep_outbound(&self, channels: &[Channel], now: DateTime<Utc>) -> StoreResult<u32> {
        sweep(&self.pool, channels, now).await
    }

    async fn claim_outbound(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboundEntry>> {
        claim(&self.pool, limit, now, lease_until).await
    }

    async fn finish_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        step: &OutboundStep,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        finish(&self.pool, workspace, id, step, now).await
    }

    async fn outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
    ) -> StoreResult<Option<OutboundEntry>> {
        outbound(&self.pool, workspace, id).await
    }

    async fn park_delivery(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
        parked: &ParkedDelivery,
    ) -> StoreResult<()> {
        park(&self.pool, workspace, channel, external_id, parked).await
    }

    async fn parked_deliveries(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Vec<ParkedDelivery>> {
        parked(&self.pool, workspace, channel, external_id).await
    }

    async fn drop_parked_delivery(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
        status: DeliveryStatus,
    ) -> StoreResult<()> {
        unpark(&self.pool, workspace, channel, external_id, status).await
    }
}
