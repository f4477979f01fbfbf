//! Call tracking under `/api/v1/call-tracking`: `numbers` (list, add,
//! `numbers/{id}` remove), `settings` (get, put) and `stats?from=&to=`
//! (calls by source and pool misses; the last 30 days by default).
//! Every member reads; owners and admins change.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use seamline_core::calltracking::Settings;
use seamline_core::role::Permission;
use serde_json::{json, Value};
use uuid::Uuid;

use super::reports::Period;
use crate::auth::Principal;
use crate::calltracking::{self, NewNumber, NumberView, StatsView};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::AppState;

pub async fn list(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    let numbers: Vec<NumberView> = calltracking::numbers(&state, &principal).await?;
    Ok(Json(json!({"data": numbers})))
}

pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewNumber>,
) -> ApiResult<Response> {
    match calltracking::add_number(&state, &principal, &body).await {
        Ok(added) => {
            let shown = calltracking::numbers(&state, &principal)
                .await?
                .into_iter()
                .find(|n| n.id == added.id)
                .ok_or(ApiError::NotFound("tracking number"))?;
            Ok((StatusCode::CREATED, Json(shown)).into_response())
        }
        // The duplicate is the number the caller typed: say so by name.
        Err(ApiError::Conflict(_)) => {
            let body = json!({"error": {
                "code": "duplicate",
                "message": "the workspace has this number already",
                "field": "number",
            }});
            Ok((StatusCode::CONFLICT, Json(body)).into_response())
        }
        Err(other) => Err(other),
    }
}

pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    calltracking::remove_number(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn settings(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Settings>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(
        calltracking::settings_of(state.store.as_ref(), principal.workspace).await?,
    ))
}

/// Replaces the settings; those left out take their defaults.
pub async fn put_settings(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Settings>> {
    Ok(Json(
        calltracking::save_settings(&state, &principal, &body).await?,
    ))
}

pub async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(period): ApiQuery<Period>,
) -> ApiResult<Json<StatsView>> {
    principal.require(Permission::ReadData)?;
    let (from, to) = period.resolve()?;
    Ok(Json(
        calltracking::stats(&state, &principal, from, to).await?,
    ))
}
