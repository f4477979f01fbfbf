//! `/api/v1/profiles`: search, read, timeline, merges and conflicts,
//! consent, export and erasure.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::cursor::Cursor;
use seamline_core::identity::{Identifier, IdentifierKind, IdentityPolicy};
use seamline_core::role::Permission;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::{
    Backend, ConsentRecord, EventQuery, MergeRecord, Profile, ProfileQuery, StoredEvent,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::keyset;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::identity::profiles::{self as service, compute, Computed};
use crate::identity::{consent, policy_of};
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

/// The cursor of the page after `p` (keyset: last seen, then id).
pub(crate) fn encode_cursor(p: &Profile) -> String {
    keyset::encode(p.last_seen.timestamp_millis(), p.id)
}

pub(crate) fn decode_cursor(token: &str) -> ApiResult<(DateTime<Utc>, ProfileId)> {
    let bad = || {
        ApiError::field(
            "invalid_cursor",
            "cursor",
            "not a cursor issued by this API",
        )
    };
    let (ms, id) = keyset::decode(token).ok_or_else(bad)?;
    let at = Utc.timestamp_millis_opt(ms).single().ok_or_else(bad)?;
    Ok((at, id))
}

pub async fn search(
    store: &dyn Backend,
    ws: WorkspaceId,
    q: Option<&str>,
    limit: u32,
    after: Option<(DateTime<Utc>, ProfileId)>,
) -> ApiResult<Vec<Profile>> {
    let q = q.map(str::trim).filter(|q| !q.is_empty());
    let policy = policy_of(store, ws).await?;
    let query = ProfileQuery {
        identifiers: q.map(|q| identifiers_in(q, &policy)).unwrap_or_default(),
        text: q.filter(|q| q.chars().count() >= 2).map(str::to_owned),
        limit,
        after,
    };
    Ok(store.list_profiles(ws, &query).await?)
}

/// One page of [`search`] from `cursor`, and the cursor of the next page
/// (none on the last).
pub(crate) async fn search_page(
    store: &dyn Backend,
    ws: WorkspaceId,
    q: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> ApiResult<(Vec<Profile>, Option<String>)> {
    let after = cursor.map(decode_cursor).transpose()?;
    let found = search(store, ws, q, limit, after).await?;
    let next_cursor = (found.len() == limit as usize)
        .then(|| found.last().map(encode_cursor))
        .flatten();
    Ok((found, next_cursor))
}

/// The views of `profiles`, in order.
pub(crate) async fn profile_views(
    store: &dyn Backend,
    ws: WorkspaceId,
    profiles: Vec<Profile>,
) -> ApiResult<Vec<ProfileView>> {
    let mut views = Vec::with_capacity(profiles.len());
    for profile in profiles {
        views.push(profile_view(store, ws, profile).await?);
    }
    Ok(views)
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
    let store = state.store.as_ref();
    let (found, next_cursor) = search_page(
        store,
        principal.workspace,
        params.q.as_deref(),
        limit,
        params.cursor.as_deref(),
    )
    .await?;
    let data = profile_views(store, principal.workspace, found).await?;
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
    let policy = policy_of(state.store.as_ref(), principal.workspace).await?;
    let identifier = Identifier::parse(kind, &params.value, &policy)
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
    let store = state.store.as_ref();
    let profile = service::live_profile(store, principal.workspace, id).await?;
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    let (events, next_cursor) = timeline_page(
        store,
        principal.workspace,
        profile.id,
        limit,
        params.cursor.as_deref(),
    )
    .await?;
    Ok(Json(Page {
        data: events.iter().map(EventView::from).collect(),
        next_cursor,
    }))
}

/// One page of a live profile's events, newest first, from `cursor`, and
/// the cursor of the next page (none on the last).
pub(crate) async fn timeline_page(
    store: &dyn Backend,
    ws: WorkspaceId,
    profile: ProfileId,
    limit: u32,
    cursor: Option<&str>,
) -> ApiResult<(Vec<StoredEvent>, Option<String>)> {
    let after_seq = cursor.map(Cursor::decode).transpose()?.map(|c| c.0);
    let query = EventQuery {
        limit,
        after_seq,
        ..EventQuery::default()
    };
    let events = store.profile_events(ws, profile, &query).await?;
    let next_cursor = (events.len() == limit as usize)
        .then(|| events.last().map(|e| Cursor(e.seq).encode()))
        .flatten();
    Ok((events, next_cursor))
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

/// Undoes merge `merge_id` of profile `id`; returns the profiles it left.
pub(crate) async fn undo_merge(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
    merge_id: Uuid,
) -> ApiResult<Vec<ProfileId>> {
    principal.require(Permission::WriteData)?;
    let policy = policy_of(state.store.as_ref(), principal.workspace).await?;
    let profiles = service::unmerge(
        state.store.as_ref(),
        principal.workspace,
        id,
        merge_id,
        &policy,
    )
    .await?;
    tracing::info!(actor = ?principal.actor, merge = %merge_id, "unmerged by hand");
    Ok(profiles)
}

pub async fn unmerge(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<UnmergeBody>,
) -> ApiResult<Json<Value>> {
    let profiles = undo_merge(&state, &principal, id, body.merge_id).await?;
    Ok(Json(json!({"profiles": profiles})))
}

#[derive(Debug, Deserialize)]
pub struct MergeBody {
    other_profile_id: ProfileId,
}

/// Merges profile `other` into `id` by hand, recorded with who did it.
pub(crate) async fn merge_profiles(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
    other: ProfileId,
) -> ApiResult<MergeRecord> {
    principal.require(Permission::WriteData)?;
    let actor = principal.email.clone().unwrap_or_else(|| "api key".into());
    service::merge_by_hand(state.store.as_ref(), principal.workspace, id, other, &actor).await
}

pub async fn merge(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<MergeBody>,
) -> ApiResult<Json<Value>> {
    let record = merge_profiles(&state, &principal, id, body.other_profile_id).await?;
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

/// Closes conflict `id` without merging.
pub(crate) async fn dismiss(state: &AppState, principal: &Principal, id: Uuid) -> ApiResult<()> {
    principal.require(Permission::WriteData)?;
    state
        .store
        .resolve_conflict(principal.workspace, id, Utc::now())
        .await?;
    Ok(())
}

pub async fn dismiss_conflict(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    dismiss(&state, &principal, id).await?;
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
    pub purpose: String,
    pub channel: String,
    pub granted: bool,
    pub source: String,
    pub wording: String,
}

/// Records a consent answer of profile `id` (its live profile).
pub(crate) async fn add_consent(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
    body: ConsentBody,
) -> ApiResult<ConsentRecord> {
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
    Ok(record)
}

pub async fn record_consent(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> ApiResult<(StatusCode, Json<ConsentRecord>)> {
    let record = add_consent(&state, &principal, id, body).await?;
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

/// Erases the person of profile `id`.
pub(crate) async fn erase_person(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    // Files first: should the erase below fail, a retry still finds the
    // rows that name them; the other way round, they would be orphaned.
    let store = state.store.as_ref();
    for file in store.person_attachments(principal.workspace, id).await? {
        state
            .blobs
            .delete(principal.workspace, &file.key)
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("erasing a file")))?;
    }
    service::erase(store, principal.workspace, id).await?;
    tracing::info!(actor = ?principal.actor, profile = %id, "profile erased");
    Ok(())
}

pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ProfileId>,
) -> ApiResult<Json<Value>> {
    erase_person(&state, &principal, id).await?;
    Ok(Json(json!({"erased": true})))
}
