//! The site widget: `/widget.js`, the visitor's chat socket, and what the
//! script calls besides the chat: its config (`/widget/v1/config`), callback
//! requests (`/widget/v1/callback`) and contact forms (`/widget/v1/message`:
//! pre-chat and offline). The workspace sets it up in [`settings`];
//! messenger links carry a per-visitor code ([`tracking`]).
//!
//! A visitor is the tracking API's anonymous id (the same cookie the site's
//! tracking uses), so their chat joins their browsing and ad source. A
//! logged-in customer's site user id counts only with its HMAC-SHA256 under
//! the workspace's widget secret: nobody can write as someone else.

mod callback;
mod config;
mod form;
mod live;
pub mod settings;
mod socket;
pub mod tracking;
mod visitor;

pub(crate) use visitor::SiteVisitor;

use std::time::Duration;

use axum::http::{header, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::cors::{Any, CorsLayer};

use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(socket::script))
        .route("/widget/v1/socket", get(socket::connect))
        .merge(site_routes())
}

/// What the script calls from the customer's site: any origin may, with
/// the site's write key.
fn site_routes() -> Router<AppState> {
    Router::new()
        .route("/widget/v1/config", get(config::config))
        .route("/widget/v1/callback", post(callback::request))
        .route("/widget/v1/message", post(form::message))
        .route("/widget/v1/number", post(crate::calltracking::dni::number))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
                .allow_headers([header::CONTENT_TYPE])
                .max_age(Duration::from_secs(86_400)),
        )
}
