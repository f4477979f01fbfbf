//! The authenticated caller of a route, and the workspace it acts in.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::Form;
use axum_extra::extract::CookieJar;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::Utc;
use seamline_core::role::Permission;
use seamline_core::{KeyId, MemberId, Role, WorkspaceId};
use seamline_store::KeyKind;
use serde::de::DeserializeOwned;

use super::hash_secret;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub const SESSION_COOKIE: &str = "seamline_session";
const CSRF_HEADER: &str = "x-csrf-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Member(MemberId),
    Key(KeyId),
}

/// A caller with a workspace and a role. Secret API keys act as admins.
#[derive(Debug, Clone)]
pub struct Principal {
    pub workspace: WorkspaceId,
    pub role: Role,
    pub actor: Actor,
    /// The session's CSRF token; `None` for key-authenticated calls.
    pub csrf_token: Option<String>,
    pub email: Option<String>,
}

impl Principal {
    /// Refuses unless the caller's role allows `permission`.
    pub fn require(&self, permission: Permission) -> ApiResult<()> {
        if self.role.allows(permission) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("your role does not allow this"))
        }
    }

    /// From a bearer secret key or a session cookie; CSRF not yet checked.
    async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Self> {
        if let Some(secret) = bearer(&parts.headers) {
            let key = state
                .store
                .key_by_hash(KeyKind::Secret, &hash_secret(secret))
                .await?
                .ok_or(ApiError::Unauthenticated("unknown or revoked API key"))?;
            return Ok(Principal {
                workspace: key.workspace_id,
                role: Role::Admin,
                actor: Actor::Key(key.id),
                csrf_token: None,
                email: None,
            });
        }
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(SESSION_COOKIE)
            .ok_or(ApiError::Unauthenticated("sign in or send an API key"))?;
        Self::from_session(state, token.value()).await
    }

    async fn from_session(state: &AppState, token: &str) -> ApiResult<Self> {
        let expired = ApiError::Unauthenticated("the session has ended; sign in again");
        let session = state
            .store
            .session(&hash_secret(token), Utc::now())
            .await?
            .ok_or(expired)?;
        let member = state
            .store
            .member(session.workspace_id, session.member_id)
            .await?
            .ok_or(ApiError::Unauthenticated("the member no longer exists"))?;
        Ok(Principal {
            workspace: member.workspace_id,
            role: member.role,
            actor: Actor::Member(member.id),
            csrf_token: Some(session.csrf_token),
            email: Some(member.email),
        })
    }

    fn check_csrf(&self, presented: Option<&str>) -> ApiResult<()> {
        match &self.csrf_token {
            None => Ok(()),
            Some(expected) if presented.is_some_and(|p| constant_time_eq(p, expected)) => Ok(()),
            Some(_) => Err(ApiError::Forbidden("missing or wrong CSRF token")),
        }
    }
}

/// JSON and other API routes: session callers must send `X-CSRF-Token` on
/// every state-changing request (HTML forms use [`FormCsrf`] instead).
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let principal = Self::authenticate(parts, state).await?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let header = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            principal.check_csrf(header)?;
        }
        Ok(principal)
    }
}

/// Form data that must carry the session's token in a `csrf_token` field.
pub trait HasCsrf {
    fn csrf_token(&self) -> &str;
}

/// An HTML form post by a signed-in member, CSRF-checked.
pub struct FormCsrf<T>(pub Principal, pub T);

impl<T> FromRequest<AppState> for FormCsrf<T>
where
    T: DeserializeOwned + HasCsrf + Send,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> ApiResult<Self> {
        let (parts, body) = request.into_parts();
        let principal = Principal::authenticate(&parts, state).await?;
        let request = Request::from_parts(parts, body);
        let Form(form) = Form::<T>::from_request(request, state)
            .await
            .map_err(|e| ApiError::field("invalid_form", "form", e.body_text()))?;
        principal.check_csrf(Some(form.csrf_token()))?;
        Ok(FormCsrf(principal, form))
    }
}

/// The workspace of a tracking call, from its write key: HTTP Basic user
/// name (with or without the trailing colon), `X-Write-Key`, or `writeKey`
/// in the body.
pub struct WriteKeyWorkspace;

impl WriteKeyWorkspace {
    pub async fn resolve(
        state: &AppState,
        headers: &HeaderMap,
        body_key: Option<&str>,
    ) -> ApiResult<WorkspaceId> {
        let key = basic_user(headers)
            .or_else(|| {
                headers
                    .get("x-write-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            })
            .or_else(|| body_key.map(str::to_owned))
            .filter(|k| !k.is_empty())
            .ok_or(ApiError::Unauthenticated(
                "a write key is required (HTTP Basic user name or writeKey)",
            ))?;
        let found = state
            .store
            .key_by_hash(KeyKind::Write, &hash_secret(&key))
            .await?;
        found
            .map(|k| k.workspace_id)
            .ok_or(ApiError::Unauthenticated("unknown or revoked write key"))
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn basic_user(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(
        text.split_once(':')
            .map_or(text.clone(), |(user, _)| user.to_owned()),
    )
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
