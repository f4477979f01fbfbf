//! Call tracking (dynamic number insertion): the workspace's tracking
//! numbers and settings, the site script's number ([`dni`]:
//! `POST /widget/v1/number`), and calls to those numbers tied to the
//! visitor and ad source that held them ([`attribute`]). The rules are
//! `seamline_core::calltracking`; the pool is reserved in one store
//! transaction. The REST routes (`api::call_tracking`) and the settings
//! page (`ui::call_tracking`) share the operations here, which check roles.

pub mod attribute;
pub mod dni;

use chrono::{DateTime, Utc};
use seamline_core::calltracking::{
    describe_source, display, tracking_number, NumberKind, Settings, SourceBinding,
};
use seamline_core::role::Permission;
use seamline_core::WorkspaceId;
use seamline_store::{Backend, StoreResult, TrackingNumber};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::identity::policy_of;
use crate::AppState;

pub use attribute::CallStart;

/// The workspace setting the settings are kept under.
const SETTING: &str = "call_tracking";

/// The workspace's settings; defaults until someone saves them.
pub async fn settings_of(store: &dyn Backend, ws: WorkspaceId) -> StoreResult<Settings> {
    Ok(store
        .setting(ws, SETTING)
        .await?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

/// Replaces the settings from `body` (owners and admins).
pub(crate) async fn save_settings(
    state: &AppState,
    principal: &Principal,
    body: &Value,
) -> ApiResult<Settings> {
    principal.require(Permission::ManageWorkspace)?;
    let store = state.store.as_ref();
    let policy = policy_of(store, principal.workspace).await?;
    let settings = Settings::parse(body, &policy)?;
    let value = serde_json::to_value(&settings)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("call tracking settings")))?;
    store
        .put_setting(principal.workspace, SETTING, &value, Utc::now())
        .await?;
    tracing::info!(actor = ?principal.actor, "call tracking settings changed");
    Ok(settings)
}

/// A number to add: `kind` is `pool` (the default) or `static`, which
/// needs its `source`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NewNumber {
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<Value>,
}

pub(crate) async fn add_number(
    state: &AppState,
    principal: &Principal,
    new: &NewNumber,
) -> ApiResult<TrackingNumber> {
    principal.require(Permission::ManageWorkspace)?;
    let store = state.store.as_ref();
    let policy = policy_of(store, principal.workspace).await?;
    let number = tracking_number(&new.number, &policy, "number")?;
    let kind = match new.kind.as_deref().map(str::trim) {
        None | Some("") => NumberKind::Pool,
        Some(text) => NumberKind::parse(text)
            .ok_or_else(|| ApiError::field("invalid_value", "kind", "pool or static"))?,
    };
    let source = match (kind, &new.source) {
        (NumberKind::Static, Some(value)) => Some(SourceBinding::parse(value, "source")?),
        (NumberKind::Static, None) => {
            return Err(ApiError::field(
                "required",
                "source.utm_source",
                "a static number stands for a source: give utm_source or a label",
            ))
        }
        (NumberKind::Pool, Some(v)) if !v.is_null() => {
            return Err(ApiError::field(
                "not_allowed",
                "source",
                "pool numbers take their source from the visitor: leave it out",
            ))
        }
        (NumberKind::Pool, _) => None,
    };
    let stored = TrackingNumber {
        id: Uuid::now_v7(),
        workspace_id: principal.workspace,
        number,
        kind,
        source,
        created_at: Utc::now(),
    };
    store.add_tracking_number(&stored).await?;
    tracing::info!(actor = ?principal.actor, kind = kind.as_str(), "tracking number added");
    Ok(stored)
}

pub(crate) async fn remove_number(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    state
        .store
        .delete_tracking_number(principal.workspace, id)
        .await?;
    tracing::info!(actor = ?principal.actor, "tracking number removed");
    Ok(())
}

/// Who holds a pool number now.
#[derive(Debug, Clone, Serialize)]
pub struct Holder {
    pub anonymous_id: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub source: String,
}

/// A number as the API and the page show it.
#[derive(Debug, Clone, Serialize)]
pub struct NumberView {
    pub id: Uuid,
    pub number: String,
    pub display: String,
    pub kind: NumberKind,
    /// `free` or `held` (pool), `static`.
    pub state: &'static str,
    pub held_by: Option<Holder>,
    /// A static number's source.
    pub source: Option<SourceBinding>,
    pub source_label: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub(crate) async fn numbers(state: &AppState, principal: &Principal) -> ApiResult<Vec<NumberView>> {
    principal.require(Permission::ReadData)?;
    let (store, ws, now) = (state.store.as_ref(), principal.workspace, Utc::now());
    let active = store.active_reservations(ws, now).await?;
    Ok(store
        .tracking_numbers(ws)
        .await?
        .into_iter()
        .map(|n| {
            let held_by = active
                .iter()
                .find(|r| r.number_id == n.id && n.kind == NumberKind::Pool)
                .map(|r| Holder {
                    anonymous_id: r.anonymous_id.clone(),
                    since: r.held_from,
                    until: r.expires_at,
                    source: describe_source(&r.source),
                });
            let state = match (n.kind, &held_by) {
                (NumberKind::Static, _) => "static",
                (NumberKind::Pool, Some(_)) => "held",
                (NumberKind::Pool, None) => "free",
            };
            NumberView {
                id: n.id,
                display: display(&n.number),
                number: n.number,
                kind: n.kind,
                state,
                held_by,
                source_label: n.source.as_ref().map(SourceBinding::describe),
                source: n.source,
                created_at: n.created_at,
            }
        })
        .collect())
}

/// Calls by source and pool misses over a period, with the pool's size.
#[derive(Debug, Clone, Serialize)]
pub struct StatsView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub calls: u64,
    pub calls_by_source: Vec<SourceCalls>,
    /// Page views shown the default number because the pool was full.
    pub misses: u64,
    pub pool_size: usize,
    pub pool_held: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceCalls {
    pub source: String,
    pub calls: u64,
}

pub(crate) async fn stats(
    state: &AppState,
    principal: &Principal,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> ApiResult<StatsView> {
    principal.require(Permission::ReadData)?;
    let (store, ws) = (state.store.as_ref(), principal.workspace);
    let figures = store.call_tracking_stats(ws, from, to).await?;
    let numbers = numbers(state, principal).await?;
    let pool = numbers.iter().filter(|n| n.kind == NumberKind::Pool);
    Ok(StatsView {
        from,
        to,
        calls: figures.calls_by_source.iter().map(|(_, n)| n).sum(),
        calls_by_source: figures
            .calls_by_source
            .into_iter()
            .map(|(source, calls)| SourceCalls { source, calls })
            .collect(),
        misses: figures.misses,
        pool_size: pool.clone().count(),
        pool_held: pool.filter(|n| n.state == "held").count(),
    })
}
