//! `POST /widget/v1/callback`: a visitor asks to be called back.
//!
//! The request enters the inbox like any customer message (on the phone
//! channel, the phone in the customer's identifiers, so it joins the
//! visitor's profile and whatever else that phone is known by), labelled
//! `callback` and raised to high priority so operators see it as a task.
//! A retry with the same `requestId` stores nothing new.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, TimeDelta, Utc};
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::{Label, Priority};
use seamline_core::{ConversationId, WorkspaceId};
use seamline_store::{Backend, StoreError};
use serde::Deserialize;
use serde_json::json;

use super::visitor::{too_many, SiteVisitor};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::identity::policy_of;
use crate::inbox::live::{publish, LiveEvent};
use crate::inbox::{receive, Customer, Inbound, InboxError};
use crate::AppState;

/// How far ahead a visitor may ask to be called.
const FURTHEST: TimeDelta = TimeDelta::days(60);
const MAX_NAME_CHARS: usize = 100;
const MAX_REQUEST_ID_CHARS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackBody {
    key: String,
    anonymous_id: String,
    /// The widget's id for this request: a retry sends the same one.
    request_id: String,
    phone: String,
    #[serde(default)]
    name: Option<String>,
    /// `asap` (the default) or an RFC 3339 time in the future.
    #[serde(default)]
    preferred_time: Option<String>,
}

/// When the visitor wants the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Asap,
    At(DateTime<Utc>),
}

impl When {
    fn parse(raw: Option<&str>, now: DateTime<Utc>) -> ApiResult<Self> {
        let raw = raw.map(str::trim).filter(|r| !r.is_empty());
        let Some(raw) = raw.filter(|r| !r.eq_ignore_ascii_case("asap")) else {
            return Ok(When::Asap);
        };
        let bad = |message: &str| ApiError::field("invalid_time", "preferredTime", message);
        let at = DateTime::parse_from_rfc3339(raw)
            .map_err(|_| bad("asap, or a time such as 2026-11-24T18:30:00+03:00"))?
            .with_timezone(&Utc);
        if at <= now {
            return Err(bad("the time has passed: choose a later one"));
        }
        if at > now + FURTHEST {
            return Err(bad("at most 60 days ahead"));
        }
        Ok(When::At(at))
    }

    fn describe(self) -> String {
        match self {
            When::Asap => "as soon as possible".into(),
            When::At(at) => at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

pub async fn request(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CallbackBody>,
) -> ApiResult<Response> {
    let visitor = SiteVisitor::check(&state, &headers, &body.key, &body.anonymous_id).await?;
    let request_id = body.request_id.trim();
    if request_id.is_empty() || request_id.chars().count() > MAX_REQUEST_ID_CHARS {
        return Err(ApiError::field(
            "invalid_value",
            "requestId",
            "an id of 1 to 100 characters, the same on a retry",
        ));
    }
    let policy = policy_of(state.store.as_ref(), visitor.workspace).await?;
    let phone = Identifier::parse(IdentifierKind::Phone, &body.phone, &policy)
        .map_err(|_| {
            ApiError::field(
                "invalid_phone",
                "phone",
                "a phone number with its country code, such as +7 916 123-45-67",
            )
        })?
        .value;
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.chars().count() > MAX_NAME_CHARS) {
        return Err(ApiError::field(
            "too_long",
            "name",
            "at most 100 characters",
        ));
    }
    let now = Utc::now();
    let when = When::parse(body.preferred_time.as_deref(), now)?;
    if !visitor.throttle() {
        return Ok(too_many());
    }
    let who = match name {
        Some(name) => format!("{phone} ({name})"),
        None => phone.clone(),
    };
    let inbound = Inbound {
        workspace: visitor.workspace,
        channel: Channel::Phone,
        customer: Customer {
            anonymous_id: Some(visitor.anonymous_id.clone()),
            phone: Some(phone.clone()),
            name: name.map(str::to_owned),
            ..Customer::default()
        },
        body: format!("Callback requested: {who}, {}", when.describe()),
        external_id: Some(format!("callback:{}:{request_id}", visitor.anonymous_id)),
        at: now,
    };
    let received = match receive(state.store.as_ref(), state.bus.as_ref(), inbound).await {
        Ok(received) => received,
        Err(InboxError::Invalid(e)) => return Err(e.into()),
        Err(InboxError::Store(e)) => return Err(e.into()),
    };
    let conversation = received.message.message.message.conversation;
    mark_as_task(&state, visitor.workspace, conversation).await?;
    // With a PBX connected and an operator taking the conversation, the
    // call starts through the outbox at `when`; otherwise the request waits
    // in the inbox as a task (an operator's send on the phone channel dials).
    if let (true, Some(operator)) = (received.message.new, received.assigned) {
        let at = match when {
            When::Asap => now,
            When::At(at) => at,
        };
        let ws = visitor.workspace;
        crate::channels::calls::dial_back(&state, ws, conversation, operator, &phone, at).await?;
    }
    let status = if received.message.new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let answer = json!({
        "requestId": request_id,
        "preferredTime": match when { When::Asap => json!("asap"), When::At(at) => json!(at) },
        "message": "Thank you! We will call you back.",
    });
    Ok((status, Json(answer)).into_response())
}

/// Labels the conversation `callback` and raises it to high priority (a
/// retry, or an urgent conversation, stays as it is).
async fn mark_as_task(
    state: &AppState,
    workspace: WorkspaceId,
    id: ConversationId,
) -> ApiResult<()> {
    let store: &dyn Backend = state.store.as_ref();
    let label = Label::parse("callback")?;
    for attempt in 0..2 {
        let current = store
            .conversation(workspace, id)
            .await?
            .ok_or(ApiError::NotFound("conversation"))?;
        let mut update = current.update(Utc::now());
        let c = &mut update.conversation;
        let labelled = c.add_label(label.clone()).is_some();
        let raised = c.priority < Priority::High && c.set_priority(Priority::High).is_some();
        if !labelled && !raised {
            return Ok(());
        }
        match store.update_conversation(workspace, &update).await {
            Ok(saved) => {
                publish(state.bus.as_ref(), LiveEvent::Conversation(&saved)).await;
                return Ok(());
            }
            // An inbound message or an operator changed it meanwhile:
            // read it again and reapply, once.
            Err(StoreError::Conflict(_)) if attempt == 0 => {}
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Unavailable(
        "the conversation kept changing while the callback was being marked".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preferred_time_is_asap_or_in_the_future() {
        let now = Utc::now();
        assert_eq!(When::parse(None, now).ok(), Some(When::Asap));
        assert_eq!(When::parse(Some(" ASAP "), now).ok(), Some(When::Asap));
        let later = (now + TimeDelta::hours(2)).to_rfc3339();
        assert!(matches!(When::parse(Some(&later), now), Ok(When::At(_))));
        let past = (now - TimeDelta::hours(2)).to_rfc3339();
        assert!(When::parse(Some(&past), now).is_err());
        assert!(When::parse(Some("tomorrow"), now).is_err());
        let far = (now + TimeDelta::days(90)).to_rfc3339();
        assert!(When::parse(Some(&far), now).is_err());
    }
}
