//! The web UI: server-rendered HTML (maud escapes every value by default),
//! with a little plain JavaScript, all embedded in the binary.

/// Implements [`HasCsrf`](crate::auth::HasCsrf) for forms with a
/// `csrf_token` field.
macro_rules! has_csrf {
    ($($form:ty),*) => {$(
        impl $crate::auth::HasCsrf for $form {
            fn csrf_token(&self) -> &str { &self.csrf_token }
        }
    )*};
}

mod call_tracking;
mod channels;
mod conflicts;
mod events;
mod format;
mod identity_rules;
mod inbox;
mod inbox_customer;
mod login;
mod profile;
mod profiles;
mod settings;
mod supervisor;
mod teams;
mod webhooks;
mod widget_settings;

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;

use seamline_core::role::Permission;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/events") }))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/inbox", get(inbox::page))
        .route("/inbox/{id}/reply", post(inbox::reply))
        .route("/inbox/{id}/status", post(inbox::status))
        .route("/inbox/{id}/assign-me", post(inbox::assign_me))
        .route("/inbox/{id}/transfer", post(inbox::transfer))
        .route("/inbox/{id}/labels", post(inbox::labels))
        .route("/inbox/{id}/priority", post(inbox::priority))
        .route("/inbox/presence", post(inbox::presence))
        .route("/supervisor", get(supervisor::page))
        .route("/events", get(events::page))
        .route("/profiles", get(profiles::list))
        .route("/profiles/{id}", get(profile::page))
        .route("/profiles/{id}/unmerge", post(profile::unmerge))
        .route("/profiles/{id}/merge", post(profile::merge))
        .route("/profiles/{id}/consent", post(profile::consent))
        .route("/profiles/{id}/erase", post(profile::erase))
        .route("/conflicts", get(conflicts::page))
        .route("/conflicts/{id}/dismiss", post(conflicts::dismiss))
        .route("/settings", get(settings::page))
        .route(
            "/settings/identity",
            get(identity_rules::page).post(identity_rules::submit),
        )
        .route(
            "/settings/widget",
            get(widget_settings::page).post(widget_settings::submit),
        )
        .route(
            "/settings/widget/identity-secret",
            post(widget_settings::rotate_secret),
        )
        .route("/settings/widget/preview", get(widget_settings::preview))
        .route("/settings/teams", get(teams::page).post(teams::create))
        .route("/settings/teams/csat", post(teams::survey))
        .route("/settings/teams/{id}", post(teams::save))
        .route("/settings/teams/{id}/delete", post(teams::delete))
        .route("/settings/teams/{id}/members", post(teams::add_member))
        .route(
            "/settings/teams/{id}/members/{member_id}/remove",
            post(teams::remove_member),
        )
        .route(
            "/settings/teams/{id}/capacity/{member_id}",
            post(teams::set_capacity),
        )
        .route(
            "/settings/channels",
            get(channels::page).post(channels::create),
        )
        .route("/settings/call-tracking", get(call_tracking::page))
        .route("/settings/call-tracking/numbers", post(call_tracking::add))
        .route(
            "/settings/call-tracking/numbers/{id}/delete",
            post(call_tracking::remove),
        )
        .route(
            "/settings/call-tracking/settings",
            post(call_tracking::save),
        )
        .route("/settings/channels/{id}/test", post(channels::test))
        .route("/settings/channels/{id}/delete", post(channels::delete))
        .route(
            "/settings/webhooks",
            get(webhooks::page).post(webhooks::create),
        )
        .route("/settings/webhooks/{id}", get(webhooks::log))
        .route("/settings/webhooks/{id}/toggle", post(webhooks::toggle))
        .route("/settings/webhooks/{id}/rotate", post(webhooks::rotate))
        .route("/settings/webhooks/{id}/ping", post(webhooks::ping))
        .route("/settings/webhooks/{id}/delete", post(webhooks::delete))
        .route(
            "/settings/webhooks/deliveries/{id}/redeliver",
            post(webhooks::redeliver_one),
        )
        .route("/settings/members", post(settings::add_member))
        .route("/settings/members/{id}/role", post(settings::change_role))
        .route(
            "/settings/members/{id}/remove",
            post(settings::remove_member),
        )
        .route("/settings/keys", post(settings::create_key))
        .route("/settings/keys/{id}/revoke", post(settings::revoke_key))
        .route(
            "/assets/app.css",
            get(|| asset("text/css", include_str!("../../assets/app.css"))),
        )
        .route(
            "/assets/app.js",
            get(|| asset("text/javascript", include_str!("../../assets/app.js"))),
        )
        .route(
            "/assets/events.js",
            get(|| asset("text/javascript", include_str!("../../assets/events.js"))),
        )
        .route(
            "/assets/inbox.js",
            get(|| asset("text/javascript", include_str!("../../assets/inbox.js"))),
        )
}

/// The page icon, inline so that no request is made for it.
const ICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Ccircle cx='8' cy='8' r='7' fill='%233b5bdb'/%3E%3Cpath d='M8 1a7 7 0 0 0 0 14z' fill='%23fff'/%3E%3C/svg%3E";

/// An error to show next to the form that caused it, in words for a person.
pub(crate) struct FormError {
    pub status: StatusCode,
    pub message: String,
    /// The form field at fault, if one is.
    pub field: Option<String>,
}

impl FormError {
    /// What a person should read for `error`; errors that are not about
    /// the form (internal, unavailable, signed out) are passed back as they
    /// are, to answer with the usual JSON body.
    pub fn from_api(error: ApiError) -> Result<Self, ApiError> {
        let (status, message, field) = match error {
            ApiError::Invalid(errors) => {
                let message = errors
                    .iter()
                    .map(|e| match field_label(&e.field) {
                        Some(label) => sentence(&format!("{label}: {}", e.message)),
                        None => sentence(&e.message),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                let field = errors.first().map(|e| e.field.clone());
                (StatusCode::BAD_REQUEST, message, field)
            }
            ApiError::Conflict(what) => {
                let field = what.contains("e-mail").then(|| "email".to_owned());
                (
                    StatusCode::CONFLICT,
                    sentence(&format!("a {what} already exists")),
                    field,
                )
            }
            ApiError::Forbidden(why) => (StatusCode::FORBIDDEN, sentence(why), None),
            ApiError::NotFound(what) => (
                StatusCode::NOT_FOUND,
                sentence(&format!("that {what} no longer exists")),
                None,
            ),
            other => return Err(other),
        };
        Ok(FormError {
            status,
            message,
            field,
        })
    }

    /// Whether `field` is the one at fault.
    pub fn is_about(&self, field: &str) -> bool {
        self.field.as_deref() == Some(field)
    }
}

/// The label of a field a person filled in; none for a record's id (or
/// a page's cursor), which nobody types: its message stands alone.
fn field_label(field: &str) -> Option<String> {
    match field {
        "email" => Some("E-mail".to_owned()),
        "cursor" => None,
        id if id.ends_with("_id") => None,
        other => Some(sentence(other).trim_end_matches('.').replace('_', " ")),
    }
}

/// `text` with a capital first letter and a full stop.
fn sentence(text: &str) -> String {
    let mut chars = text.trim().chars();
    let mut out: String = chars
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// A page again with a form's error on it (as `page` renders it),
/// answered with the error's status; errors that are not about a form
/// (internal, unavailable, signed out) keep their JSON answer.
async fn with_form_error<F>(
    error: ApiError,
    page: impl FnOnce(FormError) -> F,
) -> ApiResult<Response>
where
    F: Future<Output = ApiResult<Markup>>,
{
    let error = FormError::from_api(error)?;
    let status = error.status;
    Ok((status, page(error).await?).into_response())
}

/// The query of a page that shows a notice after a form worked.
#[derive(Deserialize)]
pub struct DoneParams {
    #[serde(default)]
    done: String,
}

/// A form with nothing but the CSRF token (a button that does one thing).
#[derive(Deserialize)]
pub struct PlainForm {
    csrf_token: String,
}

has_csrf!(PlainForm);

/// The hidden CSRF field every form carries.
fn csrf_field(principal: &Principal) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(principal.csrf_token.as_deref().unwrap_or_default()); }
}

/// The error line above a form (`role=alert`, so it is read out).
fn form_error(error: Option<&FormError>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.form-error role="alert" { (error.message) }
        }
    }
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A signed-in member on an HTML page; anyone else is sent to the login page.
pub struct UiPrincipal(pub Principal);

impl FromRequestParts<AppState> for UiPrincipal {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Redirect> {
        Principal::from_request_parts(parts, state)
            .await
            .map(UiPrincipal)
            .map_err(|_| Redirect::to("/login"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Nav {
    Inbox,
    Supervisor,
    Events,
    Profiles,
    Settings,
}

/// The page frame: header with navigation, the member, and sign-out.
fn layout(title: &str, principal: &Principal, current: Nav, content: Markup) -> Markup {
    let csrf = principal.csrf_token.clone().unwrap_or_default();
    let link = |nav: Nav, href: &str, label: &str| {
        html! {
            a href=(href) class={ "nav-link" @if nav == current { " active" } }
                aria-current=[(nav == current).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · Seamline" }
                link rel="icon" href=(ICON);
                link rel="stylesheet" href="/assets/app.css";
                (script("/assets/app.js"))
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/" { span.logo aria-hidden="true" { "◐" } "Seamline" }
                    nav aria-label="Main" {
                        (link(Nav::Inbox, "/inbox", "Inbox"))
                        @if principal.role.allows(Permission::Supervise) {
                            (link(Nav::Supervisor, "/supervisor", "Supervisor"))
                        }
                        (link(Nav::Events, "/events", "Events"))
                        (link(Nav::Profiles, "/profiles", "Profiles"))
                        (link(Nav::Settings, "/settings", "Settings"))
                    }
                    div.who {
                        span.email { (principal.email.as_deref().unwrap_or("")) }
                        span.role title="Your role" { (principal.role.as_str()) }
                        form method="post" action="/logout" {
                            (csrf_field(principal))
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (content) }
            }
        }
    }
}

/// A bare page (login) without navigation.
fn bare(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Seamline" }
                link rel="icon" href=(ICON);
                link rel="stylesheet" href="/assets/app.css";
            }
            body.bare { main { (content) } }
        }
    }
}

fn script(src: &str) -> Markup {
    html! { script src=(src) defer {} (PreEscaped("")) }
}
