//! The inbox's customer panel: who the operator is talking to, as the
//! whole profile knows them: identifiers, orders and revenue, where they
//! first came from (the ad behind the chat), and what they did lately on
//! the site and at the counter.

use chrono::Utc;
use maud::{html, Markup};
use seamline_core::identity::IdentifierKind;
use seamline_core::tracking::EventType;
use seamline_core::ProfileId;
use seamline_store::{Backend, StoredEvent};

use super::format::{identifier_value, kind_label, money, time_ago, time_exact};
use super::profile::details;
use super::profiles::name_of;
use crate::error::ApiResult;
use crate::identity::profiles::{all_events, compute, live_profile};
use seamline_core::WorkspaceId;

/// Recent things the customer did, shown under their identifiers.
const RECENT: usize = 6;

pub(super) async fn panel(
    store: &dyn Backend,
    ws: WorkspaceId,
    id: ProfileId,
) -> ApiResult<Markup> {
    let profile = match live_profile(store, ws, id).await {
        Ok(profile) => profile,
        Err(_) => return Ok(html! { p.muted { "The profile is no longer there." } }),
    };
    let identifiers = store.profile_identifiers(ws, profile.id).await?;
    let label = name_of(
        &profile.traits,
        identifiers
            .iter()
            .map(|i| (i.identifier.kind.as_str(), i.identifier.value.as_str())),
    );
    // Cookies and device ids say little to an operator: counted, not listed.
    let cookies = identifiers
        .iter()
        .filter(|i| is_cookie(&i.identifier.kind))
        .count();
    let events = all_events(store, ws, profile.id).await?;
    let computed = compute(&events);
    let origin = events.iter().find_map(source_of);
    let now = Utc::now();
    // The chat's own messages are in the thread already.
    let recent: Vec<&StoredEvent> = events
        .iter()
        .rev()
        .filter(|e| e.event_name.as_deref() != Some("Message Received"))
        .take(RECENT)
        .collect();
    Ok(html! {
        p.customer-name { (label) }
        dl.facts.compact {
            @for i in identifiers.iter().filter(|i| !is_cookie(&i.identifier.kind)) {
                dt { (kind_label(i.identifier.kind.as_str())) }
                dd { (identifier_value(i.identifier.kind.as_str(), &i.identifier.value)) }
            }
            @if cookies > 0 {
                dt { "Browsers" }
                dd title="Anonymous ids and devices; all of them are on the profile page" { (cookies) }
            }
        }
        dl.facts.compact.numbers {
            dt { "Customer since" } dd { (time_exact(profile.first_seen)) }
            dt { "Orders" } dd #customer-orders { (computed.order_count) }
            @if !computed.lifetime_revenue.is_empty() {
                dt { "Revenue" }
                dd { @for m in &computed.lifetime_revenue { (money(m)) " " } }
            }
            @if let Some(origin) = &origin {
                dt { "Came from" } dd #customer-origin { (origin) }
            }
        }
        @if !recent.is_empty() {
            h3 { "Recent activity" }
            ul.activity {
                @for e in &recent {
                    li {
                        span.what { (what(e)) }
                        @if let Some((_, detail)) = details(e).into_iter().next() {
                            span.muted { " · " (detail) }
                        }
                        span.when { (time_ago(e.timestamp, now)) }
                    }
                }
            }
        }
        p { a href=(format!("/profiles/{}", profile.id)) { "Open profile →" } }
    })
}

/// Browser and device ids, and the widget's per-visitor tracking codes.
fn is_cookie(kind: &IdentifierKind) -> bool {
    match kind {
        IdentifierKind::AnonymousId | IdentifierKind::DeviceId => true,
        IdentifierKind::Custom(name) => name == "tracking_code",
        _ => false,
    }
}

/// The ad source an event carried (`yandex / cpc · spring`), if any.
fn source_of(event: &StoredEvent) -> Option<String> {
    let a = &event.enrichment["attribution"];
    let source = a["utm_source"].as_str()?;
    let mut text = source.to_owned();
    if let Some(medium) = a["utm_medium"].as_str() {
        text.push_str(" / ");
        text.push_str(medium);
    }
    if let Some(campaign) = a["utm_campaign"].as_str() {
        text.push_str(" · ");
        text.push_str(campaign);
    }
    Some(text)
}

fn what(event: &StoredEvent) -> String {
    match (event.event_name.as_deref(), event.event_type) {
        (Some(name), _) => name.to_owned(),
        (None, EventType::Page) => "Viewed a page".to_owned(),
        (None, EventType::Identify) => "Identified".to_owned(),
        (None, other) => other.as_str().to_owned(),
    }
}
