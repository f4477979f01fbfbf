//! Who calls the widget's HTTP routes: a site's write key and the
//! visitor's anonymous id, with a per-visitor limit on what they send.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use seamline_core::WorkspaceId;
use serde_json::json;

use crate::auth::WriteKeyWorkspace;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Forms (callback requests, offline and pre-chat messages) a visitor may
/// send in [`FORM_WINDOW`]: enough for a person, not for a script.
const FORM_LIMIT: usize = 5;
const FORM_WINDOW: Duration = Duration::from_secs(600);
/// Visitors remembered before the oldest entries are swept.
const SWEEP_AT: usize = 10_000;

/// When each visitor sent their recent forms.
type Sent = HashMap<(WorkspaceId, String), Vec<Instant>>;

/// A visitor checked against the write key.
pub struct SiteVisitor {
    pub workspace: WorkspaceId,
    pub anonymous_id: String,
}

impl SiteVisitor {
    pub async fn check(
        state: &AppState,
        headers: &HeaderMap,
        key: &str,
        anonymous_id: &str,
    ) -> ApiResult<Self> {
        let workspace = WriteKeyWorkspace::resolve(state, headers, Some(key)).await?;
        let anonymous = anonymous_id.trim();
        if anonymous.is_empty() || anonymous.chars().count() > 200 {
            return Err(ApiError::field(
                "invalid_value",
                "anonymousId",
                "the visitor's anonymous id, 1 to 200 characters",
            ));
        }
        Ok(Self {
            workspace,
            anonymous_id: anonymous.to_owned(),
        })
    }

    /// Counts one form against the visitor's limit (per instance: a
    /// visitor spread over instances gets a little more, never unlimited);
    /// false when over it.
    pub fn throttle(&self) -> bool {
        static SENT: OnceLock<Mutex<Sent>> = OnceLock::new();
        let mut sent = SENT
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if sent.len() >= SWEEP_AT {
            sent.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < FORM_WINDOW));
        }
        let times = sent
            .entry((self.workspace, self.anonymous_id.clone()))
            .or_default();
        times.retain(|t| now.duration_since(*t) < FORM_WINDOW);
        if times.len() >= FORM_LIMIT {
            return false;
        }
        times.push(now);
        true
    }
}

/// The answer to a visitor over their limit.
pub fn too_many() -> Response {
    let body = json!({"error": {
        "code": "rate_limited",
        "message": "too many requests from this visitor: try again in a few minutes",
        "field": null,
    }});
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}
