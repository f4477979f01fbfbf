//! `/api/v1/conversations` and `/api/v1/canned-responses`: the inbox over
//! REST (the integration API).
//!
//! Every change of state goes through `seamline_core::inbox::Conversation`'s
//! methods and is written over the version it was read at; a concurrent
//! change (an inbound message reopening it) makes the route reload and apply
//! the request once more. What changed is recorded on the timeline as event
//! messages. Bodies are plain text in and out: nothing here renders HTML.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::cursor::Cursor;
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::{
    AssignReason, ConversationError, StatusName, SystemEvent,
};
use seamline_core::inbox::mention;
use seamline_core::inbox::template::{CannedResponse, Values};
use seamline_core::inbox::{Channel, Label, Message, MessageKind, Priority, Status};
use seamline_core::role::Permission;
use seamline_core::{
    ConversationId, ConversationMessageId, FieldError, MemberId, ProfileId, TeamId, WorkspaceId,
};
use seamline_store::{
    AssigneeFilter, AssignmentCause, Backend, CannedResponseRecord, ConversationQuery,
    ConversationUpdate, DeliveryStatus, Member, MessageQuery, NewMessage, Order, StoreError,
    StoredConversation, StoredMessage,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::keyset;
use crate::auth::{Actor, Principal};
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::profiles::live_profile;
use crate::inbox::automation::csat::SurveyOnResolve;
use crate::inbox::live::{publish, LiveEvent, Party, Whose};
use crate::inbox::visibility::Sight;
use crate::inbox::{attachments, queue};
use crate::views::{CannedResponseView, ConversationView, MessageView, Page};
use crate::AppState;

/// The header a client sends so that a retried message is stored once.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;

/// What the inbox routes refuse: the API's usual errors, and a change the
/// conversation's state does not allow now (409, naming the field).
#[derive(Debug)]
pub enum InboxError {
    Api(ApiError),
    Refused(FieldError),
}

pub type InboxResult<T> = Result<T, InboxError>;

impl From<ApiError> for InboxError {
    fn from(error: ApiError) -> Self {
        InboxError::Api(error)
    }
}

impl From<StoreError> for InboxError {
    fn from(error: StoreError) -> Self {
        InboxError::Api(error.into())
    }
}

impl From<FieldError> for InboxError {
    fn from(error: FieldError) -> Self {
        InboxError::Api(error.into())
    }
}

impl IntoResponse for InboxError {
    fn into_response(self) -> Response {
        match self {
            InboxError::Api(error) => error.into_response(),
            InboxError::Refused(error) => {
                let body = json!({
                    "error": {"code": error.code, "message": error.message, "field": error.field},
                    "errors": [error],
                });
                (StatusCode::CONFLICT, Json(body)).into_response()
            }
        }
    }
}

fn invalid(code: &'static str, field: &str, message: impl Into<String>) -> InboxError {
    InboxError::Api(ApiError::field(code, field, message))
}

/// A status change the core refused, as the field the caller got wrong.
fn refused_transition(error: ConversationError) -> InboxError {
    let message = error.to_string();
    match error {
        ConversationError::ReopenFirst(_) | ConversationError::Already(_) => {
            InboxError::Refused(FieldError::new("invalid_transition", "status", message))
        }
        ConversationError::SnoozeNotInFuture(_) => invalid("not_in_future", "until", message),
        ConversationError::NotACustomerChannel(_) => {
            invalid("internal_channel", "channel", message)
        }
        ConversationError::NoReplyChannel => invalid("required", "channel", message),
    }
}

/// The member calling, when a person (not an API key) is.
pub(crate) fn caller(principal: &Principal) -> Option<MemberId> {
    match principal.actor {
        Actor::Member(id) => Some(id),
        Actor::Key(_) => None,
    }
}

fn display_name(member: &Member) -> String {
    if member.name.trim().is_empty() {
        member.email.clone()
    } else {
        member.name.clone()
    }
}

fn parse_id<T: std::str::FromStr>(raw: &str, field: &str) -> InboxResult<T> {
    raw.trim()
        .parse()
        .map_err(|_| invalid("invalid_id", field, "not an id"))
}

/// The conversation, if it is of the caller's workspace and they may see
/// it (a private team's is "not found" to others, as another workspace's is).
pub(crate) async fn load(
    store: &dyn Backend,
    principal: &Principal,
    id: ConversationId,
) -> InboxResult<StoredConversation> {
    let missing = || InboxError::Api(ApiError::NotFound("conversation"));
    let found = store
        .conversation(principal.workspace, id)
        .await?
        .ok_or_else(missing)?;
    let sight = Sight::of(store, principal).await?;
    if sight.sees(&found) {
        Ok(found)
    } else {
        Err(missing())
    }
}

// Reading.

#[derive(Debug, Deserialize)]
pub struct ListParams {
    /// `me`, `unassigned` or a member id.
    assignee: Option<String>,
    /// `mine` (the caller's teams) or a team id.
    team: Option<String>,
    /// One or more of open, pending, snoozed, resolved, comma-separated.
    status: Option<String>,
    channel: Option<String>,
    label: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

impl ListParams {
    async fn query(
        &self,
        store: &dyn Backend,
        principal: &Principal,
    ) -> InboxResult<ConversationQuery> {
        let ws = principal.workspace;
        let me = || {
            caller(principal).ok_or_else(|| {
                invalid(
                    "no_member",
                    "assignee",
                    "an API key is not a member; name one by id",
                )
            })
        };
        let assignee = match self.assignee.as_deref().map(str::trim) {
            None | Some("" | "anyone") => AssigneeFilter::Anyone,
            Some("unassigned") => AssigneeFilter::Unassigned,
            Some("me") => AssigneeFilter::Operator(me()?),
            Some(id) => AssigneeFilter::Operator(parse_id(id, "assignee")?),
        };
        let teams = match self.team.as_deref().map(str::trim) {
            None | Some("") => Vec::new(),
            Some("mine") => {
                let member = caller(principal).ok_or_else(|| {
                    invalid(
                        "no_member",
                        "team",
                        "an API key is in no team; name one by id",
                    )
                })?;
                let mine = store.member_teams(ws, member).await?;
                if mine.is_empty() {
                    // In no team: nothing is in "my teams".
                    vec![TeamId(Uuid::nil())]
                } else {
                    mine
                }
            }
            Some(id) => vec![parse_id(id, "team")?],
        };
        let statuses = match self.status.as_deref() {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(str::parse::<StatusName>)
                .collect::<Result<_, _>>()?,
        };
        let channel = self
            .channel
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| c.parse::<Channel>())
            .transpose()
            .map_err(|e| invalid("invalid_channel", "channel", e.to_string()))?;
        let label = self
            .label
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .map(Label::parse)
            .transpose()?;
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(invalid("out_of_range", "limit", "between 1 and 200"));
        }
        let after_seq = self
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()?
            .map(|c| c.0);
        Ok(ConversationQuery {
            assignee,
            teams,
            statuses,
            channel,
            label,
            after_seq,
            limit,
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> InboxResult<Json<Page<ConversationView>>> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let query = params.query(store, &principal).await?;
    let found = store
        .list_conversations(principal.workspace, &query)
        .await?;
    let next_cursor = (found.len() == query.limit as usize)
        .then(|| found.last().map(|c| Cursor(c.activity_seq).encode()))
        .flatten();
    // A page may come out shorter than asked when a private team's
    // conversations are left out; the cursor still continues after them.
    let sight = Sight::of(store, &principal).await?;
    Ok(Json(Page {
        data: found
            .iter()
            .filter(|c| sight.sees(c))
            .map(ConversationView::from)
            .collect(),
        next_cursor,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> InboxResult<Json<ConversationView>> {
    principal.require(Permission::ReadData)?;
    let stored = load(state.store.as_ref(), &principal, id).await?;
    Ok(Json(ConversationView::from(&stored)))
}

/// The profile's one conversation, created open the first time.
pub async fn for_profile(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> InboxResult<Json<ConversationView>> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let (stored, _created) = store
        .conversation_for_profile(principal.workspace, id, Utc::now())
        .await?;
    if !Sight::of(store, &principal).await?.sees(&stored) {
        return Err(InboxError::Api(ApiError::NotFound("conversation")));
    }
    Ok(Json(ConversationView::from(&stored)))
}

#[derive(Debug, Deserialize)]
pub struct MessageParams {
    cursor: Option<String>,
    limit: Option<u32>,
    /// `oldest` (the default) or `newest` first.
    order: Option<String>,
}

fn encode_message_cursor(at: DateTime<Utc>, id: ConversationMessageId) -> String {
    keyset::encode(at.timestamp_micros(), id)
}

fn decode_message_cursor(token: &str) -> InboxResult<(DateTime<Utc>, ConversationMessageId)> {
    let bad = || {
        invalid(
            "invalid_cursor",
            "cursor",
            "not a cursor issued by this API",
        )
    };
    let (micros, id) = keyset::decode(token).ok_or_else(bad)?;
    let at = Utc.timestamp_micros(micros).single().ok_or_else(bad)?;
    Ok((at, id))
}

pub async fn messages(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiQuery(params): ApiQuery<MessageParams>,
) -> InboxResult<Json<Page<MessageView>>> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let conversation = load(store, &principal, id).await?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(invalid("out_of_range", "limit", "between 1 and 500"));
    }
    let order = match params.order.as_deref().map(str::trim) {
        None | Some("" | "oldest") => Order::OldestFirst,
        Some("newest") => Order::NewestFirst,
        Some(_) => return Err(invalid("invalid_value", "order", "oldest or newest")),
    };
    let query = MessageQuery {
        after: params
            .cursor
            .as_deref()
            .map(decode_message_cursor)
            .transpose()?,
        limit,
        order,
    };
    let found = store
        .list_messages(ws, conversation.conversation.id, &query)
        .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| {
            found
                .last()
                .map(|m| encode_message_cursor(m.message.at, m.message.id))
        })
        .flatten();
    Ok(Json(Page {
        data: found.into_iter().map(MessageView::from).collect(),
        next_cursor,
    }))
}

// Writing messages.

#[derive(Debug, Deserialize)]
pub struct MessageBody {
    pub(crate) body: Option<String>,
    /// `reply` (the default: to the customer) or `note` (to the team).
    pub(crate) kind: Option<String>,
    /// A reply's channel; by default the customer's latest.
    pub(crate) channel: Option<String>,
    /// Who writes: an API key must name a member; a person writes as
    /// themselves.
    pub(crate) author_id: Option<String>,
    /// Keys of files uploaded for this conversation
    /// (`POST /api/v1/conversations/{id}/attachments`).
    #[serde(default)]
    pub(crate) attachments: Vec<String>,
}

/// The member a message is written by.
async fn author(
    store: &dyn Backend,
    principal: &Principal,
    given: Option<&str>,
) -> InboxResult<Member> {
    let ws = principal.workspace;
    let given = given
        .map(|raw| parse_id::<MemberId>(raw, "author_id"))
        .transpose()?;
    let id = match (caller(principal), given) {
        (Some(me), Some(other)) if other != me => {
            return Err(invalid(
                "not_yourself",
                "author_id",
                "a signed-in member writes as themselves",
            ))
        }
        (Some(me), _) => me,
        (None, Some(other)) => other,
        (None, None) => {
            return Err(invalid(
                "required",
                "author_id",
                "an API key writes on behalf of a member: give their id",
            ))
        }
    };
    store.member(ws, id).await?.ok_or_else(|| {
        invalid(
            "unknown_member",
            "author_id",
            "no such member in this workspace",
        )
    })
}

/// The message id for a request: derived from its idempotency key, so a
/// retry names the message already stored; else a new one.
fn message_id(
    headers: &HeaderMap,
    ws: WorkspaceId,
    conversation: ConversationId,
) -> InboxResult<ConversationMessageId> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(ConversationMessageId(Uuid::now_v7()));
    };
    let bad = || {
        invalid(
            "invalid_idempotency_key",
            "Idempotency-Key",
            format!("1 to {MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters"),
        )
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    let valid = (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(bad());
    }
    let digest = Sha256::new()
        .chain_update(ws.as_uuid().as_bytes())
        .chain_update(conversation.as_uuid().as_bytes())
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(ConversationMessageId(
        uuid::Builder::from_custom_bytes(bytes).into_uuid(),
    ))
}

/// Posts an operator's reply to the customer or an internal note; with an
/// `Idempotency-Key`, a retry answers the stored message (200, not 201).
pub async fn post_message(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<MessageBody>,
) -> InboxResult<(StatusCode, Json<MessageView>)> {
    let (new, message) = write_message(&state, &principal, id, &headers, body).await?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(MessageView::from(message))))
}

/// Writes an operator's reply or note (the REST route and the inbox page);
/// answers whether it is new (not a retry) and the stored message.
pub(crate) async fn write_message(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    headers: &HeaderMap,
    body: MessageBody,
) -> InboxResult<(bool, StoredMessage)> {
    principal.require(Permission::WriteData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let conversation = load(store, principal, id).await?;
    let message_id = message_id(headers, ws, conversation.conversation.id)?;
    let is_note = match body.kind.as_deref().map(str::trim) {
        None | Some("" | "reply") => false,
        Some("note") => true,
        Some(_) => return Err(invalid("invalid_value", "kind", "reply or note")),
    };
    let picked = body
        .channel
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.parse::<Channel>())
        .transpose()
        .map_err(|e| invalid("invalid_channel", "channel", e.to_string()))?;
    let writer = author(store, principal, body.author_id.as_deref()).await?;
    let files = attached(state, ws, &body.attachments).await?;
    let text = body.body.unwrap_or_default();
    let (kind, channel, delivery) = if !is_note {
        if text.trim().is_empty() && files.is_empty() {
            return Err(invalid("required", "body", "a reply needs text or a file"));
        }
        let channel = conversation
            .conversation
            .reply_channel(picked)
            .map_err(refused_transition)?;
        let kind = MessageKind::Outbound {
            operator: writer.id,
        };
        // Waits for a channel connector to send it.
        (kind, channel, Some(DeliveryStatus::Pending))
    } else {
        if picked.is_some_and(|c| c != Channel::Internal) {
            return Err(invalid(
                "customer_channel",
                "channel",
                "a note stays on the internal channel",
            ));
        }
        let members = store.list_members(ws).await?;
        let handles: Vec<(MemberId, String)> = members
            .iter()
            .flat_map(|m| {
                let local = m.email.split('@').next().unwrap_or_default().to_owned();
                [(m.id, local), (m.id, m.name.clone())]
            })
            .collect();
        let kind = MessageKind::Note {
            author: writer.id,
            mentions: mention::mentioned(&text, &handles),
        };
        (kind, Channel::Internal, None)
    };
    let message = Message::new(
        message_id,
        conversation.conversation.id,
        kind,
        channel,
        text,
        Utc::now(),
    )?;
    let appended = store
        .append_message(
            ws,
            &NewMessage {
                message,
                sender: Some(display_name(&writer)),
                attachments: files,
                external_id: None,
                delivery,
            },
        )
        .await?;
    if appended.new {
        // Live to the customer's widget and to operators on any instance.
        publish(state.bus.as_ref(), LiveEvent::Message(&appended.message)).await;
        publish(
            state.bus.as_ref(),
            LiveEvent::Conversation(&appended.conversation),
        )
        .await;
    }
    // A reply on a connector's channel goes out through the outbox.
    crate::channels::sender::enqueue(state, &appended).await;
    Ok((appended.new, appended.message))
}

/// The files `keys` name in the workspace's blob store.
async fn attached(
    state: &AppState,
    ws: WorkspaceId,
    keys: &[String],
) -> InboxResult<Vec<seamline_store::Attachment>> {
    if keys.len() > attachments::MAX_FILES {
        return Err(invalid(
            "too_many",
            "attachments",
            format!("at most {} files on one message", attachments::MAX_FILES),
        ));
    }
    let mut files = Vec::with_capacity(keys.len());
    for key in keys {
        let found = state
            .blobs
            .describe(ws, key)
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("reading a file")))?;
        let file = found.ok_or_else(|| {
            invalid(
                "unknown_attachment",
                "attachments",
                format!("no file {key}: upload it first"),
            )
        })?;
        files.push(file);
    }
    Ok(files)
}

// Changing the conversation.

/// Loads the conversation, lets `apply` change it with the core's methods
/// (returning the events to record; none: nothing changed, nothing is
/// written), saves it over the version read (once more on a concurrent
/// change), and records the events on the timeline.
async fn change<F>(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    apply: F,
) -> InboxResult<StoredConversation>
where
    F: Fn(&mut ConversationUpdate, DateTime<Utc>) -> InboxResult<Vec<SystemEvent>>,
{
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    let ws = principal.workspace;
    let mut retried = false;
    let (mut saved, events, before) = loop {
        let current = load(store, principal, id).await?;
        let now = Utc::now();
        let mut update = current.update(now);
        let events = apply(&mut update, now)?;
        if events.is_empty() {
            return Ok(current);
        }
        match store.update_conversation(ws, &update).await {
            Ok(saved) => break (saved, events, current.conversation.assignee),
            Err(StoreError::Conflict(_)) if !retried => retried = true,
            Err(StoreError::Conflict(_)) => {
                return Err(InboxError::Refused(FieldError::new(
                    "changed_meanwhile",
                    "id",
                    "the conversation changed meanwhile; try again",
                )))
            }
            Err(other) => return Err(other.into()),
        }
    };
    for event in events {
        let message = Message::new(
            ConversationMessageId(Uuid::now_v7()),
            saved.conversation.id,
            MessageKind::Event {
                actor: caller(principal),
                event,
            },
            Channel::Internal,
            String::new(),
            Utc::now(),
        )?;
        let appended = store
            .append_message(
                ws,
                &NewMessage {
                    message,
                    sender: None,
                    attachments: Vec::new(),
                    external_id: None,
                    delivery: None,
                },
            )
            .await?;
        publish(bus, LiveEvent::Message(&appended.message)).await;
        saved = appended.conversation;
    }
    publish(bus, LiveEvent::Conversation(&saved)).await;
    let c = &saved.conversation;
    if c.assignee.is_none() || c.status == Status::Resolved || c.assignee != before {
        // Someone may have room now: the queue moves at once.
        if let Err(error) = queue::drain(store, bus, ws).await {
            tracing::warn!(%error, "the waiting queue did not move; it will shortly");
        }
    }
    Ok(saved)
}

#[derive(Debug, Deserialize)]
pub struct StatusBody {
    pub(crate) status: String,
    /// When a snooze ends (RFC 3339).
    pub(crate) until: Option<String>,
}

/// Sets the status: open, pending, snoozed (with `until`) or resolved.
/// Asking for the status it already has changes nothing; a change the
/// core refuses (a resolved conversation made pending) is a 409.
pub async fn set_status(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<StatusBody>,
) -> InboxResult<Json<ConversationView>> {
    let saved = change_status(&state, &principal, id, body).await?;
    Ok(Json(ConversationView::from(&saved)))
}

/// Sets the status (the REST route and the inbox page); see [`set_status`].
pub(crate) async fn change_status(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    body: StatusBody,
) -> InboxResult<StoredConversation> {
    principal.require(Permission::WriteData)?;
    let target: StatusName = body.status.parse()?;
    // A snooze without its time is refused below, with the other changes
    // the conversation's rules refuse.
    let until = match (target, body.until.as_deref()) {
        (StatusName::Snoozed, None) => None,
        (StatusName::Snoozed, Some(raw)) => Some(
            DateTime::parse_from_rfc3339(raw.trim())
                .map_err(|_| invalid("invalid_time", "until", "an RFC 3339 time"))?
                .with_timezone(&Utc),
        ),
        (_, Some(_)) => {
            return Err(invalid("unexpected", "until", "only a snooze has an end"));
        }
        (_, None) => None,
    };
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    let survey = SurveyOnResolve::check(store, principal.workspace, id, target).await?;
    let saved = change(state, principal, id, |update, now| {
        let c = &mut update.conversation;
        let changed = match (target, until) {
            (StatusName::Open, _) => c.reopen(),
            (StatusName::Pending, _) => c.mark_pending(),
            (StatusName::Resolved, _) => c.resolve(),
            (StatusName::Snoozed, Some(until)) => c.snooze(until, now),
            (StatusName::Snoozed, None) => {
                return Err(invalid(
                    "required",
                    "until",
                    "snoozing needs a time to wake",
                ))
            }
        };
        match changed {
            Ok(change) => Ok(vec![change.event()]),
            Err(ConversationError::Already(_)) => Ok(Vec::new()),
            Err(error) => Err(refused_transition(error)),
        }
    })
    .await?;
    survey
        .send(store, bus, &saved)
        .await
        .map_err(ApiError::from)?;
    Ok(saved)
}

/// Tells a field that was left out (keep) from one set to null (clear).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize)]
pub struct AssignmentBody {
    /// A member id, or null to unassign; left out: unchanged.
    #[serde(default, deserialize_with = "present")]
    pub(crate) operator_id: Option<Option<String>>,
    /// A team id, or null for none; left out: unchanged.
    #[serde(default, deserialize_with = "present")]
    pub(crate) team_id: Option<Option<String>>,
    /// A note for the next operator: the change is then a transfer.
    pub(crate) note: Option<String>,
    /// Taking a conversation from the operator who has it (a supervisor).
    #[serde(default)]
    pub(crate) take_over: bool,
}

pub async fn assign(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<AssignmentBody>,
) -> InboxResult<Json<ConversationView>> {
    let saved = change_assignment(&state, &principal, id, body).await?;
    Ok(Json(ConversationView::from(&saved)))
}

/// Assigns an operator and/or team (the REST route and the inbox page).
pub(crate) async fn change_assignment(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    body: AssignmentBody,
) -> InboxResult<StoredConversation> {
    principal.require(Permission::WriteData)?;
    let (store, ws) = (state.store.as_ref(), principal.workspace);
    if body.operator_id.is_none() && body.team_id.is_none() {
        return Err(invalid(
            "required",
            "operator_id",
            "give operator_id, team_id or both",
        ));
    }
    let operator = match body.operator_id.as_ref() {
        Some(Some(raw)) => {
            let member: MemberId = parse_id(raw, "operator_id")?;
            if store.member(ws, member).await?.is_none() {
                return Err(invalid(
                    "unknown_member",
                    "operator_id",
                    "no such member in this workspace",
                ));
            }
            Some(Some(member))
        }
        Some(None) => Some(None),
        None => None,
    };
    let team = match body.team_id.as_ref() {
        Some(Some(raw)) => {
            let team: TeamId = parse_id(raw, "team_id")?;
            if store.team(ws, team).await?.is_none() {
                return Err(invalid(
                    "unknown_team",
                    "team_id",
                    "no such team in this workspace",
                ));
            }
            Some(Some(team))
        }
        Some(None) => Some(None),
        None => None,
    };
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let reason = match (body.take_over, &note) {
        (true, _) => {
            principal.require(Permission::Supervise)?;
            AssignReason::TakeOver
        }
        (false, Some(_)) => AssignReason::Transfer,
        (false, None) => AssignReason::Manual,
    };
    change(state, principal, id, |update, _| {
        let c = &mut update.conversation;
        let to_operator = operator.unwrap_or(c.assignee);
        let to_team = team.unwrap_or(c.team);
        let event = c.assign(to_operator, to_team, reason);
        if event.is_some() {
            update.assignment = Some(AssignmentCause {
                reason,
                actor: caller(principal),
                note: note.clone(),
            });
        }
        Ok(event.into_iter().collect())
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct LabelsBody {
    #[serde(default)]
    pub(crate) add: Vec<String>,
    #[serde(default)]
    pub(crate) remove: Vec<String>,
}

fn labels(raw: &[String], field: &str) -> InboxResult<Vec<Label>> {
    raw.iter()
        .enumerate()
        .map(|(i, l)| {
            Label::parse(l).map_err(|mut e| {
                e.field = format!("{field}[{i}]");
                InboxError::from(e)
            })
        })
        .collect()
}

/// Adds and removes labels (adding one it has, or removing one it lacks,
/// changes nothing).
pub async fn set_labels(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<LabelsBody>,
) -> InboxResult<Json<ConversationView>> {
    let saved = change_labels(&state, &principal, id, body).await?;
    Ok(Json(ConversationView::from(&saved)))
}

/// Adds and removes labels (the REST route and the inbox page).
pub(crate) async fn change_labels(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    body: LabelsBody,
) -> InboxResult<StoredConversation> {
    principal.require(Permission::WriteData)?;
    if body.add.is_empty() && body.remove.is_empty() {
        return Err(invalid("required", "add", "give labels to add or remove"));
    }
    let (add, remove) = (labels(&body.add, "add")?, labels(&body.remove, "remove")?);
    change(state, principal, id, |update, _| {
        let c = &mut update.conversation;
        let mut events: Vec<SystemEvent> = Vec::new();
        events.extend(add.iter().filter_map(|l| c.add_label(l.clone())));
        events.extend(remove.iter().filter_map(|l| c.remove_label(l)));
        Ok(events)
    })
    .await
}

#[derive(Debug, Deserialize)]
pub struct PriorityBody {
    priority: String,
}

pub async fn set_priority(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
    ApiJson(body): ApiJson<PriorityBody>,
) -> InboxResult<Json<ConversationView>> {
    let saved = change_priority(&state, &principal, id, &body.priority).await?;
    Ok(Json(ConversationView::from(&saved)))
}

/// Sets the priority (the REST route and the inbox page).
pub(crate) async fn change_priority(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    raw: &str,
) -> InboxResult<StoredConversation> {
    principal.require(Permission::WriteData)?;
    let priority: Priority = raw.parse()?;
    change(state, principal, id, |update, _| {
        Ok(update
            .conversation
            .set_priority(priority)
            .into_iter()
            .collect())
    })
    .await
}

/// The conversation has been read: no unread messages.
pub async fn mark_read(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConversationId>,
) -> InboxResult<Json<ConversationView>> {
    principal.require(Permission::WriteData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let conversation = load(store, &principal, id).await?;
    store.mark_read(ws, conversation.conversation.id).await?;
    let read = load(store, &principal, id).await?;
    publish(state.bus.as_ref(), LiveEvent::Conversation(&read)).await;
    let at = Whose::of(&read);
    let (party, when) = (Party::Operator, Utc::now());
    publish(state.bus.as_ref(), LiveEvent::Read { at, party, when }).await;
    Ok(Json(ConversationView::from(&read)))
}

// Canned responses.

#[derive(Debug, Deserialize)]
pub struct CannedParams {
    /// Render each reply for this conversation's customer and the caller.
    conversation_id: Option<String>,
}

/// What a template's variables stand for: the conversation's customer
/// (traits, else identifiers) and the calling operator.
pub(crate) async fn values_for(
    store: &dyn Backend,
    principal: &Principal,
    conversation: ConversationId,
) -> InboxResult<Values> {
    let ws = principal.workspace;
    let conversation = load(store, principal, conversation).await?;
    let profile = live_profile(store, ws, conversation.conversation.profile).await?;
    let identifiers = store.profile_identifiers(ws, profile.id).await?;
    let text = |keys: &[&str]| {
        keys.iter().find_map(|k| match profile.traits.get(*k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        })
    };
    let identifier = |kind: IdentifierKind| {
        identifiers
            .iter()
            .find(|i| i.identifier.kind == kind)
            .map(|i| i.identifier.value.clone())
    };
    let operator = match caller(principal) {
        Some(me) => store.member(ws, me).await?.map(|m| display_name(&m)),
        None => None,
    };
    Ok(Values {
        name: text(&["name"]),
        first_name: text(&["first_name", "firstName"]),
        last_name: text(&["last_name", "lastName"]),
        email: text(&["email"]).or_else(|| identifier(IdentifierKind::Email)),
        phone: text(&["phone"]).or_else(|| identifier(IdentifierKind::Phone)),
        operator,
    })
}

pub async fn canned_responses(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<CannedParams>,
) -> InboxResult<Json<Page<CannedResponseView>>> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let values = match params.conversation_id.as_deref() {
        Some(raw) => {
            let id = parse_id(raw, "conversation_id")?;
            Some(values_for(store, &principal, id).await?)
        }
        None => None,
    };
    let saved = store.canned_responses(principal.workspace).await?;
    Ok(Json(Page {
        data: saved
            .into_iter()
            .map(|r| CannedResponseView::new(r, values.as_ref()))
            .collect(),
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
pub struct CannedBody {
    shortcut: String,
    body: String,
}

pub async fn create_canned_response(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CannedBody>,
) -> InboxResult<(StatusCode, Json<CannedResponseView>)> {
    principal.require(Permission::WriteData)?;
    let response = CannedResponse::new(&body.shortcut, &body.body)?;
    let now = Utc::now();
    let record = CannedResponseRecord {
        id: Uuid::now_v7(),
        workspace_id: principal.workspace,
        response,
        created_at: now,
        updated_at: now,
    };
    state.store.create_canned_response(&record).await?;
    Ok((
        StatusCode::CREATED,
        Json(CannedResponseView::new(record, None)),
    ))
}
