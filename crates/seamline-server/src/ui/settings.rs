//! Workspace settings: members and their roles, write keys and API keys.
//!
//! A form that fails (a short password, a taken e-mail, a rule of the
//! role matrix) is answered with this page again, the error next to the
//! form and what was typed kept, never a JSON body. A form that succeeds
//! redirects back here with a short notice.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::{KeyId, MemberId, Role};
use seamline_store::{ApiKey, KeyKind, Member};
use serde::Deserialize;

use super::{
    csrf_field, form_error, layout, with_form_error, DoneParams, FormError, Nav, PlainForm,
    UiPrincipal,
};
use crate::api::keys::{
    create_key as api_create_key, revoke_key as api_revoke_key, CreatedKey, NewKeyBody,
};
use crate::api::members::{
    add_member as api_add_member, change_role as api_change_role, parse_role,
    remove_member as api_remove_member, NewMemberBody,
};
use crate::auth::{Actor, FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::provision::MIN_PASSWORD_CHARS;
use crate::AppState;

/// What the page shows besides the workspace's data.
#[derive(Default)]
struct Outcome<'a> {
    /// A key just made, shown in full this once.
    created: Option<&'a CreatedKey>,
    /// A notice after a form that worked.
    done: Option<Done>,
    /// A form that did not work, with what was typed.
    failed: Option<Failed>,
}

/// The form a [`FormError`] belongs to.
enum Failed {
    AddMember(FormError, MemberForm),
    /// Changing a member's role or removing them.
    Member(FormError),
    CreateKey(FormError, KeyForm),
    Key(FormError),
}

impl Failed {
    fn error(&self) -> &FormError {
        match self {
            Failed::AddMember(e, _)
            | Failed::Member(e)
            | Failed::CreateKey(e, _)
            | Failed::Key(e) => e,
        }
    }
}

/// Notices after a form worked: fixed texts, chosen by a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    MemberAdded,
    RoleChanged,
    MemberRemoved,
    KeyRevoked,
}

impl Done {
    const ALL: [Done; 4] = [
        Done::MemberAdded,
        Done::RoleChanged,
        Done::MemberRemoved,
        Done::KeyRevoked,
    ];

    /// The query value and the section the page scrolls to.
    fn name_and_section(self) -> (&'static str, &'static str) {
        match self {
            Done::MemberAdded => ("member-added", "members"),
            Done::RoleChanged => ("role-changed", "members"),
            Done::MemberRemoved => ("member-removed", "members"),
            Done::KeyRevoked => ("key-revoked", "keys"),
        }
    }

    fn parse(name: &str) -> Option<Done> {
        Done::ALL
            .into_iter()
            .find(|done| done.name_and_section().0 == name)
    }

    fn message(self) -> &'static str {
        match self {
            Done::MemberAdded => {
                "Member added. They can sign in with the e-mail and password you gave."
            }
            Done::RoleChanged => "Role changed.",
            Done::MemberRemoved => "Member removed. Their sessions have ended.",
            Done::KeyRevoked => "Key revoked. Calls made with it are now refused.",
        }
    }

    fn redirect(self) -> Redirect {
        let (done, section) = self.name_and_section();
        Redirect::to(&format!("/settings?done={done}#{section}"))
    }
}

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    let done = Done::parse(&params.done);
    render(
        &state,
        &principal,
        Outcome {
            done,
            ..Outcome::default()
        },
    )
    .await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    outcome: Outcome<'_>,
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
    let view = View { principal, manage };
    let failed = outcome.failed.as_ref();
    let content = html! { div.narrow {
        div.page-head { h1 { "Settings" } }
        @if let Some(done) = outcome.done {
            p.flash role="status" { (done.message()) }
        }
        @if let (Some(failed), false) = (failed, manage) {
            (form_error(Some(failed.error())))
        }
        @if let Some(created) = outcome.created { (new_key_notice(created)) }
        section.card aria-labelledby="workspace-title" {
            h2 #workspace-title { "Workspace" }
            dl.facts {
                dt { "Name" } dd { (workspace.as_ref().map(|w| w.name.as_str()).unwrap_or("")) }
                dt { "Workspace id" } dd.mono #workspace-id { (principal.workspace) }
                dt { "Identity rules" } dd { a href="/settings/identity" { "Limits, block list, shared devices, phone region" } }
                dt { "Teams" } dd { a href="/settings/teams" { "Members and capacity, routing, channels, hours, greeting, bot, satisfaction survey" } }
                dt { "Site widget" } dd { a href="/settings/widget" { "Chat, callback and messenger buttons, texts, embed code" } }
                dt { "Channels" } dd { a href="/settings/channels" { "Telegram bots: tokens, webhook URLs, connection checks" } }
                dt { "Call tracking" } dd { a href="/settings/call-tracking" { "Tracking numbers for site visitors and ad sources, calls by source" } }
                dt { "Webhooks" } dd { a href="/settings/webhooks" { "Conversation and message events sent to your systems, delivery log" } }
            }
        }
        section.card #members aria-labelledby="members-title" {
            div.card-head {
                h2 #members-title { "Members" }
                span.muted { (members.len()) @if members.len() == 1 { " member" } @else { " members" } }
            }
            @if !manage {
                p.muted { "Owners and admins add members, change roles and manage keys." }
            }
            @if let Some(Failed::Member(error)) = failed { (form_error(Some(error))) }
            div.table-wrap {
                table.members {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Role" }
                        th scope="col" { "Added" }
                        @if manage { th.actions scope="col" { span.sr-only { "Actions" } } }
                    } }
                    tbody { @for m in &members { (view.member_row(m)) } }
                }
            }
            @if manage {
                @match failed {
                    Some(Failed::AddMember(error, typed)) => (view.add_member_form(Some(error), typed)),
                    _ => (view.add_member_form(None, &MemberForm::default())),
                }
            }
        }
        @if manage {
            section.card #keys aria-labelledby="keys-title" {
                div.card-head { h2 #keys-title { "Keys" } }
                p.muted { "Write keys go into your site, app and POS: they can only send events. "
                    "Secret keys call the REST API as an admin, with "
                    code { "Authorization: Bearer sk_…" } "; keep them on servers." }
                @if let Some(Failed::Key(error)) = failed { (form_error(Some(error))) }
                @if keys.is_empty() {
                    p.empty-inline { "No keys yet." }
                } @else {
                    div.table-wrap {
                        table.keys {
                            thead { tr {
                                th scope="col" { "Name" } th scope="col" { "Kind" } th scope="col" { "Key" }
                                th scope="col" { "Created" } th scope="col" { "Status" }
                                th.actions scope="col" { span.sr-only { "Actions" } }
                            } }
                            tbody { @for k in &keys { (view.key_row(k)) } }
                        }
                    }
                }
                @match failed {
                    Some(Failed::CreateKey(error, typed)) => (view.create_key_form(Some(error), typed)),
                    _ => (view.create_key_form(None, &KeyForm::default())),
                }
            }
        }
    } };
    Ok(layout("Settings", principal, Nav::Settings, content))
}

fn new_key_notice(created: &CreatedKey) -> Markup {
    let secret = created.key.kind == KeyKind::Secret;
    html! {
        section.card.notice #new-key role="status" {
            h2 { "New " (created.key.kind.as_str()) " key: " (created.key.name) }
            p {
                @if secret { "Copy it now: it is shown only this once. Store it where your servers read secrets." }
                @else { "Paste it into your site, app or POS tracking setup. It stays listed below." }
            }
            div.secret-row {
                code.secret #new-key-secret { (created.secret) }
                button type="button" data-copy="#new-key-secret" { "Copy" }
            }
        }
    }
}

/// Renders rows and forms for one signed-in member.
struct View<'a> {
    principal: &'a Principal,
    manage: bool,
}

impl View<'_> {
    fn csrf_field(&self) -> Markup {
        csrf_field(self.principal)
    }

    /// The roles this member may give: only owners make owners.
    fn grantable(&self) -> impl Iterator<Item = Role> + '_ {
        let owners = self.principal.role.allows(Permission::ManageOwners);
        Role::ALL
            .into_iter()
            .filter(move |role| owners || *role != Role::Owner)
    }

    fn role_select(&self, id: &str, selected: &str, invalid: bool) -> Markup {
        html! {
            select #(id) name="role" aria-invalid=[invalid.then_some("true")] {
                @for role in self.grantable() {
                    option value=(role.as_str()) selected[role.as_str() == selected] { (role.as_str()) }
                }
            }
        }
    }

    fn member_row(&self, m: &Member) -> Markup {
        let me = self.principal.actor == Actor::Member(m.id);
        let may_touch = self.manage
            && (m.role != Role::Owner || self.principal.role.allows(Permission::ManageOwners));
        let role_id = format!("role-{}", m.id);
        html! {
            tr data-member=(m.id) {
                td { (m.name) @if me { " " span.tag { "you" } } }
                td { (m.email) }
                td { span class={ "role " (m.role.as_str()) } { (m.role.as_str()) } }
                td.date { (m.created_at.format("%Y-%m-%d")) }
                @if self.manage {
                    td.actions {
                        @if may_touch {
                            form.inline method="post" action=(format!("/settings/members/{}/role", m.id)) {
                                (self.csrf_field())
                                label.sr-only for=(role_id) { "Role of " (m.email) }
                                (self.role_select(&role_id, m.role.as_str(), false))
                                button type="submit" { "Change role" }
                            }
                            @if !me {
                                form.inline method="post" action=(format!("/settings/members/{}/remove", m.id))
                                    data-confirm=(format!("Remove {} from this workspace?", m.email)) {
                                    (self.csrf_field())
                                    button.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn add_member_form(&self, error: Option<&FormError>, typed: &MemberForm) -> Markup {
        let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
        let role = if typed.role.is_empty() {
            Role::Operator.as_str()
        } else {
            typed.role.as_str()
        };
        html! {
            form.stacked #add-member method="post" action="/settings/members" {
                h3 { "Add a member" }
                (form_error(error))
                (self.csrf_field())
                div.fields {
                    label.field {
                        span { "Name" }
                        input type="text" name="name" value=(typed.name) placeholder="Optional" autocomplete="off"
                            aria-invalid=[bad("name")] autofocus[bad("name").is_some()];
                    }
                    label.field {
                        span { "E-mail" }
                        input type="email" name="email" value=(typed.email) required autocomplete="off"
                            aria-invalid=[bad("email")] autofocus[bad("email").is_some()];
                    }
                    label.field {
                        span { "Initial password" }
                        input type="password" name="password" required minlength=(MIN_PASSWORD_CHARS)
                            placeholder={ (MIN_PASSWORD_CHARS) "+ characters" } autocomplete="new-password"
                            aria-invalid=[bad("password")] autofocus[bad("password").is_some()];
                    }
                    label.field {
                        span { "Role" }
                        (self.role_select("new-member-role", role, bad("role").is_some()))
                    }
                    button.primary type="submit" { "Add member" }
                }
            }
        }
    }

    fn key_row(&self, k: &ApiKey) -> Markup {
        let shown = k
            .plaintext
            .clone()
            .unwrap_or_else(|| format!("{}…", k.prefix));
        let revoked = k.revoked_at.is_some();
        html! {
            tr data-key=(k.id) class=[revoked.then_some("revoked-row")] {
                td { (k.name) }
                td { span class={ "kind " (k.kind.as_str()) } { (k.kind.as_str()) } }
                td.mono.key { (shown) }
                td.date { (k.created_at.format("%Y-%m-%d")) }
                td {
                    @if let Some(at) = k.revoked_at {
                        span.status.revoked title={ "Revoked " (at.format("%Y-%m-%d %H:%M UTC")) } { "revoked" }
                    } @else {
                        span.status.active { "active" }
                    }
                }
                td.actions {
                    @if !revoked {
                        form.inline method="post" action=(format!("/settings/keys/{}/revoke", k.id))
                            data-confirm=(format!("Revoke the key “{}”? Anything still using it stops working.", k.name)) {
                            (self.csrf_field())
                            button.danger type="submit" { "Revoke" }
                        }
                    }
                }
            }
        }
    }

    fn create_key_form(&self, error: Option<&FormError>, typed: &KeyForm) -> Markup {
        let kind = if typed.kind.is_empty() {
            "write"
        } else {
            typed.kind.as_str()
        };
        html! {
            form.stacked #create-key method="post" action="/settings/keys" {
                h3 { "Create a key" }
                (form_error(error))
                (self.csrf_field())
                div.fields {
                    label.field.wide {
                        span { "Name" }
                        input type="text" name="name" value=(typed.name) placeholder="e.g. Main site" autocomplete="off";
                    }
                    label.field {
                        span { "Kind" }
                        select name="kind" {
                            option value="write" selected[kind == "write"] { "Write key (tracking)" }
                            option value="secret" selected[kind == "secret"] { "Secret key (REST API)" }
                        }
                    }
                    button.primary type="submit" { "Create key" }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct MemberForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    role: String,
}

#[derive(Deserialize)]
pub struct RoleForm {
    csrf_token: String,
    role: String,
}

#[derive(Deserialize, Default)]
pub struct KeyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
}

has_csrf!(MemberForm, RoleForm, KeyForm);

/// The settings page again with `failed` shown, answered with its status;
/// errors that are not about the form keep their JSON answer.
async fn failed(
    state: &AppState,
    principal: &Principal,
    error: ApiError,
    failed: impl FnOnce(FormError) -> Failed,
) -> ApiResult<Response> {
    with_form_error(error, |error| {
        let outcome = Outcome {
            failed: Some(failed(error)),
            ..Outcome::default()
        };
        render(state, principal, outcome)
    })
    .await
}

pub async fn add_member(
    State(state): State<AppState>,
    FormCsrf(principal, mut form): FormCsrf<MemberForm>,
) -> ApiResult<Response> {
    let body = NewMemberBody {
        email: form.email.clone(),
        name: form.name.clone(),
        role: form.role.clone(),
        password: std::mem::take(&mut form.password),
    };
    match api_add_member(&state, &principal, &body).await {
        Ok(_) => Ok(Done::MemberAdded.redirect().into_response()),
        Err(e) => failed(&state, &principal, e, |e| Failed::AddMember(e, form)).await,
    }
}

pub async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<MemberId>,
    FormCsrf(principal, form): FormCsrf<RoleForm>,
) -> ApiResult<Response> {
    let changed = match parse_role(&form.role) {
        Ok(role) => api_change_role(&state, &principal, id, role).await,
        Err(e) => Err(e),
    };
    match changed {
        Ok(()) => Ok(Done::RoleChanged.redirect().into_response()),
        Err(e) => failed(&state, &principal, e, Failed::Member).await,
    }
}

pub async fn remove_member(
    State(state): State<AppState>,
    Path(id): Path<MemberId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match api_remove_member(&state, &principal, id).await {
        Ok(()) => Ok(Done::MemberRemoved.redirect().into_response()),
        Err(e) => failed(&state, &principal, e, Failed::Member).await,
    }
}

pub async fn create_key(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<KeyForm>,
) -> ApiResult<Response> {
    let body = NewKeyBody {
        kind: form.kind.clone(),
        name: form.name.clone(),
    };
    match api_create_key(&state, &principal, &body).await {
        Ok(created) => {
            let outcome = Outcome {
                created: Some(&created),
                ..Outcome::default()
            };
            Ok(render(&state, &principal, outcome).await?.into_response())
        }
        Err(e) => failed(&state, &principal, e, |e| Failed::CreateKey(e, form)).await,
    }
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path(id): Path<KeyId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match api_revoke_key(&state, &principal, id).await {
        Ok(()) => Ok(Done::KeyRevoked.redirect().into_response()),
        Err(e) => failed(&state, &principal, e, Failed::Key).await,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn notices_round_trip_through_their_names() {
        for done in Done::ALL {
            assert_eq!(Done::parse(done.name_and_section().0), Some(done));
        }
        assert_eq!(Done::parse("<script>"), None);
    }

    #[test]
    fn form_errors_read_as_sentences() {
        let short = FormError::from_api(ApiError::field(
            "too_short",
            "password",
            "use at least 8 characters",
        ))
        .expect("a form error");
        assert_eq!(short.status, StatusCode::BAD_REQUEST);
        assert_eq!(short.message, "Password: use at least 8 characters.");
        assert!(short.is_about("password"));

        let taken = FormError::from_api(ApiError::Conflict("member with this e-mail"))
            .expect("a form error");
        assert_eq!(taken.status, StatusCode::CONFLICT);
        assert_eq!(taken.message, "A member with this e-mail already exists.");
        assert!(taken.is_about("email"));

        let refused = FormError::from_api(ApiError::Forbidden("your role does not allow this"))
            .expect("a form error");
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert_eq!(refused.message, "Your role does not allow this.");

        let internal = FormError::from_api(ApiError::Internal(anyhow::anyhow!("disk full")));
        assert!(
            internal.is_err(),
            "internal errors are not shown on the form"
        );
    }
}
