//! `/api/v1/teams`: teams with their members, routing rule, channels,
//! business hours, greeting, out-of-hours reply and bot flow; and
//! `/api/v1/operators/{id}/capacity`.
//!
//! Everyone reads; owners, admins and supervisors change. A body is
//! checked whole before anything is written, and each error names its
//! field the way the body spells it (`hours.weekly[0].from`,
//! `bots.flow.steps.menu.buttons[1].next`).

use std::collections::{BTreeSet, HashMap};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use seamline_core::inbox::bot::{BotSetup, Flow, FlowDefinition, OutOfHours};
use seamline_core::inbox::hours::{BusinessHours, HoursConfig};
use seamline_core::inbox::routing::{Presence, Rule, TeamRouting};
use seamline_core::inbox::Channel;
use seamline_core::role::Permission;
use seamline_core::{FieldError, MemberId, TeamId, WorkspaceId};
use seamline_store::{Backend, StoreError, Team};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::inbox::DEFAULT_CAPACITY;
use crate::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_TEXT_CHARS: usize = 4096;
const MAX_CAPACITY: u32 = 100;

/// A team as the API and the settings page show it.
#[derive(Debug, Serialize)]
pub struct TeamView {
    pub id: TeamId,
    pub name: String,
    pub routing: TeamRouting,
    pub channels: BTreeSet<Channel>,
    pub hours: Option<HoursConfig>,
    pub bots: BotSetup,
    pub members: Vec<MemberView>,
    pub created_at: String,
}

#[derive(Debug, Serialize)]
pub struct MemberView {
    pub member_id: MemberId,
    pub name: String,
    pub email: String,
    pub presence: Presence,
    /// Most conversations at once (the workspace's default unless set).
    pub capacity: u32,
    pub load: u32,
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Vec<TeamView>>> {
    principal.require(Permission::ReadData)?;
    Ok(Json(
        team_views(state.store.as_ref(), principal.workspace).await?,
    ))
}

pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
) -> ApiResult<Json<TeamView>> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let team = load(store, principal.workspace, id).await?;
    Ok(Json(view(store, team).await?))
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<TeamView>)> {
    let team = save_team(&state, &principal, None, &body).await?;
    Ok((
        StatusCode::CREATED,
        Json(view(state.store.as_ref(), team).await?),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<TeamView>> {
    let team = save_team(&state, &principal, Some(id), &body).await?;
    Ok(Json(view(state.store.as_ref(), team).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<TeamId>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::ManageTeams)?;
    let store = state.store.as_ref();
    load(store, principal.workspace, id).await?;
    store.delete_team(principal.workspace, id).await?;
    tracing::info!(actor = ?principal.actor, team = %id, "team deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn add_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, member)): ApiPath<(TeamId, MemberId)>,
) -> ApiResult<Json<TeamView>> {
    principal.require(Permission::ManageTeams)?;
    let store = state.store.as_ref();
    let team = load(store, principal.workspace, id).await?;
    store
        .add_team_member(principal.workspace, id, member)
        .await?;
    Ok(Json(view(store, team).await?))
}

pub async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, member)): ApiPath<(TeamId, MemberId)>,
) -> ApiResult<Json<TeamView>> {
    principal.require(Permission::ManageTeams)?;
    let store = state.store.as_ref();
    let team = load(store, principal.workspace, id).await?;
    store
        .remove_team_member(principal.workspace, id, member)
        .await?;
    Ok(Json(view(store, team).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityBody {
    /// None: the workspace's default.
    pub capacity: Option<Value>,
}

/// Sets how many conversations an operator takes at once.
pub async fn set_capacity(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(member): ApiPath<MemberId>,
    ApiJson(body): ApiJson<CapacityBody>,
) -> ApiResult<StatusCode> {
    let capacity = match body.capacity {
        None | Some(Value::Null) => None,
        Some(value) => Some(capacity(&value)?),
    };
    change_capacity(&state, &principal, member, capacity).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn change_capacity(
    state: &AppState,
    principal: &Principal,
    member: MemberId,
    capacity: Option<u32>,
) -> ApiResult<()> {
    principal.require(Permission::ManageTeams)?;
    let store = state.store.as_ref();
    if store.operator(principal.workspace, member).await?.is_none() {
        return Err(ApiError::NotFound("member"));
    }
    Ok(store
        .set_capacity(principal.workspace, member, capacity)
        .await?)
}

/// 0 to 100 conversations.
pub(crate) fn capacity(value: &Value) -> Result<u32, FieldError> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n <= MAX_CAPACITY)
        .ok_or_else(|| {
            FieldError::new(
                "invalid_capacity",
                "capacity",
                format!("a whole number from 0 to {MAX_CAPACITY}"),
            )
        })
}

/// Creates a team (`id` none) or changes one with the fields `body` has.
pub(crate) async fn save_team(
    state: &AppState,
    principal: &Principal,
    id: Option<TeamId>,
    body: &Value,
) -> ApiResult<Team> {
    principal.require(Permission::ManageTeams)?;
    let (store, ws) = (state.store.as_ref(), principal.workspace);
    let fields = body
        .as_object()
        .ok_or_else(|| ApiError::field("invalid_json", "", "expected a JSON object"))?;
    let mut team = match id {
        Some(id) => load(store, ws, id).await?,
        None => blank(ws, fields)?,
    };
    apply(&mut team, fields)?;
    let others = store.list_teams(ws).await?;
    check_unique(&team, &others)?;
    let saved = match id {
        Some(_) => store.update_team(&team).await,
        None => store.create_team(&team).await,
    };
    saved.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::field("taken", "name", "another team has this name"),
        other => other.into(),
    })?;
    tracing::info!(actor = ?principal.actor, team = %team.id, "team saved");
    Ok(team)
}

fn blank(ws: WorkspaceId, fields: &Map<String, Value>) -> ApiResult<Team> {
    if !fields.contains_key("name") {
        return Err(ApiError::field("required", "name", "a team needs a name"));
    }
    Ok(Team {
        id: TeamId(Uuid::now_v7()),
        workspace_id: ws,
        name: String::new(),
        routing: TeamRouting::default(),
        hours: None,
        channels: BTreeSet::new(),
        bots: BotSetup::default(),
        created_at: Utc::now(),
    })
}

/// Writes the fields present in `fields` onto `team`, each checked.
fn apply(team: &mut Team, fields: &Map<String, Value>) -> Result<(), FieldError> {
    for (key, value) in fields {
        match key.as_str() {
            "name" => team.name = name(value)?,
            "routing" => team.routing = routing(value)?,
            "channels" => team.channels = channels(value)?,
            "hours" => team.hours = hours(value)?,
            "bots" => team.bots = bots(value)?,
            other => {
                return Err(FieldError::new(
                    "unknown_field",
                    other,
                    "not a team setting",
                ))
            }
        }
    }
    Ok(())
}

fn name(value: &Value) -> Result<String, FieldError> {
    let name = value.as_str().map(str::trim).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(FieldError::new(
            "invalid_name",
            "name",
            format!("1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name.to_owned())
}

fn routing(value: &Value) -> Result<TeamRouting, FieldError> {
    let mut routing = TeamRouting::default();
    let fields = value
        .as_object()
        .ok_or_else(|| FieldError::new("invalid_routing", "routing", "expected an object"))?;
    for (key, value) in fields {
        match key.as_str() {
            "rule" => {
                routing.rule = serde_json::from_value::<Rule>(value.clone()).map_err(|_| {
                    FieldError::new(
                        "invalid_rule",
                        "routing.rule",
                        "expected round_robin or least_loaded",
                    )
                })?
            }
            "sticky" => {
                routing.sticky = value.as_bool().ok_or_else(|| {
                    FieldError::new("invalid_value", "routing.sticky", "expected true or false")
                })?
            }
            other => {
                return Err(FieldError::new(
                    "unknown_field",
                    format!("routing.{other}"),
                    "not a routing setting",
                ))
            }
        }
    }
    Ok(routing)
}

fn channels(value: &Value) -> Result<BTreeSet<Channel>, FieldError> {
    let list = value
        .as_array()
        .ok_or_else(|| FieldError::new("invalid_channels", "channels", "expected a list"))?;
    let mut channels = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let channel = item
            .as_str()
            .and_then(|s| s.parse::<Channel>().ok())
            .filter(|c| c.is_customer_facing())
            .ok_or_else(|| {
                FieldError::new(
                    "invalid_channel",
                    format!("channels[{i}]"),
                    "not a customer channel (web_chat, telegram, whatsapp, …)",
                )
            })?;
        channels.insert(channel);
    }
    Ok(channels)
}

fn hours(value: &Value) -> Result<Option<BusinessHours>, FieldError> {
    if value.is_null() {
        return Ok(None);
    }
    let config: HoursConfig = serde_json::from_value(value.clone())
        .map_err(|e| FieldError::new("invalid_hours", "hours", e.to_string()))?;
    BusinessHours::new(config)
        .map(Some)
        .map_err(|e| e.within("hours"))
}

fn bots(value: &Value) -> Result<BotSetup, FieldError> {
    let fields = value
        .as_object()
        .ok_or_else(|| FieldError::new("invalid_bots", "bots", "expected an object"))?;
    let mut setup = BotSetup::default();
    for (key, value) in fields {
        match key.as_str() {
            "greeting" => setup.greeting = text(value, "bots.greeting")?,
            "flow" => setup.flow = optional_flow(value, "bots.flow")?,
            "out_of_hours" => setup.out_of_hours = out_of_hours(value)?,
            other => {
                return Err(FieldError::new(
                    "unknown_field",
                    format!("bots.{other}"),
                    "not a bot setting",
                ))
            }
        }
    }
    Ok(setup)
}

fn out_of_hours(value: &Value) -> Result<Option<OutOfHours>, FieldError> {
    const AT: &str = "bots.out_of_hours";
    if value.is_null() {
        return Ok(None);
    }
    match value.get("type").and_then(Value::as_str) {
        Some("message") => {
            let field = format!("{AT}.text");
            let text = text(value.get("text").unwrap_or(&Value::Null), &field)?
                .ok_or_else(|| FieldError::new("required", field, "the reply needs text"))?;
            Ok(Some(OutOfHours::Message { text }))
        }
        Some("flow") => {
            let field = format!("{AT}.flow");
            let flow = optional_flow(value.get("flow").unwrap_or(&Value::Null), &field)?
                .ok_or_else(|| FieldError::new("required", field, "a flow is needed"))?;
            Ok(Some(OutOfHours::Flow { flow }))
        }
        _ => Err(FieldError::new(
            "invalid_type",
            format!("{AT}.type"),
            "expected message or flow",
        )),
    }
}

/// A flow given as JSON (an object, or a string of JSON as a form sends it).
fn optional_flow(value: &Value, at: &str) -> Result<Option<Flow>, FieldError> {
    let parsed = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => serde_json::from_str::<FlowDefinition>(s),
        other => serde_json::from_value::<FlowDefinition>(other.clone()),
    };
    let definition = parsed.map_err(|e| FieldError::new("invalid_flow", at, e.to_string()))?;
    Flow::new(definition).map(Some).map_err(|e| e.within(at))
}

/// Optional text up to 4096 characters; blank is none.
fn text(value: &Value, field: &str) -> Result<Option<String>, FieldError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim(),
        _ => return Err(FieldError::new("invalid_text", field, "expected text")),
    };
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(FieldError::new(
            "too_long",
            field,
            format!("at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

/// Names are unique, and a channel brings its new conversations to one team.
fn check_unique(team: &Team, others: &[Team]) -> Result<(), FieldError> {
    let others = || others.iter().filter(|o| o.id != team.id);
    if others().any(|o| o.name.to_lowercase() == team.name.to_lowercase()) {
        return Err(FieldError::new(
            "taken",
            "name",
            "another team has this name",
        ));
    }
    for (i, channel) in team.channels.iter().enumerate() {
        if let Some(other) = others().find(|o| o.channels.contains(channel)) {
            return Err(FieldError::new(
                "channel_taken",
                format!("channels[{i}]"),
                format!(
                    "{} already goes to the team {}",
                    channel.as_str(),
                    other.name
                ),
            ));
        }
    }
    Ok(())
}

async fn load(store: &dyn Backend, ws: WorkspaceId, id: TeamId) -> ApiResult<Team> {
    store.team(ws, id).await?.ok_or(ApiError::NotFound("team"))
}

pub(crate) async fn team_views(store: &dyn Backend, ws: WorkspaceId) -> ApiResult<Vec<TeamView>> {
    let mut views = Vec::new();
    for team in store.list_teams(ws).await? {
        views.push(view(store, team).await?);
    }
    Ok(views)
}

async fn view(store: &dyn Backend, team: Team) -> ApiResult<TeamView> {
    let people: HashMap<MemberId, (String, String)> = store
        .list_members(team.workspace_id)
        .await?
        .into_iter()
        .map(|m| (m.id, (m.name, m.email)))
        .collect();
    let members = store
        .operators(team.workspace_id, Some(team.id))
        .await?
        .into_iter()
        .map(|o| {
            let (name, email) = people.get(&o.member_id).cloned().unwrap_or_default();
            MemberView {
                member_id: o.member_id,
                name,
                email,
                presence: o.presence,
                capacity: o.capacity.unwrap_or(DEFAULT_CAPACITY),
                load: o.load,
            }
        })
        .collect();
    Ok(TeamView {
        id: team.id,
        name: team.name,
        routing: team.routing,
        channels: team.channels,
        hours: team.hours.map(|h| h.config().clone()),
        bots: team.bots,
        members,
        created_at: team.created_at.to_rfc3339(),
    })
}
