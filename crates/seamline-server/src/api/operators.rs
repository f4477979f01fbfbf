//! Operators as the inbox and the supervisor see them: presence, load and
//! capacity. `POST /api/v1/presence` sets the caller's own presence.

use axum::extract::State;
use axum::Json;
use seamline_core::inbox::routing::Presence;
use seamline_core::role::Permission;
use seamline_core::MemberId;
use serde::{Deserialize, Serialize};

use crate::api::conversations::caller;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::inbox::{queue, supervisor, DEFAULT_CAPACITY};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct OperatorView {
    pub member_id: MemberId,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub presence: Presence,
    pub presence_since: Option<String>,
    pub capacity: u32,
    pub load: u32,
}

/// Every member of the workspace with their presence and load, by name.
pub async fn operator_views(
    state: &AppState,
    principal: &Principal,
) -> ApiResult<Vec<OperatorView>> {
    let ws = principal.workspace;
    let states = state.store.operators(ws, None).await?;
    let mut views: Vec<OperatorView> = state
        .store
        .list_members(ws)
        .await?
        .into_iter()
        .filter_map(|m| {
            let s = states.iter().find(|s| s.member_id == m.id)?;
            Some(OperatorView {
                member_id: m.id,
                name: if m.name.trim().is_empty() {
                    m.email.clone()
                } else {
                    m.name
                },
                email: m.email,
                role: m.role.as_str(),
                presence: s.presence,
                presence_since: s.presence_since.map(|t| t.to_rfc3339()),
                capacity: s.capacity.unwrap_or(DEFAULT_CAPACITY),
                load: s.load,
            })
        })
        .collect();
    views.sort_by_key(|v| v.name.to_lowercase());
    Ok(views)
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<serde_json::Value>> {
    principal.require(Permission::ReadData)?;
    let views = operator_views(&state, &principal).await?;
    Ok(Json(
        serde_json::json!({ "data": views, "next_cursor": null }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct PresenceBody {
    presence: String,
}

/// Sets the caller's presence; coming online takes waiting conversations.
pub async fn set_presence(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<PresenceBody>,
) -> ApiResult<Json<OperatorView>> {
    principal.require(Permission::WriteData)?;
    let member = caller(&principal).ok_or_else(|| {
        ApiError::field(
            "not_a_person",
            "presence",
            "presence belongs to a signed-in operator, not an API key",
        )
    })?;
    let presence: Presence = body.presence.parse()?;
    let store = state.store.as_ref();
    queue::set_presence(
        store,
        state.bus.as_ref(),
        principal.workspace,
        member,
        presence,
    )
    .await?;
    operator_views(&state, &principal)
        .await?
        .into_iter()
        .find(|v| v.member_id == member)
        .map(Json)
        .ok_or(ApiError::NotFound("member"))
}

/// `GET /api/v1/supervisor`: queues, loads and today's figures, now.
pub async fn supervisor(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<supervisor::Snapshot>> {
    principal.require(Permission::Supervise)?;
    let snapshot = supervisor::snapshot(state.store.as_ref(), principal.workspace).await?;
    Ok(Json(snapshot))
}
