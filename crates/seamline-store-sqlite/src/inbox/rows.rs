//! Inbox rows → domain values; stored text that no longer parses is `Corrupt`.

use chrono::{DateTime, Utc};
use seamline_core::inbox::csat::{Rating, Score};
use seamline_core::inbox::routing::Presence;
use seamline_core::inbox::template::CannedResponse;
use seamline_core::inbox::{Conversation, Message};
use seamline_core::{
    ConversationId, ConversationMessageId, MemberId, ProfileId, TeamId, WorkspaceId,
};
use seamline_store::codec::DeserializeOwned;
use seamline_store::*;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

use crate::rows::{get, optional_uuid, time};

fn optional_time(row: &SqliteRow, column: &str) -> StoreResult<Option<DateTime<Utc>>> {
    get::<Option<i64>>(row, column)?.map(time).transpose()
}

fn json<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> StoreResult<T> {
    codec::from_json_text(&get::<String>(row, column)?, column)
}

fn named<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> StoreResult<T> {
    codec::from_name(&get::<String>(row, column)?, column)
}

fn optional_named<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> StoreResult<Option<T>> {
    get::<Option<String>>(row, column)?
        .map(|name| codec::from_name(&name, column))
        .transpose()
}

fn count(row: &SqliteRow, column: &str) -> StoreResult<u32> {
    let n: i64 = get(row, column)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{column} {n}")))
}

fn workspace_id(row: &SqliteRow) -> StoreResult<WorkspaceId> {
    Ok(WorkspaceId(get::<Uuid>(row, "workspace_id")?))
}

pub(super) fn team(row: &SqliteRow) -> StoreResult<Team> {
    let hours: Option<String> = get(row, "hours")?;
    Ok(Team {
        id: TeamId(get::<Uuid>(row, "id")?),
        workspace_id: workspace_id(row)?,
        name: get(row, "name")?,
        routing: json(row, "routing")?,
        hours: hours
            .map(|text| codec::from_json_text(&text, "hours"))
            .transpose()?,
        channels: json(row, "channels")?,
        bots: json(row, "bots")?,
        created_at: time(get(row, "created_at")?)?,
    })
}

pub(super) fn operator(row: &SqliteRow) -> StoreResult<OperatorState> {
    let capacity: Option<i64> = get(row, "capacity")?;
    Ok(OperatorState {
        member_id: MemberId(get::<Uuid>(row, "member_id")?),
        presence: optional_named(row, "presence")?.unwrap_or(Presence::Offline),
        presence_since: optional_time(row, "presence_since")?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(|_| StoreError::Corrupt(format!("capacity {c}"))))
            .transpose()?,
        load: count(row, "load")?,
    })
}

pub(super) fn conversation(row: &SqliteRow) -> StoreResult<StoredConversation> {
    let status: String = get(row, "status")?;
    Ok(StoredConversation {
        workspace_id: workspace_id(row)?,
        conversation: Conversation {
            id: ConversationId(get::<Uuid>(row, "id")?),
            profile: ProfileId(get::<Uuid>(row, "profile_id")?),
            status: codec::status(&status, optional_time(row, "snoozed_until")?)?,
            assignee: optional_uuid(row, "assignee")?.map(MemberId),
            team: optional_uuid(row, "team_id")?.map(TeamId),
            priority: named(row, "priority")?,
            labels: json(row, "labels")?,
            last_inbound_channel: optional_named(row, "last_inbound_channel")?,
            last_inbound_at: optional_time(row, "last_inbound_at")?,
            waiting_since: optional_time(row, "waiting_since")?,
            created_at: time(get(row, "created_at")?)?,
        },
        bot: json(row, "bot_state")?,
        last_message_at: optional_time(row, "last_message_at")?,
        last_message_channel: optional_named(row, "last_message_channel")?,
        updated_at: time(get(row, "updated_at")?)?,
        unread: count(row, "unread")?,
        activity_seq: get(row, "activity_seq")?,
        version: get(row, "version")?,
    })
}

pub(super) fn message(row: &SqliteRow) -> StoreResult<StoredMessage> {
    Ok(StoredMessage {
        workspace_id: workspace_id(row)?,
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        message: Message {
            id: ConversationMessageId(get::<Uuid>(row, "id")?),
            conversation: ConversationId(get::<Uuid>(row, "conversation_id")?),
            kind: json(row, "details")?,
            channel: named(row, "channel")?,
            body: get(row, "body")?,
            at: time(get(row, "at")?)?,
        },
        sender: get(row, "sender")?,
        attachments: json(row, "attachments")?,
        external_id: get(row, "external_id")?,
        delivery: optional_named(row, "delivery")?,
        delivery_reason: get(row, "delivery_reason")?,
    })
}

pub(super) fn assignment(row: &SqliteRow) -> StoreResult<AssignmentRecord> {
    Ok(AssignmentRecord {
        id: get(row, "id")?,
        workspace_id: workspace_id(row)?,
        conversation_id: ConversationId(get::<Uuid>(row, "conversation_id")?),
        from_operator: optional_uuid(row, "from_operator")?.map(MemberId),
        from_team: optional_uuid(row, "from_team")?.map(TeamId),
        to_operator: optional_uuid(row, "to_operator")?.map(MemberId),
        to_team: optional_uuid(row, "to_team")?.map(TeamId),
        reason: optional_named(row, "reason")?,
        actor: optional_uuid(row, "actor")?.map(MemberId),
        note: get(row, "note")?,
        at: time(get(row, "at")?)?,
    })
}

pub(super) fn canned_response(row: &SqliteRow) -> StoreResult<CannedResponseRecord> {
    let (shortcut, body): (String, String) = (get(row, "shortcut")?, get(row, "body")?);
    Ok(CannedResponseRecord {
        id: get(row, "id")?,
        workspace_id: workspace_id(row)?,
        response: CannedResponse::new(&shortcut, &body)
            .map_err(|e| StoreError::Corrupt(format!("canned response: {e}")))?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

pub(super) fn rating(row: &SqliteRow) -> StoreResult<CsatRecord> {
    let score: i64 = get(row, "score")?;
    let score = u8::try_from(score)
        .ok()
        .and_then(|s| Score::new(s).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("score {score}")))?;
    Ok(CsatRecord {
        id: get(row, "id")?,
        workspace_id: workspace_id(row)?,
        conversation_id: ConversationId(get::<Uuid>(row, "conversation_id")?),
        rating: Rating {
            operator: optional_uuid(row, "operator")?.map(MemberId),
            team: optional_uuid(row, "team_id")?.map(TeamId),
            score,
        },
        at: time(get(row, "at")?)?,
    })
}

pub(super) fn survey(row: &SqliteRow) -> StoreResult<PendingSurvey> {
    Ok(PendingSurvey {
        workspace_id: workspace_id(row)?,
        conversation_id: ConversationId(get::<Uuid>(row, "conversation_id")?),
        operator: optional_uuid(row, "operator")?.map(MemberId),
        team: optional_uuid(row, "team_id")?.map(TeamId),
        sent_at: time(get(row, "sent_at")?)?,
    })
}
