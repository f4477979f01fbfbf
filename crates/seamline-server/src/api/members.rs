//! The workspace and its members.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use seamline_core::role::Permission;
use seamline_core::{MemberId, Role};
use seamline_store::{Member, Workspace};
use serde::Deserialize;

use crate::auth::{Actor, Principal};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::provision::new_member;
use crate::views::Page;
use crate::AppState;

pub async fn workspace(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Workspace>> {
    principal.require(Permission::ReadData)?;
    let found = state.store.workspace(principal.workspace).await?;
    found.map(Json).ok_or(ApiError::NotFound("workspace"))
}

pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> ApiResult<Json<Page<Member>>> {
    principal.require(Permission::ReadData)?;
    let members = state.store.list_members(principal.workspace).await?;
    Ok(Json(Page {
        data: members,
        next_cursor: None,
    }))
}

#[derive(Debug, Deserialize)]
pub struct NewMemberBody {
    pub email: String,
    #[serde(default)]
    pub name: String,
    pub role: String,
    pub password: String,
}

pub fn parse_role(role: &str) -> ApiResult<Role> {
    role.parse::<Role>()
        .map_err(|e| ApiError::field("invalid_value", "role", e.to_string()))
}

/// Checks that `principal` may give `role` (only owners make owners).
pub fn may_grant(principal: &Principal, role: Role) -> ApiResult<()> {
    principal.require(Permission::ManageWorkspace)?;
    if role == Role::Owner {
        principal.require(Permission::ManageOwners)?;
    }
    Ok(())
}

pub async fn add_member(
    state: &AppState,
    principal: &Principal,
    body: &NewMemberBody,
) -> ApiResult<Member> {
    let role = parse_role(&body.role)?;
    may_grant(principal, role)?;
    let member = new_member(
        principal.workspace,
        &body.email,
        &body.name,
        role,
        &body.password,
    )?;
    Ok(state.store.create_member(member).await?)
}

pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewMemberBody>,
) -> ApiResult<(StatusCode, Json<Member>)> {
    Ok((
        StatusCode::CREATED,
        Json(add_member(&state, &principal, &body).await?),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RoleBody {
    pub role: String,
}

/// Changes a member's role. Owners are changed only by owners, and the
/// last owner cannot stop being one.
pub async fn change_role(
    state: &AppState,
    principal: &Principal,
    id: MemberId,
    role: Role,
) -> ApiResult<()> {
    let target = target_member(state, principal, id).await?;
    may_grant(principal, role)?;
    if target.role == Role::Owner && role != Role::Owner {
        keep_an_owner(state, principal).await?;
    }
    Ok(state
        .store
        .set_member_role(principal.workspace, id, role)
        .await?)
}

pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<MemberId>,
    ApiJson(body): ApiJson<RoleBody>,
) -> ApiResult<StatusCode> {
    change_role(&state, &principal, id, parse_role(&body.role)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_member(state: &AppState, principal: &Principal, id: MemberId) -> ApiResult<()> {
    let target = target_member(state, principal, id).await?;
    if principal.actor == Actor::Member(id) {
        return Err(ApiError::Forbidden("you cannot remove yourself"));
    }
    if target.role == Role::Owner {
        keep_an_owner(state, principal).await?;
    }
    Ok(state.store.delete_member(principal.workspace, id).await?)
}

pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<MemberId>,
) -> ApiResult<StatusCode> {
    remove_member(&state, &principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The member `id` of the caller's workspace, if the caller may manage them.
async fn target_member(state: &AppState, principal: &Principal, id: MemberId) -> ApiResult<Member> {
    principal.require(Permission::ManageWorkspace)?;
    let target = state
        .store
        .member(principal.workspace, id)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    if target.role == Role::Owner {
        principal.require(Permission::ManageOwners)?;
    }
    Ok(target)
}

async fn keep_an_owner(state: &AppState, principal: &Principal) -> ApiResult<()> {
    let members = state.store.list_members(principal.workspace).await?;
    if members.iter().filter(|m| m.role == Role::Owner).count() <= 1 {
        return Err(ApiError::Forbidden("a workspace keeps at least one owner"));
    }
    Ok(())
}
