//! Workspace settings: `GET`/`PUT /api/v1/settings/identity`.

use axum::extract::State;
use axum::Json;
use seamline_core::identity::IdentityPolicy;
use seamline_core::role::Permission;
use serde_json::Value;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::identity::policy::{policy_of, save_policy, SaveError};
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
