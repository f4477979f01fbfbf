//! The site widget: `/widget.js` and the visitor's chat socket.
//!
//! A visitor is the tracking API's anonymous id (the same cookie the site's
//! tracking uses), so their chat joins their browsing and ad source. A
//! logged-in customer's site user id counts only with its HMAC-SHA256 under
//! the workspace's widget secret: nobody can write as someone else.

mod live;
mod socket;

use axum::routing::get;
use axum::Router;

use crate::AppState;

pub use live::{announce, subject_of};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/widget.js", get(socket::script))
        .route("/widget/v1/socket", get(socket::connect))
}
