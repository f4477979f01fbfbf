//! Outbound webhook endpoints and their delivery log. Owners and admins
//! manage them; supervisors may look (the log shows where data goes).
//! The signing secret is made here and shown twice at most: on create and
//! on rotate.

use std::collections::BTreeSet;
use std::net::IpAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use seamline_core::cursor::Cursor;
use seamline_core::role::Permission;
use seamline_core::{WebhookDeliveryId, WebhookId};
use seamline_store::{
    DeliveryAttempt, DeliveryQuery, NewDelivery, WebhookDelivery, WebhookEndpoint, WebhookEvent,
    WebhookSecret,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::auth::{new_token, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::views::Page;
use crate::webhooks::target::refused;
use crate::AppState;

const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 200;

/// A new endpoint; `events` empty or absent: all of them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    pub url: String,
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub active: Option<bool>,
}

/// A change to an endpoint: what is present is replaced.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
    pub active: Option<bool>,
}

/// An endpoint with its secret: the answer to create and rotate only
/// (no `Debug`, so it cannot end up in a log).
#[derive(Serialize)]
pub struct WithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// A delivery in the log, with its attempts (oldest first).
#[derive(Debug, Serialize)]
pub struct LoggedDelivery {
    #[serde(flatten)]
    pub delivery: WebhookDelivery,
    pub attempt_log: Vec<DeliveryAttempt>,
}

/// An `http` or `https` URL with a host.
fn parse_url(text: &str) -> ApiResult<String> {
    let text = text.trim();
    let bad = |message: &str| ApiError::field("invalid_url", "url", message);
    if text.len() > MAX_URL {
        return Err(bad("at most 2048 characters"));
    }
    let url = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("use an http or https URL"));
    }
    let ip = match url.host() {
        None => return Err(bad("the URL needs a host")),
        Some(url::Host::Domain("")) => return Err(bad("the URL needs a host")),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(why) = ip.and_then(refused) {
        return Err(bad(&format!("webhooks are not sent to {why}")));
    }
    Ok(url.into())
}

fn parse_events(names: &[String]) -> ApiResult<BTreeSet<WebhookEvent>> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            WebhookEvent::SUBSCRIBABLE
                .into_iter()
                .find(|e| e.as_str() == name)
                .ok_or_else(|| {
                    ApiError::field(
                        "invalid_value",
                        &format!("events[{i}]"),
                        "one of message.created, conversation.created, conversation.updated",
                    )
                })
        })
        .collect()
}

fn parse_description(text: &str) -> ApiResult<String> {
    let text = text.trim();
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::field(
            "too_long",
            "description",
            "at most 200 characters",
        ));
    }
    Ok(text.to_owned())
}

fn new_secret() -> WebhookSecret {
    WebhookSecret::new(format!("whsec_{}", new_token()))
}

fn with_secret(endpoint: WebhookEndpoint) -> WithSecret {
    let secret = endpoint.secret.expose().to_owned();
    WithSecret { endpoint, secret }
}

async fn endpoint_of(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
) -> ApiResult<WebhookEndpoint> {
    state
        .store
        .webhook(principal.workspace, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}

pub async fn list_webhooks(
    state: &AppState,
    principal: &Principal,
) -> ApiResult<Vec<WebhookEndpoint>> {
    principal.require(Permission::ReadIntegrations)?;
    Ok(state.store.list_webhooks(principal.workspace).await?)
}

pub async fn create_webhook(
    state: &AppState,
    principal: &Principal,
    body: &NewWebhook,
) -> ApiResult<WithSecret> {
    principal.require(Permission::ManageWorkspace)?;
    let now = Utc::now();
    let endpoint = WebhookEndpoint {
        id: WebhookId(Uuid::now_v7()),
        workspace_id: principal.workspace,
        url: parse_url(&body.url)?,
        secret: new_secret(),
        events: parse_events(&body.events)?,
        active: body.active.unwrap_or(true),
        description: parse_description(&body.description)?,
        created_at: now,
        updated_at: now,
    };
    state.store.create_webhook(&endpoint).await?;
    Ok(with_secret(endpoint))
}

pub async fn change_webhook(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
    change: &WebhookChange,
) -> ApiResult<WebhookEndpoint> {
    principal.require(Permission::ManageWorkspace)?;
    let mut endpoint = endpoint_of(state, principal, id).await?;
    if let Some(url) = &change.url {
        endpoint.url = parse_url(url)?;
    }
    if let Some(events) = &change.events {
        endpoint.events = parse_events(events)?;
    }
    if let Some(description) = &change.description {
        endpoint.description = parse_description(description)?;
    }
    if let Some(active) = change.active {
        endpoint.active = active;
    }
    endpoint.updated_at = Utc::now();
    state.store.update_webhook(&endpoint).await?;
    Ok(endpoint)
}

pub async fn rotate_secret(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
) -> ApiResult<WithSecret> {
    principal.require(Permission::ManageWorkspace)?;
    let mut endpoint = endpoint_of(state, principal, id).await?;
    endpoint.secret = new_secret();
    endpoint.updated_at = Utc::now();
    state.store.update_webhook(&endpoint).await?;
    Ok(with_secret(endpoint))
}

pub async fn delete_webhook(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    Ok(state.store.delete_webhook(principal.workspace, id).await?)
}

/// Queues a `ping` for the endpoint; the sender posts it within a poll.
pub async fn ping_webhook(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
) -> ApiResult<WebhookDelivery> {
    principal.require(Permission::ManageWorkspace)?;
    let endpoint = endpoint_of(state, principal, id).await?;
    if !endpoint.active {
        return Err(ApiError::field(
            "inactive",
            "active",
            "the endpoint is disabled; enable it first",
        ));
    }
    let ping = NewDelivery {
        id: WebhookDeliveryId(Uuid::now_v7()),
        workspace_id: principal.workspace,
        endpoint_id: id,
        event: WebhookEvent::Ping,
        dedupe_key: format!("ping:{}", Uuid::now_v7()),
        profile_id: None,
        payload: json!({"webhook_id": id}),
        created_at: Utc::now(),
    };
    state
        .store
        .enqueue_deliveries(std::slice::from_ref(&ping))
        .await?;
    delivery_of(state, principal, ping.id).await
}

async fn delivery_of(
    state: &AppState,
    principal: &Principal,
    id: WebhookDeliveryId,
) -> ApiResult<WebhookDelivery> {
    state
        .store
        .delivery(principal.workspace, id)
        .await?
        .ok_or(ApiError::NotFound("webhook delivery"))
}

pub async fn redeliver(
    state: &AppState,
    principal: &Principal,
    id: WebhookDeliveryId,
) -> ApiResult<WebhookDelivery> {
    principal.require(Permission::ManageWorkspace)?;
    state
        .store
        .redeliver(principal.workspace, id, Utc::now())
        .await?;
    delivery_of(state, principal, id).await
}

#[derive(Debug, Default, Deserialize)]
pub struct LogParams {
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// One page of an endpoint's deliveries, newest first.
pub async fn delivery_log(
    state: &AppState,
    principal: &Principal,
    id: WebhookId,
    params: &LogParams,
) -> ApiResult<Page<LoggedDelivery>> {
    principal.require(Permission::ReadIntegrations)?;
    endpoint_of(state, principal, id).await?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::field("out_of_range", "limit", "1 to 100"));
    }
    let before = params
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()?
        .map(|c| c.0);
    let ws = principal.workspace;
    let page = state
        .store
        .deliveries(ws, id, DeliveryQuery { before, limit })
        .await?;
    let next_cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|d| Cursor(d.seq).encode()))
        .flatten();
    let mut data = Vec::with_capacity(page.len());
    for delivery in page {
        let attempt_log = state.store.delivery_attempts(ws, delivery.id).await?;
        data.push(LoggedDelivery {
            delivery,
            attempt_log,
        });
    }
    Ok(Page { data, next_cursor })
}

// The routes.

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Page<WebhookEndpoint>>> {
    Ok(Json(Page {
        data: list_webhooks(&state, &principal).await?,
        next_cursor: None,
    }))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewWebhook>,
) -> ApiResult<(StatusCode, Json<WithSecret>)> {
    let created = create_webhook(&state, &principal, &body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WebhookEndpoint>> {
    principal.require(Permission::ReadIntegrations)?;
    Ok(Json(endpoint_of(&state, &principal, id).await?))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
    ApiJson(change): ApiJson<WebhookChange>,
) -> ApiResult<Json<WebhookEndpoint>> {
    Ok(Json(change_webhook(&state, &principal, id, &change).await?))
}

pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<StatusCode> {
    delete_webhook(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn rotate(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<Json<WithSecret>> {
    Ok(Json(rotate_secret(&state, &principal, id).await?))
}

pub async fn ping(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(ping_webhook(&state, &principal, id).await?),
    ))
}

pub async fn deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookId>,
    ApiQuery(params): ApiQuery<LogParams>,
) -> ApiResult<Json<Page<LoggedDelivery>>> {
    Ok(Json(delivery_log(&state, &principal, id, &params).await?))
}

pub async fn redeliver_route(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<WebhookDeliveryId>,
) -> ApiResult<(StatusCode, Json<WebhookDelivery>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(redeliver(&state, &principal, id).await?),
    ))
}
