//! A call to a tracking number, tied to whoever held that number when the
//! call started: a pool number's reservation at that moment (the visitor,
//! their session and ad source), a static number's own source.
//!
//! Done once per PBX call id (the first attribution stays, whatever the
//! PBX re-sends): the call is recorded for the stats and a `Call Tracked`
//! event goes through the tracking pipeline with the caller's phone, the
//! visitor's anonymous id and the source as its campaign, so the identity
//! rules join the visitor to the caller's profile and the profile keeps
//! the touch, as a chat from a tracked messenger link does.

use chrono::{DateTime, Utc};
use seamline_core::calltracking::{describe_source, display, holder_at, NumberKind, START_GRACE};
use seamline_core::tracking::{parse_message, Attribution, Envelope};
use seamline_core::{EventId, WorkspaceId};
use seamline_store::{NewEvent, TrackedCall};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::channels::pbx::e164;
use crate::error::ApiError;
use crate::AppState;

/// An inbound call as the PBX announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallStart {
    pub workspace: WorkspaceId,
    /// The PBX's call id.
    pub call_id: String,
    /// The caller, E.164.
    pub caller: String,
    /// The number called, as the PBX wrote it.
    pub to: String,
    pub at: DateTime<Utc>,
}

/// The call's attribution: recorded now if the called number is a
/// tracking number (or was held as one), the stored one if the call is
/// known; `None` for a call to an ordinary line.
pub async fn attribute(
    state: &AppState,
    call: &CallStart,
) -> Result<Option<TrackedCall>, ApiError> {
    let Some(to) = e164(&call.to) else {
        return Ok(None);
    };
    let (store, ws) = (state.store.as_ref(), call.workspace);
    let numbers = store.tracking_numbers(ws).await?;
    let ours = numbers.iter().find(|n| n.number == to);
    let (kind, reservation, source, label) = match ours {
        Some(n) if n.kind == NumberKind::Static => {
            let binding = n.source.clone().unwrap_or_default();
            (
                NumberKind::Static,
                None,
                binding.as_attribution(),
                binding.describe(),
            )
        }
        _ => {
            // The history outlives a removed number: a late call still
            // finds the visit that held it.
            let history = store
                .reservations_around(ws, &to, call.at, START_GRACE)
                .await?;
            match holder_at(&history, call.at) {
                Some(held) => (
                    NumberKind::Pool,
                    Some(held.clone()),
                    held.source.clone(),
                    describe_source(&held.source),
                ),
                None if ours.is_some() => (
                    NumberKind::Pool,
                    None,
                    Attribution::default(),
                    "unattributed".to_owned(),
                ),
                None => return Ok(None),
            }
        }
    };
    let tracked = TrackedCall {
        id: Uuid::now_v7(),
        workspace_id: ws,
        call_id: call.call_id.clone(),
        number: to,
        kind,
        reservation_id: reservation.as_ref().map(|r| r.id),
        anonymous_id: reservation.map(|r| r.anonymous_id),
        source,
        source_label: label,
        started_at: call.at,
    };
    let stored = store.record_tracked_call(&tracked).await?;
    if stored.id == tracked.id {
        let event = touch(call, &stored)?;
        if let Err(error) = state.ingest.append(vec![event]).await {
            // The call is recorded; the profile misses only this touch.
            tracing::warn!(
                error = format!("{error:#}"),
                "a tracked call's touch was not recorded"
            );
        }
    }
    Ok(Some(stored))
}

/// What the call's message says about where the caller came from.
pub fn note(tracked: &TrackedCall) -> String {
    let via = display(&tracked.number);
    match tracked.kind {
        NumberKind::Static => format!(". Source: {} (static number {via})", tracked.source_label),
        NumberKind::Pool if tracked.anonymous_id.is_some() => {
            format!(". Source: {} (tracking number {via})", tracked.source_label)
        }
        NumberKind::Pool => format!(". Tracking number {via}, not held by a visitor"),
    }
}

/// The `Call Tracked` event: the caller's phone, the visitor who held the
/// number (or the phone itself), the source as its campaign.
fn touch(call: &CallStart, tracked: &TrackedCall) -> Result<NewEvent, ApiError> {
    let s = &tracked.source;
    let mut campaign = serde_json::Map::new();
    for (key, value) in [
        ("source", &s.utm_source),
        ("medium", &s.utm_medium),
        ("name", &s.utm_campaign),
        ("term", &s.utm_term),
        ("content", &s.utm_content),
    ] {
        if let Some(value) = value {
            campaign.insert(key.into(), Value::String(value.clone()));
        }
    }
    let mut page = serde_json::Map::new();
    if let Some(url) = &s.page_url {
        page.insert("url".into(), json!(url));
    }
    if let Some(referrer) = &s.referrer {
        page.insert("referrer".into(), json!(referrer));
    }
    let anonymous = tracked
        .anonymous_id
        .clone()
        .unwrap_or_else(|| format!("phone:{}", call.caller));
    let message = json!({
        "type": "track",
        "event": "Call Tracked",
        "anonymousId": anonymous,
        "messageId": format!("call-tracked-{}", tracked.call_id),
        "properties": {
            "channel": "phone",
            "call_id": tracked.call_id,
            "tracking_number": tracked.number,
            "number_kind": tracked.kind.as_str(),
            "source": tracked.source_label,
        },
        "context": {
            "traits": {"phone": call.caller},
            "externalIds": [{"type": "phone", "id": call.caller}],
            "campaign": campaign,
            "page": page,
        },
        "timestamp": call.at.to_rfc3339(),
    });
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip: None,
    };
    let mut message_id = || Uuid::now_v7().to_string();
    let event = parse_message(&message.to_string(), &envelope, &mut message_id)?;
    Ok(NewEvent {
        id: EventId(Uuid::now_v7()),
        workspace_id: call.workspace,
        event,
    })
}
