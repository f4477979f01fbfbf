//! The omnichannel inbox as stored: teams and their operators, one
//! conversation per customer profile with its messages, canned responses,
//! CSAT ratings and the audit of assignments.
//!
//! The rules live in `seamline_core::inbox`; the store keeps their results
//! and does only what has to happen in the same transaction as a write:
//! - appending a message updates its conversation (latest message and
//!   channel, the customer's reply channel and wait, a reopen, the unread
//!   count) and a provider's retry of a message it already delivered
//!   returns the stored message instead of a second one;
//! - a conversation's state is written only over the version it was read
//!   at ([`ConversationUpdate::version`]), so a change made meanwhile (an
//!   inbound message reopening it) is never overwritten: the writer gets
//!   [`StoreError::Conflict`](crate::StoreError::Conflict), reloads and retries;
//! - a change of assignee or team leaves an audit record, and a round-robin
//!   turn moves the team's cursor only if no other routing moved it first.
//!
//! Conversations list newest activity first by [`StoredConversation::activity_seq`],
//! which every message (and a merge or split) moves to the top, so a page
//! continues after the last seq seen (an opaque `seamline_core::cursor::Cursor`).
//! Messages list in time order, ties broken by id.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::inbox::bot::{BotSetup, BotState};
use seamline_core::inbox::conversation::{AssignReason, StatusChange, StatusName};
use seamline_core::inbox::csat::Rating;
use seamline_core::inbox::hours::BusinessHours;
use seamline_core::inbox::routing::{Presence, TeamRouting};
use seamline_core::inbox::template::CannedResponse;
use seamline_core::inbox::{Channel, Conversation, Label, Message, MessageKind, Status};
use seamline_core::{
    ConversationId, ConversationMessageId, MemberId, ProfileId, TeamId, WorkspaceId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{IdentityTx, NewEvent, Order, StoreError, StoreResult, StoredEvent};

/// A group of operators that conversations are routed to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Team {
    pub id: TeamId,
    pub workspace_id: WorkspaceId,
    /// Unique in the workspace.
    pub name: String,
    pub routing: TeamRouting,
    /// None: always open.
    pub hours: Option<BusinessHours>,
    /// The channels whose new conversations come to this team.
    pub channels: BTreeSet<Channel>,
    /// The team's chatbot and out-of-hours replies.
    pub bots: BotSetup,
    pub created_at: DateTime<Utc>,
}

/// An operator as routing and the supervisor see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OperatorState {
    pub member_id: MemberId,
    /// Offline until they first say otherwise.
    pub presence: Presence,
    /// When the presence last changed; none before it ever was set.
    pub presence_since: Option<DateTime<Utc>>,
    /// Most conversations they take at once; none: the workspace's default.
    pub capacity: Option<u32>,
    /// Conversations assigned to them that are not resolved.
    pub load: u32,
}

/// A customer's one conversation as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredConversation {
    pub workspace_id: WorkspaceId,
    #[serde(flatten)]
    pub conversation: Conversation,
    pub bot: BotState,
    /// The latest message to or from the customer (not notes or events).
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_channel: Option<Channel>,
    pub updated_at: DateTime<Utc>,
    /// Customer messages since the assignee last read or answered.
    pub unread: u32,
    /// Position in the "newest activity first" order; a list page
    /// continues after the last one's.
    pub activity_seq: i64,
    /// Grows with every write; see [`ConversationUpdate::version`].
    pub version: i64,
}

impl StoredConversation {
    /// An update writing this state back as read (change it, then save).
    pub fn update(&self, at: DateTime<Utc>) -> ConversationUpdate {
        ConversationUpdate {
            conversation: self.conversation.clone(),
            bot: self.bot.clone(),
            version: self.version,
            at,
            assignment: None,
            cursor: None,
        }
    }
}

/// A new state for a conversation, computed by the core's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationUpdate {
    /// Its `id` names the row; status, assignee, team, priority, labels,
    /// the customer's reply channel and wait are written. The profile and
    /// creation time never change.
    pub conversation: Conversation,
    pub bot: BotState,
    /// The version the state was read at: if the conversation was written
    /// since, nothing is written and the update is a `Conflict`.
    pub version: i64,
    pub at: DateTime<Utc>,
    /// Recorded in the audit when the assignee or team changes.
    pub assignment: Option<AssignmentCause>,
    /// A round-robin turn to store with the assignment.
    pub cursor: Option<CursorMove>,
}

impl ConversationUpdate {
    /// `current` with this update's state written over it.
    pub fn applied_to(&self, current: &StoredConversation) -> StoredConversation {
        let (new, mut next) = (&self.conversation, current.clone());
        let c = &mut next.conversation;
        c.status = new.status;
        c.assignee = new.assignee;
        c.team = new.team;
        c.priority = new.priority;
        c.labels = new.labels.clone();
        c.last_inbound_channel = new.last_inbound_channel;
        c.last_inbound_at = new.last_inbound_at;
        c.waiting_since = new.waiting_since;
        next.bot = self.bot.clone();
        next.updated_at = self.at;
        next
    }
}

/// Why, and by whom, an assignment changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentCause {
    pub reason: AssignReason,
    pub actor: Option<MemberId>,
    /// A transfer's note to the next operator.
    pub note: Option<String>,
}

/// Moves a team's round-robin cursor from `from` (what routing read) to
/// `to`; if it is no longer at `from`, the whole update is a `Conflict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CursorMove {
    pub team: TeamId,
    pub from: Option<MemberId>,
    pub to: MemberId,
}

/// One change of a conversation's assignee or team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignmentRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    pub from_operator: Option<MemberId>,
    pub from_team: Option<TeamId>,
    pub to_operator: Option<MemberId>,
    pub to_team: Option<TeamId>,
    /// None when the update gave no cause.
    pub reason: Option<AssignReason>,
    pub actor: Option<MemberId>,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// Whose conversations a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AssigneeFilter {
    #[default]
    Anyone,
    Unassigned,
    /// "Mine", for this operator.
    Operator(MemberId),
}

/// A page of conversations, newest activity first. Empty lists filter nothing.
#[derive(Debug, Clone, Default)]
pub struct ConversationQuery {
    pub assignee: AssigneeFilter,
    /// In any of these teams.
    pub teams: Vec<TeamId>,
    pub statuses: Vec<StatusName>,
    /// The channel of the latest customer message either way.
    pub channel: Option<Channel>,
    pub label: Option<Label>,
    /// Continue after this activity seq (exclusive).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

/// How far an outbound message got, as its channel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Delivered,
    Read,
    Failed,
    /// The send timed out after it may have reached the provider, and a
    /// provider without an idempotency key could send it twice if tried
    /// again (Telegram): whether the customer got it is not known.
    Unknown,
}

/// A file attached to a message; the bytes are in the blob store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// The blob store's key.
    pub key: String,
}

/// A message to append to its conversation (`message.conversation`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub message: Message,
    /// How the channel names the sender (a display name or handle).
    pub sender: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The provider's id: a second message with the same channel and
    /// external id in the workspace is a retry and is not stored again.
    pub external_id: Option<String>,
    pub delivery: Option<DeliveryStatus>,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMessage {
    pub workspace_id: WorkspaceId,
    /// The customer whose conversation it was written in; it stays through
    /// merges, so a split can give the message back.
    pub profile_id: ProfileId,
    #[serde(flatten)]
    pub message: Message,
    pub sender: Option<String>,
    pub attachments: Vec<Attachment>,
    pub external_id: Option<String>,
    pub delivery: Option<DeliveryStatus>,
    pub delivery_reason: Option<String>,
}

impl StoredMessage {
    /// Where a page ending with this message continues from.
    pub fn position(&self) -> (DateTime<Utc>, ConversationMessageId) {
        (self.message.at, self.message.id)
    }
}

/// A page of a conversation's messages in time order (ties by id).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    /// Continue after this position in `order` (exclusive).
    pub after: Option<(DateTime<Utc>, ConversationMessageId)>,
    pub limit: u32,
    pub order: Order,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq)]
pub struct AppendedMessage {
    pub message: StoredMessage,
    /// False: the message (same id, or same channel and external id) was
    /// already stored; `message` is the stored one and nothing changed.
    pub new: bool,
    /// The conversation after the append.
    pub conversation: StoredConversation,
    /// An inbound message reopened the conversation: record it.
    pub reopened: Option<StatusChange>,
}

/// A saved reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CannedResponseRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    /// The shortcut is unique in the workspace.
    #[serde(flatten)]
    pub response: CannedResponse,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One answered satisfaction survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CsatRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    #[serde(flatten)]
    pub rating: Rating,
    pub at: DateTime<Utc>,
}

/// A satisfaction survey sent after a resolve and not answered yet. The
/// rating it gets goes to the operator and team who had the conversation
/// when it was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PendingSurvey {
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    pub operator: Option<MemberId>,
    pub team: Option<TeamId>,
    pub sent_at: DateTime<Utc>,
}

/// `conversation` after `message` was appended to it (see
/// [`InboxStore::append_message`]), and the reopen it caused. A message
/// older than the latest one does not take its place.
pub fn appended(
    conversation: &StoredConversation,
    message: &Message,
) -> (StoredConversation, Option<StatusChange>) {
    let (mut next, at) = (conversation.clone(), message.at);
    next.updated_at = next.updated_at.max(at);
    if message.kind.is_customer_visible() && next.last_message_at <= Some(at) {
        next.last_message_at = Some(at);
        next.last_message_channel = Some(message.channel);
    }
    let c = &mut next.conversation;
    let reopened = match message.kind {
        MessageKind::Inbound => {
            if c.last_inbound_at <= Some(at) {
                c.last_inbound_channel = Some(message.channel);
                c.last_inbound_at = Some(at);
            }
            c.waiting_since.get_or_insert(at);
            next.unread = next.unread.saturating_add(1);
            c.reopen().ok()
        }
        MessageKind::Outbound { .. } => {
            c.replied();
            next.unread = 0;
            None
        }
        MessageKind::Bot | MessageKind::Note { .. } | MessageKind::Event { .. } => None,
    };
    (next, reopened)
}

/// The survivor's conversation after absorbing another's (see
/// [`InboxStore::merge_conversations`]): the status, assignee, team and
/// bot of the less settled one (open, then pending, then snoozed, the
/// earlier wake first, then resolved; the survivor's on a tie); the higher
/// priority; both labels; the later customer and latest messages; the
/// earlier wait and creation; both unread counts.
pub fn merged(
    survivor: &StoredConversation,
    absorbed: &StoredConversation,
    at: DateTime<Utc>,
) -> StoredConversation {
    let (s, a) = (&survivor.conversation, &absorbed.conversation);
    let busier = if unsettled(&a.status) < unsettled(&s.status) {
        absorbed
    } else {
        survivor
    };
    let inbound = if a.last_inbound_at > s.last_inbound_at {
        a
    } else {
        s
    };
    let latest = if absorbed.last_message_at > survivor.last_message_at {
        absorbed
    } else {
        survivor
    };
    let waiting_since = match (s.waiting_since, a.waiting_since) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    StoredConversation {
        workspace_id: survivor.workspace_id,
        conversation: Conversation {
            id: s.id,
            profile: s.profile,
            status: busier.conversation.status,
            assignee: busier.conversation.assignee,
            team: busier.conversation.team,
            priority: s.priority.max(a.priority),
            labels: s.labels.union(&a.labels).cloned().collect(),
            last_inbound_channel: inbound.last_inbound_channel,
            last_inbound_at: inbound.last_inbound_at,
            waiting_since,
            created_at: s.created_at.min(a.created_at),
        },
        bot: busier.bot.clone(),
        last_message_at: latest.last_message_at,
        last_message_channel: latest.last_message_channel,
        updated_at: at,
        unread: survivor.unread.saturating_add(absorbed.unread),
        activity_seq: survivor.activity_seq,
        version: survivor.version,
    }
}

/// Orders statuses from the one that most needs an operator.
fn unsettled(status: &Status) -> (u8, Option<DateTime<Utc>>) {
    match status {
        Status::Open => (0, None),
        Status::Pending => (1, None),
        Status::Snoozed { until } => (2, Some(*until)),
        Status::Resolved => (3, None),
    }
}

/// One workspace's write transaction for customers' inbound messages: the
/// message's event, its identity resolution, the conversation and the
/// message commit together (or not at all), and several messages may share
/// it (group commit). It holds the identity graph's lock
/// ([`IdentityTx`]) until commit or drop.
#[async_trait]
pub trait InboundTx: IdentityTx {
    /// The messages providers already delivered under these ids, in one
    /// query for a whole batch (order not kept).
    async fn messages_by_external_id(
        &mut self,
        wanted: &[(Channel, &str)],
    ) -> StoreResult<Vec<StoredMessage>>;
    /// Appends the events without outbox entries, in as few statements as
    /// the backend allows: the caller resolves their identity in this
    /// transaction and hands the transaction's events to the bus in one
    /// entry ([`InboundTx::queue_for_bus`]). One answer per event, in order:
    /// `None` when an event of that `messageId` is already stored.
    async fn append_events(&mut self, events: &[NewEvent])
        -> StoreResult<Vec<Option<StoredEvent>>>;
    /// One outbox entry for the bus relay holding these events (by seq).
    async fn queue_for_bus(&mut self, seqs: &[i64]) -> StoreResult<()>;
    /// As [`InboxStore::conversation_for_profile`].
    async fn conversation_for_profile(
        &mut self,
        profile: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<(StoredConversation, bool)>;
    /// As [`InboxStore::append_message`], to `conversation`, which must be
    /// the row as read in this same transaction (it is not read again, and
    /// its state is written back with the message's changes). `Conflict`
    /// when the message names another conversation.
    async fn append_message(
        &mut self,
        conversation: &StoredConversation,
        message: &NewMessage,
    ) -> StoreResult<AppendedMessage>;
    /// As [`InboxStore::merge_conversations`].
    async fn merge_conversations(
        &mut self,
        survivor: ProfileId,
        absorbed: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>>;
    /// [`InboundTx::conversation_for_profile`] for each `(profile, at)`, in
    /// order (a profile merged away gets its survivor's): a backend may
    /// find and open them all in one statement. Profiles asked twice, or
    /// merged into one, get the same conversation, opened once.
    async fn conversations_for_profiles(
        &mut self,
        asked: &[(ProfileId, DateTime<Utc>)],
    ) -> StoreResult<Vec<(StoredConversation, bool)>> {
        let mut found: Vec<(StoredConversation, bool)> = Vec::with_capacity(asked.len());
        for (profile, at) in asked {
            let (conversation, opened) = self.conversation_for_profile(*profile, *at).await?;
            let again = found
                .iter()
                .any(|(c, _)| c.conversation.id == conversation.conversation.id);
            found.push((conversation, opened && !again));
        }
        Ok(found)
    }
    /// [`InboundTx::append_message`] for each message in order, each to one
    /// of `conversations` (as read in this transaction), with each
    /// conversation written once ([`append_in_sets`]). Each answer carries
    /// its conversation as the last of them left it. `Conflict` when a
    /// message names none of them.
    async fn append_messages(
        &mut self,
        conversations: &[StoredConversation],
        messages: &[NewMessage],
    ) -> StoreResult<Vec<AppendedMessage>>;
}

/// The writes [`append_in_sets`] needs of a backend, each as few
/// statements as it allows.
#[async_trait]
pub trait MessageSets: Send {
    /// Inserts each message (written in `profile`'s conversation) unless
    /// it was stored before (its id, or its channel and provider id); the
    /// messages inserted, in any order.
    async fn insert_messages(
        &mut self,
        messages: &[(ProfileId, &NewMessage)],
    ) -> StoreResult<Vec<StoredMessage>>;
    /// Writes each conversation's state one version up, on top of the
    /// activity order in the order given; the conversations as written, in
    /// any order.
    async fn write_conversations(
        &mut self,
        states: &[StoredConversation],
    ) -> StoreResult<Vec<StoredConversation>>;
    /// The message stored before that `message` repeats, with its
    /// conversation.
    async fn stored_instead(&mut self, message: &NewMessage) -> StoreResult<AppendedMessage>;
}

/// [`InboundTx::append_messages`] on a backend's [`MessageSets`]: the
/// messages inserted, then each conversation they changed written once
/// with all their changes ([`appended_all`]); a message stored before is
/// answered with the stored one and changes nothing.
pub async fn append_in_sets<T: MessageSets + ?Sized>(
    tx: &mut T,
    conversations: &[StoredConversation],
    messages: &[NewMessage],
) -> StoreResult<Vec<AppendedMessage>> {
    let elsewhere = || StoreError::Conflict("the message names another conversation");
    let mut placed = Vec::with_capacity(messages.len());
    for m in messages {
        let read = conversations
            .iter()
            .find(|c| c.conversation.id == m.message.conversation)
            .ok_or_else(elsewhere)?;
        placed.push((read.conversation.profile, m));
    }
    let mut inserted: HashMap<ConversationMessageId, StoredMessage> = tx
        .insert_messages(&placed)
        .await?
        .into_iter()
        .map(|s| (s.message.id, s))
        .collect();
    let fresh: Vec<NewMessage>;
    let appended = match inserted.len() == messages.len() {
        true => messages,
        false => {
            let new = |m: &&NewMessage| inserted.contains_key(&m.message.id);
            fresh = messages.iter().filter(new).cloned().collect();
            &fresh[..]
        }
    };
    let (reopens, states) = appended_all(conversations, appended).ok_or_else(elsewhere)?;
    let written = tx.write_conversations(&states).await?;
    let as_written = |id| written.iter().find(|c| c.conversation.id == id).cloned();
    let (mut reopens, mut answers) = (reopens.into_iter(), Vec::with_capacity(messages.len()));
    for m in messages {
        let Some(message) = inserted.remove(&m.message.id) else {
            let mut stored = tx.stored_instead(m).await?;
            if let Some(now) = as_written(stored.conversation.conversation.id) {
                stored.conversation = now;
            }
            answers.push(stored);
            continue;
        };
        let conversation = as_written(m.message.conversation).ok_or_else(|| {
            StoreError::Backend("a conversation of the batch went missing".into())
        })?;
        answers.push(AppendedMessage {
            message,
            new: true,
            conversation,
            reopened: reopens.next().flatten(),
        });
    }
    Ok(answers)
}

/// `messages` appended in memory to `conversations` (as read): per
/// message, the reopen it caused; per conversation it changed, the state
/// all of them leave it in (to be written once, one version up), in the
/// order of each one's last message, which is the activity order they
/// take. `None` when a message names none of the conversations.
pub fn appended_all(
    conversations: &[StoredConversation],
    messages: &[NewMessage],
) -> Option<(Vec<Option<StatusChange>>, Vec<StoredConversation>)> {
    let mut states: Vec<(usize, StoredConversation)> = Vec::new();
    let mut reopens = Vec::with_capacity(messages.len());
    for (n, m) in messages.iter().enumerate() {
        let id = m.message.conversation;
        let state = match states.iter_mut().find(|(_, c)| c.conversation.id == id) {
            Some(state) => state,
            None => {
                let read = conversations.iter().find(|c| c.conversation.id == id)?;
                states.push((n, read.clone()));
                states.last_mut()?
            }
        };
        let (next, reopened) = appended(&state.1, &m.message);
        *state = (n, next);
        reopens.push(reopened);
    }
    states.sort_by_key(|(last, _)| *last);
    Some((reopens, states.into_iter().map(|(_, c)| c).collect()))
}

/// The inbox's storage. Every method filters by the workspace it is given.
#[async_trait]
pub trait InboxStore: Send + Sync + 'static {
    /// Starts `workspace`'s [`InboundTx`], waiting for its identity lock.
    async fn begin_inbound(&self, workspace: WorkspaceId) -> StoreResult<Box<dyn InboundTx>>;

    // Teams.

    /// `Conflict` when the workspace has a team of that name.
    async fn create_team(&self, team: &Team) -> StoreResult<()>;
    /// Name, routing, hours, channels and bots.
    async fn update_team(&self, team: &Team) -> StoreResult<()>;
    /// Its conversations keep their operators and lose the team.
    async fn delete_team(&self, workspace: WorkspaceId, id: TeamId) -> StoreResult<()>;
    async fn team(&self, workspace: WorkspaceId, id: TeamId) -> StoreResult<Option<Team>>;
    /// By name. A change another instance made may show up to
    /// [`MEMO_TTL`](crate::memo::MEMO_TTL) late.
    async fn list_teams(&self, workspace: WorkspaceId) -> StoreResult<Vec<Team>>;
    /// Idempotent; `NotFound` unless both are of the workspace.
    async fn add_team_member(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
        member: MemberId,
    ) -> StoreResult<()>;
    async fn remove_team_member(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
        member: MemberId,
    ) -> StoreResult<()>;
    /// The teams an operator is in ("my teams").
    async fn member_teams(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
    ) -> StoreResult<Vec<TeamId>>;
    /// Who last got a conversation by the team's rule.
    async fn routing_cursor(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
    ) -> StoreResult<Option<MemberId>>;

    // Operators.

    /// Sets the presence; its time changes only when the presence does.
    async fn set_presence(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        presence: Presence,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorState>;
    async fn set_capacity(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        capacity: Option<u32>,
    ) -> StoreResult<()>;
    /// `None` when the member is not of the workspace.
    async fn operator(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
    ) -> StoreResult<Option<OperatorState>>;
    /// Every member of the team, or of the workspace; by member id.
    async fn operators(
        &self,
        workspace: WorkspaceId,
        team: Option<TeamId>,
    ) -> StoreResult<Vec<OperatorState>>;

    // Conversations.

    /// The profile's conversation, created open (and `true`) if it has
    /// none; for a profile merged into another, the survivor's. Concurrent
    /// calls get the same one. `NotFound` for a profile not of the workspace.
    async fn conversation_for_profile(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<(StoredConversation, bool)>;
    async fn conversation(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Option<StoredConversation>>;
    /// Writes the state over the version it was read at (`Conflict` if it
    /// changed since), with the audit record and routing cursor in the same
    /// transaction. `NotFound` for an assignee or team not of the workspace.
    async fn update_conversation(
        &self,
        workspace: WorkspaceId,
        update: &ConversationUpdate,
    ) -> StoreResult<StoredConversation>;
    /// The assignee has read it: no unread messages.
    async fn mark_read(&self, workspace: WorkspaceId, id: ConversationId) -> StoreResult<()>;
    async fn list_conversations(
        &self,
        workspace: WorkspaceId,
        query: &ConversationQuery,
    ) -> StoreResult<Vec<StoredConversation>>;
    /// Oldest first.
    async fn assignment_history(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Vec<AssignmentRecord>>;

    // Messages.

    /// Appends a message and updates its conversation in one transaction:
    /// every message moves it to the top of the activity order; a message
    /// to or from the customer is its latest message; an inbound one sets
    /// the reply channel, starts the customer's wait, reopens it and counts
    /// as unread; an outbound one ends the wait and clears the unread count.
    /// A retry (same id, or same channel and external id) changes nothing.
    async fn append_message(
        &self,
        workspace: WorkspaceId,
        message: &NewMessage,
    ) -> StoreResult<AppendedMessage>;
    async fn list_messages(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
        query: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>>;
    /// For a provider's delivery report.
    async fn message_by_external_id(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Option<StoredMessage>>;
    async fn set_delivery(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        status: DeliveryStatus,
        reason: Option<&str>,
    ) -> StoreResult<()>;
    /// The operator of the conversation's latest outbound message: who last
    /// served this customer, for sticky routing.
    async fn last_operator(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
    ) -> StoreResult<Option<MemberId>>;

    /// The conversations whose notes mention `member` since `since`, the
    /// latest mention first ("Mentions" in the inbox).
    async fn mentioned_in(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ConversationId>>;

    /// The files attached to every message written for the profile (or a
    /// profile merged into it) or in its conversation, for erasing them.
    async fn person_attachments(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<Attachment>>;

    // Profile merges and unmerges.

    /// After `absorbed` merged into `survivor`: its conversation's messages
    /// (keeping their `profile_id`), CSAT ratings and audit move to the
    /// survivor's, whose state becomes [`merged`]; the absorbed one is
    /// deleted. Without a survivor's conversation, the absorbed one becomes
    /// it. Idempotent. Returns the survivor's conversation, if any.
    async fn merge_conversations(
        &self,
        workspace: WorkspaceId,
        survivor: ProfileId,
        absorbed: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>>;
    /// After an unmerge: the messages in `from`'s conversation written for
    /// `split_off` (or a profile now merged into it) move to `split_off`'s
    /// conversation, created open if needed; both conversations' latest
    /// messages are recomputed (ratings and the audit stay where they are).
    /// Returns `split_off`'s conversation, if any.
    async fn split_conversation(
        &self,
        workspace: WorkspaceId,
        from: ProfileId,
        split_off: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>>;

    // Canned responses.

    /// `Conflict` when the shortcut is taken.
    async fn create_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()>;
    /// Shortcut and body.
    async fn update_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()>;
    async fn delete_canned_response(&self, workspace: WorkspaceId, id: Uuid) -> StoreResult<()>;
    /// By shortcut.
    async fn canned_responses(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<CannedResponseRecord>>;

    // CSAT.

    /// `NotFound` for a conversation not of the workspace.
    async fn record_rating(&self, rating: &CsatRecord) -> StoreResult<()>;
    /// Ratings given in `[from, to)`, oldest first.
    async fn ratings(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<CsatRecord>>;
    /// Records a survey as sent; `false` (nothing changed) when one is
    /// already pending for the conversation. `NotFound` for a conversation
    /// not of the workspace. A merge drops the absorbed one's survey.
    async fn open_survey(&self, survey: &PendingSurvey) -> StoreResult<bool>;
    /// Removes and returns the conversation's pending survey: of callers
    /// racing for it, one gets it.
    async fn take_survey(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
    ) -> StoreResult<Option<PendingSurvey>>;
}

/// Column codecs the backends share: enums by their serde names, values as
/// JSON; stored text that no longer parses is `Corrupt`.
pub mod codec {
    use chrono::{DateTime, Utc};
    use seamline_core::inbox::conversation::StatusName;
    use seamline_core::inbox::{MessageKind, Status};
    use seamline_core::MemberId;
    pub use serde::de::DeserializeOwned;
    pub use serde::Serialize;
    use serde_json::Value;

    use crate::{StoreError, StoreResult};

    /// A status as its `status` and `snoozed_until` columns.
    pub fn status_columns(status: &Status) -> (&'static str, Option<DateTime<Utc>>) {
        let until = match status {
            Status::Snoozed { until } => Some(*until),
            Status::Open | Status::Pending | Status::Resolved => None,
        };
        (status.name().as_str(), until)
    }

    pub fn status(name: &str, snoozed_until: Option<DateTime<Utc>>) -> StoreResult<Status> {
        let name: StatusName = name
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("status {name:?}")))?;
        match (name, snoozed_until) {
            (StatusName::Open, _) => Ok(Status::Open),
            (StatusName::Pending, _) => Ok(Status::Pending),
            (StatusName::Resolved, _) => Ok(Status::Resolved),
            (StatusName::Snoozed, Some(until)) => Ok(Status::Snoozed { until }),
            (StatusName::Snoozed, None) => {
                Err(StoreError::Corrupt("snoozed without a time".into()))
            }
        }
    }

    /// A message kind's `kind` column.
    pub fn kind_name(kind: &MessageKind) -> &'static str {
        match kind {
            MessageKind::Inbound => "inbound",
            MessageKind::Outbound { .. } => "outbound",
            MessageKind::Bot => "bot",
            MessageKind::Note { .. } => "note",
            MessageKind::Event { .. } => "event",
        }
    }

    /// A message kind's `actor` column: the operator, author or actor.
    pub fn kind_actor(kind: &MessageKind) -> Option<MemberId> {
        match kind {
            MessageKind::Outbound { operator } => Some(*operator),
            MessageKind::Note { author, .. } => Some(*author),
            MessageKind::Event { actor, .. } => *actor,
            MessageKind::Inbound | MessageKind::Bot => None,
        }
    }

    /// The serde name of a unit variant (`"round_robin"`).
    pub fn name<T: Serialize>(value: &T) -> StoreResult<String> {
        match serde_json::to_value(value) {
            Ok(Value::String(name)) => Ok(name),
            Ok(other) => Err(StoreError::Corrupt(format!("{other} is not a name"))),
            Err(error) => Err(StoreError::Corrupt(error.to_string())),
        }
    }

    pub fn from_name<T: DeserializeOwned>(name: &str, column: &str) -> StoreResult<T> {
        from_json(Value::String(name.to_owned()), column)
    }

    pub fn json<T: Serialize>(value: &T) -> StoreResult<Value> {
        serde_json::to_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub fn from_json<T: DeserializeOwned>(value: Value, column: &str) -> StoreResult<T> {
        serde_json::from_value(value).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }

    pub fn from_json_text<T: DeserializeOwned>(text: &str, column: &str) -> StoreResult<T> {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use seamline_core::inbox::Priority;

    use super::*;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 9, minute, 0)
            .single()
            .expect("valid time")
    }

    fn stored(n: u128, status: Status, assignee: u128) -> StoredConversation {
        let mut conversation = Conversation::new(
            ConversationId(Uuid::from_u128(n)),
            ProfileId(Uuid::from_u128(n)),
            at(n as u32),
        );
        conversation.status = status;
        conversation.assignee = Some(MemberId(Uuid::from_u128(assignee)));
        StoredConversation {
            workspace_id: WorkspaceId(Uuid::from_u128(1)),
            conversation,
            bot: BotState::NotStarted,
            last_message_at: None,
            last_message_channel: None,
            updated_at: at(0),
            unread: 2,
            activity_seq: n as i64,
            version: 1,
        }
    }

    #[test]
    fn the_less_settled_conversation_keeps_its_operator() {
        let resolved = stored(1, Status::Resolved, 10);
        let open = stored(2, Status::Open, 20);
        let both = merged(&resolved, &open, at(30));
        assert_eq!(both.conversation.id, resolved.conversation.id);
        assert_eq!(both.conversation.status, Status::Open);
        assert_eq!(both.conversation.assignee, open.conversation.assignee);
        assert_eq!(both.conversation.created_at, at(1));
        assert_eq!(both.unread, 4);

        let soon = stored(3, Status::Snoozed { until: at(40) }, 30);
        let later = stored(4, Status::Snoozed { until: at(50) }, 40);
        assert_eq!(
            merged(&later, &soon, at(30)).conversation.status,
            soon.conversation.status,
            "the earlier wake-up"
        );
        let tie = merged(&open, &stored(5, Status::Open, 50), at(30));
        assert_eq!(tie.conversation.assignee, open.conversation.assignee);
    }

    #[test]
    fn labels_join_and_priority_rises() {
        let mut a = stored(1, Status::Open, 10);
        let mut b = stored(2, Status::Open, 20);
        a.conversation
            .labels
            .insert(Label::parse("vip").expect("label"));
        b.conversation
            .labels
            .insert(Label::parse("refund").expect("label"));
        b.conversation.priority = Priority::High;
        b.conversation.waiting_since = Some(at(7));
        b.last_message_at = Some(at(9));
        b.last_message_channel = Some(Channel::Telegram);
        let both = merged(&a, &b, at(30));
        assert_eq!(both.conversation.labels.len(), 2);
        assert_eq!(both.conversation.priority, Priority::High);
        assert_eq!(both.conversation.waiting_since, Some(at(7)));
        assert_eq!(both.last_message_channel, Some(Channel::Telegram));
    }
}
