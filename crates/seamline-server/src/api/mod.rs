//! The REST API under `/api/v1`: secret key (`Authorization: Bearer`) or a
//! session with `X-CSRF-Token`. Lists answer `{"data": [...], "next_cursor"}`.

pub(crate) mod attachments;
mod call_tracking;
pub(crate) mod channels;
pub(crate) mod conversations;
mod events;
pub(crate) mod keys;
mod keyset;
mod live;
pub(crate) mod members;
pub(crate) mod operators;
pub(crate) mod profiles;
pub(crate) mod reports;
pub(crate) mod settings;
pub(crate) mod teams;
pub(crate) mod webhooks;
pub(crate) mod widget_settings;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;

use crate::AppState;

pub use events::live_events;

/// An attachment's largest body, with room for nothing else.
const UPLOAD_LIMIT: usize = crate::inbox::attachments::MAX_BYTES + 1024;

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
            "/api/v1/conversations/{id}/attachments",
            post(attachments::upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/api/v1/attachments/{key}", get(attachments::download))
        .route("/api/v1/inbox/stream", get(live::stream))
        .route("/api/v1/operators", get(operators::list))
        .route("/api/v1/presence", post(operators::set_presence))
        .route("/api/v1/supervisor", get(operators::supervisor))
        .route("/api/v1/conversations/{id}/typing", post(live::typing))
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
        .route("/api/v1/teams", get(teams::list).post(teams::create))
        .route(
            "/api/v1/teams/{id}",
            get(teams::get).patch(teams::update).delete(teams::delete),
        )
        .route(
            "/api/v1/teams/{id}/members/{member_id}",
            put(teams::add_member).delete(teams::remove_member),
        )
        .route(
            "/api/v1/operators/{member_id}/capacity",
            put(teams::set_capacity),
        )
        .route("/api/v1/reports/csat", get(reports::csat))
        .route(
            "/api/v1/settings/csat",
            get(reports::csat_settings).put(reports::put_csat_settings),
        )
        .route(
            "/api/v1/channels",
            get(channels::list).post(channels::create),
        )
        .route(
            "/api/v1/channels/{id}",
            get(channels::get)
                .patch(channels::update)
                .delete(channels::remove),
        )
        .route("/api/v1/channels/{id}/test", post(channels::test))
        .route(
            "/api/v1/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/api/v1/webhooks/{id}",
            get(webhooks::get)
                .patch(webhooks::update)
                .delete(webhooks::remove),
        )
        .route(
            "/api/v1/webhooks/{id}/rotate-secret",
            post(webhooks::rotate),
        )
        .route("/api/v1/webhooks/{id}/ping", post(webhooks::ping))
        .route(
            "/api/v1/webhooks/{id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/webhooks/deliveries/{id}/redeliver",
            post(webhooks::redeliver_route),
        )
        .route(
            "/api/v1/settings/identity",
            get(settings::identity).put(settings::put_identity),
        )
        .route(
            "/api/v1/settings/inbox",
            get(settings::inbox).put(settings::put_inbox),
        )
        .route(
            "/api/v1/settings/widget",
            get(widget_settings::widget).put(widget_settings::put_widget),
        )
        .route(
            "/api/v1/settings/widget/identity-secret",
            post(widget_settings::rotate_secret),
        )
        .route(
            "/api/v1/call-tracking/numbers",
            get(call_tracking::list).post(call_tracking::add),
        )
        .route(
            "/api/v1/call-tracking/numbers/{id}",
            delete(call_tracking::remove),
        )
        .route(
            "/api/v1/call-tracking/settings",
            get(call_tracking::settings).put(call_tracking::put_settings),
        )
        .route("/api/v1/call-tracking/stats", get(call_tracking::stats))
}
