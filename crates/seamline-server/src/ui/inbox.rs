//! The operator inbox: the conversation list on the left, one
//! conversation with its customer and the reply form on the right. Every
//! change goes through the same functions as the REST API.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{html, Markup};
use seamline_core::inbox::conversation::StatusName;
use seamline_core::inbox::{Channel, MessageKind};
use seamline_core::role::Permission;
use seamline_core::{ConversationId, MemberId};
use seamline_store::{
    AssigneeFilter, ConversationQuery, MessageQuery, Order, StoredConversation, StoredMessage,
};
use serde::Deserialize;

use super::format::{identifier_value, kind_label, time_ago, time_exact};
use super::profiles::ProfileLink;
use super::{csrf_field, form_error, layout, with_form_error, FormError, Nav, UiPrincipal};
use crate::api::conversations::{
    caller, change_assignment, change_status, load, write_message, AssignmentBody, InboxError,
    MessageBody, StatusBody,
};
use crate::auth::{FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Conversations in the list.
const LIST_SIZE: u32 = 100;
/// The latest messages shown of one conversation.
const HISTORY_SIZE: u32 = 200;

#[derive(Deserialize, Default)]
pub struct InboxParams {
    /// `mine`, `unassigned` or `all` (the default).
    #[serde(default)]
    who: String,
    /// `open` (the default), `pending` or `resolved`.
    #[serde(default)]
    status: String,
    /// The open conversation.
    #[serde(default)]
    c: String,
}

const WHO: [(&str, &str); 3] = [
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("all", "All"),
];
const STATUSES: [StatusName; 3] = [StatusName::Open, StatusName::Pending, StatusName::Resolved];

impl InboxParams {
    fn who(&self) -> &str {
        WHO.iter()
            .map(|(key, _)| *key)
            .find(|key| *key == self.who)
            .unwrap_or("all")
    }

    fn status(&self) -> StatusName {
        self.status.parse().unwrap_or(StatusName::Open)
    }

    fn href(&self, who: &str, status: StatusName) -> String {
        let mut href = format!("/inbox?who={who}&status={}", status.as_str());
        if !self.c.is_empty() {
            href.push_str("&c=");
            href.push_str(
                &url::form_urlencoded::byte_serialize(self.c.as_bytes()).collect::<String>(),
            );
        }
        href
    }
}

/// The error of a form on the open conversation, and the reply typed.
struct Failure {
    error: FormError,
    draft: String,
}

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(params): Query<InboxParams>,
) -> ApiResult<Markup> {
    render(&state, &principal, &params, None).await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    params: &InboxParams,
    failure: Option<Failure>,
) -> ApiResult<Markup> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let me = caller(principal);
    let assignee = match (params.who(), me) {
        ("mine", Some(me)) => AssigneeFilter::Operator(me),
        ("mine", None) => AssigneeFilter::Operator(MemberId(uuid::Uuid::nil())),
        ("unassigned", _) => AssigneeFilter::Unassigned,
        _ => AssigneeFilter::Anyone,
    };
    let query = ConversationQuery {
        assignee,
        statuses: vec![params.status()],
        limit: LIST_SIZE,
        ..ConversationQuery::default()
    };
    let conversations = store.list_conversations(ws, &query).await?;
    let members: HashMap<MemberId, String> = store
        .list_members(ws)
        .await?
        .into_iter()
        .map(|m| {
            let name = if m.name.trim().is_empty() {
                m.email
            } else {
                m.name
            };
            (m.id, name)
        })
        .collect();
    let mut rows = Vec::with_capacity(conversations.len());
    for conversation in &conversations {
        rows.push((
            conversation,
            customer_label(state, principal, conversation).await,
        ));
    }
    let open = match params.c.trim().parse::<ConversationId>() {
        Ok(id) => load(store, ws, id).await.ok(),
        Err(_) => None,
    };
    let detail = match &open {
        Some(conversation) => {
            Some(conversation_pane(state, principal, conversation, &members, failure).await?)
        }
        None => None,
    };
    let now = Utc::now();
    let content = html! {
        div.inbox {
            section.inbox-list aria-label="Conversations" {
                nav.filters aria-label="Assignee" {
                    @for (key, label) in WHO {
                        a.filter.active[key == params.who()] href=(params.href(key, params.status()))
                            aria-current=[(key == params.who()).then_some("true")] { (label) }
                    }
                }
                nav.filters.statuses aria-label="Status" {
                    @for status in STATUSES {
                        a.filter.active[status == params.status()] href=(params.href(params.who(), status))
                            aria-current=[(status == params.status()).then_some("true")] { (status.as_str()) }
                    }
                }
                @if rows.is_empty() {
                    p.empty-inline #no-conversations { "No " (params.status().as_str()) " conversations here." }
                }
                ul.conversations #conversations {
                    @for (conversation, label) in &rows {
                        @let id = conversation.conversation.id;
                        @let selected = open.as_ref().is_some_and(|o| o.conversation.id == id);
                        li.selected[selected] data-conversation=(id) {
                            a href=(format!("/inbox?who={}&status={}&c={id}", params.who(), params.status().as_str())) {
                                span.row-top {
                                    span.who-name { (label) }
                                    @if let Some(at) = conversation.last_message_at { span.when { (time_ago(at, now)) } }
                                }
                                span.row-bottom {
                                    @if let Some(channel) = conversation.last_message_channel { span.chip { (channel.as_str()) } }
                                    span.status.{ "s-" (conversation.conversation.status.name().as_str()) } { (conversation.conversation.status.name().as_str()) }
                                    @if conversation.unread > 0 {
                                        span.unread title="Unread messages" { (conversation.unread) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.inbox-detail aria-label="Conversation" {
                @if let Some(detail) = detail { (detail) }
                @else { div.empty { h2 { "Pick a conversation" } p { "Its whole history, on every channel, opens here." } } }
            }
        }
    };
    Ok(layout("Inbox", principal, Nav::Inbox, content))
}

/// What to call a conversation's customer (their profile's name, else
/// the identifier that names them best).
async fn customer_label(
    state: &AppState,
    principal: &Principal,
    conversation: &StoredConversation,
) -> String {
    ProfileLink::of(
        state.store.as_ref(),
        principal.workspace,
        conversation.conversation.profile,
    )
    .await
    .map(|link| link.label)
    .unwrap_or_else(|_| "Customer".to_owned())
}

async fn conversation_pane(
    state: &AppState,
    principal: &Principal,
    stored: &StoredConversation,
    members: &HashMap<MemberId, String>,
    failure: Option<Failure>,
) -> ApiResult<Markup> {
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let conversation = &stored.conversation;
    let mut messages = store
        .list_messages(
            ws,
            conversation.id,
            &MessageQuery {
                after: None,
                limit: HISTORY_SIZE,
                order: Order::NewestFirst,
            },
        )
        .await?;
    messages.reverse();
    let profile = ProfileLink::of(store, ws, conversation.profile).await.ok();
    let identifiers = match &profile {
        Some(link) => store.profile_identifiers(ws, link.id).await?,
        None => Vec::new(),
    };
    let can_write = principal.require(Permission::WriteData).is_ok();
    let status = conversation.status.name();
    let reply_channel = conversation.reply_channel(None).ok();
    let assignee = conversation.assignee.map(|id| {
        members
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "a former member".to_owned())
    });
    let action = |path: &str| format!("/inbox/{}/{path}", conversation.id);
    let (error, draft) = match failure {
        Some(f) => (Some(f.error), f.draft),
        None => (None, String::new()),
    };
    Ok(html! {
        div.thread {
            header.thread-head {
                h1 { (profile.as_ref().map_or("Customer", |p| p.label.as_str())) }
                span.status.{ "s-" (status.as_str()) } { (status.as_str()) }
                span.muted.assignee {
                    @match &assignee { Some(name) => { "Assigned to " (name) }, None => { "Unassigned" } }
                }
                span.spacer {}
                @if can_write {
                    @if conversation.assignee != caller(principal) {
                        form.inline method="post" action=(action("assign-me")) {
                            (csrf_field(principal))
                            button type="submit" { "Assign to me" }
                        }
                    }
                    form.inline method="post" action=(action("status")) {
                        (csrf_field(principal))
                        @if status == StatusName::Resolved {
                            input type="hidden" name="status" value="open";
                            button type="submit" { "Reopen" }
                        } @else {
                            input type="hidden" name="status" value="resolved";
                            button.primary type="submit" { "Resolve" }
                        }
                    }
                }
            }
            ol.messages #messages {
                @for message in &messages { (message_item(message, members)) }
            }
            @if can_write {
                form.reply #reply method="post" action=(action("reply")) {
                    (form_error(error.as_ref()))
                    (csrf_field(principal))
                    label.sr-only for="reply-body" { "Message" }
                    textarea #reply-body name="body" rows="3" placeholder="Write a reply, or a note for the team"
                        aria-invalid=[error.as_ref().is_some_and(|e| e.is_about("body")).then_some("true")] { (draft) }
                    div.reply-actions {
                        label.field.inline-field {
                            span { "Channel" }
                            select name="channel" {
                                @for channel in Channel::ALL.into_iter().filter(|c| c.is_customer_facing()) {
                                    option value=(channel.as_str()) selected[Some(channel) == reply_channel] { (channel.as_str()) }
                                }
                            }
                        }
                        span.spacer {}
                        button.note type="submit" name="kind" value="note" { "Add note" }
                        button.primary type="submit" name="kind" value="reply" { "Send" }
                    }
                }
            } @else {
                (form_error(error.as_ref()))
                p.muted.read-only { "Your role can read conversations but not answer them." }
            }
        }
        aside.customer aria-label="Customer" {
            h3 { "Customer" }
            @if let Some(link) = &profile {
                p.customer-name { (link.label) }
                dl.facts.compact {
                    @for i in &identifiers {
                        dt { (kind_label(i.identifier.kind.as_str())) }
                        dd { (identifier_value(i.identifier.kind.as_str(), &i.identifier.value)) }
                    }
                }
                p { a href=(format!("/profiles/{}", link.id)) { "Open profile →" } }
            } @else {
                p.muted { "The profile is no longer there." }
            }
        }
    })
}

fn message_item(stored: &StoredMessage, members: &HashMap<MemberId, String>) -> Markup {
    let message = &stored.message;
    let member = |id: &MemberId| members.get(id).map_or("A former member", String::as_str);
    match &message.kind {
        MessageKind::Event { actor, event } => html! {
            li.msg.event {
                (event_text(event)) @if let Some(actor) = actor { " · " (member(actor)) }
                " · " (time_exact(message.at))
            }
        },
        kind => {
            let (class, who) = match kind {
                MessageKind::Inbound => (
                    "inbound",
                    stored
                        .sender
                        .clone()
                        .unwrap_or_else(|| "Customer".to_owned()),
                ),
                MessageKind::Outbound { operator } => ("outbound", member(operator).to_owned()),
                MessageKind::Bot => ("outbound bot", "Bot".to_owned()),
                MessageKind::Note { author, .. } => ("note", member(author).to_owned()),
                MessageKind::Event { .. } => ("event", String::new()),
            };
            html! {
                li class={ "msg " (class) } data-message=(message.id) {
                    div.bubble {
                        div.meta {
                            span.author { (who) }
                            @if matches!(kind, MessageKind::Note { .. }) { span.internal { "internal" } }
                            @else { span.chip { (message.channel.as_str()) } }
                            (time_exact(message.at))
                        }
                        div.body { (message.body) }
                    }
                }
            }
        }
    }
}

/// A timeline event in words.
fn event_text(event: &seamline_core::inbox::conversation::SystemEvent) -> String {
    use seamline_core::inbox::conversation::SystemEvent;
    match event {
        SystemEvent::StatusChanged { to, .. } => format!("Marked {}", to.as_str()),
        SystemEvent::Assigned {
            operator: Some(_), ..
        } => "Assigned".to_owned(),
        SystemEvent::Assigned { operator: None, .. } => "Unassigned".to_owned(),
        SystemEvent::HandedOff { .. } => "Handed off by the bot".to_owned(),
        SystemEvent::PriorityChanged { .. } => "Priority changed".to_owned(),
        SystemEvent::Labelled { label } => format!("Labelled {}", label.as_str()),
        SystemEvent::Unlabelled { label } => format!("Label {} removed", label.as_str()),
    }
}

// Forms.

#[derive(Deserialize)]
pub struct ReplyForm {
    csrf_token: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    channel: String,
    /// `reply` or `note`: the button pressed.
    #[serde(default)]
    kind: String,
}

#[derive(Deserialize)]
pub struct StatusForm {
    csrf_token: String,
    status: String,
}

has_csrf!(ReplyForm, StatusForm);

fn back(id: ConversationId) -> Response {
    Redirect::to(&format!("/inbox?c={id}")).into_response()
}

/// The inbox again, with the form's error on the conversation.
async fn failed(
    state: &AppState,
    principal: &Principal,
    id: ConversationId,
    error: InboxError,
    draft: String,
) -> ApiResult<Response> {
    let error = match error {
        InboxError::Api(error) => error,
        InboxError::Refused(refused) => ApiError::Invalid(vec![refused]),
    };
    let params = InboxParams {
        c: id.to_string(),
        ..InboxParams::default()
    };
    with_form_error(error, |error| {
        render(state, principal, &params, Some(Failure { error, draft }))
    })
    .await
}

pub async fn reply(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, form): FormCsrf<ReplyForm>,
) -> ApiResult<Response> {
    principal.require(Permission::WriteData)?;
    let is_note = form.kind == "note";
    let body = MessageBody {
        body: Some(form.body.clone()),
        kind: Some(if is_note { "note" } else { "reply" }.to_owned()),
        channel: (!is_note).then(|| form.channel.clone()),
        author_id: None,
    };
    match write_message(&state, &principal, id, &HeaderMap::new(), body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, form.body).await,
    }
}

pub async fn status(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, form): FormCsrf<StatusForm>,
) -> ApiResult<Response> {
    principal.require(Permission::WriteData)?;
    let body = StatusBody {
        status: form.status,
        until: None,
    };
    match change_status(state.store.as_ref(), &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}

pub async fn assign_me(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, _): FormCsrf<super::PlainForm>,
) -> ApiResult<Response> {
    principal.require(Permission::WriteData)?;
    let body = AssignmentBody {
        operator_id: Some(caller(&principal).map(|me| me.to_string())),
        team_id: None,
        note: None,
    };
    match change_assignment(state.store.as_ref(), &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}
