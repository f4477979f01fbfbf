//! Row → domain conversions. Stored text that no longer parses is reported
//! as `Corrupt`, never a panic.

use chrono::{DateTime, TimeZone, Utc};
use seamline_core::tracking::EventType;
use seamline_core::{EventId, KeyId, MemberId, Role, WorkspaceId};
use seamline_store::*;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use uuid::Uuid;

use crate::backend;

pub(crate) fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("time {ms} out of range")))
}

fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    column: &str,
) -> StoreResult<T> {
    row.try_get(column).map_err(backend)
}

pub(crate) fn workspace(row: &SqliteRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(get::<Uuid>(row, "id")?),
        name: get(row, "name")?,
        created_at: time(get(row, "created_at")?)?,
    })
}

pub(crate) fn member(row: &SqliteRow) -> StoreResult<Member> {
    let role: String = get(row, "role")?;
    Ok(Member {
        id: MemberId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        email: get(row, "email")?,
        name: get(row, "name")?,
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        password_hash: get(row, "password_hash")?,
        created_at: time(get(row, "created_at")?)?,
    })
}

pub(crate) fn session(row: &SqliteRow) -> StoreResult<Session> {
    Ok(Session {
        token_hash: get(row, "token_hash")?,
        member_id: MemberId(get::<Uuid>(row, "member_id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        csrf_token: get(row, "csrf_token")?,
        created_at: time(get(row, "created_at")?)?,
        expires_at: time(get(row, "expires_at")?)?,
    })
}

pub(crate) fn api_key(row: &SqliteRow) -> StoreResult<ApiKey> {
    let kind: String = get(row, "kind")?;
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    Ok(ApiKey {
        id: KeyId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        kind: KeyKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("key kind {kind:?}")))?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        plaintext: get(row, "plaintext")?,
        secret_hash: get(row, "secret_hash")?,
        created_at: time(get(row, "created_at")?)?,
        revoked_at: revoked_at.map(time).transpose()?,
    })
}

pub(crate) fn event(row: &SqliteRow) -> StoreResult<StoredEvent> {
    let event_type: String = get(row, "type")?;
    let json = |column: &str| -> StoreResult<serde_json::Value> {
        let text: String = get(row, column)?;
        serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    };
    Ok(StoredEvent {
        seq: get(row, "seq")?,
        id: EventId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        message_id: get(row, "message_id")?,
        event_type: EventType::parse(&event_type)
            .ok_or_else(|| StoreError::Corrupt(format!("event type {event_type:?}")))?,
        event_name: get(row, "event_name")?,
        user_id: get(row, "user_id")?,
        anonymous_id: get(row, "anonymous_id")?,
        timestamp: time(get(row, "timestamp")?)?,
        received_at: time(get(row, "received_at")?)?,
        enrichment: json("enrichment")?,
        payload: json("payload")?,
    })
}
