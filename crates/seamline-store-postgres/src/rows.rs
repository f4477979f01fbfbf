//! Row → domain conversions. Stored values that no longer parse are reported
//! as `Corrupt`, never a panic.

use chrono::{DateTime, Utc};
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::tracking::EventType;
use seamline_core::{EventId, KeyId, MemberId, ProfileId, Role, WorkspaceId};
use seamline_store::*;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};
use uuid::Uuid;

use crate::backend;

pub(crate) fn get<'r, T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>>(
    row: &'r PgRow,
    column: &str,
) -> StoreResult<T> {
    row.try_get(column).map_err(backend)
}

/// A JSON column; text that does not parse is `Corrupt`, as in SQLite.
pub(crate) fn json(row: &PgRow, column: &str) -> StoreResult<serde_json::Value> {
    row.try_get(column).map_err(|error| match error {
        sqlx::Error::ColumnDecode { source, .. } => {
            StoreError::Corrupt(format!("{column}: {source}"))
        }
        other => backend(other),
    })
}

pub(crate) fn workspace(row: &PgRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(get::<Uuid>(row, "id")?),
        name: get(row, "name")?,
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn member(row: &PgRow) -> StoreResult<Member> {
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
        created_at: get(row, "created_at")?,
    })
}

pub(crate) fn session(row: &PgRow) -> StoreResult<Session> {
    Ok(Session {
        token_hash: get(row, "token_hash")?,
        member_id: MemberId(get::<Uuid>(row, "member_id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) fn api_key(row: &PgRow) -> StoreResult<ApiKey> {
    let kind: String = get(row, "kind")?;
    Ok(ApiKey {
        id: KeyId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        kind: KeyKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("key kind {kind:?}")))?,
        name: get(row, "name")?,
        prefix: get(row, "prefix")?,
        plaintext: get(row, "plaintext")?,
        secret_hash: get(row, "secret_hash")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

pub(crate) fn event(row: &PgRow) -> StoreResult<StoredEvent> {
    let event_type: String = get(row, "type")?;
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
        timestamp: get(row, "timestamp")?,
        received_at: get(row, "received_at")?,
        enrichment: json(row, "enrichment")?,
        payload: json(row, "payload")?,
    })
}

/// A JSON object column (traits); anything but an object is `Corrupt`.
fn json_map(row: &PgRow, column: &str) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    match json(row, column)? {
        serde_json::Value::Object(map) => Ok(map),
        other => Err(StoreError::Corrupt(format!(
            "{column}: not an object: {other}"
        ))),
    }
}

fn identifier(kind: &str, value: String) -> StoreResult<Identifier> {
    let kind = kind
        .parse::<IdentifierKind>()
        .map_err(StoreError::Corrupt)?;
    Ok(Identifier { kind, value })
}

pub(crate) fn profile(row: &PgRow) -> StoreResult<Profile> {
    Ok(Profile {
        id: ProfileId(get::<Uuid>(row, "id")?),
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        first_seen: get(row, "first_seen")?,
        last_seen: get(row, "last_seen")?,
        traits: json_map(row, "traits")?,
        trait_times: json_map(row, "trait_times")?,
        merged_into: get::<Option<Uuid>>(row, "merged_into")?.map(ProfileId),
    })
}

pub(crate) fn profile_identifier(row: &PgRow) -> StoreResult<ProfileIdentifier> {
    Ok(ProfileIdentifier {
        identifier: identifier(&get::<String>(row, "kind")?, get(row, "value")?)?,
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        first_seen: get(row, "first_seen")?,
        source: get(row, "source")?,
        source_event: get::<Option<Uuid>>(row, "source_event")?.map(EventId),
        shared: get(row, "shared")?,
        active_profile: get::<Option<Uuid>>(row, "active_profile")?.map(ProfileId),
        session_last_at: get(row, "session_last_at")?,
        anonymous_since: get(row, "anonymous_since")?,
    })
}

pub(crate) fn merge(row: &PgRow) -> StoreResult<MergeRecord> {
    let via_kind: Option<String> = get(row, "via_kind")?;
    let via_value: Option<String> = get(row, "via_value")?;
    let via = match (via_kind, via_value) {
        (Some(kind), Some(value)) => Some(identifier(&kind, value)?),
        _ => None,
    };
    Ok(MergeRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        survivor: ProfileId(get::<Uuid>(row, "survivor")?),
        absorbed: ProfileId(get::<Uuid>(row, "absorbed")?),
        via,
        event_id: get::<Option<Uuid>>(row, "event_id")?.map(EventId),
        actor: get(row, "actor")?,
        at: get(row, "at")?,
        undone_at: get(row, "undone_at")?,
    })
}

pub(crate) fn conflict(row: &PgRow) -> StoreResult<ConflictRecord> {
    Ok(ConflictRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile: ProfileId(get::<Uuid>(row, "profile")?),
        other: ProfileId(get::<Uuid>(row, "other")?),
        via: identifier(&get::<String>(row, "via_kind")?, get(row, "via_value")?)?,
        reason: get(row, "reason")?,
        event_id: get::<Option<Uuid>>(row, "event_id")?.map(EventId),
        at: get(row, "at")?,
        resolved_at: get(row, "resolved_at")?,
    })
}

pub(crate) fn consent(row: &PgRow) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        id: get(row, "id")?,
        workspace_id: WorkspaceId(get::<Uuid>(row, "workspace_id")?),
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        purpose: get(row, "purpose")?,
        channel: get(row, "channel")?,
        granted: get(row, "granted")?,
        source: get(row, "source")?,
        wording: get(row, "wording")?,
        at: get(row, "at")?,
    })
}

/// A just-appended event as [`event`] would read it back: times to the
/// microsecond (timestamptz), JSON as values.
pub(crate) fn stored(new: NewEvent, seq: i64) -> StoreResult<StoredEvent> {
    let micros = |t: DateTime<Utc>| {
        DateTime::from_timestamp_micros(t.timestamp_micros())
            .ok_or_else(|| StoreError::Corrupt(format!("time {t} out of range")))
    };
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
        timestamp: micros(event.timestamp)?,
        received_at: micros(event.received_at)?,
        enrichment: serde_json::to_value(&event.enrichment).map_err(backend)?,
        payload: serde_json::Value::Object(event.payload),
    })
}
