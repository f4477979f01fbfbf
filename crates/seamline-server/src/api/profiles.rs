//! `/api/v1/profiles`: search, read, timeline, merges and conflicts,
//! consent, export and erasure.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::cursor::Cursor;
use seamline_core::identity::{Identifier, IdentifierKind, IdentityPolicy};
use seamline_core::role::Permission;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::{Backend, ConsentRecord, EventQuery, Profile, ProfileQuery};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::consent;
use crate::identity::profiles::{self as service, compute, Computed};
use crate::views::{EventView, Page};
use crate::AppState;

#[derive(Debug, Serialize)]
pub struct IdentifierView {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub source: String,
    pub first_seen: DateTime<Utc>,
    pub shared: bool,
}

#[derive(Debug, Serialize)]
pub struct ProfileView {
    pub id: ProfileId,
    pub identifiers: Vec<IdentifierView>,
    pub traits: serde_json::Map<String, Value>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[serde(flatten)]
    pub computed: Computed,
}

pub async fn profile_view(
    store: &dyn Backend,
    ws: WorkspaceId,
    profile: Profile,
) -> ApiResult<ProfileView> {
    let identifiers = store.profile_identifiers(ws, profile.id).await?;
    let events = service::all_events(store, ws, profile.id).await?;
    Ok(ProfileView {
        id: profile.id,
        identifiers: identifiers
            .into_iter()
            .map(|i| IdentifierView {
                kind: i.identifier.kind.to_string(),
                value: i.identifier.value,
                source: i.source,
                first_seen: i.first_seen,
                shared: i.shared,
            })
            .collect(),
        traits: profile.traits,
        first_seen: profile.first_seen,
        last_seen: profile.last_seen,
        computed: compute(&events),
    })
}

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Every identifier `text` could be, in any format people type.
pub fn identifiers_in(text: &str, policy: &IdentityPolicy) -> Vec<Identifier> {
    IdentifierKind::BUILT_IN
        .into_iter()
        .filter_map(|kind| Identifier::parse(kind, text, policy).ok())
        .collect()
}

fn encode_cursor(p: &Profile) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", p.last_seen.timestamp_millis(), p.id))
}

fn decode_cursor(token: &str) -> ApiResult<(DateTime<Utc>, ProfileId)> {
    let bad = || {
        ApiError::field(
            "invalid_cursor",
            "cursor",
            "not a cursor issued by this API",
        )
    };
    let text = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (ms, id) = text.split_once(':').ok_or_else(bad)?;
    let at = ms
        .parse()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .ok_or_else(bad)?;
    Ok((at, id.parse().map_err(|_| bad())?))
}

pub async fn search(
    store: &dyn Backend,
    ws: WorkspaceId,
    q: Option<&str>,
    limit: u32,
    after: Option<(DateTime<Utc>, ProfileId)>,
) -> ApiResult<Vec<Profile>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    let policy = IdentityPolicy::default();
    let query = ProfileQuery {
        identifiers: q.map(|q| identifiers_in(q, &policy)).unwrap_or_default(),
        text: q.filter(|q| q.chars().count() >= 2).map(str::to_owned),
        limit,
        after,
    };
    Ok(store.list_profiles(ws, &query).await?)
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<Page<ProfileView>>> {
    principal.require(Permission::ReadData)?;
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::field(
            "out_of_range",
            "limit",
            "between 1 and 200",
        ));
    }
    let after = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let found = search(
        state.store.as_ref(),
        principal.workspace,
        params.q.as_deref(),
        limit,
        after,
    )
    .await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(encode_cursor))
        .flatten();
    let mut data = Vec::with_capacity(found.len());
    for profile in found {
        data.push(profile_view(state.store.as_ref(), principal.workspace, profile).await?);
    }
    Ok(Json(Page { data, next_cursor }))
}

#[derive(Debug, Deserialize)]
pub struct LookupParams {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

pub async fn lookup(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<LookupParams>,
) -> ApiResult<Json<ProfileView>> {
    principal.require(Permission::ReadData)?;
    let kind = params
        .kind
        .parse::<IdentifierKind>()
        .map_err(|e| ApiError::field("invalid_value", "type", e))?;
    let identifier = Identifier::parse(kind, &params.value, &IdentityPolicy::default())
        .map_err(|e| ApiError::field("invalid_identifier", "value", e.to_string()))?;
    let query = ProfileQuery {
        identifiers: vec![identifier],
        limit: 1,
        ..ProfileQuery::default()
    };
    let found = state
        .store
        .list_profiles(principal.workspace, &query)
        .await?;
    let profile = found
        .into_iter()
        .next()
        .ok_or(ApiError::NotFound("profile"))?;
    Ok(Json(
        profile_view(state.store.as_ref(), principal.workspace, profile).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<ProfileView>> {
    principal.require(Permission::ReadData)?;
    let profile = service::live_profile(state.store.as_ref(), principal.workspace, id).await?;
    Ok(Json(
        profile_view(state.store.as_ref(), principal.workspace, profile).await?,
    ))
}

#[derive(Debug, Deserialize)]
pub struct TimelineParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

pub async fn timeline(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiQuery(params): ApiQuery<TimelineParams>,
) -> ApiResult<Json<Page<EventView>>> {
    principal.require(Permission::ReadData)?;
    let profile = service::live_profile(state.store.as_ref(), principal.workspace, id).await?;
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    let after_seq = params
        .cursor
        .as_deref()
        .map(Cursor::decode)
        .transpose()?
        .map(|c| c.0);
    let query = EventQuery {
        limit,
        after_seq,
        ..EventQuery::default()
    };
    let events = state
        .store
        .profile_events(principal.workspace, profile.id, &query)
        .await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().map(|e| Cursor(e.seq).encode()))
        .flatten();
    Ok(Json(Page {
        data: events.iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

pub async fn merges(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ReadData)?;
    let profile = service::live_profile(state.store.as_ref(), principal.workspace, id).await?;
    let merges = state.store.merges(principal.workspace, profile.id).await?;
    let conflicts = state
        .store
        .conflicts(principal.workspace, Some(profile.id))
        .await?;
    Ok(Json(
        json!({"data": merges, "conflicts": conflicts, "next_cursor": null}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct UnmergeBody {
    merge_id: Uuid,
}

pub async fn unmerge(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<UnmergeBody>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::WriteData)?;
    let policy = IdentityPolicy::default();
    let profiles = service::unmerge(
        state.store.as_ref(),
        principal.workspace,
        id,
        body.merge_id,
        &policy,
    )
    .await?;
    tracing::info!(actor = ?principal.actor, merge = %body.merge_id, "unmerged by hand");
    Ok(Json(json!({"profiles": profiles})))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    other_profile_id: ProfileId,
}

pub async fn merge(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::WriteData)?;
    let actor = principal.email.clone().unwrap_or_else(|| "api key".into());
    let record = service::merge_by_hand(
        state.store.as_ref(),
        principal.workspace,
        id,
        body.other_profile_id,
        &actor,
    )
    .await?;
    Ok(Json(json!(record)))
}

pub async fn conflicts(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ReadData)?;
    let open = state.store.conflicts(principal.workspace, None).await?;
    Ok(Json(json!({"data": open, "next_cursor": null})))
}

pub async fn dismiss_conflict(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::WriteData)?;
    state
        .store
        .resolve_conflict(principal.workspace, id, Utc::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn consents(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ReadData)?;
    let profile = service::live_profile(state.store.as_ref(), principal.workspace, id).await?;
    let history = state
        .store
        .consents(principal.workspace, profile.id)
        .await?;
    Ok(Json(
        json!({"current": consent::current(&history), "history": history}),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ConsentBody {
    purpose: String,
    channel: String,
    granted: bool,
    source: String,
    wording: String,
}

pub async fn record_consent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> ApiResult<(StatusCode, Json<ConsentRecord>)> {
    principal.require(Permission::WriteData)?;
    let profile = service::live_profile(state.store.as_ref(), principal.workspace, id).await?;
    if !consent::PURPOSES.contains(&body.purpose.as_str()) {
        return Err(ApiError::field(
            "invalid_value",
            "purpose",
            "marketing, analytics or service",
        ));
    }
    if !consent::CHANNELS.contains(&body.channel.as_str()) {
        return Err(ApiError::field(
            "invalid_value",
            "channel",
            consent::CHANNELS.join(", "),
        ));
    }
    for (field, value) in [("source", &body.source), ("wording", &body.wording)] {
        if value.trim().is_empty() {
            return Err(ApiError::field(
                "required",
                field,
                "say where it was given and the words shown",
            ));
        }
    }
    let record = ConsentRecord {
        id: Uuid::now_v7(),
        workspace_id: principal.workspace,
        profile_id: profile.id,
        purpose: body.purpose,
        channel: body.channel,
        granted: body.granted,
        source: body.source,
        wording: body.wording,
        at: Utc::now(),
    };
    state.store.record_consent(record.clone()).await?;
    Ok((StatusCode::CREATED, Json(record)))
}

pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ManageWorkspace)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let profile = service::live_profile(store, ws, id).await?;
    let events = service::all_events(store, ws, profile.id).await?;
    let document = json!({
        "exported_at": Utc::now(),
        "profile": profile_view(store, ws, profile.clone()).await?,
        "consent": store.consents(ws, profile.id).await?,
        "merges": store.merges(ws, profile.id).await?,
        "conflicts": store.conflicts(ws, Some(profile.id)).await?,
        "events": events.iter().map(EventView::from).collect::<Vec<_>>(),
    });
    Ok(Json(document))
}

pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<Value>> {
    principal.require(Permission::ManageWorkspace)?;
    service::erase(state.store.as_ref(), principal.workspace, id).await?;
    tracing::info!(actor = ?principal.actor, profile = %id, "profile erased");
    Ok(Json(json!({"erased": true})))
}
