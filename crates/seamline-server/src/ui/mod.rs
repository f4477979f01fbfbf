//! The web UI: server-rendered HTML (maud escapes every value by default),
//! with a little plain JavaScript, all embedded in the binary.

mod events;
mod login;
mod settings;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::auth::Principal;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/events") }))
        .route("/login", get(login::page).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/events", get(events::page))
        .route("/settings", get(settings::page))
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
            "/assets/events.js",
            get(|| asset("text/javascript", include_str!("../../assets/events.js"))),
        )
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
    Events,
    Settings,
}

/// The page frame: header with navigation, the member, and sign-out.
fn layout(title: &str, principal: &Principal, current: Nav, content: Markup) -> Markup {
    let csrf = principal.csrf_token.clone().unwrap_or_default();
    let link = |nav: Nav, href: &str, label: &str| {
        html! { a href=(href) class={ "nav-link" @if nav == current { " active" } } { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(csrf);
                title { (title) " · Seamline" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                header.topbar {
                    a.brand href="/" { span.logo { "◐" } "Seamline" }
                    nav { (link(Nav::Events, "/events", "Events")) (link(Nav::Settings, "/settings", "Settings")) }
                    div.who {
                        span.email { (principal.email.as_deref().unwrap_or("")) }
                        span.role { (principal.role.as_str()) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf_token" value=(csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main { (content) }
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
                link rel="stylesheet" href="/assets/app.css";
            }
            body.bare { (content) }
        }
    }
}

fn script(src: &str) -> Markup {
    html! { script src=(src) defer {} (PreEscaped("")) }
}
