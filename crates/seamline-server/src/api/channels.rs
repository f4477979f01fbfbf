//! Channel accounts (`/api/v1/channels`): owners and admins connect and
//! change them; supervisors may look. Secrets go in and never come back out
//! in clear: views show them masked, with the webhook URL to paste and the
//! last connection check.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::Channel;
use seamline_core::role::Permission;
use seamline_core::ChannelAccountId;
use seamline_store::ChannelAccount;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::channels::{accounts, Connector, SecretError, Secrets};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::views::Page;
use crate::AppState;

const MAX_NAME: usize = 100;

/// A new account: `kind` is a channel with a connector (`telegram`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub active: Option<bool>,
}

/// A change: what is present is replaced; `settings` and `secrets` merge
/// by field (a blank secret keeps the stored one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelChange {
    pub name: Option<String>,
    pub settings: Option<Map<String, Value>>,
    pub secrets: Option<BTreeMap<String, String>>,
    pub active: Option<bool>,
}

/// An account as the API and the settings page show it.
#[derive(Debug, Serialize)]
pub struct ChannelView {
    pub id: ChannelAccountId,
    pub kind: Channel,
    pub name: String,
    pub settings: Value,
    /// Entered secrets, masked (`••••wxyz`).
    pub secrets: BTreeMap<String, String>,
    /// Paste this into the provider (the connection check sets it itself
    /// where the provider allows).
    pub webhook_url: String,
    pub active: bool,
    pub status: String,
    pub status_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn internal(error: SecretError) -> ApiError {
    ApiError::Internal(anyhow::Error::new(error).context("channel secrets"))
}

/// The last four characters, the rest hidden.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let shown: String = chars[chars.len().saturating_sub(4)..].iter().collect();
    if chars.len() <= 8 {
        "••••".into()
    } else {
        format!("••••{shown}")
    }
}

/// Where providers reach this server: the configured public URL, else the
/// host the request came in on.
pub fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config.channels.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

fn view(
    state: &AppState,
    connector: &dyn Connector,
    base: &str,
    stored: &ChannelAccount,
) -> ApiResult<ChannelView> {
    let open = accounts::open(&state.config.channels.secret_key, stored).map_err(internal)?;
    let secrets = connector
        .secret_fields()
        .iter()
        .filter_map(|f| open.secrets.get(f).map(|v| ((*f).to_owned(), mask(v))))
        .collect();
    Ok(ChannelView {
        id: stored.id,
        kind: stored.kind,
        name: stored.name.clone(),
        settings: stored.settings.clone(),
        secrets,
        webhook_url: accounts::webhook_url(base, stored),
        active: stored.active,
        status: stored.status.clone(),
        status_detail: stored.status_detail.clone(),
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    })
}

fn connector_for(state: &AppState, kind: Channel) -> ApiResult<&dyn Connector> {
    state
        .channels
        .connectors
        .get(kind)
        .map(|c| c.as_ref())
        .ok_or_else(|| ApiError::field("unsupported", "kind", "no connector for this channel yet"))
}

fn parse_name(name: &str, kind: Channel) -> ApiResult<String> {
    let name = name.trim();
    if name.chars().count() > MAX_NAME {
        return Err(ApiError::field(
            "too_long",
            "name",
            "at most 100 characters",
        ));
    }
    Ok(if name.is_empty() {
        kind.to_string()
    } else {
        name.to_owned()
    })
}

/// Entered secrets without blanks; only the connector's own fields.
fn entered(connector: &dyn Connector, given: &BTreeMap<String, String>) -> ApiResult<Secrets> {
    let mut secrets = Secrets::default();
    for (name, value) in given {
        if !connector.secret_fields().contains(&name.as_str()) {
            return Err(ApiError::field(
                "unknown_field",
                &format!("secrets.{name}"),
                "not a secret of this channel",
            ));
        }
        if !value.trim().is_empty() {
            secrets.0.insert(name.clone(), value.trim().to_owned());
        }
    }
    Ok(secrets)
}

async fn stored_account(
    state: &AppState,
    principal: &Principal,
    id: ChannelAccountId,
) -> ApiResult<ChannelAccount> {
    state
        .store
        .channel_account(principal.workspace, id)
        .await?
        .ok_or(ApiError::NotFound("channel account"))
}

pub async fn list_channels(
    state: &AppState,
    principal: &Principal,
    base: &str,
) -> ApiResult<Vec<ChannelView>> {
    principal.require(Permission::ReadIntegrations)?;
    let stored = state
        .store
        .list_channel_accounts(principal.workspace)
        .await?;
    stored
        .iter()
        .map(|a| view(state, connector_for(state, a.kind)?, base, a))
        .collect()
}

pub async fn create_channel(
    state: &AppState,
    principal: &Principal,
    base: &str,
    body: &NewChannel,
) -> ApiResult<ChannelView> {
    principal.require(Permission::ManageWorkspace)?;
    let kind: Channel = body
        .kind
        .parse()
        .map_err(|_| ApiError::field("invalid_channel", "kind", "a channel such as telegram"))?;
    let connector = connector_for(state, kind)?;
    let mut secrets = entered(connector, &body.secrets)?;
    let settings = Value::Object(body.settings.clone());
    connector.validate(&settings, &secrets)?;
    for field in connector.generated_secrets() {
        secrets.0.insert(
            (*field).to_owned(),
            accounts::new_token().map_err(internal)?,
        );
    }
    let id = ChannelAccountId(Uuid::now_v7());
    let now = Utc::now();
    let account = ChannelAccount {
        id,
        workspace_id: principal.workspace,
        kind,
        name: parse_name(&body.name, kind)?,
        settings,
        secrets: state
            .config
            .channels
            .secret_key
            .seal(id, &secrets)
            .map_err(internal)?,
        path_token: accounts::new_token().map_err(internal)?,
        active: body.active.unwrap_or(true),
        status: "unchecked".into(),
        status_detail: None,
        created_at: now,
        updated_at: now,
    };
    state.store.create_channel_account(&account).await?;
    view(state, connector, base, &account)
}

pub async fn change_channel(
    state: &AppState,
    principal: &Principal,
    base: &str,
    id: ChannelAccountId,
    change: &ChannelChange,
) -> ApiResult<ChannelView> {
    principal.require(Permission::ManageWorkspace)?;
    let mut account = stored_account(state, principal, id).await?;
    let connector = connector_for(state, account.kind)?;
    let key = &state.config.channels.secret_key;
    let mut secrets = key.open(id, &account.secrets).map_err(internal)?;
    if let Some(given) = &change.secrets {
        secrets.0.extend(entered(connector, given)?.0);
    }
    if let Some(settings) = &change.settings {
        if let Value::Object(current) = &mut account.settings {
            current.extend(settings.clone());
        }
    }
    connector.validate(&account.settings, &secrets)?;
    if let Some(name) = &change.name {
        account.name = parse_name(name, account.kind)?;
    }
    if let Some(active) = change.active {
        account.active = active;
    }
    if change.secrets.is_some() || change.settings.is_some() {
        account.status = "unchecked".into();
        account.status_detail = None;
    }
    account.secrets = key.seal(id, &secrets).map_err(internal)?;
    account.updated_at = Utc::now();
    state.store.update_channel_account(&account).await?;
    view(state, connector, base, &account)
}

pub async fn delete_channel(
    state: &AppState,
    principal: &Principal,
    id: ChannelAccountId,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    Ok(state
        .store
        .delete_channel_account(principal.workspace, id)
        .await?)
}

/// Checks the credentials with the provider and points its webhook here;
/// the outcome is stored as the account's status either way.
pub async fn test_channel(
    state: &AppState,
    principal: &Principal,
    base: &str,
    id: ChannelAccountId,
) -> ApiResult<ChannelView> {
    principal.require(Permission::ManageWorkspace)?;
    let mut account = stored_account(state, principal, id).await?;
    let connector = connector_for(state, account.kind)?;
    let open = accounts::open(&state.config.channels.secret_key, &account).map_err(internal)?;
    let url = accounts::webhook_url(base, &account);
    match connector.connect(&open, &url).await {
        Ok(connected) => {
            if let Value::Object(settings) = &mut account.settings {
                settings.extend(connected.settings);
            }
            account.status = "connected".into();
            account.status_detail = Some(connected.detail);
        }
        Err(error) => {
            account.status = "error".into();
            account.status_detail = Some(error.to_string());
        }
    }
    account.updated_at = Utc::now();
    state.store.update_channel_account(&account).await?;
    view(state, connector, base, &account)
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
) -> ApiResult<Json<Page<ChannelView>>> {
    let base = public_base(&state, &headers);
    Ok(Json(Page {
        data: list_channels(&state, &principal, &base).await?,
        next_cursor: None,
    }))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewChannel>,
) -> ApiResult<(StatusCode, Json<ChannelView>)> {
    let base = public_base(&state, &headers);
    let created = create_channel(&state, &principal, &base, &body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<ChannelAccountId>,
) -> ApiResult<Json<ChannelView>> {
    principal.require(Permission::ReadIntegrations)?;
    let account = stored_account(&state, &principal, id).await?;
    let connector = connector_for(&state, account.kind)?;
    let base = public_base(&state, &headers);
    Ok(Json(view(&state, connector, &base, &account)?))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<ChannelAccountId>,
    ApiJson(change): ApiJson<ChannelChange>,
) -> ApiResult<Json<ChannelView>> {
    let base = public_base(&state, &headers);
    Ok(Json(
        change_channel(&state, &principal, &base, id, &change).await?,
    ))
}

pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ChannelAccountId>,
) -> ApiResult<StatusCode> {
    delete_channel(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn test(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiPath(id): ApiPath<ChannelAccountId>,
) -> ApiResult<Json<ChannelView>> {
    let base = public_base(&state, &headers);
    Ok(Json(test_channel(&state, &principal, &base, id).await?))
}

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_show_at_most_the_last_four_characters() {
        assert_eq!(
            mask("123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"),
            "••••m9T0"
        );
        assert_eq!(mask("short"), "••••");
    }
}
