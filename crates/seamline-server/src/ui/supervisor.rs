//! The dispatcher centre: who waits and how long, every operator's
//! presence and load, conversations by status and channel, and today's
//! response, resolution and satisfaction. It follows the inbox stream live
//! (the same script as the inbox) and re-reads itself every few seconds so
//! wait times keep counting.

use std::collections::HashMap;

use axum::extract::State;
use chrono::Duration;
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::MemberId;

use super::format::wait_text;
use super::profiles::ProfileLink;
use super::{csrf_field, layout, script, Nav, UiPrincipal};
use crate::error::ApiResult;
use crate::inbox::supervisor::{snapshot, Snapshot, Today};
use crate::AppState;

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
) -> ApiResult<Markup> {
    principal.require(Permission::Supervise)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let now = snapshot(store, ws).await?;
    let names: HashMap<MemberId, String> = store
        .list_members(ws)
        .await?
        .into_iter()
        .map(|m| {
            (
                m.id,
                if m.name.trim().is_empty() {
                    m.email
                } else {
                    m.name
                },
            )
        })
        .collect();
    let mut customers = Vec::with_capacity(now.waiting.len());
    for entry in &now.waiting {
        let profile = entry.conversation.conversation.profile;
        let label = ProfileLink::of(store, ws, profile)
            .await
            .map_or_else(|_| "Customer".to_owned(), |l| l.label);
        customers.push(label);
    }
    let can_take = principal.require(Permission::WriteData).is_ok();
    let content = html! {
        div.supervisor data-live="" data-refresh="5000" {
            div.page-head {
                h1 { "Supervisor" }
                span #live-status .live role="status" { "Connecting…" }
            }
            div #supervisor-live {
                (figures(&now))
                div.super-grid {
                    section.card {
                        h2 { "Waiting for an operator" }
                        @if now.waiting.is_empty() {
                            p.muted #queue-empty { "Nobody is waiting." }
                        } @else {
                            table.data #queue {
                                thead { tr { th { "#" } th { "Customer" } th { "Channel" } th { "Priority" } th { "Waiting" } th {} } }
                                tbody {
                                    @for (entry, customer) in now.waiting.iter().zip(&customers) {
                                        tr data-conversation=(entry.conversation_id) {
                                            td { (entry.position) }
                                            td { a href=(format!("/inbox?c={}", entry.conversation_id)) { (customer) } }
                                            td { @if let Some(c) = entry.channel { span.chip { (c.as_str()) } } }
                                            td { (entry.priority) }
                                            td.wait { (wait_text(Duration::seconds(entry.waited_secs))) }
                                            td {
                                                @if can_take {
                                                    form.inline method="post" action=(format!("/inbox/{}/assign-me", entry.conversation_id)) {
                                                        (csrf_field(&principal))
                                                        button type="submit" { "Take" }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    section.card {
                        h2 { "Operators" }
                        table.data #operators {
                            thead { tr { th { "Operator" } th { "Presence" } th { "Load" } } }
                            tbody {
                                @for o in &now.operators {
                                    tr {
                                        td { (names.get(&o.member_id).map_or("A former member", String::as_str)) }
                                        td { span.dot.{ "p-" (o.presence.as_str()) } {} " " (o.presence.as_str()) }
                                        td.load { (bar(o.load, o.capacity)) " " (o.load) " / " (o.capacity) }
                                    }
                                }
                            }
                        }
                    }
                    section.card {
                        h2 { "Conversations by status" }
                        (bars(now.by_status.iter().map(|(k, v)| (*k, *v))))
                    }
                    section.card {
                        h2 { "Unresolved by channel" }
                        (bars(now.by_channel.iter().map(|(k, v)| (*k, *v))))
                    }
                }
            }
        }
        (script("/assets/inbox.js"))
    };
    Ok(layout("Supervisor", &principal, Nav::Supervisor, content))
}

fn figures(now: &Snapshot) -> Markup {
    let Today {
        answered,
        first_response_avg_secs,
        first_response_median_secs,
        resolved,
        resolution_avg_secs,
        csat_average,
        csat_count,
    } = &now.today;
    let longest = now.waiting.iter().map(|w| w.waited_secs).max();
    let secs = |s: &Option<i64>| s.map_or("—".to_owned(), |s| wait_text(Duration::seconds(s)));
    html! {
        div.stats #figures {
            div.stat { span.label { "Waiting now" } span.value #waiting-count { (now.waiting.len()) } }
            div.stat { span.label { "Longest wait" } span.value { (secs(&longest)) } }
            div.stat { span.label { "First response today" } span.value { (secs(first_response_avg_secs)) }
                span.sub { "median " (secs(first_response_median_secs)) " · " (answered) " answered" } }
            div.stat { span.label { "Resolution today" } span.value { (secs(resolution_avg_secs)) }
                span.sub { (resolved) " resolved" } }
            div.stat { span.label { "CSAT today" }
                span.value { (csat_average.map_or("—".to_owned(), |a| format!("{a:.1} / 5"))) }
                span.sub { (csat_count) " answers" } }
        }
    }
}

/// Load against capacity as a small bar.
fn bar(load: u32, capacity: u32) -> Markup {
    let share = (load.saturating_mul(100))
        .checked_div(capacity)
        .map_or(100, |s| s.min(100));
    html! {
        span.meter aria-hidden="true" { span.fill.full[load >= capacity] style=(format!("width:{share}%")) {} }
    }
}

/// A horizontal bar chart of counts.
pub(super) fn bars<'a>(rows: impl Iterator<Item = (&'a str, u32)>) -> Markup {
    let rows: Vec<(&str, u32)> = rows.collect();
    let top = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    html! {
        @if rows.is_empty() { p.muted { "Nothing yet." } }
        @else {
            ul.bars {
                @for (label, n) in &rows {
                    li {
                        span.bar-label { (label) }
                        span.bar-track { span.bar-fill style=(format!("width:{}%", n * 100 / top)) {} }
                        span.bar-value { (n) }
                    }
                }
            }
        }
    }
}
