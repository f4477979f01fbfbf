//! The visitor's chat socket: history on connect, their messages into the
//! inbox, operators' answers pushed back as they are written.
//!
//! Frames are JSON. The visitor sends `{"type": "message", "id": <uuid>,
//! "body": "..."}` (the id makes a resend after a reconnect harmless) and
//! gets `history`, `ack`, `message` and `error` frames. Bodies are text:
//! the widget puts them in the page with `textContent`, never as HTML.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as Frame, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::widget_identity;
use seamline_core::{ConversationId, ProfileId, WorkspaceId};
use seamline_store::{MessageQuery, Order, ProfileQuery};
use serde::Deserialize;
use serde_json::{json, Value};

use super::live::VisitorMessage;
use super::settings::identity_secret;
use super::visitor::SiteVisitor;
use crate::error::{ApiError, ApiResult};
use crate::inbox::live::{self, publish, FrameKind, LiveEvent, Party, Whose};
use crate::inbox::{Customer, Inbound, InboxError};
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
    // A chat frame is small: a 4 KiB read buffer instead of the default
    // 128 KiB keeps thousands of idle sockets cheap (it grows if needed).
    Ok(upgrade
        .max_message_size(64 * 1024)
        .read_buffer_size(4 * 1024)
        .on_upgrade(move |socket| serve(state, checked, socket)))
}

async fn check(state: &AppState, visitor: Visitor) -> ApiResult<Checked> {
    let site = SiteVisitor::check(
        state,
        &axum::http::HeaderMap::new(),
        &visitor.key,
        &visitor.anonymous_id,
    )
    .await?;
    let workspace = site.workspace;
    let user_id = match visitor.user_id.as_deref().filter(|u| !u.is_empty()) {
        None => None,
        Some(user) => Some(verified(state, workspace, user, visitor.user_hash.as_deref()).await?),
    };
    Ok(Checked {
        workspace,
        customer: Customer {
            anonymous_id: Some(site.anonymous_id),
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
    let secret = identity_secret(state.store.as_ref(), workspace)
        .await?
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
    let mut live = profile.map(|p| state.live.watch_conversation(visitor.workspace, p));
    if let Some(p) = profile {
        if send(
            &mut socket,
            history(&state, visitor.workspace, p, None).await,
        )
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
                let answer = on_frame(&state, &visitor, profile, &text, &mut sent).await;
                let mut catch_up = None;
                let placed = answer.placed.filter(|(p, _)| Some(*p) != profile);
                if let Some((placed, conversation)) = placed {
                    if may_see(&state, &visitor, placed).await {
                        profile = Some(placed);
                        live = Some(state.live.watch_conversation(visitor.workspace, placed));
                        // An answer written before this socket listened
                        // (a quick first reply) comes with the history;
                        // the widget shows each message once.
                        let ws = visitor.workspace;
                        catch_up = Some(history(&state, ws, placed, Some(conversation)).await);
                    }
                }
                for frame in answer.frame.into_iter().chain(catch_up) {
                    if send(&mut socket, frame).await.is_err() {
                        return;
                    }
                }
            }
            pushed = next(&mut live) => {
                let Some(frame) = pushed else { continue };
                if let Some(frame) = for_visitor(&frame) {
                    if send(&mut socket, frame).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The next live frame; pends forever without a conversation to watch.
async fn next(live: &mut Option<live::Receiver>) -> Option<Arc<live::Frame>> {
    match live {
        Some(receiver) => live::next_frame(receiver).await,
        None => std::future::pending().await,
    }
}

struct Answer {
    /// What to tell the visitor, if anything.
    frame: Option<Value>,
    /// Whose conversation the visitor's message went to, and which.
    placed: Option<(ProfileId, ConversationId)>,
}

impl Answer {
    fn refused(field: &str, message: &str) -> Self {
        Self {
            frame: Some(json!({"type": "error", "field": field, "message": message})),
            placed: None,
        }
    }

    fn quiet() -> Self {
        Self {
            frame: None,
            placed: None,
        }
    }
}

async fn on_frame(
    state: &AppState,
    visitor: &Checked,
    profile: Option<ProfileId>,
    text: &str,
    sent: &mut Vec<Instant>,
) -> Answer {
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return Answer::refused("", "frames are JSON objects");
    };
    match frame["type"].as_str() {
        Some("message") => on_message(state, visitor, &frame, sent).await,
        Some(kind @ ("typing" | "read")) => {
            if let Some(profile) = profile {
                signal(state, visitor.workspace, profile, kind).await;
            }
            Answer::quiet()
        }
        _ => Answer::refused("type", "send a message, typing or read frame"),
    }
}

/// Tells the operators the visitor is typing or has read their answers.
async fn signal(state: &AppState, ws: WorkspaceId, profile: ProfileId, kind: &str) {
    let Ok((conversation, _)) = state
        .store
        .conversation_for_profile(ws, profile, Utc::now())
        .await
    else {
        return;
    };
    let at = Whose::of(&conversation);
    let party = Party::Visitor;
    let event = if kind == "typing" {
        LiveEvent::Typing {
            at,
            party,
            member: None,
            name: None,
        }
    } else {
        LiveEvent::Read {
            at,
            party,
            when: Utc::now(),
        }
    };
    publish(state.bus.as_ref(), event).await;
}

async fn on_message(
    state: &AppState,
    visitor: &Checked,
    frame: &Value,
    sent: &mut Vec<Instant>,
) -> Answer {
    let (Some(id), Some(body)) = (frame["id"].as_str(), frame["body"].as_str()) else {
        return Answer::refused("body", "send {\"type\": \"message\", \"id\", \"body\"}");
    };
    if id.is_empty() || id.len() > MAX_ID_CHARS {
        return Answer::refused("id", "a message id of 1 to 100 characters");
    }
    let now = Instant::now();
    sent.retain(|at| now.duration_since(*at) < RATE_WINDOW);
    if sent.len() >= RATE_LIMIT {
        return Answer::refused("body", "too many messages at once: wait a few seconds");
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
    match state.inbound.receive(inbound).await {
        Ok(received) => {
            let view = VisitorMessage::of(&received.message.message);
            Answer {
                frame: Some(json!({"type": "ack", "id": id, "message": view})),
                placed: Some((
                    received.profile,
                    received.message.conversation.conversation.id,
                )),
            }
        }
        Err(InboxError::Invalid(e)) => Answer::refused(&e.field, &e.message),
        Err(InboxError::Store(error)) => {
            tracing::error!(%error, "a widget message could not be stored");
            Answer::refused("", "the message was not saved: send it again")
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

/// The visitor's conversation so far, oldest first: `known` (the one
/// their message just went to), else the profile's.
async fn history(
    state: &AppState,
    ws: WorkspaceId,
    profile: ProfileId,
    known: Option<ConversationId>,
) -> Value {
    let messages = async {
        let conversation = match known {
            Some(id) => id,
            None => {
                let (found, _) = state
                    .store
                    .conversation_for_profile(ws, profile, Utc::now())
                    .await?;
                found.conversation.id
            }
        };
        let query = MessageQuery {
            limit: HISTORY,
            order: Order::NewestFirst,
            ..MessageQuery::default()
        };
        state.store.list_messages(ws, conversation, &query).await
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

/// A live frame as the visitor sees it: the chat's own messages, and
/// whether an operator is typing or has read; nothing else.
fn for_visitor(frame: &live::Frame) -> Option<Value> {
    let value = frame.value()?;
    let from_operator = value["party"] == "operator";
    match frame.kind {
        FrameKind::Message => {
            let stored = &value["message"];
            let kind = stored["kind"].as_str()?;
            if !matches!(kind, "inbound" | "outbound" | "bot") || stored["channel"] != "web_chat" {
                return None;
            }
            Some(json!({"type": "message", "message": {
                "id": stored["id"], "kind": kind, "body": stored["body"], "at": stored["at"],
            }}))
        }
        FrameKind::Typing if from_operator => Some(json!({"type": "typing"})),
        FrameKind::Read if from_operator => Some(json!({"type": "read", "at": value["at"]})),
        FrameKind::Typing | FrameKind::Read | FrameKind::Conversation => None,
    }
}

async fn send(socket: &mut WebSocket, frame: Value) -> Result<(), axum::Error> {
    socket.send(Frame::Text(frame.to_string().into())).await
}
