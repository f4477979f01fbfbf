//! The visitor's chat socket: history on connect, their messages into the
//! inbox, operators' answers pushed back as they are written.
//!
//! Frames are JSON. The visitor sends `{"type": "message", "id": <uuid>,
//! "body": "..."}` (the id makes a resend after a reconnect harmless) and
//! gets `history`, `ack`, `message` and `error` frames. Bodies are text:
//! the widget puts them in the page with `textContent`, never as HTML.

use std::time::{Duration, Instant};

use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::StreamExt;
use seamline_bus::{Subscription, SubscriptionKind};
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::widget_identity;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::{MessageQuery, Order, ProfileQuery};
use serde::Deserialize;
use serde_json::{json, Value};

use super::live::{announce, subject_of, VisitorMessage};
use crate::auth::WriteKeyWorkspace;
use crate::error::{ApiError, ApiResult};
use crate::inbox::{receive, Customer, Inbound, InboxError};
use crate::AppState;

/// Messages a visitor may send in [`RATE_WINDOW`].
const RATE_LIMIT: usize = 10;
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Messages shown on connect.
const HISTORY: u32 = 50;
/// The longest message id a widget may choose.
const MAX_ID_CHARS: usize = 100;

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/widget.js"),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
pub struct Visitor {
    key: String,
    #[serde(rename = "anonymousId")]
    anonymous_id: String,
    #[serde(rename = "userId")]
    user_id: Option<String>,
    #[serde(rename = "userHash")]
    user_hash: Option<String>,
}

/// Who is connecting, checked before the upgrade so a refusal is a plain
/// JSON error.
struct Checked {
    workspace: WorkspaceId,
    customer: Customer,
}

pub async fn connect(
    State(state): State<AppState>,
    Query(visitor): Query<Visitor>,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let checked = check(&state, visitor).await?;
    Ok(upgrade
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| serve(state, checked, socket)))
}

async fn check(state: &AppState, visitor: Visitor) -> ApiResult<Checked> {
    let workspace =
        WriteKeyWorkspace::resolve(state, &axum::http::HeaderMap::new(), Some(&visitor.key))
            .await?;
    let anonymous = visitor.anonymous_id.trim();
    if anonymous.is_empty() || anonymous.len() > 200 {
        return Err(ApiError::field(
            "invalid_value",
            "anonymousId",
            "the visitor's anonymous id, 1 to 200 characters",
        ));
    }
    let user_id = match visitor.user_id.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(user) => Some(verified(state, workspace, user, visitor.user_hash.as_deref()).await?),
    };
    Ok(Checked {
        workspace,
        customer: Customer {
            anonymous_id: Some(anonymous.to_owned()),
            user_id,
            ..Customer::default()
        },
    })
}

/// The site's user id, if its HMAC is right under the workspace's secret.
async fn verified(
    state: &AppState,
    workspace: WorkspaceId,
    user: &str,
    hash: Option<&str>,
) -> ApiResult<String> {
    let secret = state
        .store
        .setting(workspace, "widget")
        .await?
        .and_then(|w| w["identity_secret"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let refused = || {
        ApiError::field(
            "unverified_user",
            "userHash",
            "a user id needs its HMAC-SHA256 under the workspace's widget secret",
        )
    };
    let hash = hash.ok_or_else(refused)?;
    widget_identity::verify(secret.as_bytes(), user, hash).map_err(|_| refused())?;
    Ok(user.to_owned())
}

async fn serve(state: AppState, visitor: Checked, mut socket: WebSocket) {
    let mut profile = known_profile(&state, &visitor).await;
    let mut live = match profile {
        Some(p) => subscribe(&state, visitor.workspace, p).await,
        None => None,
    };
    if let Some(p) = profile {
        if send(&mut socket, history(&state, visitor.workspace, p).await)
            .await
            .is_err()
        {
            return;
        }
    }
    let mut sent: Vec<Instant> = Vec::new();
    loop {
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { return };
                let Frame::Text(text) = frame else { continue };
                let answer = on_frame(&state, &visitor, &text, &mut sent).await;
                if let Some(placed) = answer.profile.filter(|p| Some(*p) != profile) {
                    if may_see(&state, &visitor, placed).await {
                        profile = Some(placed);
                        live = subscribe(&state, visitor.workspace, placed).await;
                    }
                }
                if send(&mut socket, answer.frame).await.is_err() {
                    return;
                }
            }
            delivery = next(&mut live) => {
                let Some(delivery) = delivery else { continue };
                if let Some(frame) = pushed(&delivery.message.payload) {
                    if send(&mut socket, frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The next live delivery; pends forever without a subscription.
async fn next(live: &mut Option<Subscription>) -> Option<seamline_bus::Delivery> {
    match live {
        Some(subscription) => subscription.next().await,
        None => std::future::pending().await,
    }
}

struct Answer {
    frame: Value,
    profile: Option<ProfileId>,
}

async fn on_frame(
    state: &AppState,
    visitor: &Checked,
    text: &str,
    sent: &mut Vec<Instant>,
) -> Answer {
    let refused = |field: &str, message: &str| Answer {
        frame: json!({"type": "error", "field": field, "message": message}),
        profile: None,
    };
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return refused("", "frames are JSON objects");
    };
    let (Some("message"), Some(id), Some(body)) = (
        frame["type"].as_str(),
        frame["id"].as_str(),
        frame["body"].as_str(),
    ) else {
        return refused("body", "send {\"type\": \"message\", \"id\", \"body\"}");
    };
    if id.is_empty() || id.len() > MAX_ID_CHARS {
        return refused("id", "a message id of 1 to 100 characters");
    }
    let now = Instant::now();
    sent.retain(|at| now.duration_since(*at) < RATE_WINDOW);
    if sent.len() >= RATE_LIMIT {
        return refused("body", "too many messages at once: wait a few seconds");
    }
    sent.push(now);
    let inbound = Inbound {
        workspace: visitor.workspace,
        channel: Channel::WebChat,
        customer: visitor.customer.clone(),
        body: body.to_owned(),
        // Scoped to the visitor: another visitor's id never names this message.
        external_id: Some(format!(
            "widget:{}:{id}",
            visitor.customer.anonymous_id.as_deref().unwrap_or_default()
        )),
        at: Utc::now(),
    };
    match receive(state.store.as_ref(), inbound).await {
        Ok(received) => {
            if received.message.new {
                if let Err(error) = announce(state.bus.as_ref(), &received.message.message).await {
                    tracing::warn!(%error, "a widget message was stored but not pushed live");
                }
            }
            let view = VisitorMessage::of(&received.message.message);
            Answer {
                frame: json!({"type": "ack", "id": id, "message": view}),
                profile: Some(received.profile),
            }
        }
        Err(InboxError::Invalid(e)) => refused(&e.field, &e.message),
        Err(InboxError::Store(error)) => {
            tracing::error!(%error, "a widget message could not be stored");
            refused("", "the message was not saved: send it again")
        }
    }
}

/// The visitor's profile, if they may see its conversation.
async fn known_profile(state: &AppState, visitor: &Checked) -> Option<ProfileId> {
    let identifier = match (&visitor.customer.user_id, &visitor.customer.anonymous_id) {
        (Some(user), _) => Identifier {
            kind: IdentifierKind::UserId,
            value: user.clone(),
        },
        (None, Some(anonymous)) => Identifier {
            kind: IdentifierKind::AnonymousId,
            value: anonymous.clone(),
        },
        (None, None) => return None,
    };
    let query = ProfileQuery {
        identifiers: vec![identifier],
        limit: 1,
        ..ProfileQuery::default()
    };
    let found = state
        .store
        .list_profiles(visitor.workspace, &query)
        .await
        .ok()?;
    let profile = found.first()?.id;
    may_see(state, visitor, profile).await.then_some(profile)
}

/// A customer's account opens only to that customer, verified by the
/// HMAC; a shared browser (a family tablet) shows nobody's chat. Anyone may
/// link a cookie to an account through the public tracking API, so the
/// cookie alone never reveals an account's messages.
async fn may_see(state: &AppState, visitor: &Checked, profile: ProfileId) -> bool {
    let Ok(held) = state
        .store
        .profile_identifiers(visitor.workspace, profile)
        .await
    else {
        return false;
    };
    let accounts: Vec<&str> = held
        .iter()
        .filter(|i| i.identifier.kind == IdentifierKind::UserId)
        .map(|i| i.identifier.value.as_str())
        .collect();
    if !accounts.is_empty() {
        return visitor
            .customer
            .user_id
            .as_deref()
            .is_some_and(|u| accounts.contains(&u));
    }
    let cookie = visitor.customer.anonymous_id.as_deref();
    !held.iter().any(|i| {
        i.shared
            && i.identifier.kind == IdentifierKind::AnonymousId
            && Some(i.identifier.value.as_str()) == cookie
    })
}

async fn subscribe(state: &AppState, ws: WorkspaceId, profile: ProfileId) -> Option<Subscription> {
    match state
        .bus
        .subscribe(&subject_of(ws, profile), SubscriptionKind::Broadcast)
        .await
    {
        Ok(subscription) => Some(subscription),
        Err(error) => {
            tracing::warn!(%error, "no live answers for a widget visitor");
            None
        }
    }
}

/// The visitor's conversation so far, oldest first.
async fn history(state: &AppState, ws: WorkspaceId, profile: ProfileId) -> Value {
    let messages = async {
        let (conversation, _) = state
            .store
            .conversation_for_profile(ws, profile, Utc::now())
            .await?;
        let query = MessageQuery {
            limit: HISTORY,
            order: Order::NewestFirst,
            ..MessageQuery::default()
        };
        state
            .store
            .list_messages(ws, conversation.conversation.id, &query)
            .await
    }
    .await
    .unwrap_or_default();
    let mut shown: Vec<Value> = messages
        .iter()
        .filter_map(VisitorMessage::of)
        .map(|m| json!(m))
        .collect();
    shown.reverse();
    json!({"type": "history", "messages": shown})
}

/// A live message as the visitor sees it (none for notes and events).
fn pushed(payload: &[u8]) -> Option<Value> {
    let stored: Value = serde_json::from_slice(payload).ok()?;
    let kind = stored["kind"].as_str()?;
    if !matches!(kind, "inbound" | "outbound" | "bot") || stored["channel"] != "web_chat" {
        return None;
    }
    Some(json!({"type": "message", "message": {
        "id": stored["id"], "kind": kind, "body": stored["body"], "at": stored["at"],
    }}))
}

async fn send(socket: &mut WebSocket, frame: Value) -> Result<(), axum::Error> {
    socket.send(Frame::Text(frame.to_string().into())).await
}
