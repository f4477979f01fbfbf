//! The REST API under `/api/v1`: secret key (`Authorization: Bearer`) or a
//! session with `X-CSRF-Token`. Lists answer `{"data": [...], "next_cursor"}`.

mod events;
pub(crate) mod keys;
pub(crate) mod members;

use axum::routing::{delete, get, patch};
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
}
