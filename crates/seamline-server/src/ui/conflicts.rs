//! Conflicts to review: pairs of profiles an event linked but the rules
//! kept apart. A person looks at both and dismisses the conflict, or merges
//! them from either profile's page.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::ProfileId;
use serde::Deserialize;
use uuid::Uuid;

use super::format::{conflict_reason, identifier_value, kind_label, time_ago};
use super::profile::{failed as profile_failed, Done, Failed};
use super::profiles::ProfileLink;
use super::{
    csrf_field, form_error, layout, with_form_error, DoneParams, FormError, Nav, UiPrincipal,
};
use crate::api::profiles::dismiss as api_dismiss;
use crate::auth::{FormCsrf, Principal};
use crate::error::ApiResult;
use crate::AppState;

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    render(&state, &principal, Done::parse(&params.done), None).await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    done: Option<Done>,
    failed: Option<(Uuid, FormError)>,
) -> ApiResult<Markup> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let mut rows = Vec::new();
    for conflict in store.conflicts(ws, None).await? {
        let profile = ProfileLink::of(store, ws, conflict.profile).await?;
        let other = ProfileLink::of(store, ws, conflict.other).await?;
        rows.push((conflict, profile, other));
    }
    let write = principal.role.allows(Permission::WriteData);
    let now = Utc::now();
    let content = html! {
        div.page-head {
            h1 { "Conflicts to review" }
            span.spacer {}
            a.button.quiet href="/profiles" { "← All profiles" }
        }
        @if let Some(done) = done { p.flash role="status" { (done.message()) } }
        @if let Some((_, error)) = failed.as_ref().filter(|_| !write) { (form_error(Some(error))) }
        @if rows.is_empty() {
            div.empty.card #no-conflicts {
                h2 { "Nothing to review" }
                p { "When an event links two profiles that the rules keep apart — two different user ids "
                    "on one form, say — the pair is listed here for a person to look at." }
            }
        } @else {
            p.muted.lead { "Each pair was linked by an event but kept apart, so that two people are never merged by mistake. "
                "Open both to compare; merge from a profile’s page if they are one person, or dismiss." }
            div.table-wrap {
                table.conflicts #conflicts {
                    thead { tr {
                        th scope="col" { "Profile" } th scope="col" { "Kept apart from" } th scope="col" { "Why" }
                        th scope="col" { "Linked by" } th scope="col" { "When" }
                        @if write { th.actions scope="col" { span.sr-only { "Actions" } } }
                    } }
                    tbody {
                        @for (conflict, profile, other) in &rows {
                            tr data-conflict=(conflict.id) {
                                td { (profile.render()) }
                                td { (other.render()) }
                                td { (conflict_reason(&conflict.reason)) }
                                td { span.ident {
                                    span.k { (kind_label(conflict.via.kind.as_str())) } " "
                                    span.mono { (identifier_value(conflict.via.kind.as_str(), &conflict.via.value)) }
                                } }
                                td.date { (time_ago(conflict.at, now)) }
                                @if write {
                                    td.actions {
                                        @if let Some((_, error)) = failed.as_ref().filter(|f| f.0 == conflict.id) {
                                            (form_error(Some(error)))
                                        }
                                        form.inline method="post" action=(format!("/conflicts/{}/dismiss", conflict.id)) {
                                            (csrf_field(principal))
                                            button type="submit" { "Dismiss" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(layout(
        "Conflicts to review",
        principal,
        Nav::Profiles,
        content,
    ))
}

#[derive(Deserialize)]
pub struct DismissForm {
    csrf_token: String,
    /// The profile page the form was on, to go back to.
    profile: Option<ProfileId>,
}

has_csrf!(DismissForm);

pub async fn dismiss(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    FormCsrf(principal, form): FormCsrf<DismissForm>,
) -> ApiResult<Response> {
    let dismissed = api_dismiss(&state, &principal, id).await;
    match (dismissed, form.profile) {
        (Ok(()), Some(profile)) => Ok(Done::Dismissed.redirect(profile, None, "")),
        (Ok(()), None) => Ok(
            Redirect::to(&format!("/conflicts?done={}", Done::Dismissed.name())).into_response(),
        ),
        (Err(e), Some(profile)) => {
            profile_failed(&state, &principal, profile, e, |e| Failed::Conflict(id, e)).await
        }
        (Err(e), None) => {
            with_form_error(e, |error| {
                render(&state, &principal, None, Some((id, error)))
            })
            .await
        }
    }
}
