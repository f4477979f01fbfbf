//! Write keys and secret API keys: create (the secret is shown once), list, revoke.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use seamline_core::role::Permission;
use seamline_core::KeyId;
use seamline_store::{ApiKey, KeyKind};
use serde::{Deserialize, Serialize};

use crate::auth::{new_key, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::views::Page;
use crate::AppState;

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Page<ApiKey>>> {
    principal.require(Permission::ManageWorkspace)?;
    let keys = state.store.list_keys(principal.workspace).await?;
    Ok(Json(Page {
        data: keys,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
pub struct NewKeyBody {
    pub kind: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The full key; for secret keys this is the only time it is shown.
    pub secret: String,
}

pub async fn create_key(
    state: &AppState,
    principal: &Principal,
    body: &NewKeyBody,
) -> ApiResult<CreatedKey> {
    principal.require(Permission::ManageWorkspace)?;
    let kind = KeyKind::parse(&body.kind)
        .ok_or_else(|| ApiError::field("invalid_value", "kind", "write or secret"))?;
    let name = match body.name.trim() {
        "" => format!("{} key", kind.as_str()),
        name => name.chars().take(100).collect(),
    };
    let made = new_key(principal.workspace, kind, &name);
    state.store.create_key(made.record.clone()).await?;
    Ok(CreatedKey {
        key: made.record,
        secret: made.secret,
    })
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    Ok((
        StatusCode::CREATED,
        Json(create_key(&state, &principal, &body).await?),
    ))
}

pub async fn revoke_key(state: &AppState, principal: &Principal, id: KeyId) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    Ok(state
        .store
        .revoke_key(principal.workspace, id, Utc::now())
        .await?)
}

pub async fn revoke(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<KeyId>,
) -> ApiResult<StatusCode> {
    revoke_key(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
