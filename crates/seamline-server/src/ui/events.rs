//! The event stream: the latest events, then new ones live as they arrive.

use axum::extract::{Query, State};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::tracking::EventType;
use seamline_store::{EventQuery, StoredEvent};
use serde::Deserialize;

use super::{layout, script, Nav, UiPrincipal};
use crate::error::ApiResult;
use crate::AppState;

#[derive(Debug, Deserialize, Default)]
pub struct Filter {
    #[serde(rename = "type", default)]
    event_type: String,
    #[serde(default)]
    user_id: String,
}

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(filter): Query<Filter>,
) -> ApiResult<Markup> {
    principal.require(Permission::ReadData)?;
    let query = EventQuery {
        event_type: EventType::parse(&filter.event_type),
        user_id: Some(filter.user_id.trim().to_owned()).filter(|u| !u.is_empty()),
        limit: 100,
        ..EventQuery::default()
    };
    let events = state.store.list_events(principal.workspace, &query).await?;
    let total = state.store.count_events(principal.workspace).await?;
    let content = html! {
        div.page-head {
            h1 { "Events" }
            span.live #live-status data-state="connecting" { span.dot {} span.label { "Connecting…" } }
        }
        p.muted { (total) " events stored. New events appear at the top as they arrive." }
        form.filters method="get" action="/events" {
            select name="type" aria-label="Event type" {
                option value="" { "All types" }
                @for t in EventType::ALL {
                    option value=(t.as_str()) selected[filter.event_type == t.as_str()] { (t.as_str()) }
                }
            }
            input type="search" name="user_id" placeholder="User id" value=(filter.user_id);
            button type="submit" { "Filter" }
        }
        table.events #events data-type=(filter.event_type) data-user=(filter.user_id) {
            thead { tr { th { "Time" } th { "Type" } th { "Event" } th { "User" } th { "Source" } th { "Message id" } } }
            tbody #event-rows {
                @for event in &events { (row(event)) }
            }
        }
        @if events.is_empty() {
            p.empty #no-events { "No events yet. Send one with your write key, e.g. "
                code { "curl -u WRITE_KEY: -H 'content-type: application/json' -d '{\"userId\":\"u1\",\"event\":\"Signed Up\"}' " (format!("http://HOST/v1/track")) } }
        }
        (script("/assets/events.js"))
    };
    Ok(layout("Events", &principal, Nav::Events, content))
}

fn row(e: &StoredEvent) -> Markup {
    let who = e
        .user_id
        .as_deref()
        .or(e.anonymous_id.as_deref())
        .unwrap_or("");
    let source = e.enrichment["attribution"]["utm_source"]
        .as_str()
        .unwrap_or("");
    html! {
        tr {
            td.time { time datetime=(e.timestamp.to_rfc3339()) { (e.timestamp.format("%Y-%m-%d %H:%M:%S")) } }
            td { span class={ "badge " (e.event_type.as_str()) } { (e.event_type.as_str()) } }
            td.name { (e.event_name.as_deref().unwrap_or("")) }
            td.user { (who) }
            td { (source) }
            td.mono { (e.message_id) }
        }
    }
}
