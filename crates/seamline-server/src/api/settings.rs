//! Workspace settings: `GET`/`PUT /api/v1/settings/identity` and
//! `/api/v1/settings/inbox`.

use axum::extract::State;
use axum::Json;
use seamline_core::identity::IdentityPolicy;
use seamline_core::inbox::visibility::Visibility;
use seamline_core::role::Permission;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::identity::policy::{policy_of, save_policy, SaveError};
use crate::inbox::visibility;
use crate::AppState;

pub async fn identity(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<IdentityPolicy>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(
        policy_of(state.store.as_ref(), principal.workspace).await?,
    ))
}

/// Replaces the identity rules; settings left out take their defaults, a
/// misspelt one is refused (stored rules load leniently, so an instance
/// never chokes on a setting a newer one wrote).
pub async fn put_identity(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<IdentityPolicy>> {
    principal.require(Permission::ManageWorkspace)?;
    let known = serde_json::to_value(IdentityPolicy::default()).unwrap_or_default();
    if let Some(unknown) = body
        .as_object()
        .and_then(|fields| fields.keys().find(|key| known.get(key.as_str()).is_none()))
    {
        return Err(ApiError::field(
            "unknown_setting",
            unknown,
            "not an identity setting",
        ));
    }
    let policy: IdentityPolicy = serde_json::from_value(body)
        .map_err(|e| ApiError::field("invalid_value", "", e.to_string()))?;
    save(&state, &principal, &policy).await?;
    Ok(Json(
        policy_of(state.store.as_ref(), principal.workspace).await?,
    ))
}

pub(crate) async fn save(
    state: &AppState,
    principal: &Principal,
    policy: &IdentityPolicy,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    save_policy(state.store.as_ref(), principal.workspace, policy)
        .await
        .map_err(|e| match e {
            SaveError::Invalid(field) => ApiError::from(field),
            SaveError::Store(store) => ApiError::from(store),
        })?;
    tracing::info!(actor = ?principal.actor, "identity rules changed");
    Ok(())
}

/// `GET /api/v1/settings/inbox`: which teams are private.
pub async fn inbox(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Visibility>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(
        visibility::rules(state.store.as_ref(), principal.workspace).await?,
    ))
}

/// `PUT /api/v1/settings/inbox`: `{"private_teams": [team ids]}`; a
/// private team's conversations are seen only by its members, whoever has
/// them, and owners, admins and supervisors.
pub async fn put_inbox(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Visibility>> {
    principal.require(Permission::ManageTeams)?;
    let rules: Visibility = serde_json::from_value(body).map_err(|e| {
        let field = if e.to_string().contains("unknown field") {
            ""
        } else {
            "private_teams"
        };
        ApiError::field("invalid_value", field, e.to_string())
    })?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    for team in &rules.private_teams {
        if store.team(ws, *team).await?.is_none() {
            return Err(ApiError::field(
                "unknown_team",
                "private_teams",
                format!("no team {team} in this workspace"),
            ));
        }
    }
    let value = serde_json::to_value(&rules).map_err(anyhow::Error::new)?;
    store
        .put_setting(ws, visibility::SETTING, &value, chrono::Utc::now())
        .await?;
    tracing::info!(actor = ?principal.actor, "inbox visibility changed");
    Ok(Json(rules))
}
