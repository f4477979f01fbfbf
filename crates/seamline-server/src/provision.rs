//! Creating workspaces and members: shared by `seamline init`, the first
//! start of `serve`, the demo, the settings page and the tests.

use chrono::Utc;
use seamline_core::{MemberId, Role, WorkspaceId};
use seamline_store::{KeyKind, Member, Store, Workspace, WorkspaceSetup};
use uuid::Uuid;

use crate::auth::{hash_password, new_key};
use crate::error::{ApiError, ApiResult};

pub const MIN_PASSWORD_CHARS: usize = 8;

/// A new workspace with the secrets that are shown only now.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub workspace: Workspace,
    pub owner: Member,
    pub write_key: String,
    pub api_key: String,
}

pub async fn create_workspace(
    store: &dyn Store,
    name: &str,
    email: &str,
    password: &str,
) -> ApiResult<Provisioned> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::field(
            "required",
            "workspace",
            "a workspace needs a name",
        ));
    }
    let workspace = Workspace {
        id: WorkspaceId(Uuid::now_v7()),
        name: name.to_owned(),
        created_at: Utc::now(),
    };
    let owner = new_member(workspace.id, email, "", Role::Owner, password)?;
    let write = new_key(workspace.id, KeyKind::Write, "Default write key");
    let secret = new_key(workspace.id, KeyKind::Secret, "Default API key");
    let setup = WorkspaceSetup {
        workspace: workspace.clone(),
        owner: owner.clone(),
        keys: vec![write.record, secret.record],
    };
    store.create_workspace(setup).await?;
    Ok(Provisioned {
        workspace,
        owner,
        write_key: write.secret,
        api_key: secret.secret,
    })
}

/// A validated member with a hashed password, not yet stored.
pub fn new_member(
    workspace: WorkspaceId,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> ApiResult<Member> {
    let email = normalise_email(email)?;
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::field(
            "too_short",
            "password",
            format!("use at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    let name = match name.trim() {
        "" => email.split('@').next().unwrap_or_default().to_owned(),
        given => given.to_owned(),
    };
    Ok(Member {
        id: MemberId(Uuid::now_v7()),
        workspace_id: workspace,
        email,
        name,
        role,
        password_hash: hash_password(password)?,
        created_at: Utc::now(),
    })
}

pub fn normalise_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !email.contains(char::is_whitespace)
    });
    if !valid {
        return Err(ApiError::field(
            "invalid_email",
            "email",
            "not an e-mail address",
        ));
    }
    Ok(email)
}
