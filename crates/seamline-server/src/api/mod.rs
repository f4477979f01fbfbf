//! The REST API under `/api/v1`: secret key (`Authorization: Bearer`) or a
//! session with `X-CSRF-Token`. Lists answer `{"data": [...], "next_cursor"}`.

pub(crate) mod conversations;
mod events;
pub(crate) mod keys;
mod keyset;
pub(crate) mod members;
pub(crate) mod profiles;
pub(crate) mod settings;

use axum::routing::{delete, get, patch, post};
use axum::Router;

use crate::AppState;

pub use events::live_events;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(events::list))
        .route("/api/v1/events/stream", get(events::stream))
        .route("/api/v1/workspace", get(members::workspace))
        .route("/api/v1/members", get(members::list).post(members::create))
        .route(
            "/api/v1/members/{id}",
            patch(members::update).delete(members::remove),
        )
        .route("/api/v1/keys", get(keys::list).post(keys::create))
        .route("/api/v1/keys/{id}", delete(keys::revoke))
        .route("/api/v1/profiles", get(profiles::list))
        .route("/api/v1/profiles/lookup", get(profiles::lookup))
        .route("/api/v1/profiles/{id}", get(profiles::get))
        .route("/api/v1/profiles/{id}/timeline", get(profiles::timeline))
        .route("/api/v1/profiles/{id}/merges", get(profiles::merges))
        .route("/api/v1/profiles/{id}/merge", post(profiles::merge))
        .route("/api/v1/profiles/{id}/unmerge", post(profiles::unmerge))
        .route(
            "/api/v1/profiles/{id}/consent",
            get(profiles::consents).post(profiles::record_consent),
        )
        .route("/api/v1/profiles/{id}/export", get(profiles::export))
        .route("/api/v1/profiles/{id}/erase", post(profiles::erase))
        .route(
            "/api/v1/profiles/{id}/conversation",
            get(conversations::for_profile),
        )
        .route("/api/v1/conversations", get(conversations::list))
        .route("/api/v1/conversations/{id}", get(conversations::get))
        .route(
            "/api/v1/conversations/{id}/messages",
            get(conversations::messages).post(conversations::post_message),
        )
        .route(
            "/api/v1/conversations/{id}/status",
            post(conversations::set_status),
        )
        .route(
            "/api/v1/conversations/{id}/assignment",
            post(conversations::assign),
        )
        .route(
            "/api/v1/conversations/{id}/labels",
            post(conversations::set_labels),
        )
        .route(
            "/api/v1/conversations/{id}/priority",
            post(conversations::set_priority),
        )
        .route(
            "/api/v1/conversations/{id}/read",
            post(conversations::mark_read),
        )
        .route(
            "/api/v1/canned-responses",
            get(conversations::canned_responses).post(conversations::create_canned_response),
        )
        .route("/api/v1/conflicts", get(profiles::conflicts))
        .route(
            "/api/v1/conflicts/{id}/dismiss",
            post(profiles::dismiss_conflict),
        )
        .route(
            "/api/v1/settings/identity",
            get(settings::identity).put(settings::put_identity),
        )
}
