//! Calls from the PBX into the customer's one conversation: the caller's
//! phone is resolved through identity like any sender, a recording is
//! fetched into the blob store and attached, and a missed call makes the
//! conversation a task (open, labelled `missed-call`, priority high). A
//! call to a tracking number joins the visitor who held it and says where
//! they came from (`calltracking::attribute`).
//! A callback the site's visitor asked for is dialled through the outbox
//! ([`dial_back`]).

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::SystemEvent;
use seamline_core::inbox::{Channel, Label, Message, MessageKind, Priority};
use seamline_core::{ConversationId, ConversationMessageId, MemberId, WorkspaceId};
use seamline_store::{Attachment, DeliveryStatus, NewMessage, StoreError, StoredConversation};
use uuid::Uuid;

use super::pbx::{Call, Recording};
use super::{accounts, http_client, Account};
use crate::calltracking::attribute::{attribute, note};
use crate::error::ApiError;
use crate::inbox::attachments::{check, MAX_BYTES};
use crate::inbox::live::{publish, LiveEvent};
use crate::inbox::{receive_with_files, InboxError};
use crate::AppState;

pub const MISSED_LABEL: &str = "missed-call";

fn internal(context: &'static str) -> impl Fn(anyhow::Error) -> ApiError {
    move |e| ApiError::Internal(e.context(context))
}

/// Writes `call` once (a re-sent event is a no-op and fetches nothing).
pub async fn record(state: &AppState, account: &Account, call: Call) -> Result<(), ApiError> {
    let store = state.store.as_ref();
    let mut message = call.message;
    if let Some(external) = &message.external_id {
        let seen = store
            .message_by_external_id(message.workspace, message.channel, external)
            .await?;
        if seen.is_some() {
            return Ok(());
        }
    }
    if let Some(start) = &call.start {
        if let Some(tracked) = attribute(state, start).await? {
            // The call lands in the visitor's conversation, saying how
            // they found the number.
            message.customer.anonymous_id = tracked.anonymous_id.clone();
            message.body.push_str(&note(&tracked));
        }
    }
    let files = match &call.recording {
        Some(recording) => vec![fetch(state, account, recording).await?],
        None => Vec::new(),
    };
    let received = receive_with_files(store, state.bus.as_ref(), message, files)
        .await
        .map_err(|e| match e {
            InboxError::Invalid(error) => ApiError::from(error),
            InboxError::Store(error) => error.into(),
        })?;
    if call.missed && received.message.new {
        flag_missed(state, &received.message.conversation).await?;
    }
    Ok(())
}

/// Downloads the recording from the PBX (only from its own API host: a
/// webhook must not make us fetch anything else) and keeps it checked.
async fn fetch(
    state: &AppState,
    account: &Account,
    recording: &Recording,
) -> Result<Attachment, ApiError> {
    let base = account.setting("api_base").unwrap_or_default();
    let same_host = |u: &str| {
        url::Url::parse(u).ok().map(|u| {
            (
                u.scheme().to_owned(),
                u.host_str().map(str::to_owned),
                u.port_or_known_default(),
            )
        })
    };
    if same_host(&recording.url).is_none() || same_host(&recording.url) != same_host(base) {
        return Err(ApiError::field(
            "foreign_url",
            "json.url",
            "recordings are fetched from the PBX's API host only",
        ));
    }
    let http = http_client(state.config.channels.send_timeout)
        .map_err(|e| internal("an HTTP client")(e.into()))?;
    let response = http
        .get(&recording.url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| {
            ApiError::Unavailable(format!(
                "the recording could not be fetched: {}",
                e.without_url()
            ))
        })?;
    let declared = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::Unavailable(format!("the recording was cut off: {}", e.without_url()))
    })?;
    if bytes.len() > MAX_BYTES {
        return Err(ApiError::field(
            "too_large",
            "json.url",
            "the recording is too large",
        ));
    }
    let checked = check(&recording.name, &declared, &bytes)?;
    let ws = account.stored.workspace_id;
    state
        .blobs
        .put(ws, checked, &bytes)
        .await
        .map_err(|e| internal("keeping a call recording")(e.into()))
}

/// Opens the conversation as a high-priority `missed-call` task, with the
/// changes on its timeline; a concurrent write is retried once.
async fn flag_missed(state: &AppState, conversation: &StoredConversation) -> Result<(), ApiError> {
    let (store, ws) = (state.store.as_ref(), conversation.workspace_id);
    let label = Label::parse(MISSED_LABEL)?;
    let mut current = conversation.clone();
    for retry in [false, true] {
        let now = Utc::now();
        let mut update = current.update(now);
        let c = &mut update.conversation;
        let mut events: Vec<SystemEvent> = c.reopen().ok().map(|s| s.event()).into_iter().collect();
        events.extend(c.add_label(label.clone()));
        events.extend(c.set_priority(Priority::High));
        if events.is_empty() {
            return Ok(());
        }
        match store.update_conversation(ws, &update).await {
            Ok(saved) => return timeline(state, saved, events).await,
            Err(StoreError::Conflict(_)) if !retry => {
                current = store
                    .conversation(ws, current.conversation.id)
                    .await?
                    .ok_or(ApiError::NotFound("conversation"))?;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

async fn timeline(
    state: &AppState,
    mut saved: StoredConversation,
    events: Vec<SystemEvent>,
) -> Result<(), ApiError> {
    let (store, bus) = (state.store.as_ref(), state.bus.as_ref());
    for event in events {
        let message = Message::new(
            ConversationMessageId(Uuid::now_v7()),
            saved.conversation.id,
            MessageKind::Event { actor: None, event },
            Channel::Internal,
            String::new(),
            Utc::now(),
        )?;
        let appended = store
            .append_message(
                saved.workspace_id,
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
    Ok(())
}

/// Starts a callback on the conversation when a PBX account is connected:
/// an outbound phone message from `operator`, queued in the durable outbox
/// for `at`, which the PBX connector sends as an originate command (retried
/// until the PBX takes it, never twice). Returns whether one was queued.
pub async fn dial_back(
    state: &AppState,
    ws: WorkspaceId,
    conversation: ConversationId,
    operator: MemberId,
    phone: &str,
    at: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let store = state.store.as_ref();
    if accounts::sending_account(store, ws, Channel::Phone)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let message = Message::new(
        ConversationMessageId(Uuid::now_v7()),
        conversation,
        MessageKind::Outbound { operator },
        Channel::Phone,
        format!("Calling back {phone}"),
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
                delivery: Some(DeliveryStatus::Pending),
            },
        )
        .await?;
    publish(state.bus.as_ref(), LiveEvent::Message(&appended.message)).await;
    let queued = store
        .enqueue_outbound(ws, appended.message.message.id, at.max(Utc::now()))
        .await?;
    state.channels.wake.notify_one();
    Ok(queued)
}
