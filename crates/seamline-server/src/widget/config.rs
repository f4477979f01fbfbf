//! `GET /widget/v1/config?key=WRITE_KEY&anonymousId=…`: what the script
//! shows: texts, colour, buttons, the visitor's messenger links, the
//! pre-chat form, and whether anyone is online to chat. Never a secret.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use seamline_core::inbox::routing::Presence;
use seamline_core::WorkspaceId;
use serde::Deserialize;
use serde_json::json;

use super::settings::{self, WidgetSettings};
use super::tracking::{code_for, links, registration, Link};
use crate::auth::WriteKeyWorkspace;
use crate::error::ApiResult;
use crate::AppState;

#[derive(Debug, Deserialize)]
pub struct ConfigParams {
    key: String,
    /// Without it the messenger buttons are left out: a link without the
    /// visitor's code would lose the site session.
    #[serde(rename = "anonymousId")]
    anonymous_id: Option<String>,
}

pub async fn config(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(params): Query<ConfigParams>,
) -> ApiResult<Response> {
    let workspace = WriteKeyWorkspace::resolve(&state, &headers, Some(&params.key)).await?;
    let settings = settings::load(state.store.as_ref(), workspace).await?;
    let visitor = params
        .anonymous_id
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty() && a.chars().count() <= 200);
    let links = match visitor {
        Some(visitor) => messenger_links(&state, workspace, &settings, visitor).await?,
        None => Vec::new(),
    };
    let online = state
        .store
        .operators(workspace, None)
        .await?
        .iter()
        .any(|o| o.presence == Presence::Online);
    let body = json!({
        "title": settings.title,
        "greeting": settings.greeting,
        "accentColor": settings.accent_color,
        "chat": settings.buttons.chat,
        "callback": settings.buttons.callback,
        "links": links,
        "prechat": settings.prechat,
        "online": online,
    });
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

/// The visitor's links, their code recorded as their identifier first.
async fn messenger_links(
    state: &AppState,
    workspace: WorkspaceId,
    settings: &WidgetSettings,
    visitor: &str,
) -> ApiResult<Vec<Link>> {
    if settings.buttons.messengers().next().is_none() {
        return Ok(Vec::new());
    }
    let key = settings::tracking_key(state.store.as_ref(), workspace).await?;
    let code = code_for(&key, visitor);
    let event = registration(workspace, visitor, &code)?;
    if let Err(error) = state.ingest.append(vec![event]).await {
        // The links still work; the chat just is not tied to the visit.
        tracing::warn!(
            error = format!("{error:#}"),
            "a tracking code was not recorded"
        );
    }
    Ok(links(&settings.buttons, &code))
}
