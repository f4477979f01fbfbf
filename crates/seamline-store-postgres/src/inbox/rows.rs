//! Inbox rows → domain values; stored values that no longer parse are `Corrupt`.

use seamline_core::inbox::csat::{Rating, Score};
use seamline_core::inbox::routing::Presence;
use seamline_core::inbox::template::CannedResponse;
use seamline_core::inbox::{Conversation, Message};
use seamline_core::{
    ConversationId, ConversationMessageId, MemberId, ProfileId, TeamId, WorkspaceId,
};
use seamline_store::codec::DeserializeOwned;
use seamline_store::*;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::rows::get;

fn json<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<T> {
    codec::from_json(crate::rows::json(row, column)?, column)
}

fn optional_json<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<Option<T>> {
    get::<Option<serde_json::Value>>(row, column)?
        .map(|value| codec::from_json(value, column))
        .transpose()
}

fn named<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<T> {
    codec::from_name(&get::<String>(row, column)?, column)
}

fn optional_named<T: DeserializeOwned>(row: &PgRow, column: &str) -> StoreResult<Option<T>> {
    get::<Option<String>>(row, column)?
        .map(|name| codec::from_name(&name, column))
        .transpose()
}

fn count(row: &PgRow, column: &str) -> StoreResult<u32> {
    let n: i64 = get(row, column)?;
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("{column} {n}")))
}

fn optional_uuid(row: &PgRow, column: &str) -> StoreResult<Option<Uuid>> {
    get(row, column)
}

fn workspace_id(row: &PgRow) -> StoreResult<WorkspaceId> {
    Ok(WorkspaceId(get::<Uuid>(row, "workspace_id")?))
}

pub(super) fn team(row: &PgRow) -> StoreResult<Team> {
    Ok(Team {
        id: TeamId(get::<Uuid>(row, "id")?),
        workspace_id: workspace_id(row)?,
        name: get(row, "name")?,
        routing: json(row, "routing")?,
        hours: optional_json(row, "hours")?,
        channels: json(row, "channels")?,
        bots: json(row, "bots")?,
        created_at: get(row, "created_at")?,
    })
}

pub(super) fn operator(row: &PgRow) -> StoreResult<OperatorState> {
    let capacity: Option<i64> = get(row, "capacity")?;
    Ok(OperatorState {
        member_id: MemberId(get::<Uuid>(row, "member_id")?),
        presence: optional_named(row, "presence")?.unwrap_or(Presence::Offline),
        presence_since: get(row, "presence_since")?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(|_| StoreError::Corrupt(format!("capacity {c}"))))
            .transpose()?,
        load: count(row, "load")?,
    })
}

pub(super) fn conversation(row: &PgRow) -> StoreResult<StoredConversation> {
    let status: String = get(row, "status")?;
    Ok(StoredConversation {
        workspace_id: workspace_id(row)?,
        conversation: Conversation {
            id: ConversationId(get::<Uuid>(row, "id")?),
            profile: ProfileId(get::<Uuid>(row, "profile_id")?),
            status: codec::status(&status, get(row, "snoozed_until")?)?,
            assignee: optional_uuid(row, "assignee")?.map(MemberId),
            team: optional_uuid(row, "team_id")?.map(TeamId),
            priority: named(row, "priority")?,
            labels: json(row, "labels")?,
            last_inbound_channel: optional_named(row, "last_inbound_channel")?,
            last_inbound_at: get(row, "last_inbound_at")?,
            waiting_since: get(row, "waiting_since")?,
            created_at: get(row, "created_at")?,
        },
        bot: json(row, "bot_state")?,
        last_message_at: get(row, "last_message_at")?,
        last_message_channel: optional_named(row, "last_message_channel")?,
        updated_at: get(row, "updated_at")?,
        unread: count(row, "unread")?,
        activity_seq: get(row, "activity_seq")?,
        version: get(row, "version")?,
    })
}

pub(super) fn message(row: &PgRow) -> StoreResult<StoredMessage> {
    Ok(StoredMessage {
        workspace_id: workspace_id(row)?,
        profile_id: ProfileId(get::<Uuid>(row, "profile_id")?),
        message: Message {
            id: ConversationMessageId(get::<Uuid>(row, "id")?),
            conversation: ConversationId(get::<Uuid>(row, "conversation_id")?),
            kind: json(row, "details")?,
            channel: named(row, "channel")?,
            body: get(row, "body")?,
            at: get(row, "at")?,
        },
        sender: get(row, "sender")?,
        attachments: json(row, "attachments")?,
        external_id: get(row, "external_id")?,
        delivery: optional_named(row, "delivery")?,
        delivery_reason: get(row, "delivery_reason")?,
    })
}

pub(super) fn assignment(row: &PgRow) -> StoreResult<AssignmentRecord> {
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
        at: get(row, "at")?,
    })
}

pub(super) fn canned_response(row: &PgRow) -> StoreResult<CannedResponseRecord> {
    let (shortcut, body): (String, String) = (get(row, "shortcut")?, get(row, "body")?);
    Ok(CannedResponseRecord {
        id: get(row, "id")?,
        workspace_id: workspace_id(row)?,
        response: CannedResponse::new(&shortcut, &body)
            .map_err(|e| StoreError::Corrupt(format!("canned response: {e}")))?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(super) fn rating(row: &PgRow) -> StoreResult<CsatRecord> {
    let score: i32 = get(row, "score")?;
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
        at: get(row, "at")?,
    })
}

pub(super) fn survey(row: &PgRow) -> StoreResult<PendingSurvey> {
    Ok(PendingSurvey {
        workspace_id: workspace_id(row)?,
        conversation_id: ConversationId(get::<Uuid>(row, "conversation_id")?),
        operator: optional_uuid(row, "operator")?.map(MemberId),
        team: optional_uuid(row, "team_id")?.map(TeamId),
        sent_at: get(row, "sent_at")?,
    })
}
