//! `GET`/`PUT /api/v1/settings/widget` and
//! `POST /api/v1/settings/widget/identity-secret`: the site widget's
//! settings. Every member reads them; owners and admins change them and
//! are the only ones shown the identity secret.

use axum::extract::State;
use axum::Json;
use seamline_core::role::Permission;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::extract::ApiJson;
use crate::widget::settings::{self, WidgetSettings};
use crate::AppState;

pub async fn widget(State(state): State<AppState>, principal: Principal) -> ApiResult<Json<Value>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(view(&state, &principal).await?))
}

/// Replaces the settings; those left out take their defaults, an unknown
/// or bad one is refused by name. The identity secret is kept.
pub async fn put_widget(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ManageWorkspace)?;
    let parsed = WidgetSettings::parse(&body)?;
    save(&state, &principal, &parsed).await?;
    Ok(Json(view(&state, &principal).await?))
}

pub(crate) async fn save(
    state: &AppState,
    principal: &Principal,
    widget: &WidgetSettings,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    settings::save(state.store.as_ref(), principal.workspace, widget).await?;
    tracing::info!(actor = ?principal.actor, "widget settings changed");
    Ok(())
}

/// A new identity secret; sites signing with the old one stop being
/// believed at once.
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ManageWorkspace)?;
    let secret = rotate(&state, &principal).await?;
    Ok(Json(json!({"identity_secret": secret})))
}

pub(crate) async fn rotate(state: &AppState, principal: &Principal) -> ApiResult<String> {
    principal.require(Permission::ManageWorkspace)?;
    let secret =
        settings::rotate_identity_secret(state.store.as_ref(), principal.workspace).await?;
    // Who, never what: the secret stays out of the log.
    tracing::info!(actor = ?principal.actor, "widget identity secret rotated");
    Ok(secret)
}

/// The settings as `principal` may see them.
async fn view(state: &AppState, principal: &Principal) -> ApiResult<Value> {
    let store = state.store.as_ref();
    let mut shown =
        serde_json::to_value(settings::load(store, principal.workspace).await?).unwrap_or_default();
    if principal.role.allows(Permission::ManageWorkspace) {
        shown["identity_secret"] =
            json!(settings::identity_secret(store, principal.workspace).await?);
    }
    Ok(shown)
}
