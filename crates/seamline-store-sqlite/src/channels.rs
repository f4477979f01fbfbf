//! Channel accounts and the outbound outbox. Writes run under the store's
//! writer queue (taken in `lib.rs`); times are epoch milliseconds.

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::Channel;
use seamline_core::{ChannelAccountId, ConversationMessageId, ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::rows::{get, time};
use crate::workspace::found;
use crate::{backend, millis};

const OUTBOX_COLUMNS: &str = "message_id, workspace_id, profile_id, channel, body, state,
    attempts, next_attempt_at, last_error, provider_id, created_at, updated_at";

/// The messages an enqueue may take: outbound ones still waiting.
const PENDING_OUTBOUND: &str = "INSERT INTO channel_outbox (message_id, workspace_id, profile_id,
      channel, body, state, attempts, next_attempt_at, created_at, updated_at)
    SELECT m.id, m.workspace_id, m.profile_id, m.channel, m.body, 'pending', 0, ?1, ?1, ?1
    FROM conversation_messages m
    WHERE m.kind IN ('outbound', 'bot') AND m.delivery = 'pending'
      AND NOT EXISTS (SELECT 1 FROM channel_outbox o WHERE o.message_id = m.id)";

/// Erasure: the person's outbound messages waiting or sent (their text).
/// Binds `(ws, profile)` like the other scrubs.
pub(crate) fn erase_statements(person: &str) -> [String; 1] {
    [format!(
        "DELETE FROM channel_outbox WHERE workspace_id = ?1 AND profile_id IN {person}"
    )]
}

fn channel(row: &SqliteRow, column: &str) -> StoreResult<Channel> {
    let name: String = get(row, column)?;
    name.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} {name:?}")))
}

fn account(row: &SqliteRow) -> StoreResult<ChannelAccount> {
    let settings: String = get(row, "settings")?;
    Ok(ChannelAccount {
        id: ChannelAccountId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        kind: channel(row, "kind")?,
        name: get(row, "name")?,
        settings: serde_json::from_str(&settings)
            .map_err(|e| StoreError::Corrupt(format!("channel settings: {e}")))?,
        secrets: SealedSecrets(get(row, "secrets")?),
        path_token: get(row, "path_token")?,
        active: get(row, "active")?,
        status: get(row, "status")?,
        status_detail: get(row, "status_detail")?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

fn entry(row: &SqliteRow) -> StoreResult<OutboundEntry> {
    let state: String = get(row, "state")?;
    Ok(OutboundEntry {
        message_id: ConversationMessageId(get::<Uuid>(row, "message_id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        channel: channel(row, "channel")?,
        body: get(row, "body")?,
        state: OutboundState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox state {state:?}")))?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: get::<Option<i64>>(row, "next_attempt_at")?
            .map(time)
            .transpose()?,
        last_error: get(row, "last_error")?,
        provider_id: get(row, "provider_id")?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

pub(crate) async fn create(pool: &SqlitePool, a: &ChannelAccount) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO channel_accounts (id, workspace_id, kind, name, settings, secrets,
           path_token, active, status, status_detail, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(a.id.as_uuid())
    .bind(a.workspace_id.as_uuid())
    .bind(a.kind.as_str())
    .bind(&a.name)
    .bind(a.settings.to_string())
    .bind(&a.secrets.0)
    .bind(&a.path_token)
    .bind(a.active)
    .bind(&a.status)
    .bind(&a.status_detail)
    .bind(millis(a.created_at))
    .bind(millis(a.updated_at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn get_one(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ChannelAccountId,
) -> StoreResult<Option<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE workspace_id = ? AND id = ?")
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
    pool: &SqlitePool,
    kind: Channel,
    token: &str,
) -> StoreResult<Option<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE kind = ? AND path_token = ?")
        .bind(kind.as_str())
        .bind(token)
        .fetch_optional(pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(account)
        .transpose()
}

pub(crate) async fn list(pool: &SqlitePool, ws: WorkspaceId) -> StoreResult<Vec<ChannelAccount>> {
    sqlx::query("SELECT * FROM channel_accounts WHERE workspace_id = ? ORDER BY created_at, id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?
        .iter()
        .map(account)
        .collect()
}

pub(crate) async fn update(pool: &SqlitePool, a: &ChannelAccount) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE channel_accounts SET name = ?, settings = ?, secrets = ?, active = ?,
           status = ?, status_detail = ?, updated_at = ?
         WHERE workspace_id = ? AND id = ?",
    )
    .bind(&a.name)
    .bind(a.settings.to_string())
    .bind(&a.secrets.0)
    .bind(a.active)
    .bind(&a.status)
    .bind(&a.status_detail)
    .bind(millis(a.updated_at))
    .bind(a.workspace_id.as_uuid())
    .bind(a.id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "channel account")
}

pub(crate) async fn delete(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ChannelAccountId,
) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM channel_accounts WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "channel account")
}

pub(crate) async fn enqueue(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ConversationMessageId,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let done = sqlx::query(&format!(
        "{PENDING_OUTBOUND} AND m.workspace_id = ?2 AND m.id = ?3"
    ))
    .bind(millis(now))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn sweep(
    pool: &SqlitePool,
    channels: &[Channel],
    now: DateTime<Utc>,
) -> StoreResult<u32> {
    let mut queued = 0;
    for c in channels {
        let done = sqlx::query(&format!("{PENDING_OUTBOUND} AND m.channel = ?2"))
            .bind(millis(now))
            .bind(c.as_str())
            .execute(pool)
            .await
            .map_err(backend)?;
        queued += u32::try_from(done.rows_affected()).unwrap_or(u32::MAX);
    }
    Ok(queued)
}

pub(crate) async fn claim(
    pool: &SqlitePool,
    limit: u32,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> StoreResult<Vec<OutboundEntry>> {
    let mut claimed = sqlx::query(&format!(
        "UPDATE channel_outbox SET leased_until = ?1
         WHERE message_id IN (SELECT message_id FROM channel_outbox
                              WHERE state = 'pending' AND next_attempt_at <= ?2
                                AND (leased_until IS NULL OR leased_until <= ?2)
                              ORDER BY next_attempt_at, message_id LIMIT ?3)
         RETURNING {OUTBOX_COLUMNS}"
    ))
    .bind(millis(lease_until))
    .bind(millis(now))
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
fn columns(step: &OutboundStep) -> (OutboundState, i64, Option<i64>, Option<&str>, Option<&str>) {
    match step {
        OutboundStep::Sent { provider_id } => {
            (OutboundState::Sent, 1, None, None, provider_id.as_deref())
        }
        OutboundStep::Failed { reason } => (OutboundState::Failed, 1, None, Some(reason), None),
        OutboundStep::Unknown { reason } => (OutboundState::Unknown, 1, None, Some(reason), None),
        OutboundStep::Retry { at, reason } => (
            OutboundState::Pending,
            1,
            Some(millis(*at)),
            Some(reason),
            None,
        ),
        OutboundStep::Defer { at } => (OutboundState::Pending, 0, Some(millis(*at)), None, None),
    }
}

pub(crate) async fn finish(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ConversationMessageId,
    step: &OutboundStep,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let (state, counted, next_at, error, provider_id) = columns(step);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let done = sqlx::query(
        "UPDATE channel_outbox SET state = ?, attempts = attempts + ?, next_attempt_at = ?,
           last_error = COALESCE(?, last_error), provider_id = ?, leased_until = NULL,
           updated_at = ?
         WHERE workspace_id = ? AND message_id = ?",
    )
    .bind(state.as_str())
    .bind(counted)
    .bind(next_at)
    .bind(error)
    .bind(provider_id)
    .bind(millis(now))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "outbound message")?;
    if state != OutboundState::Pending {
        // Only a message still waiting moves: a later receipt may be ahead.
        sqlx::query(
            "UPDATE conversation_messages SET delivery = ?, delivery_reason = ?
             WHERE workspace_id = ? AND id = ? AND delivery = 'pending'",
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
            "UPDATE conversation_messages SET external_id = ?1
             WHERE workspace_id = ?2 AND id = ?3 AND external_id IS NULL
               AND NOT EXISTS (SELECT 1 FROM conversation_messages o
                               WHERE o.workspace_id = ?2 AND o.channel = conversation_messages.channel
                                 AND o.external_id = ?1)",
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
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ConversationMessageId,
) -> StoreResult<Option<OutboundEntry>> {
    sqlx::query(&format!(
        "SELECT {OUTBOX_COLUMNS} FROM channel_outbox WHERE workspace_id = ? AND message_id = ?"
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
    pool: &SqlitePool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    parked: &ParkedDelivery,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO parked_deliveries (workspace_id, channel, external_id, status, reason, received_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    )
    .bind(ws.as_uuid())
    .bind(channel.as_str())
    .bind(external_id)
    .bind(codec::name(&parked.status)?)
    .bind(parked.reason.as_deref())
    .bind(millis(parked.received_at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn parked(
    pool: &SqlitePool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Vec<ParkedDelivery>> {
    let rows = sqlx::query(
        "SELECT status, reason, received_at FROM parked_deliveries
         WHERE workspace_id = ? AND channel = ? AND external_id = ?
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
                received_at: time(get(row, "received_at")?)?,
            })
        })
        .collect()
}

pub(crate) async fn unpark(
    pool: &SqlitePool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
    status: DeliveryStatus,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM parked_deliveries WHERE workspace_id = ? AND channel = ? AND external_id = ? AND status = ?",
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
impl ChannelStore for crate::SqliteStore {
    async fn create_channel_account(&self, account: &ChannelAccount) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
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
        let _turn = self.writer.lock().await;
        update(&self.pool, account).await
    }

    async fn delete_channel_account(
        &self,
        workspace: WorkspaceId,
        id: ChannelAccountId,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        delete(&self.pool, workspace, id).await
    }

    async fn enqueue_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let _turn = self.writer.lock().await;
        enqueue(&self.pool, workspace, id, now).await
    }

    async fn sweep_outbound(&self, channels: &[Channel], now: DateTime<Utc>) -> StoreResult<u32> {
        let _turn = self.writer.lock().await;
        sweep(&self.pool, channels, now).await
    }

    async fn claim_outbound(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboundEntry>> {
        let _turn = self.writer.lock().await;
        claim(&self.pool, limit, now, lease_until).await
    }

    async fn finish_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        step: &OutboundStep,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
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
