//! Workspace settings: members and their roles, write keys and API keys.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::{KeyId, MemberId, Role};
use seamline_store::{ApiKey, KeyKind, Member};
use serde::Deserialize;

use super::{layout, Nav, UiPrincipal};
use crate::api::keys::{
    create_key as api_create_key, revoke_key as api_revoke_key, CreatedKey, NewKeyBody,
};
use crate::api::members::{
    add_member as api_add_member, change_role as api_change_role, parse_role,
    remove_member as api_remove_member, NewMemberBody,
};
use crate::auth::{FormCsrf, HasCsrf, Principal};
use crate::error::ApiResult;
use crate::AppState;

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
) -> ApiResult<Markup> {
    render(&state, &principal, None).await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    created: Option<&CreatedKey>,
) -> ApiResult<Markup> {
    principal.require(Permission::ReadData)?;
    let workspace = state.store.workspace(principal.workspace).await?;
    let members = state.store.list_members(principal.workspace).await?;
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let keys = if manage {
        state.store.list_keys(principal.workspace).await?
    } else {
        Vec::new()
    };
    let csrf = principal.csrf_token.clone().unwrap_or_default();
    let content = html! {
        div.page-head { h1 { "Settings" } }
        section.card {
            h2 { "Workspace" }
            dl.facts {
                dt { "Name" } dd { (workspace.as_ref().map(|w| w.name.as_str()).unwrap_or("")) }
                dt { "Id" } dd.mono #workspace-id { (principal.workspace) }
            }
        }
        @if let Some(created) = created {
            section.card.notice #new-key role="status" {
                h2 { "New " (created.key.kind.as_str()) " key" }
                p { "Copy it now" @if created.key.kind == KeyKind::Secret { ": it will not be shown again" } "." }
                code.secret #new-key-secret { (created.secret) }
            }
        }
        section.card #members {
            h2 { "Members" }
            table {
                thead { tr { th { "Name" } th { "E-mail" } th { "Role" } @if manage { th {} } } }
                tbody { @for m in &members { (member_row(m, manage, &csrf)) } }
            }
            @if manage {
                form.inline #add-member method="post" action="/settings/members" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    input type="text" name="name" placeholder="Name";
                    input type="email" name="email" placeholder="E-mail" required;
                    input type="password" name="password" placeholder="Initial password (8+)" required minlength="8";
                    (role_select(Role::Operator))
                    button.primary type="submit" { "Add member" }
                }
            }
        }
        @if manage {
            section.card #keys {
                h2 { "Keys" }
                p.muted { "Write keys go into your site, app and POS (tracking only). Secret keys are for the REST API: "
                    code { "Authorization: Bearer sk_…" } "." }
                table {
                    thead { tr { th { "Name" } th { "Kind" } th { "Key" } th { "Created" } th { "Status" } th {} } }
                    tbody { @for k in &keys { (key_row(k, &csrf)) } }
                }
                form.inline #create-key method="post" action="/settings/keys" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    input type="text" name="name" placeholder="Key name, e.g. Main site";
                    select name="kind" aria-label="Key kind" { option value="write" { "Write key" } option value="secret" { "Secret API key" } }
                    button.primary type="submit" { "Create key" }
                }
            }
        }
    };
    Ok(layout("Settings", principal, Nav::Settings, content))
}

fn role_select(selected: Role) -> Markup {
    html! {
        select name="role" aria-label="Role" {
            @for role in Role::ALL { option value=(role.as_str()) selected[role == selected] { (role.as_str()) } }
        }
    }
}

fn member_row(m: &Member, manage: bool, csrf: &str) -> Markup {
    html! {
        tr data-member=(m.id) {
            td { (m.name) } td { (m.email) }
            td { span.role { (m.role.as_str()) } }
            @if manage {
                td.actions {
                    form.inline method="post" action=(format!("/settings/members/{}/role", m.id)) {
                        input type="hidden" name="csrf_token" value=(csrf);
                        (role_select(m.role))
                        button type="submit" { "Change" }
                    }
                    form.inline method="post" action=(format!("/settings/members/{}/remove", m.id)) {
                        input type="hidden" name="csrf_token" value=(csrf);
                        button.danger type="submit" { "Remove" }
                    }
                }
            }
        }
    }
}

fn key_row(k: &ApiKey, csrf: &str) -> Markup {
    let shown = k
        .plaintext
        .clone()
        .unwrap_or_else(|| format!("{}…", k.prefix));
    html! {
        tr data-key=(k.id) {
            td { (k.name) } td { (k.kind.as_str()) } td.mono { (shown) }
            td { (k.created_at.format("%Y-%m-%d")) }
            td { @if k.revoked_at.is_some() { span.revoked { "revoked" } } @else { span.active { "active" } } }
            td { @if k.revoked_at.is_none() {
                form.inline method="post" action=(format!("/settings/keys/{}/revoke", k.id)) {
                    input type="hidden" name="csrf_token" value=(csrf);
                    button.danger type="submit" { "Revoke" }
                }
            } }
        }
    }
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    email: String,
    password: String,
    role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf_token: String,
    role: String,
}

#[derive(Deserialize)]
pub struct KeyForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    kind: String,
}

#[derive(Deserialize)]
pub struct PlainForm {
    csrf_token: String,
}

macro_rules! has_csrf {
    ($($form:ty),*) => {$(
        impl HasCsrf for $form {
            fn csrf_token(&self) -> &str { &self.csrf_token }
        }
    )*};
}
has_csrf!(MemberForm, RoleForm, KeyForm, PlainForm);

pub async fn add_member(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<MemberForm>,
) -> ApiResult<Redirect> {
    let body = NewMemberBody {
        email: form.email,
        name: form.name,
        role: form.role,
        password: form.password,
    };
    api_add_member(&state, &principal, &body).await?;
    Ok(Redirect::to("/settings"))
}

pub async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<MemberId>,
    FormCsrf(principal, form): FormCsrf<RoleForm>,
) -> ApiResult<Redirect> {
    api_change_role(&state, &principal, id, parse_role(&form.role)?).await?;
    Ok(Redirect::to("/settings"))
}

pub async fn remove_member(
    State(state): State<AppState>,
    Path(id): Path<MemberId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Redirect> {
    api_remove_member(&state, &principal, id).await?;
    Ok(Redirect::to("/settings"))
}

pub async fn create_key(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<KeyForm>,
) -> ApiResult<Response> {
    let created = api_create_key(
        &state,
        &principal,
        &NewKeyBody {
            kind: form.kind,
            name: form.name,
        },
    )
    .await?;
    Ok(render(&state, &principal, Some(&created))
        .await?
        .into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Redirect> {
    api_revoke_key(&state, &principal, id).await?;
    Ok(Redirect::to("/settings"))
}
