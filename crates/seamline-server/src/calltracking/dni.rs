//! `POST /widget/v1/number`: the number the site script puts on the page
//! for this visitor, asked on every page view and then as a heartbeat
//! while the page is open (the answer says how often).
//!
//! A static number bound to the visitor's source wins; else a pool number
//! (the one they hold, else a free one, in one store transaction); else
//! the default number, and the miss is counted. Body: `key` (the site's
//! write key), `anonymousId`, `sessionId`, `source` (UTM tags, click ids,
//! `referrer`, `page_url`). The answer never names another visitor.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use seamline_core::calltracking::{
    decide, display, static_for, visitor_source, NumberKind, Pool, Settings,
};
use seamline_store::{ReservationRequest, Reserved};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::settings_of;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::widget::SiteVisitor;
use crate::AppState;

const MAX_SESSION_CHARS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberRequest {
    key: String,
    anonymous_id: String,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    source: Value,
}

/// What the page shows.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NumberAnswer {
    /// `pool`, `static`, `default` (the pool was full) or `none` (nothing
    /// to show: leave the page as it is).
    kind: &'static str,
    /// E.164, for `tel:` links.
    number: Option<String>,
    /// As people read it.
    display: Option<String>,
    /// Until when the visitor holds a pool number unless they stay.
    until: Option<DateTime<Utc>>,
    /// Where the number goes: elements matching `selector`, and wherever
    /// the page shows `sitePhone`.
    selector: String,
    site_phone: Option<String>,
    /// Seconds between heartbeats while the page is open.
    heartbeat_s: u32,
}

impl NumberAnswer {
    fn new(kind: &'static str, number: Option<&str>, settings: &Settings) -> Self {
        Self {
            kind,
            number: number.map(str::to_owned),
            display: number.map(display),
            until: None,
            selector: settings.selector.clone(),
            site_phone: settings.site_phone.clone(),
            heartbeat_s: settings.heartbeat_s(),
        }
    }
}

pub async fn number(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NumberRequest>,
) -> ApiResult<Response> {
    let visitor = SiteVisitor::check(&state, &headers, &body.key, &body.anonymous_id).await?;
    let session_id = body
        .session_id
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    if session_id
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SESSION_CHARS)
    {
        return Err(ApiError::field(
            "too_long",
            "sessionId",
            "at most 200 characters",
        ));
    }
    let source = visitor_source(&body.source, "source")?;
    let (store, ws) = (state.store.as_ref(), visitor.workspace);
    let settings = settings_of(store, ws).await?;
    let numbers = store.tracking_numbers(ws).await?;
    let statics: Vec<(&str, _)> = numbers
        .iter()
        .filter_map(|n| Some((n.number.as_str(), n.source.clone()?)))
        .collect();
    let answer = if let Some(number) = static_for(&statics, &source) {
        NumberAnswer::new("static", Some(number), &settings)
    } else if numbers.iter().any(|n| n.kind == NumberKind::Pool) {
        let now = Utc::now();
        let request = ReservationRequest {
            id: Uuid::now_v7(),
            anonymous_id: visitor.anonymous_id.clone(),
            session_id,
            source,
            now,
        };
        let (who, tail) = (visitor.anonymous_id.as_str(), settings.tail());
        let rule = |pool: &Pool| decide(pool, who, now, tail);
        match store.reserve_tracking_number(ws, &request, &rule).await? {
            Reserved::Held(held) => NumberAnswer {
                until: Some(held.expires_at),
                ..NumberAnswer::new("pool", Some(&held.number), &settings)
            },
            Reserved::Missed => missed(&settings),
        }
    } else {
        // No pool: nothing was missed, the site's own number stays.
        NumberAnswer::new("none", None, &settings)
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response())
}

fn missed(settings: &Settings) -> NumberAnswer {
    match &settings.default_number {
        Some(number) => NumberAnswer::new("default", Some(number), settings),
        None => NumberAnswer::new("none", None, settings),
    }
}
