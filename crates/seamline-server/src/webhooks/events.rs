//! Live inbox frames → queued deliveries.
//!
//! Which frames make which events:
//! - a `message` frame: `message.created`, keyed by the message id;
//! - a `conversation` frame: `conversation.updated`, keyed by the
//!   conversation's id and version (every write moves the version, so a
//!   state is one event however often its frame is seen);
//! - `conversation.created` comes with the message frame of the
//!   conversation's first message (the store says which message is first;
//!   an empty conversation is nothing to tell), keyed by the conversation
//!   id, so it is queued once per conversation;
//! - `typing` and `read` frames make nothing.
//!
//! A frame is acked after its deliveries are committed; one whose handling
//! failed is not acked and comes again, and the keys make that harmless.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use seamline_bus::{Bus, BusError, Subscription, SubscriptionKind};
use seamline_core::{ConversationId, ProfileId, WebhookDeliveryId, WorkspaceId};
use seamline_store::{
    Backend, MessageQuery, NewDelivery, Order, StoreError, WebhookEndpoint, WebhookEvent,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The bus group: across instances, each frame goes to one member.
const GROUP: &str = "webhooks";
const FRAMES: &str = "inbox.>";

/// Subscribes before returning, so no frame published after is missed.
pub async fn start(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, BusError> {
    let subscription = subscribe(bus.as_ref()).await?;
    Ok(tokio::spawn(consume(store, bus, subscription, wake, stop)))
}

async fn subscribe(bus: &dyn Bus) -> Result<Subscription, BusError> {
    bus.subscribe(FRAMES, SubscriptionKind::Group(GROUP.into()))
        .await
}

async fn consume(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    mut subscription: Subscription,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            delivery = subscription.next() => match delivery {
                Some(delivery) => match handle(store.as_ref(), &delivery.message.payload).await {
                    Ok(queued) => {
                        if queued > 0 {
                            wake.notify_one();
                        }
                        if let Err(error) = delivery.ack().await {
                            tracing::warn!(%error, "a webhook frame was handled but not acked");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "a webhook frame will be handled again"),
                },
                None => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    match subscribe(bus.as_ref()).await {
                        Ok(again) => subscription = again,
                        Err(error) => tracing::warn!(%error, "webhook events paused"),
                    }
                }
            },
        }
    }
}

/// What every frame names.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    workspace_id: WorkspaceId,
    profile_id: ProfileId,
    conversation_id: ConversationId,
}

/// One event for the endpoints that want it.
struct Event {
    kind: WebhookEvent,
    key: String,
    data: Value,
}

/// Queues the frame's events for the workspace's endpoints; how many
/// deliveries were new. A frame that is not JSON of ours is skipped.
async fn handle(store: &dyn Backend, payload: &[u8]) -> Result<u32, StoreError> {
    let Ok(mut frame) = serde_json::from_slice::<Value>(payload) else {
        return Ok(0);
    };
    let Ok(head) = Head::deserialize(&frame) else {
        return Ok(0);
    };
    if !matches!(head.kind.as_str(), "message" | "conversation") {
        return Ok(0);
    }
    let endpoints: Vec<WebhookEndpoint> = store
        .list_webhooks(head.workspace_id)
        .await?
        .into_iter()
        .filter(|e| e.active)
        .collect();
    if endpoints.is_empty() {
        return Ok(0);
    }
    if let Some(object) = frame.as_object_mut() {
        object.remove("type");
    }
    let wants = |kind| endpoints.iter().any(|e| e.wants(kind));
    let events = events_of(store, &head, frame, wants).await?;
    let now = Utc::now();
    let deliveries: Vec<NewDelivery> = events
        .iter()
        .flat_map(|event| {
            endpoints
                .iter()
                .filter(|e| e.wants(event.kind))
                .map(|e| NewDelivery {
                    id: WebhookDeliveryId(Uuid::now_v7()),
                    workspace_id: head.workspace_id,
                    endpoint_id: e.id,
                    event: event.kind,
                    dedupe_key: event.key.clone(),
                    profile_id: Some(head.profile_id),
                    payload: event.data.clone(),
                    created_at: now,
                })
        })
        .collect();
    store.enqueue_deliveries(&deliveries).await
}

async fn events_of(
    store: &dyn Backend,
    head: &Head,
    data: Value,
    wants: impl Fn(WebhookEvent) -> bool,
) -> Result<Vec<Event>, StoreError> {
    if head.kind == "conversation" {
        let version = data["conversation"]["version"].as_i64().unwrap_or_default();
        return Ok(vec![Event {
            kind: WebhookEvent::ConversationUpdated,
            key: format!("conversation:{}:v{version}", head.conversation_id),
            data,
        }]);
    }
    let Some(message_id) = data["message"]["id"].as_str().map(str::to_owned) else {
        return Ok(Vec::new());
    };
    let mut events = Vec::new();
    if wants(WebhookEvent::ConversationCreated) {
        events.extend(created(store, head, &message_id).await?);
    }
    events.push(Event {
        kind: WebhookEvent::MessageCreated,
        key: format!("message:{message_id}"),
        data,
    });
    Ok(events)
}

/// `conversation.created` when `message_id` is the conversation's first
/// message, with the conversation as it is now.
async fn created(
    store: &dyn Backend,
    head: &Head,
    message_id: &str,
) -> Result<Option<Event>, StoreError> {
    let first = MessageQuery {
        after: None,
        limit: 1,
        order: Order::OldestFirst,
    };
    let opened = store
        .list_messages(head.workspace_id, head.conversation_id, &first)
        .await?
        .first()
        .is_some_and(|m| m.message.id.to_string() == message_id);
    if !opened {
        return Ok(None);
    }
    let Some(conversation) = store
        .conversation(head.workspace_id, head.conversation_id)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Event {
        kind: WebhookEvent::ConversationCreated,
        key: format!("conversation:{}", head.conversation_id),
        data: json!({
            "conversation": conversation,
            "workspace_id": head.workspace_id,
            "profile_id": head.profile_id,
            "conversation_id": head.conversation_id,
        }),
    }))
}
