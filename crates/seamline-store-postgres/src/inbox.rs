//! The inbox: teams, operators, conversations and their messages, canned
//! responses, CSAT. A multi-step write is one transaction that first locks
//! the conversation rows it reads (`FOR UPDATE`), so what it writes back is
//! computed from their latest committed state; a profile's conversation is
//! created with `ON CONFLICT DO NOTHING`, so racing instances get one.

mod batch;
mod rows;

pub(crate) use batch::{conversations_for_profiles, insert_messages, write_conversations};

use chrono::{DateTime, Utc};
use seamline_core::inbox::bot::BotState;
use seamline_core::inbox::routing::Presence;
use seamline_core::inbox::{Channel, Priority, Status};
use seamline_core::{
    ConversationId, ConversationMessageId, MemberId, ProfileId, TeamId, WorkspaceId,
};
use seamline_store::*;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use crate::workspace::found;
use crate::{backend, conflict_or_backend};

/// The next activity seq: above every conversation's.
const NEXT_SEQ: &str = "nextval('conversation_activity')";

/// The message kinds that travel to or from the customer.
const CUSTOMER_KINDS: &str = "('inbound', 'outbound', 'bot')";

/// Whether `table` has row `id` in workspace `ws`.
async fn exists(
    conn: &mut PgConnection,
    table: &'static str,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<bool> {
    sqlx::query_scalar(&format!(
        "SELECT EXISTS (SELECT 1 FROM {table} WHERE workspace_id = $1 AND id = $2)"
    ))
    .bind(ws.as_uuid())
    .bind(id)
    .fetch_one(conn)
    .await
    .map_err(backend)
}

// Teams.

pub(crate) async fn create_team(pool: &PgPool, t: &Team) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO teams (id, workspace_id, name, routing, hours, channels, bots, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(t.id.as_uuid())
    .bind(t.workspace_id.as_uuid())
    .bind(&t.name)
    .bind(codec::json(&t.routing)?)
    .bind(t.hours.as_ref().map(codec::json).transpose()?)
    .bind(codec::json(&t.channels)?)
    .bind(codec::json(&t.bots)?)
    .bind(t.created_at)
    .execute(pool)
    .await
    .map_err(conflict_or_backend("team"))?;
    Ok(())
}

pub(crate) async fn update_team(pool: &PgPool, t: &Team) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE teams SET name = $1, routing = $2, hours = $3, channels = $4, bots = $5
         WHERE workspace_id = $6 AND id = $7",
    )
    .bind(&t.name)
    .bind(codec::json(&t.routing)?)
    .bind(t.hours.as_ref().map(codec::json).transpose()?)
    .bind(codec::json(&t.channels)?)
    .bind(codec::json(&t.bots)?)
    .bind(t.workspace_id.as_uuid())
    .bind(t.id.as_uuid())
    .execute(pool)
    .await
    .map_err(conflict_or_backend("team"))?;
    found(done.rows_affected(), "team")
}

/// Its conversations lose the team (a new version, so a writer holding the
/// old one cannot put it back) and its memberships go.
pub(crate) async fn delete_team(pool: &PgPool, ws: WorkspaceId, id: TeamId) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query(
        "UPDATE conversations SET team_id = NULL, version = version + 1
         WHERE workspace_id = $1 AND team_id = $2",
    )
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    let done = sqlx::query("DELETE FROM teams WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "team")?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn team(pool: &PgPool, ws: WorkspaceId, id: TeamId) -> StoreResult<Option<Team>> {
    let row = sqlx::query("SELECT * FROM teams WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::team).transpose()
}

pub(crate) async fn list_teams(pool: &PgPool, ws: WorkspaceId) -> StoreResult<Vec<Team>> {
    let found = sqlx::query("SELECT * FROM teams WHERE workspace_id = $1 ORDER BY name, id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    found.iter().map(rows::team).collect()
}

pub(crate) async fn add_team_member(
    pool: &PgPool,
    ws: WorkspaceId,
    team: TeamId,
    member: MemberId,
) -> StoreResult<()> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    for (table, id, what) in [
        ("teams", team.as_uuid(), "team"),
        ("members", member.as_uuid(), "member"),
    ] {
        if !exists(&mut conn, table, ws, id).await? {
            return Err(StoreError::NotFound(what));
        }
    }
    sqlx::query(
        "INSERT INTO team_members (workspace_id, team_id, member_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(ws.as_uuid())
    .bind(team.as_uuid())
    .bind(member.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn remove_team_member(
    pool: &PgPool,
    ws: WorkspaceId,
    team: TeamId,
    member: MemberId,
) -> StoreResult<()> {
    sqlx::query(
        "DELETE FROM team_members WHERE workspace_id = $1 AND team_id = $2 AND member_id = $3",
    )
    .bind(ws.as_uuid())
    .bind(team.as_uuid())
    .bind(member.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn member_teams(
    pool: &PgPool,
    ws: WorkspaceId,
    member: MemberId,
) -> StoreResult<Vec<TeamId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT t.id FROM team_members tm JOIN teams t ON t.id = tm.team_id
         WHERE tm.workspace_id = $1 AND tm.member_id = $2 ORDER BY t.name, t.id",
    )
    .bind(ws.as_uuid())
    .bind(member.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(ids.into_iter().map(TeamId).collect())
}

pub(crate) async fn routing_cursor(
    pool: &PgPool,
    ws: WorkspaceId,
    team: TeamId,
) -> StoreResult<Option<MemberId>> {
    let cursor: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT routing_cursor FROM teams WHERE workspace_id = $1 AND id = $2")
            .bind(ws.as_uuid())
            .bind(team.as_uuid())
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    cursor
        .map(|c| c.map(MemberId))
        .ok_or(StoreError::NotFound("team"))
}

// Operators.

pub(crate) async fn set_presence(
    pool: &PgPool,
    ws: WorkspaceId,
    member: MemberId,
    presence: Presence,
    at: DateTime<Utc>,
) -> StoreResult<OperatorState> {
    let done = sqlx::query(
        "INSERT INTO operators (member_id, workspace_id, presence, presence_since)
         SELECT id, workspace_id, $3, $4 FROM members WHERE workspace_id = $1 AND id = $2
         ON CONFLICT (member_id) DO UPDATE SET
           presence = excluded.presence,
           presence_since = CASE
             WHEN operators.presence = excluded.presence AND operators.presence_since IS NOT NULL
             THEN operators.presence_since ELSE excluded.presence_since END",
    )
    .bind(ws.as_uuid())
    .bind(member.as_uuid())
    .bind(presence.as_str())
    .bind(at)
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "member")?;
    operator(pool, ws, member)
        .await?
        .ok_or(StoreError::NotFound("member"))
}

pub(crate) async fn set_capacity(
    pool: &PgPool,
    ws: WorkspaceId,
    member: MemberId,
    capacity: Option<u32>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO operators (member_id, workspace_id, presence, capacity)
         SELECT id, workspace_id, $3, $4 FROM members WHERE workspace_id = $1 AND id = $2
         ON CONFLICT (member_id) DO UPDATE SET capacity = excluded.capacity",
    )
    .bind(ws.as_uuid())
    .bind(member.as_uuid())
    .bind(Presence::Offline.as_str())
    .bind(capacity.map(i64::from))
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "member")
}

/// Members with their presence, capacity and load; filtered and ordered by the caller.
const OPERATORS: &str = "SELECT m.id AS member_id, o.presence, o.presence_since, o.capacity,
       (SELECT COUNT(*) FROM conversations c
        WHERE c.workspace_id = m.workspace_id AND c.assignee = m.id AND c.status <> 'resolved') AS load
     FROM members m LEFT JOIN operators o ON o.member_id = m.id
     WHERE m.workspace_id = ";

pub(crate) async fn operator(
    pool: &PgPool,
    ws: WorkspaceId,
    member: MemberId,
) -> StoreResult<Option<OperatorState>> {
    let mut select: QueryBuilder<Postgres> = QueryBuilder::new(OPERATORS);
    select
        .push_bind(ws.as_uuid())
        .push(" AND m.id = ")
        .push_bind(member.as_uuid());
    let row = select.build().fetch_optional(pool).await.map_err(backend)?;
    row.as_ref().map(rows::operator).transpose()
}

pub(crate) async fn operators(
    pool: &PgPool,
    ws: WorkspaceId,
    team: Option<TeamId>,
) -> StoreResult<Vec<OperatorState>> {
    let mut select: QueryBuilder<Postgres> = QueryBuilder::new(OPERATORS);
    select.push_bind(ws.as_uuid());
    if let Some(team) = team {
        select
            .push(" AND m.id IN (SELECT member_id FROM team_members WHERE workspace_id = ")
            .push_bind(ws.as_uuid())
            .push(" AND team_id = ")
            .push_bind(team.as_uuid())
            .push(")");
    }
    select.push(" ORDER BY m.id");
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::operator).collect()
}

// Conversations.

/// The profile's conversation, locked until the end of the transaction.
async fn conversation_of(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Option<StoredConversation>> {
    let row = sqlx::query(
        "SELECT * FROM conversations WHERE workspace_id = $1 AND profile_id = $2 FOR UPDATE",
    )
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::conversation).transpose()
}

/// The conversation, locked until the end of the transaction.
async fn read_conversation(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: ConversationId,
) -> StoreResult<Option<StoredConversation>> {
    let row =
        sqlx::query("SELECT * FROM conversations WHERE workspace_id = $1 AND id = $2 FOR UPDATE")
            .bind(ws.as_uuid())
            .bind(id.as_uuid())
            .fetch_optional(conn)
            .await
            .map_err(backend)?;
    row.as_ref().map(rows::conversation).transpose()
}

async fn must_conversation(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    id: ConversationId,
) -> StoreResult<StoredConversation> {
    read_conversation(conn, ws, id)
        .await?
        .ok_or(StoreError::NotFound("conversation"))
}

/// Opens a conversation for `profile` (of the workspace) unless it has
/// one: the conversation opened, if it was. A racing insert for the same
/// profile waits for this one.
async fn open_conversation(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<Option<StoredConversation>> {
    let (status, _) = codec::status_columns(&Status::Open);
    let created = sqlx::query(&format!(
        "INSERT INTO conversations (id, workspace_id, profile_id, status, priority, labels, bot_state,
                                    created_at, updated_at, unread, activity_seq, version)
         SELECT $3, $1, id, $4, $5, '[]', $6, $7, $7, 0, {NEXT_SEQ}, 1
         FROM profiles WHERE workspace_id = $1 AND id = $2
         ON CONFLICT (workspace_id, profile_id) DO NOTHING
         RETURNING *"
    ))
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .bind(Uuid::now_v7())
    .bind(status)
    .bind(Priority::None.as_str())
    .bind(codec::json(&BotState::NotStarted)?)
    .bind(at)
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    created.as_ref().map(rows::conversation).transpose()
}

/// Writes every column a conversation's state has, one version up; with
/// `touch`, it also moves to the top of the activity order. Returns it as
/// written.
async fn write_conversation(
    conn: &mut PgConnection,
    c: &StoredConversation,
    touch: bool,
) -> StoreResult<StoredConversation> {
    let conv = &c.conversation;
    let (status, snoozed_until) = codec::status_columns(&conv.status);
    let seq = if touch { NEXT_SEQ } else { "activity_seq" };
    let row = sqlx::query(&format!(
        "UPDATE conversations SET status = $3, snoozed_until = $4, assignee = $5, team_id = $6,
           priority = $7, labels = $8, last_inbound_channel = $9, last_inbound_at = $10,
           waiting_since = $11, bot_state = $12, created_at = $13, updated_at = $14,
           last_message_at = $15, last_message_channel = $16, unread = $17,
           activity_seq = {seq}, version = version + 1
         WHERE workspace_id = $1 AND id = $2
         RETURNING *"
    ))
    .bind(c.workspace_id.as_uuid())
    .bind(conv.id.as_uuid())
    .bind(status)
    .bind(snoozed_until)
    .bind(conv.assignee.map(|m| m.as_uuid()))
    .bind(conv.team.map(|t| t.as_uuid()))
    .bind(conv.priority.as_str())
    .bind(codec::json(&conv.labels)?)
    .bind(conv.last_inbound_channel.map(Channel::as_str))
    .bind(conv.last_inbound_at)
    .bind(conv.waiting_since)
    .bind(codec::json(&c.bot)?)
    .bind(conv.created_at)
    .bind(c.updated_at)
    .bind(c.last_message_at)
    .bind(c.last_message_channel.map(Channel::as_str))
    .bind(i64::from(c.unread))
    .fetch_one(conn)
    .await
    .map_err(backend)?;
    rows::conversation(&row)
}

pub(crate) async fn conversation_for_profile(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<(StoredConversation, bool)> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let done = conversation_for_profile_in(&mut tx, ws, profile, at).await?;
    tx.commit().await.map_err(backend)?;
    Ok(done)
}

pub(crate) async fn conversation_for_profile_in(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    profile: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<(StoredConversation, bool)> {
    // One statement either way: the live profile's conversation, locked, or
    // one opened for it. (The conversation is found through a scalar
    // subquery, so the plan searches it by its profile even on tables
    // without statistics.) A second try finds one a racer opened first.
    let (status, _) = codec::status_columns(&Status::Open);
    let sql = format!(
        "WITH live AS (
           SELECT COALESCE(merged_into, id) AS id FROM profiles WHERE workspace_id = $1 AND id = $2
         ), found AS (
           SELECT * FROM conversations
           WHERE workspace_id = $1 AND profile_id = (SELECT id FROM live)
           FOR UPDATE
         ), opened AS (
           INSERT INTO conversations (id, workspace_id, profile_id, status, priority, labels, bot_state,
                                      created_at, updated_at, unread, activity_seq, version)
           SELECT $3, $1, id, $4, $5, '[]', $6, $7, $7, 0, {NEXT_SEQ}, 1 FROM live
           WHERE NOT EXISTS (SELECT 1 FROM found)
           ON CONFLICT (workspace_id, profile_id) DO NOTHING
           RETURNING *
         )
         SELECT FALSE AS opened, * FROM found UNION ALL SELECT TRUE AS opened, * FROM opened"
    );
    for _ in 0..2 {
        let row = sqlx::query(&sql)
            .bind(ws.as_uuid())
            .bind(profile.as_uuid())
            .bind(Uuid::now_v7())
            .bind(status)
            .bind(Priority::None.as_str())
            .bind(codec::json(&BotState::NotStarted)?)
            .bind(at)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        if let Some(row) = row {
            let opened: bool = row.try_get("opened").map_err(backend)?;
            return Ok((rows::conversation(&row)?, opened));
        }
    }
    Err(StoreError::NotFound("profile"))
}

pub(crate) async fn conversation(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationId,
) -> StoreResult<Option<StoredConversation>> {
    let row = sqlx::query("SELECT * FROM conversations WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::conversation).transpose()
}

pub(crate) async fn update_conversation(
    pool: &PgPool,
    ws: WorkspaceId,
    u: &ConversationUpdate,
) -> StoreResult<StoredConversation> {
    let id = u.conversation.id;
    let mut tx = pool.begin().await.map_err(backend)?;
    let current = must_conversation(&mut tx, ws, id).await?;
    if current.version != u.version {
        return Err(StoreError::Conflict("conversation version"));
    }
    let next = u.applied_to(&current);
    let (conv, was) = (&next.conversation, &current.conversation);
    let members = conv.assignee.into_iter().chain(u.cursor.map(|c| c.to));
    for member in members {
        if !exists(&mut tx, "members", ws, member.as_uuid()).await? {
            return Err(StoreError::NotFound("member"));
        }
    }
    if let Some(team) = conv.team {
        if !exists(&mut tx, "teams", ws, team.as_uuid()).await? {
            return Err(StoreError::NotFound("team"));
        }
    }
    if let Some(turn) = u.cursor {
        let moved = sqlx::query(
            "UPDATE teams SET routing_cursor = $1
             WHERE workspace_id = $2 AND id = $3 AND routing_cursor IS NOT DISTINCT FROM $4",
        )
        .bind(turn.to.as_uuid())
        .bind(ws.as_uuid())
        .bind(turn.team.as_uuid())
        .bind(turn.from.map(|m| m.as_uuid()))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if moved.rows_affected() == 0 {
            return Err(
                if exists(&mut tx, "teams", ws, turn.team.as_uuid()).await? {
                    StoreError::Conflict("routing cursor")
                } else {
                    StoreError::NotFound("team")
                },
            );
        }
    }
    write_conversation(&mut tx, &next, false).await?;
    if (conv.assignee, conv.team) != (was.assignee, was.team) {
        let cause = u.assignment.as_ref();
        sqlx::query(
            "INSERT INTO assignment_audit (id, workspace_id, conversation_id, from_operator, from_team,
                                           to_operator, to_team, reason, actor, note, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .bind(was.assignee.map(|m| m.as_uuid()))
        .bind(was.team.map(|t| t.as_uuid()))
        .bind(conv.assignee.map(|m| m.as_uuid()))
        .bind(conv.team.map(|t| t.as_uuid()))
        .bind(cause.map(|c| codec::name(&c.reason)).transpose()?)
        .bind(cause.and_then(|c| c.actor).map(|m| m.as_uuid()))
        .bind(cause.and_then(|c| c.note.as_deref()))
        .bind(u.at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    }
    let written = must_conversation(&mut tx, ws, id).await?;
    tx.commit().await.map_err(backend)?;
    Ok(written)
}

pub(crate) async fn mark_read(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationId,
) -> StoreResult<()> {
    let done =
        sqlx::query("UPDATE conversations SET unread = 0 WHERE workspace_id = $1 AND id = $2")
            .bind(ws.as_uuid())
            .bind(id.as_uuid())
            .execute(pool)
            .await
            .map_err(backend)?;
    found(done.rows_affected(), "conversation")
}

pub(crate) async fn list_conversations(
    pool: &PgPool,
    ws: WorkspaceId,
    q: &ConversationQuery,
) -> StoreResult<Vec<StoredConversation>> {
    let mut select: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM conversations c WHERE c.workspace_id = ");
    select.push_bind(ws.as_uuid());
    match q.assignee {
        AssigneeFilter::Anyone => {}
        AssigneeFilter::Unassigned => {
            select.push(" AND c.assignee IS NULL");
        }
        AssigneeFilter::Operator(member) => {
            select
                .push(" AND c.assignee = ")
                .push_bind(member.as_uuid());
        }
    }
    if !q.teams.is_empty() {
        let teams: Vec<Uuid> = q.teams.iter().map(|t| t.as_uuid()).collect();
        select
            .push(" AND c.team_id = ANY(")
            .push_bind(teams)
            .push(")");
    }
    if !q.statuses.is_empty() {
        let statuses: Vec<&str> = q.statuses.iter().map(|s| s.as_str()).collect();
        select
            .push(" AND c.status = ANY(")
            .push_bind(statuses)
            .push(")");
    }
    if let Some(channel) = q.channel {
        select
            .push(" AND c.last_message_channel = ")
            .push_bind(channel.as_str());
    }
    if let Some(label) = &q.label {
        select
            .push(" AND c.labels @> jsonb_build_array(")
            .push_bind(label.as_str().to_owned())
            .push("::text)");
    }
    if let Some(seq) = q.after_seq {
        select.push(" AND c.activity_seq < ").push_bind(seq);
    }
    select
        .push(" ORDER BY c.activity_seq DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::conversation).collect()
}

pub(crate) async fn assignment_history(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationId,
) -> StoreResult<Vec<AssignmentRecord>> {
    let found = sqlx::query(
        "SELECT * FROM assignment_audit WHERE workspace_id = $1 AND conversation_id = $2 ORDER BY at, id",
    )
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    found.iter().map(rows::assignment).collect()
}

// Messages.

pub(crate) async fn append_message(
    pool: &PgPool,
    ws: WorkspaceId,
    m: &NewMessage,
) -> StoreResult<AppendedMessage> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let done = append_message_in(&mut tx, ws, m).await?;
    tx.commit().await.map_err(backend)?;
    Ok(done)
}

pub(crate) async fn append_message_in(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    m: &NewMessage,
) -> StoreResult<AppendedMessage> {
    let current = must_conversation(&mut *conn, ws, m.message.conversation).await?;
    append_message_to(conn, ws, &current, m).await
}

/// Appends `m` to `current`, the conversation as this transaction read (and
/// locked) it.
pub(crate) async fn append_message_to(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    current: &StoredConversation,
    m: &NewMessage,
) -> StoreResult<AppendedMessage> {
    let message = &m.message;
    if current.conversation.id != message.conversation {
        return Err(StoreError::Conflict(
            "the message names another conversation",
        ));
    }
    let placed = [(current.conversation.profile, m)];
    let Some(stored) = insert_messages(&mut *conn, ws, &placed).await?.pop() else {
        return stored_instead(conn, ws, m).await;
    };
    let (next, reopened) = appended(current, message);
    let conversation = write_conversation(&mut *conn, &next, true).await?;
    Ok(AppendedMessage {
        message: stored,
        new: true,
        conversation,
        reopened,
    })
}

/// The answer to `m` when it was stored before: the stored message (the
/// same id, or the same provider id), and its conversation.
pub(crate) async fn stored_instead(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    m: &NewMessage,
) -> StoreResult<AppendedMessage> {
    let row = sqlx::query(
        "SELECT * FROM conversation_messages
         WHERE workspace_id = $1 AND (id = $2 OR (channel = $3 AND external_id = $4))",
    )
    .bind(ws.as_uuid())
    .bind(m.message.id.as_uuid())
    .bind(m.message.channel.as_str())
    .bind(&m.external_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let stored = row
        .as_ref()
        .map(rows::message)
        .transpose()?
        .ok_or(StoreError::Conflict("message id"))?;
    let conversation = must_conversation(&mut *conn, ws, stored.message.conversation).await?;
    Ok(AppendedMessage {
        message: stored,
        new: false,
        conversation,
        reopened: None,
    })
}

pub(crate) async fn list_messages(
    pool: &PgPool,
    ws: WorkspaceId,
    conversation: ConversationId,
    q: &MessageQuery,
) -> StoreResult<Vec<StoredMessage>> {
    let mut select: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT * FROM conversation_messages WHERE workspace_id = ");
    select
        .push_bind(ws.as_uuid())
        .push(" AND conversation_id = ")
        .push_bind(conversation.as_uuid());
    let (beyond, direction) = match q.order {
        Order::OldestFirst => (">", "ASC"),
        Order::NewestFirst => ("<", "DESC"),
    };
    if let Some((at, id)) = q.after {
        select
            .push(format!(" AND (at, id) {beyond} ("))
            .push_bind(at)
            .push(", ")
            .push_bind(id.as_uuid())
            .push(")");
    }
    select
        .push(format!(" ORDER BY at {direction}, id {direction} LIMIT "))
        .push_bind(i64::from(q.limit));
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::message).collect()
}

pub(crate) async fn message_by_external_id(
    pool: &PgPool,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Option<StoredMessage>> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    message_by_external_id_in(&mut conn, ws, channel, external_id).await
}

pub(crate) async fn message_by_external_id_in(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    channel: Channel,
    external_id: &str,
) -> StoreResult<Option<StoredMessage>> {
    let found = messages_by_external_id_in(conn, ws, &[(channel, external_id)]).await?;
    Ok(found.into_iter().next())
}

pub(crate) async fn messages_by_external_id_in(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    wanted: &[(Channel, &str)],
) -> StoreResult<Vec<StoredMessage>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let (channels, ids): (Vec<&str>, Vec<&str>) = wanted
        .iter()
        .map(|(channel, id)| (channel.as_str(), *id))
        .unzip();
    let found = sqlx::query(
        "SELECT m.* FROM conversation_messages m
         JOIN UNNEST($2::text[], $3::text[]) AS w(channel, external_id)
           ON m.channel = w.channel AND m.external_id = w.external_id
         WHERE m.workspace_id = $1",
    )
    .bind(ws.as_uuid())
    .bind(channels)
    .bind(ids)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    found.iter().map(rows::message).collect()
}

pub(crate) async fn set_delivery(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ConversationMessageId,
    status: DeliveryStatus,
    reason: Option<&str>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE conversation_messages SET delivery = $1, delivery_reason = $2 WHERE workspace_id = $3 AND id = $4",
    )
    .bind(codec::name(&status)?)
    .bind(reason)
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "message")
}

pub(crate) async fn last_operator(
    pool: &PgPool,
    ws: WorkspaceId,
    conversation: ConversationId,
) -> StoreResult<Option<MemberId>> {
    let actor: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT actor FROM conversation_messages
         WHERE workspace_id = $1 AND conversation_id = $2 AND kind = 'outbound'
         ORDER BY at DESC, id DESC LIMIT 1",
    )
    .bind(ws.as_uuid())
    .bind(conversation.as_uuid())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(actor.flatten().map(MemberId))
}

/// The files of every message written for the person (the profile and
/// those merged into it) or in their conversation: what an erase removes
/// from the blob store.
pub(crate) async fn person_attachments(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Vec<Attachment>> {
    let person = crate::profiles::PERSON;
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(&format!(
        "SELECT attachments FROM conversation_messages
         WHERE workspace_id = $1 AND attachments <> '[]'::jsonb
           AND (profile_id IN {person} OR conversation_id IN
             (SELECT id FROM conversations WHERE workspace_id = $1 AND profile_id IN {person}))"
    ))
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let mut files = Vec::new();
    for text in rows {
        let listed: Vec<Attachment> = codec::from_json(text, "attachments")?;
        files.extend(listed);
    }
    Ok(files)
}

/// The conversations whose notes mention `member` since `since`, the
/// latest mention first.
pub(crate) async fn mentioned_in(
    pool: &PgPool,
    ws: WorkspaceId,
    member: MemberId,
    since: DateTime<Utc>,
    limit: u32,
) -> StoreResult<Vec<ConversationId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT conversation_id FROM conversation_messages
         WHERE workspace_id = $1 AND at >= $3 AND kind = 'note' AND details -> 'mentions' ? $2::text
         GROUP BY conversation_id ORDER BY MAX(at) DESC LIMIT $4",
    )
    .bind(ws.as_uuid())
    .bind(member.as_uuid().to_string())
    .bind(since)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    Ok(ids.into_iter().map(ConversationId).collect())
}

// Merges and splits.

pub(crate) async fn merge_conversations(
    pool: &PgPool,
    ws: WorkspaceId,
    survivor: ProfileId,
    absorbed: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<Option<StoredConversation>> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let done = merge_conversations_in(&mut tx, ws, survivor, absorbed, at).await?;
    tx.commit().await.map_err(backend)?;
    Ok(done)
}

pub(crate) async fn merge_conversations_in(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    survivor: ProfileId,
    absorbed: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<Option<StoredConversation>> {
    // Both rows in one order, so merges racing the other way wait, not deadlock.
    sqlx::query(
        "SELECT id FROM conversations WHERE workspace_id = $1 AND profile_id IN ($2, $3)
         ORDER BY id FOR UPDATE",
    )
    .bind(ws.as_uuid())
    .bind(survivor.as_uuid())
    .bind(absorbed.as_uuid())
    .execute(&mut *conn)
    .await
    .map_err(backend)?;
    let kept = conversation_of(&mut *conn, ws, survivor).await?;
    let gone = match conversation_of(&mut *conn, ws, absorbed).await? {
        Some(gone) if survivor != absorbed => gone,
        _ => return Ok(kept),
    };
    let id = match kept {
        None => {
            sqlx::query(
                "UPDATE conversations SET profile_id = $1, updated_at = $2, version = version + 1
                 WHERE workspace_id = $3 AND id = $4",
            )
            .bind(survivor.as_uuid())
            .bind(at)
            .bind(ws.as_uuid())
            .bind(gone.conversation.id.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            gone.conversation.id
        }
        Some(kept) => {
            for table in ["conversation_messages", "csat_ratings", "assignment_audit"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET conversation_id = $1 WHERE workspace_id = $2 AND conversation_id = $3"
                ))
                .bind(kept.conversation.id.as_uuid())
                .bind(ws.as_uuid())
                .bind(gone.conversation.id.as_uuid())
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            }
            sqlx::query("DELETE FROM conversations WHERE workspace_id = $1 AND id = $2")
                .bind(ws.as_uuid())
                .bind(gone.conversation.id.as_uuid())
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
            write_conversation(&mut *conn, &merged(&kept, &gone, at), true).await?;
            kept.conversation.id
        }
    };
    let merged = must_conversation(&mut *conn, ws, id).await?;
    Ok(Some(merged))
}

/// `$3`: the profile split off, and the profiles now merged into it.
const SPLIT_OFF: &str =
    "(SELECT $3::uuid UNION SELECT id FROM profiles WHERE workspace_id = $1 AND merged_into = $3)";

pub(crate) async fn split_conversation(
    pool: &PgPool,
    ws: WorkspaceId,
    from: ProfileId,
    split_off: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<Option<StoredConversation>> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let source = match conversation_of(&mut tx, ws, from).await? {
        Some(source) if from != split_off => source,
        _ => return conversation_of(&mut tx, ws, split_off).await,
    };
    let moving: i64 = sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM conversation_messages
         WHERE workspace_id = $1 AND conversation_id = $2 AND profile_id IN {SPLIT_OFF}"
    ))
    .bind(ws.as_uuid())
    .bind(source.conversation.id.as_uuid())
    .bind(split_off.as_uuid())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if moving == 0 {
        return conversation_of(&mut tx, ws, split_off).await;
    }
    open_conversation(&mut tx, ws, split_off, at).await?;
    let target = conversation_of(&mut tx, ws, split_off)
        .await?
        .ok_or(StoreError::NotFound("profile"))?;
    sqlx::query(&format!(
        "UPDATE conversation_messages SET conversation_id = $4
         WHERE workspace_id = $1 AND conversation_id = $2 AND profile_id IN {SPLIT_OFF}"
    ))
    .bind(ws.as_uuid())
    .bind(source.conversation.id.as_uuid())
    .bind(split_off.as_uuid())
    .bind(target.conversation.id.as_uuid())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    for conversation in [source, target.clone()] {
        let refreshed = with_latest_messages(&mut tx, conversation, at).await?;
        write_conversation(&mut tx, &refreshed, true).await?;
    }
    let split = must_conversation(&mut tx, ws, target.conversation.id).await?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(split))
}

/// `c` with its latest message and latest customer message read from its messages.
async fn with_latest_messages(
    conn: &mut PgConnection,
    mut c: StoredConversation,
    at: DateTime<Utc>,
) -> StoreResult<StoredConversation> {
    let message = latest(conn, &c, CUSTOMER_KINDS).await?;
    let inbound = latest(conn, &c, "('inbound')").await?;
    c.last_message_at = message.map(|(at, _)| at);
    c.last_message_channel = message.map(|(_, channel)| channel);
    c.conversation.last_inbound_at = inbound.map(|(at, _)| at);
    c.conversation.last_inbound_channel = inbound.map(|(_, channel)| channel);
    c.updated_at = at;
    Ok(c)
}

/// The time and channel of `c`'s latest message of one of `kinds`.
async fn latest(
    conn: &mut PgConnection,
    c: &StoredConversation,
    kinds: &str,
) -> StoreResult<Option<(DateTime<Utc>, Channel)>> {
    let row: Option<(DateTime<Utc>, String)> = sqlx::query_as(&format!(
        "SELECT at, channel FROM conversation_messages
         WHERE workspace_id = $1 AND conversation_id = $2 AND kind IN {kinds}
         ORDER BY at DESC, id DESC LIMIT 1"
    ))
    .bind(c.workspace_id.as_uuid())
    .bind(c.conversation.id.as_uuid())
    .fetch_optional(conn)
    .await
    .map_err(backend)?;
    row.map(|(at, channel)| Ok((at, codec::from_name(&channel, "channel")?)))
        .transpose()
}

// Canned responses.

pub(crate) async fn create_canned_response(
    pool: &PgPool,
    r: &CannedResponseRecord,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO canned_responses (id, workspace_id, shortcut, body, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(r.id)
    .bind(r.workspace_id.as_uuid())
    .bind(&r.response.shortcut)
    .bind(r.response.template.as_str())
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(pool)
    .await
    .map_err(conflict_or_backend("canned response"))?;
    Ok(())
}

pub(crate) async fn update_canned_response(
    pool: &PgPool,
    r: &CannedResponseRecord,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE canned_responses SET shortcut = $1, body = $2, updated_at = $3
         WHERE workspace_id = $4 AND id = $5",
    )
    .bind(&r.response.shortcut)
    .bind(r.response.template.as_str())
    .bind(r.updated_at)
    .bind(r.workspace_id.as_uuid())
    .bind(r.id)
    .execute(pool)
    .await
    .map_err(conflict_or_backend("canned response"))?;
    found(done.rows_affected(), "canned response")
}

pub(crate) async fn delete_canned_response(
    pool: &PgPool,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<()> {
    let done = sqlx::query("DELETE FROM canned_responses WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id)
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "canned response")
}

pub(crate) async fn canned_responses(
    pool: &PgPool,
    ws: WorkspaceId,
) -> StoreResult<Vec<CannedResponseRecord>> {
    let found =
        sqlx::query("SELECT * FROM canned_responses WHERE workspace_id = $1 ORDER BY shortcut")
            .bind(ws.as_uuid())
            .fetch_all(pool)
            .await
            .map_err(backend)?;
    found.iter().map(rows::canned_response).collect()
}

// CSAT.

pub(crate) async fn record_rating(pool: &PgPool, r: &CsatRecord) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO csat_ratings (id, workspace_id, conversation_id, operator, team_id, score, at)
         SELECT $1, workspace_id, id, $2, $3, $4, $5 FROM conversations WHERE workspace_id = $6 AND id = $7",
    )
    .bind(r.id)
    .bind(r.rating.operator.map(|m| m.as_uuid()))
    .bind(r.rating.team.map(|t| t.as_uuid()))
    .bind(i32::from(r.rating.score.get()))
    .bind(r.at)
    .bind(r.workspace_id.as_uuid())
    .bind(r.conversation_id.as_uuid())
    .execute(pool)
    .await
    .map_err(conflict_or_backend("rating"))?;
    found(done.rows_affected(), "conversation")
}

pub(crate) async fn ratings(
    pool: &PgPool,
    ws: WorkspaceId,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> StoreResult<Vec<CsatRecord>> {
    let found = sqlx::query(
        "SELECT * FROM csat_ratings WHERE workspace_id = $1 AND at >= $2 AND at < $3 ORDER BY at, id",
    )
    .bind(ws.as_uuid())
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    found.iter().map(rows::rating).collect()
}

pub(crate) async fn open_survey(pool: &PgPool, s: &PendingSurvey) -> StoreResult<bool> {
    let conversation =
        sqlx::query("SELECT 1 FROM conversations WHERE workspace_id = $1 AND id = $2")
            .bind(s.workspace_id.as_uuid())
            .bind(s.conversation_id.as_uuid())
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    if conversation.is_none() {
        return Err(StoreError::NotFound("conversation"));
    }
    let done = sqlx::query(
        "INSERT INTO csat_surveys (conversation_id, workspace_id, operator, team_id, sent_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (conversation_id) DO NOTHING",
    )
    .bind(s.conversation_id.as_uuid())
    .bind(s.workspace_id.as_uuid())
    .bind(s.operator.map(|m| m.as_uuid()))
    .bind(s.team.map(|t| t.as_uuid()))
    .bind(s.sent_at)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(done.rows_affected() == 1)
}

pub(crate) async fn take_survey(
    pool: &PgPool,
    ws: WorkspaceId,
    conversation: ConversationId,
) -> StoreResult<Option<PendingSurvey>> {
    let taken = sqlx::query(
        "DELETE FROM csat_surveys WHERE workspace_id = $1 AND conversation_id = $2 RETURNING *",
    )
    .bind(ws.as_uuid())
    .bind(conversation.as_uuid())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    taken.as_ref().map(rows::survey).transpose()
}

// Erasure.

/// What erasing `person` (a subquery of the erased profile and those merged
/// into it, binding `$1` workspace and `$2` profile) does to the inbox: the
/// bodies, senders, attachments, provider ids and delivery errors of every
/// message written for the person or in their conversation become
/// `[erased]` or nothing, and what the bot collected and transfer notes go.
/// The rows stay for counts and response times.
pub(crate) fn erase_statements(person: &str) -> [String; 3] {
    let conversations = format!(
        "(SELECT id FROM conversations WHERE workspace_id = $1 AND profile_id IN {person})"
    );
    [
        format!(
            "UPDATE conversation_messages SET body = '[erased]', sender = NULL, attachments = '[]',
               external_id = NULL, delivery_reason = NULL,
               details = CASE WHEN details #> '{{event,collected}}' IS NOT NULL
                 THEN jsonb_set(details, '{{event,collected}}', '[]') ELSE details END
             WHERE workspace_id = $1 AND (profile_id IN {person} OR conversation_id IN {conversations})"
        ),
        format!(
            "UPDATE conversations SET bot_state = CASE WHEN bot_state -> 'collected' IS NOT NULL
                 THEN jsonb_set(bot_state, '{{collected}}', '[]') ELSE bot_state END
             WHERE workspace_id = $1 AND profile_id IN {person}"
        ),
        format!(
            "UPDATE assignment_audit SET note = NULL
             WHERE workspace_id = $1 AND conversation_id IN {conversations}"
        ),
    ]
}
