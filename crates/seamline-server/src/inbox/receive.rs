//! One inbound message: who wrote (identity resolution, the same path as a
//! tracked event), into which conversation, and to which operator.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use seamline_bus::Bus;
use seamline_core::identity::IdentityPolicy;
use seamline_core::inbox::conversation::{Channel, Message, MessageKind};
use seamline_core::tracking::{parse_message, Envelope};
use seamline_core::{ConversationMessageId, EventId, FieldError, ProfileId, WorkspaceId};
use seamline_store::{
    AppendedMessage, Attachment, Backend, InboundTx, NewEvent, NewMessage, StoreError,
    StoredConversation, StoredEvent, StoredMessage,
};
use serde_json::{json, Value};
use uuid::Uuid;

use super::automation;
use super::live::{publish, LiveEvent};
use super::route::route_conversation;
use crate::identity::{policy_of, BatchGraph, Placed};

/// Who wrote, as the channel knows them. At least one is needed.
#[derive(Debug, Clone, Default)]
pub struct Customer {
    /// The tracking anonymous id (the site widget's visitor).
    pub anonymous_id: Option<String>,
    /// A verified site login (the widget's HMAC-checked user id).
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// The channel's own id of the sender: `("telegram", "123456")`.
    pub channel_id: Option<(String, String)>,
    /// A site visitor's tracking code the message carried (a messenger
    /// link's start parameter), once `widget::tracking::vouched`: ties the
    /// sender to that visitor's profile.
    pub tracking_code: Option<String>,
    /// The name the channel shows, kept on the message (not as the
    /// profile's name: a messenger nickname must not overwrite the name the
    /// customer gave the shop).
    pub name: Option<String>,
    /// A machine wrote (an e-mail auto-reply or bounce): the message is
    /// kept but automation never answers it, so two autoresponders cannot
    /// loop.
    pub automatic: bool,
    /// The ad the message came from (a Click-to-WhatsApp ad's referral):
    /// the message's event carries it as its campaign, an attribution touch.
    pub ad: Option<AdClick>,
}

/// An ad click that opened a chat, in the tracking API's campaign terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdClick {
    /// `utm_source`: `facebook`, `instagram`.
    pub source: String,
    /// `utm_medium`: `paid_social` for an ad, `social` for a boosted post.
    pub medium: String,
    /// `utm_campaign`: the ad's headline.
    pub name: Option<String>,
    /// `utm_content`: the ad's or post's id.
    pub content: Option<String>,
    /// Where the customer clicked.
    pub url: Option<String>,
    /// The ad network's click id (`ctwa_clid`).
    pub click_id: Option<String>,
}

/// A customer's message arriving on a channel.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub workspace: WorkspaceId,
    pub channel: Channel,
    pub customer: Customer,
    pub body: String,
    /// The provider's message id: a retry with the same one is stored once.
    pub external_id: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug)]
pub struct Received {
    pub profile: ProfileId,
    pub message: AppendedMessage,
    /// The operator it was routed to now, if it was.
    pub assigned: Option<seamline_core::MemberId>,
}

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores `inbound` in its customer's conversation (once, whatever the
/// retries), routes the conversation if nobody has it, and pushes both to
/// the screens watching.
pub async fn receive(
    store: &dyn Backend,
    bus: &dyn Bus,
    inbound: Inbound,
) -> Result<Received, InboxError> {
    receive_with_files(store, bus, inbound, Vec::new()).await
}

/// [`receive`] with files already in the blob store (a call's recording).
pub async fn receive_with_files(
    store: &dyn Backend,
    bus: &dyn Bus,
    inbound: Inbound,
    attachments: Vec<Attachment>,
) -> Result<Received, InboxError> {
    let event = prepare(&inbound)?;
    let received = write_one(store, &inbound, event, attachments).await?;
    after_commit(store, bus, &inbound, received).await
}

/// The message's event, or why the message is refused before anything is
/// written (an empty body, a message that names nobody).
pub(super) fn prepare(inbound: &Inbound) -> Result<NewEvent, InboxError> {
    if inbound.body.trim().is_empty() {
        return Err(FieldError::new("blank", "body", "the message is empty").into());
    }
    Ok(event_of(inbound, "Message Received")?)
}

/// Writes one message in its own transaction.
pub(super) async fn write_one(
    store: &dyn Backend,
    inbound: &Inbound,
    event: NewEvent,
    attachments: Vec<Attachment>,
) -> Result<Received, InboxError> {
    let mut written = write_all(store, inbound.workspace, [(inbound, event, attachments)]).await?;
    written
        .pop()
        .ok_or_else(|| StoreError::Backend("no message written".into()).into())
}

/// Writes one workspace's messages in one transaction: all or none, in
/// two phases, each a few statements for the whole batch. First who wrote
/// each message (identity resolution on the batch's graph, in arrival
/// order, then the merges it made carried into conversations); then each
/// sender's conversation, found or opened, and the messages appended to
/// them. A conversation thus sees its customer as the whole batch left
/// them: a message whose sender a later message merged goes straight to
/// the survivor's conversation.
pub(super) async fn write_all<'a>(
    store: &dyn Backend,
    workspace: WorkspaceId,
    messages: impl IntoIterator<Item = (&'a Inbound, NewEvent, Vec<Attachment>)> + Send,
) -> Result<Vec<Received>, InboxError> {
    let policy = policy_of(store, workspace).await?;
    let mut tx = store.begin_inbound(workspace).await?;
    let mut batch = Batch::read(tx.as_mut(), messages.into_iter().collect()).await?;
    let events: Vec<&StoredEvent> = batch.messages.iter().filter_map(|m| m.2.as_ref()).collect();
    let mut graph = BatchGraph::load(tx.as_mut(), &policy, &events).await?;
    let mut identity = Identity {
        policy: &policy,
        graph: &mut graph,
        events: Vec::new(),
        merged: Vec::new(),
    };
    let mut senders = Vec::with_capacity(batch.messages.len());
    let retries = std::mem::take(&mut batch.retries);
    for ((_, _, event), retry) in batch.messages.iter().zip(retries) {
        let sender = match retry {
            Some(retry) => retry,
            None => Sender::New(identify_in(tx.as_mut(), &mut identity, event.clone()).await?),
        };
        senders.push(sender);
    }
    let Identity { events, merged, .. } = identity;
    graph.finish(tx.as_mut()).await?;
    for (survivor, absorbed, at) in merged {
        tx.merge_conversations(survivor, absorbed, at).await?;
    }
    let received = append(tx.as_mut(), batch, senders).await?;
    tx.queue_for_bus(&events).await?;
    tx.commit().await?;
    Ok(received)
}

/// Who wrote a message of a batch.
enum Sender {
    /// A provider's retry of a message stored before the batch.
    Delivered(Box<StoredMessage>),
    /// A retry of the batch's message at this index.
    Repeat(usize),
    /// A new message from this profile.
    New(ProfileId),
}

/// The batch's second phase: each new message's conversation found or
/// opened, the messages appended, and an answer per message in order.
async fn append(
    tx: &mut dyn InboundTx,
    batch: Batch<'_>,
    senders: Vec<Sender>,
) -> Result<Vec<Received>, InboxError> {
    let asked: Vec<(ProfileId, DateTime<Utc>)> = senders
        .iter()
        .zip(&batch.messages)
        .filter_map(|(s, (inbound, _, _))| match s {
            Sender::New(profile) => Some((*profile, inbound.at)),
            _ => None,
        })
        .collect();
    let ats: Vec<DateTime<Utc>> = batch.messages.iter().map(|(i, _, _)| i.at).collect();
    let conversations = tx.conversations_for_profiles(&asked).await?;
    let mut found = conversations.iter().map(|(c, _)| c.conversation.id);
    let mut messages = Vec::with_capacity(asked.len());
    for (sender, (inbound, files, _)) in senders.iter().zip(batch.messages) {
        if let Sender::New(_) = sender {
            let conversation = found
                .next()
                .ok_or_else(|| StoreError::Backend("a sender has no conversation".into()))?;
            messages.push(new_message(inbound, conversation, files)?);
        }
    }
    let read: Vec<StoredConversation> = conversations.into_iter().map(|(c, _)| c).collect();
    let mut appended = tx.append_messages(&read, &messages).await?.into_iter();
    let mut received: Vec<Received> = Vec::with_capacity(senders.len());
    for (sender, at) in senders.into_iter().zip(ats) {
        let message = match sender {
            Sender::New(_) => appended
                .next()
                .ok_or_else(|| StoreError::Backend("a message was not appended".into()))?,
            Sender::Repeat(first) => retried(&received[first].message),
            Sender::Delivered(existing) => {
                let (conversation, _) =
                    tx.conversation_for_profile(existing.profile_id, at).await?;
                AppendedMessage {
                    message: *existing,
                    new: false,
                    conversation,
                    reopened: None,
                }
            }
        };
        received.push(Received {
            profile: message.conversation.conversation.profile,
            message,
            assigned: None,
        });
    }
    Ok(received)
}

/// The answer to a retry of a message the batch appended.
fn retried(first: &AppendedMessage) -> AppendedMessage {
    AppendedMessage {
        message: first.message.clone(),
        new: false,
        conversation: first.conversation.clone(),
        reopened: None,
    }
}

fn new_message(
    inbound: &Inbound,
    conversation: seamline_core::ConversationId,
    attachments: Vec<Attachment>,
) -> Result<NewMessage, InboxError> {
    let message = Message::new(
        ConversationMessageId(Uuid::now_v7()),
        conversation,
        MessageKind::Inbound,
        inbound.channel,
        inbound.body.clone(),
        inbound.at,
    )?;
    Ok(NewMessage {
        message,
        sender: inbound.customer.name.clone(),
        attachments,
        external_id: inbound.external_id.clone(),
        delivery: None,
    })
}

/// A batch with what it shares read and written up front.
struct Batch<'a> {
    /// Per message, in arrival order: the message, its files, and its event
    /// as appended (`None` for a provider's retry, which appends none, or
    /// for an event already stored).
    messages: Vec<(&'a Inbound, Vec<Attachment>, Option<StoredEvent>)>,
    /// Per message, what it retries, if it does: a message the provider
    /// delivered before, or one earlier in the batch.
    retries: Vec<Option<Sender>>,
}

impl<'a> Batch<'a> {
    async fn read(
        tx: &mut dyn InboundTx,
        messages: Vec<(&'a Inbound, NewEvent, Vec<Attachment>)>,
    ) -> Result<Batch<'a>, InboxError> {
        let keys: Vec<(Channel, &str)> = messages
            .iter()
            .filter_map(|(i, _, _)| Some((i.channel, i.external_id.as_deref()?)))
            .collect();
        let delivered: HashMap<_, _> = tx
            .messages_by_external_id(&keys)
            .await?
            .into_iter()
            .filter_map(|m| Some(((m.message.channel, m.external_id.clone()?), m)))
            .collect();
        // A retry (of a delivered message, or of one earlier in the batch)
        // appends no event of its own.
        let mut first = HashMap::new();
        let mut new_events = Vec::with_capacity(messages.len());
        let mut heads = Vec::with_capacity(messages.len());
        let mut retries = Vec::with_capacity(messages.len());
        for (i, (inbound, event, files)) in messages.into_iter().enumerate() {
            let key = inbound.external_id.clone().map(|id| (inbound.channel, id));
            let retry = match key {
                Some(key) => match delivered.get(&key) {
                    Some(existing) => Some(Sender::Delivered(Box::new(existing.clone()))),
                    None => first.get(&key).map(|&at| Sender::Repeat(at)),
                }
                .or_else(|| {
                    first.insert(key, i);
                    None
                }),
                None => None,
            };
            if retry.is_none() {
                new_events.push(event);
            }
            heads.push((inbound, files, retry.is_none()));
            retries.push(retry);
        }
        let mut appended = tx.append_events(&new_events).await?.into_iter();
        let messages = heads
            .into_iter()
            .map(|(inbound, files, fresh)| {
                let event = if fresh {
                    appended.next().flatten()
                } else {
                    None
                };
                (inbound, files, event)
            })
            .collect();
        Ok(Batch { messages, retries })
    }
}

/// After the commit: the screens see the message, automation answers it,
/// and a conversation nobody has is routed.
pub(super) async fn after_commit(
    store: &dyn Backend,
    bus: &dyn Bus,
    inbound: &Inbound,
    received: Received,
) -> Result<Received, InboxError> {
    let appended = &received.message;
    if !appended.new {
        return Ok(received);
    }
    let ws = inbound.workspace;
    publish(bus, LiveEvent::Message(&appended.message)).await;
    let automated = automation::on_inbound(store, bus, inbound, appended).await?;
    let routed = if automated.route && automated.conversation.conversation.assignee.is_none() {
        route_conversation(store, ws, &automated.conversation, inbound.at).await?
    } else {
        None
    };
    let now = routed.as_ref().unwrap_or(&automated.conversation);
    publish(bus, LiveEvent::Conversation(now)).await;
    Ok(Received {
        assigned: routed.and_then(|c| c.conversation.assignee),
        ..received
    })
}

/// A transaction's identity resolution: the rules, the graph its events
/// touch (read once), and what it leaves for the end of the transaction:
/// the events to hand to the bus, and the merges to carry into
/// conversations (survivor, absorbed, when).
struct Identity<'a> {
    policy: &'a IdentityPolicy,
    graph: &'a mut BatchGraph,
    events: Vec<i64>,
    merged: Vec<(ProfileId, ProfileId, DateTime<Utc>)>,
}

/// The customer's profile: the message is also an event of theirs
/// (`event`, such as `Message Received`, without its text), resolved here
/// and now through the identity rules so that the conversation knows whose
/// it is.
pub(crate) async fn identify(
    store: &dyn Backend,
    inbound: &Inbound,
    event: &str,
) -> Result<ProfileId, InboxError> {
    let event = event_of(inbound, event)?;
    let policy = policy_of(store, inbound.workspace).await?;
    let mut tx = store.begin_inbound(inbound.workspace).await?;
    let event = tx.append_events(&[event]).await?.pop().flatten();
    let mut graph = BatchGraph::load(tx.as_mut(), &policy, &Vec::from_iter(&event)).await?;
    let mut identity = Identity {
        policy: &policy,
        graph: &mut graph,
        events: Vec::new(),
        merged: Vec::new(),
    };
    let profile = identify_in(tx.as_mut(), &mut identity, event).await?;
    let Identity { events, merged, .. } = identity;
    graph.finish(tx.as_mut()).await?;
    for (survivor, absorbed, at) in merged {
        tx.merge_conversations(survivor, absorbed, at).await?;
    }
    tx.queue_for_bus(&events).await?;
    tx.commit().await?;
    Ok(profile)
}

/// Resolves `event`, appended in `tx` (noted in `identity`; `None` when it
/// was stored before). The merges it made are noted too: a chat that
/// reveals who the visitor is brings their earlier conversations along.
async fn identify_in(
    tx: &mut dyn InboundTx,
    identity: &mut Identity<'_>,
    event: Option<StoredEvent>,
) -> Result<ProfileId, InboxError> {
    let mut placed = Placed::default();
    if let Some(stored) = event {
        identity.events.push(stored.seq);
        placed = identity
            .graph
            .resolve_new(tx, identity.policy, &stored)
            .await?;
    }
    identity.merged.extend(placed.merged);
    placed.profile.ok_or_else(|| {
        FieldError::new(
            "unknown_customer",
            "customer",
            "the message names nobody: give an id, a phone or an e-mail the rules accept",
        )
        .into()
    })
}

fn event_of(inbound: &Inbound, event: &str) -> Result<NewEvent, FieldError> {
    let c = &inbound.customer;
    let mut traits = serde_json::Map::new();
    for (key, value) in [("email", &c.email), ("phone", &c.phone)] {
        if let Some(value) = value {
            traits.insert(key.into(), Value::String(value.clone()));
        }
    }
    let codes = c.tracking_code.iter().map(|code| ("tracking_code", code));
    let external: Vec<Value> = c
        .channel_id
        .iter()
        .map(|(kind, id)| (kind.as_str(), id))
        .chain(codes)
        .map(|(kind, id)| json!({"type": kind, "id": id}))
        .collect();
    let mut message = json!({
        "type": "track",
        "event": event,
        "properties": {"channel": inbound.channel.as_str()},
        "context": {"traits": traits, "externalIds": external},
        "timestamp": inbound.at.to_rfc3339(),
    });
    if let Some(ad) = &c.ad {
        message["context"]["campaign"] = json!({"source": ad.source, "medium": ad.medium,
            "name": ad.name, "content": ad.content, "ctwa_clid": ad.click_id});
        message["context"]["page"] = json!({"url": ad.url});
    }
    if let Some(anonymous) = &c.anonymous_id {
        message["anonymousId"] = json!(anonymous);
    }
    if let Some(user) = &c.user_id {
        message["userId"] = json!(user);
    }
    if c.anonymous_id.is_none() && c.user_id.is_none() {
        // The tracking API needs one of the two; the channel's id is it.
        let Some((kind, id)) = &c.channel_id else {
            return Err(FieldError::new(
                "unknown_customer",
                "customer",
                "the message names nobody",
            ));
        };
        message["anonymousId"] = json!(format!("{kind}:{id}"));
    }
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip: None,
    };
    let mut message_id = || Uuid::now_v7().to_string();
    let event = parse_message(&message.to_string(), &envelope, &mut message_id)?;
    Ok(NewEvent {
        id: EventId(Uuid::now_v7()),
        workspace_id: inbound.workspace,
        event,
    })
}
