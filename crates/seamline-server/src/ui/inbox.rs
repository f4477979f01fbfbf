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
use seamline_core::inbox::routing::{Presence, QueuePosition};
use seamline_core::inbox::{Channel, MessageKind, Priority};
use seamline_core::role::Permission;
use seamline_core::{ConversationId, MemberId};
use seamline_store::{
    AssigneeFilter, ConversationQuery, DeliveryStatus, MessageQuery, Order, StoredConversation,
    StoredMessage,
};
use serde::Deserialize;

use super::format::{linked_text, time_ago, time_exact, wait_text};
use super::profiles::ProfileLink;
use super::{csrf_field, form_error, layout, script, with_form_error, FormError, Nav, UiPrincipal};
use crate::api::conversations::{
    caller, change_assignment, change_labels, change_priority, change_status, load, values_for,
    write_message, AssignmentBody, InboxError, LabelsBody, MessageBody, StatusBody,
};
use crate::auth::{FormCsrf, Principal};
use crate::channels::whatsapp::window_note;
use crate::error::{ApiError, ApiResult};
use crate::inbox::automation::handoff_text;
use crate::inbox::queue;
use crate::inbox::visibility::Sight;
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
    /// Only this channel's (its latest message either way); empty: any.
    #[serde(default)]
    channel: String,
}

const WHO: [(&str, &str); 5] = [
    ("mine", "Mine"),
    ("unassigned", "Unassigned"),
    ("teams", "My teams"),
    ("mentions", "@ Me"),
    ("all", "All"),
];
/// How far back "@ Me" looks for notes that mention the operator.
const MENTIONS_DAYS: i64 = 30;
const STATUSES: [StatusName; 4] = [
    StatusName::Open,
    StatusName::Pending,
    StatusName::Snoozed,
    StatusName::Resolved,
];

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

    fn channel(&self) -> Option<Channel> {
        self.channel.parse().ok()
    }

    /// This list with another assignee or status filter.
    fn href(&self, who: &str, status: StatusName) -> String {
        self.link(who, status, self.channel(), &self.c)
    }

    fn link(&self, who: &str, status: StatusName, channel: Option<Channel>, open: &str) -> String {
        let mut href = format!("/inbox?who={who}&status={}", status.as_str());
        if let Some(channel) = channel {
            href.push_str("&channel=");
            href.push_str(channel.as_str());
        }
        if !open.is_empty() {
            href.push_str("&c=");
            href.push_str(
                &url::form_urlencoded::byte_serialize(open.as_bytes()).collect::<String>(),
            );
        }
        href
    }

    /// This list with `conversation` open.
    fn open(&self, conversation: ConversationId) -> String {
        self.link(
            self.who(),
            self.status(),
            self.channel(),
            &conversation.to_string(),
        )
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
    let nobody = MemberId(uuid::Uuid::nil());
    let assignee = match (params.who(), me) {
        ("mine", me) => AssigneeFilter::Operator(me.unwrap_or(nobody)),
        ("unassigned", _) => AssigneeFilter::Unassigned,
        _ => AssigneeFilter::Anyone,
    };
    let teams = match (params.who(), me) {
        ("teams", Some(me)) => store.member_teams(ws, me).await?,
        _ => Vec::new(),
    };
    let query = ConversationQuery {
        assignee,
        teams: teams.clone(),
        statuses: vec![params.status()],
        channel: params.channel(),
        limit: LIST_SIZE,
        ..ConversationQuery::default()
    };
    // "My teams" for someone in none is an empty list, not every team's.
    let sight = Sight::of(store, principal).await?;
    let mut conversations = match (params.who(), me) {
        ("mentions", Some(me)) => mentioned(store, ws, me).await?,
        ("mentions", None) => Vec::new(),
        ("teams", _) if teams.is_empty() => Vec::new(),
        _ => store.list_conversations(ws, &query).await?,
    };
    conversations.retain(|c| sight.sees(c));
    let now = Utc::now();
    let queue = queue::waiting(store, ws, now).await?;
    let presence = match me {
        Some(me) => store.operator(ws, me).await?.map(|o| o.presence),
        None => None,
    };
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
        Ok(id) => load(store, principal, id).await.ok(),
        Err(_) => None,
    };
    let detail = match &open {
        Some(conversation) => {
            Some(conversation_pane(state, principal, conversation, &members, failure).await?)
        }
        None => None,
    };
    let open_id = open.as_ref().map(|o| o.conversation.id.to_string());
    let content = html! {
        div.inbox data-inbox="" data-me=[me] data-open=[open_id] {
            section.inbox-list aria-label="Conversations" {
                div.list-head {
                    @if let (Some(presence), true) = (presence, principal.require(Permission::WriteData).is_ok()) {
                        (presence_form(principal, presence))
                    }
                    span #live-status .live role="status" { "Connecting…" }
                    button.link #enable-notifications type="button" title="Desktop notifications for new assignments and mentions" hidden { "Notify me" }
                }
                (queue_summary(&queue))
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
                nav.filters.channels aria-label="Channel" {
                    a.filter.active[params.channel().is_none()] href=(params.link(params.who(), params.status(), None, &params.c)) { "any channel" }
                    @for channel in Channel::ALL.into_iter().filter(|c| c.is_customer_facing()) {
                        a.filter.active[params.channel() == Some(channel)]
                            href=(params.link(params.who(), params.status(), Some(channel), &params.c)) { (channel.as_str()) }
                    }
                }
                @if rows.is_empty() {
                    p.empty-inline #no-conversations {
                        @if params.who() == "mentions" { "No note has mentioned you lately." }
                        @else { "No " (params.status().as_str()) " conversations here." }
                    }
                }
                ul.conversations #conversations {
                    @for (conversation, label) in &rows {
                        @let id = conversation.conversation.id;
                        @let selected = open.as_ref().is_some_and(|o| o.conversation.id == id);
                        li.selected[selected] data-conversation=(id) {
                            a href=(params.open(id)) {
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
                @else { div.empty { h2 { "Pick a conversation" } p { "Its whole history, on every channel, opens here." } p.muted { "Shortcuts: j / k next and previous, r reply, Ctrl+Enter send." } } }
            }
        }
        (script("/assets/inbox.js"))
    };
    Ok(layout("Inbox", principal, Nav::Inbox, content))
}

/// Conversations whose notes mention `me` lately, any status, the latest
/// mention first.
async fn mentioned(
    store: &dyn seamline_store::Backend,
    ws: seamline_core::WorkspaceId,
    me: MemberId,
) -> ApiResult<Vec<StoredConversation>> {
    let since = Utc::now() - chrono::Duration::days(MENTIONS_DAYS);
    let mut found = Vec::new();
    for id in store.mentioned_in(ws, me, since, LIST_SIZE).await? {
        if let Some(conversation) = store.conversation(ws, id).await? {
            found.push(conversation);
        }
    }
    Ok(found)
}

/// The caller's presence, changed with one click.
fn presence_form(principal: &Principal, presence: Presence) -> Markup {
    html! {
        form.presence method="post" action="/inbox/presence" {
            (csrf_field(principal))
            label.sr-only for="presence" { "Your presence" }
            span.dot.{ "p-" (presence.as_str()) } aria-hidden="true" {}
            select #presence name="presence" onchange="this.form.requestSubmit()" {
                @for p in Presence::ALL {
                    option value=(p.as_str()) selected[p == presence] { (p.as_str()) }
                }
            }
            noscript { button type="submit" { "Set" } }
        }
    }
}

/// How many customers wait for an operator, and the longest wait.
fn queue_summary(queue: &[(StoredConversation, QueuePosition)]) -> Markup {
    let longest = queue.iter().map(|(_, p)| p.waited).max();
    html! {
        p #queue-summary .queue-summary.busy[!queue.is_empty()] {
            @if let Some(longest) = longest {
                strong { (queue.len()) } " waiting for an operator · longest " (wait_text(longest))
            } @else {
                "Nobody is waiting for an operator."
            }
        }
    }
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
    let customer = super::inbox_customer::panel(store, ws, conversation.profile).await?;
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
    let canned = canned_for(state, principal, stored).await?;
    let teams = store.list_teams(ws).await?;
    let (error, draft) = match failure {
        Some(f) => (Some(f.error), f.draft),
        None => (None, String::new()),
    };
    Ok(html! {
        div.thread {
            header.thread-head #thread-head {
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
                            @if conversation.assignee.is_some() && principal.require(Permission::Supervise).is_ok() {
                                button type="submit" { "Take over" }
                            } @else {
                                button type="submit" { "Assign to me" }
                            }
                        }
                    }
                    @if matches!(status, StatusName::Open | StatusName::Pending) {
                        form.inline.snooze method="post" action=(action("status")) {
                            (csrf_field(principal))
                            input type="hidden" name="status" value="snoozed";
                            label.sr-only for="snooze" { "Snooze" }
                            select #snooze name="snooze" onchange="this.form.requestSubmit()" {
                                option value="" { "Snooze…" }
                                option value="1h" { "for an hour" }
                                option value="4h" { "for 4 hours" }
                                option value="tomorrow" { "until tomorrow 09:00 UTC" }
                            }
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
            @if can_write { (thread_tools(principal, stored, &action)) }
            ol.messages #messages {
                @for message in &messages { (message_item(message, members)) }
            }
            p #typing .typing role="status" {}
            @if can_write {
                form.reply #reply method="post" action=(action("reply")) {
                    (form_error(error.as_ref()))
                    (csrf_field(principal))
                    label.sr-only for="reply-body" { "Message" }
                    @if let Some(note) = window_note(reply_channel, &messages, Utc::now()) {
                        p.muted.window-note #reply-window role="note" { (note) }
                    }
                    textarea #reply-body name="body" rows="3" placeholder="Write a reply, or a note for the team"
                        aria-invalid=[error.as_ref().is_some_and(|e| e.is_about("body")).then_some("true")] { (draft) }
                    input #reply-attachments type="hidden" name="attachments" value="";
                    ul #reply-files .files.pending {}
                    div.reply-actions {
                        @if !canned.is_empty() {
                            label.field.inline-field {
                                span { "Saved reply" }
                                select #canned {
                                    option value="" { "Insert…" }
                                    @for (shortcut, body) in &canned {
                                        option value=(shortcut) data-body=(body) { "/" (shortcut) }
                                    }
                                }
                            }
                        }
                        label.field.inline-field {
                            span { "Channel" }
                            select name="channel" {
                                @for channel in Channel::ALL.into_iter().filter(|c| c.is_customer_facing()) {
                                    option value=(channel.as_str()) selected[Some(channel) == reply_channel] { (channel.as_str()) }
                                }
                            }
                        }
                        label.attach title="Attach files (images, PDF, documents, up to 10 MB)" {
                            span { "Attach file" }
                            input #reply-file .sr-only type="file" multiple
                                accept="image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain,text/csv,.docx,.xlsx,.doc,.zip"
                                data-upload=(format!("/api/v1/conversations/{}/attachments", conversation.id));
                        }
                        span.spacer {}
                        button.note type="submit" name="kind" value="note" { "Add note" }
                        button.primary type="submit" name="kind" value="reply" { "Send" }
                    }
                }
                (transfer_form(principal, &action("transfer"), members, &teams))
            } @else {
                (form_error(error.as_ref()))
                p.muted.read-only { "Your role can read conversations but not answer them." }
            }
        }
        aside.customer aria-label="Customer" {
            h3 { "Customer" }
            (customer)
        }
    })
}

/// How far a reply on a connector's channel got (web chat replies go
/// over the widget's socket and carry no status worth showing).
fn delivery_badge(stored: &StoredMessage) -> Markup {
    let Some(status) = stored
        .delivery
        .filter(|_| stored.message.channel != Channel::WebChat)
    else {
        return html! {};
    };
    let (class, label) = match status {
        DeliveryStatus::Pending => ("pending", "sending…"),
        DeliveryStatus::Sent => ("sent", "sent"),
        DeliveryStatus::Delivered => ("sent", "delivered"),
        DeliveryStatus::Read => ("sent", "read"),
        DeliveryStatus::Failed => ("failed", "not delivered"),
        DeliveryStatus::Unknown => ("failed", "may not have been delivered"),
    };
    html! {
        span class={ "delivery " (class) } title=[stored.delivery_reason.as_deref()] {
            (label)
            @if let Some(reason) = stored.delivery_reason.as_deref().filter(|_| matches!(status, DeliveryStatus::Failed | DeliveryStatus::Unknown)) {
                ": " (reason)
            }
        }
    }
}

/// What an SMS reply costs: its segments and encoding (billing is per
/// segment; one Cyrillic letter makes the whole text UCS-2).
fn sms_segments(stored: &StoredMessage) -> Markup {
    if stored.message.channel != Channel::Sms || stored.delivery.is_none() {
        return html! {};
    }
    let parts = seamline_core::sms::segments(&stored.message.body);
    let encoding = match parts.encoding {
        seamline_core::sms::Encoding::Gsm7 => "GSM-7",
        seamline_core::sms::Encoding::Ucs2 => "UCS-2",
    };
    let plural = if parts.count == 1 { "" } else { "s" };
    html! { span.muted.segments { " · " (parts.count) " segment" (plural) ", " (encoding) } }
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
                            (delivery_badge(stored))
                            (sms_segments(stored))
                        }
                        @if !message.body.is_empty() { div.body { (linked_text(&message.body)) } }
                        @if !stored.attachments.is_empty() { (files(&stored.attachments)) }
                    }
                }
            }
        }
    }
}

/// The workspace's saved replies, filled in for this customer and operator.
async fn canned_for(
    state: &AppState,
    principal: &Principal,
    stored: &StoredConversation,
) -> ApiResult<Vec<(String, String)>> {
    let store = state.store.as_ref();
    let saved = store.canned_responses(principal.workspace).await?;
    if saved.is_empty() {
        return Ok(Vec::new());
    }
    let values = values_for(store, principal, stored.conversation.id)
        .await
        .ok();
    Ok(saved
        .into_iter()
        .map(|r| {
            let template = &r.response.template;
            let body = match &values {
                Some(values) => template.render(values),
                None => template.as_str().to_owned(),
            };
            (r.response.shortcut, body)
        })
        .collect())
}

/// Priority and labels, each changed in place.
fn thread_tools(
    principal: &Principal,
    stored: &StoredConversation,
    action: &dyn Fn(&str) -> String,
) -> Markup {
    let c = &stored.conversation;
    html! {
        div.thread-tools #thread-tools {
            form.inline method="post" action=(action("priority")) {
                (csrf_field(principal))
                label.inline-field for="priority" { span.muted { "Priority" } }
                select #priority name="priority" onchange="this.form.requestSubmit()" {
                    @for p in Priority::ALL {
                        option value=(p.as_str()) selected[p == c.priority] { (p.as_str()) }
                    }
                }
                noscript { button type="submit" { "Set" } }
            }
            div.labels {
                @for label in &c.labels {
                    form.inline method="post" action=(action("labels")) {
                        (csrf_field(principal))
                        span.chip.label { (label.as_str())
                            button.link type="submit" name="remove" value=(label.as_str())
                                aria-label={ "Remove label " (label.as_str()) } { "×" } }
                    }
                }
                form.inline.add-label method="post" action=(action("labels")) {
                    (csrf_field(principal))
                    label.sr-only for="add-label" { "Add a label" }
                    input #add-label type="text" name="add" placeholder="+ label" maxlength="50" size="8";
                }
            }
        }
    }
}

/// Passes the conversation to another operator or team with a note.
fn transfer_form(
    principal: &Principal,
    action: &str,
    members: &HashMap<MemberId, String>,
    teams: &[seamline_store::Team],
) -> Markup {
    let mut people: Vec<(&MemberId, &String)> = members.iter().collect();
    people.sort_by_key(|(_, name)| name.to_lowercase());
    html! {
        details.transfer {
            summary { "Transfer…" }
            form.transfer-form method="post" action=(action) {
                (csrf_field(principal))
                label.field {
                    span { "To" }
                    select name="to" required {
                        option value="" { "Pick an operator or team" }
                        optgroup label="Operators" {
                            @for (id, name) in &people { option value={ "operator:" (id) } { (name) } }
                        }
                        @if !teams.is_empty() {
                            optgroup label="Teams" {
                                @for team in teams { option value={ "team:" (team.id) } { (team.name) } }
                            }
                        }
                    }
                }
                label.field {
                    span { "Note for them" }
                    input type="text" name="note" maxlength="1000" placeholder="What they should know";
                }
                button type="submit" { "Transfer" }
            }
        }
    }
}

/// A message's files: images as thumbnails, the rest as links.
fn files(attachments: &[seamline_store::Attachment]) -> Markup {
    html! {
        ul.files {
            @for file in attachments {
                @let href = format!("/api/v1/attachments/{}", file.key);
                li {
                    @if crate::inbox::attachments::is_image(&file.content_type) {
                        a href=(href) target="_blank" rel="noopener" {
                            img src=(href) alt=(file.name) loading="lazy";
                        }
                    } @else if crate::inbox::attachments::is_audio(&file.content_type) {
                        audio controls preload="metadata" src=(href) title=(file.name) {}
                        a.file href=(href) download=(file.name) { (file.name) }
                    } @else {
                        a.file href=(href) download=(file.name) {
                            (file.name)
                            span.muted { " · " (size_text(file.size)) }
                        }
                    }
                }
            }
        }
    }
}

fn size_text(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{} KB", bytes / 1024),
        _ => format!("{:.1} MB", bytes as f64 / 1_048_576.0),
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
        SystemEvent::HandedOff { collected, .. } => handoff_text(collected),
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
    /// Keys of the files uploaded for this message, comma-separated (the
    /// page's script uploads them as they are picked).
    #[serde(default)]
    attachments: String,
}

#[derive(Deserialize)]
pub struct StatusForm {
    csrf_token: String,
    status: String,
    /// A snooze's length: `1h`, `4h` or `tomorrow`.
    #[serde(default)]
    snooze: String,
}

#[derive(Deserialize)]
pub struct LabelForm {
    csrf_token: String,
    #[serde(default)]
    add: String,
    #[serde(default)]
    remove: String,
}

#[derive(Deserialize)]
pub struct PriorityForm {
    csrf_token: String,
    priority: String,
}

#[derive(Deserialize)]
pub struct TransferForm {
    csrf_token: String,
    /// `operator:<id>` or `team:<id>`.
    to: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
pub struct PresenceForm {
    csrf_token: String,
    presence: String,
}

has_csrf!(
    ReplyForm,
    StatusForm,
    TransferForm,
    PresenceForm,
    LabelForm,
    PriorityForm
);

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
        attachments: form
            .attachments
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect(),
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
    let now = Utc::now();
    let until = match form.snooze.as_str() {
        "1h" => Some(now + chrono::Duration::hours(1)),
        "4h" => Some(now + chrono::Duration::hours(4)),
        "tomorrow" => (now.date_naive() + chrono::Days::new(1))
            .and_hms_opt(9, 0, 0)
            .map(|t| t.and_utc()),
        _ => None,
    };
    let body = StatusBody {
        status: form.status,
        until: until.map(|t| t.to_rfc3339()),
    };
    match change_status(&state, &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}

pub async fn labels(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, form): FormCsrf<LabelForm>,
) -> ApiResult<Response> {
    let one = |raw: &str| {
        let raw = raw.trim();
        if raw.is_empty() {
            Vec::new()
        } else {
            vec![raw.to_owned()]
        }
    };
    let body = LabelsBody {
        add: one(&form.add),
        remove: one(&form.remove),
    };
    match change_labels(&state, &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}

pub async fn priority(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, form): FormCsrf<PriorityForm>,
) -> ApiResult<Response> {
    match change_priority(&state, &principal, id, &form.priority).await {
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
    let me = caller(&principal);
    // A supervisor taking someone else's conversation is a take-over.
    let held = load(state.store.as_ref(), &principal, id)
        .await
        .ok()
        .and_then(|c| c.conversation.assignee);
    let body = AssignmentBody {
        operator_id: Some(me.map(|me| me.to_string())),
        team_id: None,
        note: None,
        take_over: held.is_some() && held != me && principal.require(Permission::Supervise).is_ok(),
    };
    match change_assignment(&state, &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}

pub async fn transfer(
    State(state): State<AppState>,
    Path(id): Path<ConversationId>,
    FormCsrf(principal, form): FormCsrf<TransferForm>,
) -> ApiResult<Response> {
    principal.require(Permission::WriteData)?;
    let note = Some(form.note.clone());
    let body = match form.to.split_once(':') {
        Some(("operator", member)) => AssignmentBody {
            operator_id: Some(Some(member.to_owned())),
            team_id: None,
            note,
            take_over: false,
        },
        // A team's queue: nobody in particular until routing picks someone.
        Some(("team", team)) => AssignmentBody {
            operator_id: Some(None),
            team_id: Some(Some(team.to_owned())),
            note,
            take_over: false,
        },
        _ => {
            let error = ApiError::field("required", "to", "pick an operator or a team");
            return failed(
                &state,
                &principal,
                id,
                InboxError::Api(error),
                String::new(),
            )
            .await;
        }
    };
    match change_assignment(&state, &principal, id, body).await {
        Ok(_) => Ok(back(id)),
        Err(e) => failed(&state, &principal, id, e, String::new()).await,
    }
}

pub async fn presence(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<PresenceForm>,
) -> ApiResult<Response> {
    principal.require(Permission::WriteData)?;
    let member = caller(&principal).ok_or(ApiError::NotFound("member"))?;
    let presence: Presence = form.presence.parse()?;
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    queue::set_presence(store, bus, principal.workspace, member, presence).await?;
    Ok(Redirect::to("/inbox").into_response())
}
