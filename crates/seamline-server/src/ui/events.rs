//! The event stream: the latest events, then new ones live as they arrive.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::tracking::EventType;
use seamline_store::{EventQuery, StoredEvent};
use serde::Deserialize;

use super::format::thousands;
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
    headers: HeaderMap,
) -> ApiResult<Markup> {
    principal.require(Permission::ReadData)?;
    let origin = origin(&headers, state.config.secure_cookies);
    let query = EventQuery {
        event_type: EventType::parse(&filter.event_type),
        user_id: Some(filter.user_id.trim().to_owned()).filter(|u| !u.is_empty()),
        limit: 100,
        ..EventQuery::default()
    };
    let events = state.store.list_events(principal.workspace, &query).await?;
    let total = state.store.count_events(principal.workspace).await?;
    let filtered = query.event_type.is_some() || query.user_id.is_some();
    let content = html! {
        div.page-head {
            h1 { "Events" }
            span.live #live-status data-state="connecting" role="status" title="Live updates" {
                span.dot aria-hidden="true" {} span.label { "Connecting…" }
            }
            span.spacer {}
            span.muted { span #event-count data-count=(total) { (thousands(total)) } " events stored" }
        }
        form.toolbar.filters method="get" action="/events" role="search" {
            label.field {
                span { "Type" }
                select name="type" {
                    option value="" { "All types" }
                    @for t in EventType::ALL {
                        option value=(t.as_str()) selected[filter.event_type == t.as_str()] { (t.as_str()) }
                    }
                }
            }
            label.field {
                span { "User id" }
                input type="search" name="user_id" placeholder="Any user" value=(filter.user_id) autocomplete="off";
            }
            button type="submit" { "Filter" }
            @if filtered { a.button.quiet href="/events" { "Clear" } }
        }
        div.table-wrap {
            table.events #events data-type=(filter.event_type) data-user=(filter.user_id) hidden[events.is_empty()] {
                thead { tr {
                    th.time scope="col" { "Time (UTC)" } th scope="col" { "Type" } th scope="col" { "Event" }
                    th scope="col" { "User" } th scope="col" { "Source" } th scope="col" { "Message id" }
                } }
                tbody #event-rows {
                    @for event in &events { (row(event)) }
                }
            }
            @if events.is_empty() {
                div.empty #no-events {
                    @if filtered {
                        h2 { "No events match this filter" }
                        p { "New matching events appear here as they arrive. " a href="/events" { "Show all events" } }
                    } @else {
                        h2 { "No events yet" }
                        p { "Events sent with a write key appear here the moment they arrive. "
                            @if principal.role.allows(Permission::ManageWorkspace) {
                                "Find your write key in " a href="/settings#keys" { "Settings" } "."
                            } @else {
                                "An owner or admin of the workspace can give you the write key."
                            }
                        }
                        pre { code { "curl -u WRITE_KEY: -H 'content-type: application/json' \\\n  -d '{\"userId\":\"u1\",\"event\":\"Signed Up\"}' \\\n  " (origin) "/v1/track" } }
                    }
                }
            }
        }
        @if events.len() == query.limit as usize {
            p.muted.table-note { "Showing the latest " (query.limit) " events; new ones are added on top. The REST API ("
                code { "GET /api/v1/events" } ") pages through all of them." }
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
    let name = e.event_name.as_deref().unwrap_or("");
    let source = e.enrichment["attribution"]["utm_source"]
        .as_str()
        .unwrap_or("");
    html! {
        tr {
            td.time { time datetime=(e.timestamp.to_rfc3339()) { (e.timestamp.format("%Y-%m-%d %H:%M:%S")) } }
            td { span class={ "badge " (e.event_type.as_str()) } { (e.event_type.as_str()) } }
            td.name title=(name) { (name) }
            td.user title=(who) { (who) }
            td.source { (source) }
            td.mono.id title=(e.message_id) { (e.message_id) }
        }
    }
}

/// Where this server was reached, for the example in the empty state.
fn origin(headers: &HeaderMap, https: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("HOST");
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}")
}
