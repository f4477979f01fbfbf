//! Workspace settings: `GET`/`PUT /api/v1/settings/identity`.

use axum::extract::State;
use axum::Json;
use seamline_core::identity::IdentityPolicy;
use seamline_core::role::Permission;

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

/// Replaces the identity rules; settings left out take their defaults.
pub async fn put_identity(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(policy): ApiJson<IdentityPolicy>,
) -> ApiResult<Json<IdentityPolicy>> {
    principal.require(Permission::ManageWorkspace)?;
    save(&state, &principal, &policy).await?;
    Ok(Json(policy))
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
