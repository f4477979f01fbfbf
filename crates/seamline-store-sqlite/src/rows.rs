//! Row → domain conversions. Stored text that no longer parses is reported
//! as `Corrupt`, never a panic.

use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::tracking::EventType;
use seamline_core::{EventId, KeyId, MemberId, ProfileId, Role, WorkspaceId};
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

pub(crate) fn get<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
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

fn json_map(text: &str, column: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

fn identifier(kind: &str, value: String) -> StoreResult<Identifier> {
    let kind = kind
        .parse::<IdentifierKind>()
        .map_err(StoreError::Corrupt)?;
    Ok(Identifier { kind, value })
}

pub(crate) fn optional_uuid(row: &SqliteRow, column: &str) -> StoreResult<Option<Uuid>> {
    get::<Option<Uuid>>(row, column)
}

pub(crate) fn profile(row: &SqliteRow) -> StoreResult<Profile> {
    Ok(Profile {
        id: ProfileId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        first_seen: time(get(row, "first_seen")?)?,
        last_seen: time(get(row, "last_seen")?)?,
        traits: json_map(&get::<String>(row, "traits")?, "traits")?,
        trait_times: json_map(&get::<String>(row, "trait_times")?, "trait_times")?,
        merged_into: optional_uuid(row, "merged_into")?.map(ProfileId),
    })
}

pub(crate) fn profile_identifier(row: &SqliteRow) -> StoreResult<ProfileIdentifier> {
    Ok(ProfileIdentifier {
        identifier: identifier(&get::<String>(row, "kind")?, get(row, "value")?)?,
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        first_seen: time(get(row, "first_seen")?)?,
        source: get(row, "source")?,
        source_event: optional_uuid(row, "source_event")?.map(EventId),
        shared: get::<i64>(row, "shared")? != 0,
        active_profile: optional_uuid(row, "active_profile")?.map(ProfileId),
        session_last_at: get::<Option<i64>>(row, "session_last_at")?
            .map(time)
            .transpose()?,
        anonymous_since: get::<Option<i64>>(row, "anonymous_since")?
            .map(time)
            .transpose()?,
    })
}

pub(crate) fn merge(row: &SqliteRow) -> StoreResult<MergeRecord> {
    let via_kind: Option<String> = get(row, "via_kind")?;
    let via_value: Option<String> = get(row, "via_value")?;
    let via = match (via_kind, via_value) {
        (Some(kind), Some(value)) => Some(identifier(&kind, value)?),
        _ => None,
    };
    let undone: Option<i64> = get(row, "undone_at")?;
    Ok(MergeRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        survivor: ProfileId(get::<Uuid>(row, "survivor")?),
        absorbed: ProfileId(get::<Uuid>(row, "absorbed")?),
        via,
        event_id: optional_uuid(row, "event_id")?.map(EventId),
        actor: get(row, "actor")?,
        at: time(get(row, "at")?)?,
        undone_at: undone.map(time).transpose()?,
    })
}

pub(crate) fn conflict(row: &SqliteRow) -> StoreResult<ConflictRecord> {
    let resolved: Option<i64> = get(row, "resolved_at")?;
    Ok(ConflictRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile: ProfileId(get::<Uuid>(row, "profile")?),
        other: ProfileId(get::<Uuid>(row, "other")?),
        via: identifier(&get::<String>(row, "via_kind")?, get(row, "via_value")?)?,
        reason: get(row, "reason")?,
        event_id: optional_uuid(row, "event_id")?.map(EventId),
        at: time(get(row, "at")?)?,
        resolved_at: resolved.map(time).transpose()?,
    })
}

pub(crate) fn consent(row: &SqliteRow) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        purpose: get(row, "purpose")?,
        channel: get(row, "channel")?,
        granted: get::<i64>(row, "granted")? != 0,
        source: get(row, "source")?,
        wording: get(row, "wording")?,
        at: time(get(row, "at")?)?,
    })
}

/// A just-appended event as [`event`] would read it back: times to the
/// millisecond, JSON as values.
pub(crate) fn stored(new: NewEvent, seq: i64) -> StoreResult<StoredEvent> {
    let event = new.event;
    Ok(StoredEvent {
        seq,
        id: new.id,
        workspace_id: new.workspace_id,
        message_id: event.message_id,
        event_type: event.event_type,
        event_name: event.event_name,
        user_id: event.user_id,
        anonymous_id: event.anonymous_id,
        timestamp: time(event.timestamp.timestamp_millis())?,
        received_at: time(event.received_at.timestamp_millis())?,
        enrichment: serde_json::to_value(&event.enrichment).map_err(backend)?,
        payload: serde_json::Value::Object(event.payload),
    })
}
