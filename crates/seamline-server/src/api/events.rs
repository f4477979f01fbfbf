//! `GET /api/v1/events` (filtered, cursor-paginated) and
//! `GET /api/v1/events/stream` (server-sent events, live from the bus).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use seamline_bus::SubscriptionKind;
use seamline_core::cursor::Cursor;
use seamline_core::role::Permission;
use seamline_core::tracking::EventType;
use seamline_core::WorkspaceId;
use seamline_store::{EventQuery, Order};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::outbox::events_subject;
use crate::views::{EventView, Page};
use crate::AppState;

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    user_id: Option<String>,
    anonymous_id: Option<String>,
    since: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
    /// `asc` for oldest first; newest first by default.
    order: Option<String>,
}

impl ListParams {
    fn to_query(&self) -> ApiResult<EventQuery> {
        let event_type = self
            .event_type
            .as_deref()
            .map(|t| {
                EventType::parse(t).ok_or_else(|| {
                    ApiError::field(
                        "invalid_value",
                        "type",
                        "one of identify, track, page, screen, group, alias",
                    )
                })
            })
            .transpose()?;
        let since = self
            .since
            .as_deref()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::field("invalid_timestamp", "since", "an RFC 3339 date-time")
                    })
            })
            .transpose()?;
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::field(
                "out_of_range",
                "limit",
                format!("between 1 and {MAX_LIMIT}"),
            ));
        }
        let order = match self.order.as_deref() {
            None | Some("desc") => Order::NewestFirst,
            Some("asc") => Order::OldestFirst,
            Some(_) => return Err(ApiError::field("invalid_value", "order", "asc or desc")),
        };
        let after_seq = self
            .cursor
            .as_deref()
            .map(Cursor::decode)
            .transpose()?
            .map(|c| c.0);
        Ok(EventQuery {
            event_type,
            user_id: self.user_id.clone(),
            anonymous_id: self.anonymous_id.clone(),
            since,
            after_seq,
            limit,
            order,
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<Page<EventView>>> {
    principal.require(Permission::ReadData)?;
    let query = params.to_query()?;
    let events = state.store.list_events(principal.workspace, &query).await?;
    let next_cursor = match events.last() {
        Some(last) if events.len() == query.limit as usize => Some(Cursor(last.seq).encode()),
        _ => None,
    };
    Ok(Json(Page {
        data: events.iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    principal.require(Permission::ReadData)?;
    let events = live_events(&state, principal.workspace).await?;
    let sse = events.map(|view| {
        let data = serde_json::to_string(&view).unwrap_or_default();
        Ok(Event::default().event("event").id(view.id).data(data))
    });
    Ok(Sse::new(sse).keep_alive(KeepAlive::default()))
}

/// A workspace's events as they are committed, on any instance.
pub async fn live_events(
    state: &AppState,
    workspace: WorkspaceId,
) -> ApiResult<impl Stream<Item = EventView>> {
    let subscription = state
        .bus
        .subscribe(&events_subject(workspace), SubscriptionKind::Broadcast)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(subscription.filter_map(|delivery| async move {
        serde_json::from_slice::<EventView>(&delivery.message.payload).ok()
    }))
}
