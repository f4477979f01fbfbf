//! An inbound batch's conversations and messages as sets: whatever the
//! batch's size, its senders' conversations are found or opened in one
//! statement, its messages inserted in one, and the conversations they
//! changed written in one ([`MessageSets`]).

use chrono::{DateTime, Utc};
use seamline_core::inbox::bot::BotState;
use seamline_core::inbox::{Channel, Priority, Status};
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{conversation_for_profile_in, rows, NEXT_SEQ};
use crate::backend;

/// [`InboundTx::conversations_for_profiles`]: the conversations of the
/// asked profiles' live profiles, locked, with those missing opened.
pub(crate) async fn conversations_for_profiles(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    asked: &[(ProfileId, DateTime<Utc>)],
) -> StoreResult<Vec<(StoredConversation, bool)>> {
    // Each asked profile's live one; the conversations they have, locked;
    // one opened per live profile that has none (at its first asked
    // time); then an answer per asked profile, in order. The found ones
    // are searched by an array of profiles, so the plan uses the index
    // even on tables without statistics.
    if asked.is_empty() {
        return Ok(Vec::new());
    }
    let (status, _) = codec::status_columns(&Status::Open);
    let sql = format!(
        "WITH asked AS (
           SELECT a.ord, COALESCE(p.merged_into, p.id) AS live, a.at, a.new_id
           FROM UNNEST($2::uuid[], $3::timestamptz[], $4::uuid[]) WITH ORDINALITY AS a(profile, at, new_id, ord)
           JOIN profiles p ON p.workspace_id = $1 AND p.id = a.profile
         ), found AS (
           SELECT * FROM conversations
           WHERE workspace_id = $1 AND profile_id = ANY(ARRAY(SELECT live FROM asked))
           FOR UPDATE
         ), opening AS (
           SELECT DISTINCT ON (live) live, at, new_id FROM asked
           WHERE live NOT IN (SELECT profile_id FROM found)
           ORDER BY live, ord
         ), opened AS (
           INSERT INTO conversations (id, workspace_id, profile_id, status, priority, labels, bot_state,
                                      created_at, updated_at, unread, activity_seq, version)
           SELECT new_id, $1, live, $5, $6, '[]', $7, at, at, 0, {NEXT_SEQ}, 1 FROM opening
           ORDER BY at
           ON CONFLICT (workspace_id, profile_id) DO NOTHING
           RETURNING *
         ), answered AS (
           SELECT FALSE AS opened, * FROM found UNION ALL SELECT TRUE AS opened, * FROM opened
         )
         SELECT a.ord, r.* FROM asked a JOIN answered r ON r.profile_id = a.live ORDER BY a.ord"
    );
    let profiles: Vec<Uuid> = asked.iter().map(|(p, _)| p.as_uuid()).collect();
    let ats: Vec<DateTime<Utc>> = asked.iter().map(|(_, at)| *at).collect();
    let new_ids: Vec<Uuid> = asked.iter().map(|_| Uuid::now_v7()).collect();
    let found = sqlx::query(&sql)
        .bind(ws.as_uuid())
        .bind(profiles)
        .bind(ats)
        .bind(new_ids)
        .bind(status)
        .bind(Priority::None.as_str())
        .bind(codec::json(&BotState::NotStarted)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
    let mut answers: Vec<Option<(StoredConversation, bool)>> = vec![None; asked.len()];
    for row in &found {
        let ord: i64 = row.try_get("ord").map_err(backend)?;
        let opened: bool = row.try_get("opened").map_err(backend)?;
        let slot = usize::try_from(ord - 1)
            .ok()
            .and_then(|i| answers.get_mut(i))
            .ok_or_else(|| StoreError::Backend("an answer for no asked profile".into()))?;
        *slot = Some((rows::conversation(row)?, opened));
    }
    let mut complete = Vec::with_capacity(asked.len());
    for ((profile, at), answer) in asked.iter().zip(answers) {
        // Missing: a racer (an operator opening it) took the insert, or the
        // profile is unknown; the one-profile path waits for the racer.
        let (conversation, opened) = match answer {
            Some(answer) => answer,
            None => conversation_for_profile_in(&mut *conn, ws, *profile, *at).await?,
        };
        let again = complete.iter().any(|(c, _): &(StoredConversation, bool)| {
            c.conversation.id == conversation.conversation.id
        });
        complete.push((conversation, opened && !again));
    }
    Ok(complete)
}

/// [`MessageSets::insert_messages`] in one statement.
pub(crate) async fn insert_messages(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    messages: &[(ProfileId, &NewMessage)],
) -> StoreResult<Vec<StoredMessage>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let mut columns = MessageColumns::default();
    for (profile, m) in messages {
        columns.push(m, *profile)?;
    }
    let c = columns;
    let inserted = sqlx::query(
        "INSERT INTO conversation_messages (id, workspace_id, conversation_id, profile_id, kind, actor,
                                            details, channel, body, sender, attachments, external_id,
                                            delivery, at)
         SELECT id, $1, conversation_id, profile_id, kind, actor, details, channel, body, sender,
                attachments, external_id, delivery, at
         FROM UNNEST($2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::uuid[], $7::jsonb[],
                     $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[], $13::text[],
                     $14::timestamptz[])
           AS m(id, conversation_id, profile_id, kind, actor, details, channel, body, sender,
                attachments, external_id, delivery, at)
         ON CONFLICT DO NOTHING
         RETURNING *",
    )
    .bind(ws.as_uuid())
    .bind(c.id)
    .bind(c.conversation)
    .bind(c.profile)
    .bind(c.kind)
    .bind(c.actor)
    .bind(c.details)
    .bind(c.channel)
    .bind(c.body)
    .bind(c.sender)
    .bind(c.attachments)
    .bind(c.external_id)
    .bind(c.delivery)
    .bind(c.at)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    inserted.iter().map(rows::message).collect()
}

/// New messages as columns, for `UNNEST`.
#[derive(Default)]
struct MessageColumns {
    id: Vec<Uuid>,
    conversation: Vec<Uuid>,
    profile: Vec<Uuid>,
    kind: Vec<&'static str>,
    actor: Vec<Option<Uuid>>,
    details: Vec<serde_json::Value>,
    channel: Vec<&'static str>,
    body: Vec<String>,
    sender: Vec<Option<String>>,
    attachments: Vec<serde_json::Value>,
    external_id: Vec<Option<String>>,
    delivery: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

impl MessageColumns {
    fn push(&mut self, m: &NewMessage, profile: ProfileId) -> StoreResult<()> {
        let message = &m.message;
        self.id.push(message.id.as_uuid());
        self.conversation.push(message.conversation.as_uuid());
        self.profile.push(profile.as_uuid());
        self.kind.push(codec::kind_name(&message.kind));
        self.actor
            .push(codec::kind_actor(&message.kind).map(|m| m.as_uuid()));
        self.details.push(codec::json(&message.kind)?);
        self.channel.push(message.channel.as_str());
        self.body.push(message.body.clone());
        self.sender.push(m.sender.clone());
        self.attachments.push(codec::json(&m.attachments)?);
        self.external_id.push(m.external_id.clone());
        self.delivery
            .push(m.delivery.as_ref().map(codec::name).transpose()?);
        self.at.push(message.at);
        Ok(())
    }
}

/// [`MessageSets::write_conversations`] in one statement: the sequence is
/// drawn once per state as the array is read (a materialised CTE, which a
/// join cannot scan again), so the activity order follows the states'.
pub(crate) async fn write_conversations(
    conn: &mut PgConnection,
    ws: WorkspaceId,
    states: &[StoredConversation],
) -> StoreResult<Vec<StoredConversation>> {
    if states.is_empty() {
        return Ok(Vec::new());
    }
    let mut c = ConversationColumns::default();
    for state in states {
        c.push(state)?;
    }
    let written = sqlx::query(&format!(
        "WITH u AS MATERIALIZED (
           SELECT *, {NEXT_SEQ} AS seq
           FROM UNNEST($2::uuid[], $3::text[], $4::timestamptz[], $5::uuid[], $6::uuid[],
                       $7::text[], $8::jsonb[], $9::text[], $10::timestamptz[],
                       $11::timestamptz[], $12::jsonb[], $13::timestamptz[], $14::timestamptz[],
                       $15::timestamptz[], $16::text[], $17::bigint[])
             AS u(id, status, snoozed_until, assignee, team_id, priority, labels,
                  last_inbound_channel, last_inbound_at, waiting_since, bot_state, created_at,
                  updated_at, last_message_at, last_message_channel, unread)
         )
         UPDATE conversations c SET status = u.status, snoozed_until = u.snoozed_until,
           assignee = u.assignee, team_id = u.team_id, priority = u.priority, labels = u.labels,
           last_inbound_channel = u.last_inbound_channel, last_inbound_at = u.last_inbound_at,
           waiting_since = u.waiting_since, bot_state = u.bot_state, created_at = u.created_at,
           updated_at = u.updated_at, last_message_at = u.last_message_at,
           last_message_channel = u.last_message_channel, unread = u.unread,
           activity_seq = u.seq, version = c.version + 1
         FROM u
         WHERE c.workspace_id = $1 AND c.id = u.id
         RETURNING c.*"
    ))
    .bind(ws.as_uuid())
    .bind(c.id)
    .bind(c.status)
    .bind(c.snoozed_until)
    .bind(c.assignee)
    .bind(c.team)
    .bind(c.priority)
    .bind(c.labels)
    .bind(c.last_inbound_channel)
    .bind(c.last_inbound_at)
    .bind(c.waiting_since)
    .bind(c.bot)
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.last_message_at)
    .bind(c.last_message_channel)
    .bind(c.unread)
    .fetch_all(conn)
    .await
    .map_err(backend)?;
    if written.len() != states.len() {
        return Err(StoreError::NotFound("conversation"));
    }
    written.iter().map(rows::conversation).collect()
}

/// Conversations' states as columns, for `UNNEST`.
#[derive(Default)]
struct ConversationColumns {
    id: Vec<Uuid>,
    status: Vec<&'static str>,
    snoozed_until: Vec<Option<DateTime<Utc>>>,
    assignee: Vec<Option<Uuid>>,
    team: Vec<Option<Uuid>>,
    priority: Vec<&'static str>,
    labels: Vec<serde_json::Value>,
    last_inbound_channel: Vec<Option<&'static str>>,
    last_inbound_at: Vec<Option<DateTime<Utc>>>,
    waiting_since: Vec<Option<DateTime<Utc>>>,
    bot: Vec<serde_json::Value>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    last_message_at: Vec<Option<DateTime<Utc>>>,
    last_message_channel: Vec<Option<&'static str>>,
    unread: Vec<i64>,
}

impl ConversationColumns {
    fn push(&mut self, c: &StoredConversation) -> StoreResult<()> {
        let conv = &c.conversation;
        let (status, snoozed_until) = codec::status_columns(&conv.status);
        self.id.push(conv.id.as_uuid());
        self.status.push(status);
        self.snoozed_until.push(snoozed_until);
        self.assignee.push(conv.assignee.map(|m| m.as_uuid()));
        self.team.push(conv.team.map(|t| t.as_uuid()));
        self.priority.push(conv.priority.as_str());
        self.labels.push(codec::json(&conv.labels)?);
        self.last_inbound_channel
            .push(conv.last_inbound_channel.map(Channel::as_str));
        self.last_inbound_at.push(conv.last_inbound_at);
        self.waiting_since.push(conv.waiting_since);
        self.bot.push(codec::json(&c.bot)?);
        self.created_at.push(conv.created_at);
        self.updated_at.push(c.updated_at);
        self.last_message_at.push(c.last_message_at);
        self.last_message_channel
            .push(c.last_message_channel.map(Channel::as_str));
        self.unread.push(i64::from(c.unread));
        Ok(())
    }
}
