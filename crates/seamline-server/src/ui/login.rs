//! Sign in and out. The login form is CSRF-protected by a double-submit
//! cookie, since there is no session yet.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, SameSite};
use axum_extra::extract::CookieJar;
use chrono::{Duration, Utc};
use maud::{html, Markup};
use seamline_store::Session;
use serde::Deserialize;

use super::bare;
use crate::auth::{hash_secret, new_token, verify_password, FormCsrf, HasCsrf, SESSION_COOKIE};
use crate::error::ApiResult;
use crate::AppState;

const LOGIN_CSRF_COOKIE: &str = "seamline_login_csrf";

pub async fn page(State(state): State<AppState>, jar: CookieJar) -> (CookieJar, Markup) {
    let token = new_token();
    let jar = jar.add(cookie(
        &state,
        LOGIN_CSRF_COOKIE,
        token.clone(),
        Duration::hours(1),
    ));
    (jar, form(&token, None, ""))
}

fn form(csrf: &str, error: Option<&str>, email: &str) -> Markup {
    bare(
        "Sign in",
        html! {
            div.login-card {
                h1 { span.logo aria-hidden="true" { "◐" } "Seamline" }
                p.muted { "Every channel, one customer." }
                @if let Some(error) = error { p.error role="alert" { (error) } }
                form method="post" action="/login" {
                    input type="hidden" name="csrf_token" value=(csrf);
                    label for="email" { "E-mail" }
                    input #email type="email" name="email" value=(email) required
                        autofocus[email.is_empty()] autocomplete="username";
                    label for="password" { "Password" }
                    // After a failed try the e-mail is kept: the password is what to retype.
                    input #password type="password" name="password" required
                        autofocus[!email.is_empty()] autocomplete="current-password";
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf_token: String,
}

pub async fn submit(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(login): Form<LoginForm>,
) -> ApiResult<Response> {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned());
    if expected.as_deref() != Some(login.csrf_token.as_str()) {
        let token = new_token();
        let jar = jar.add(cookie(
            &state,
            LOGIN_CSRF_COOKIE,
            token.clone(),
            Duration::hours(1),
        ));
        let page = form(
            &token,
            Some("The form expired; please try again."),
            &login.email,
        );
        return Ok((StatusCode::FORBIDDEN, jar, page).into_response());
    }
    let email = login.email.trim().to_lowercase();
    let now = std::time::Instant::now();
    if let Some(wait) = state.login_throttle.wait(&email, now) {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        let message = format!("Too many wrong passwords. Try again in {minutes} min.");
        let page = form(&login.csrf_token, Some(&message), &login.email);
        return Ok((StatusCode::TOO_MANY_REQUESTS, page).into_response());
    }
    let member = state.store.member_by_email(&email).await?;
    // Verify against a dummy hash for unknown e-mails too, so the answer's
    // timing does not tell which e-mails have accounts.
    let hash = member
        .as_ref()
        .map_or_else(|| dummy_hash().as_str(), |m| m.password_hash.as_str());
    let verified = verify_password(&login.password, hash);
    let Some(member) = member.filter(|_| verified) else {
        state.login_throttle.failed(&email, now);
        tracing::info!("failed sign-in");
        let page = form(
            &login.csrf_token,
            Some("Wrong e-mail or password."),
            &login.email,
        );
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    };
    state.login_throttle.succeeded(&email);
    let token = new_token();
    let now = Utc::now();
    let ttl = Duration::hours(state.config.session_hours);
    state
        .store
        .create_session(Session {
            token_hash: hash_secret(&token),
            member_id: member.id,
            workspace_id: member.workspace_id,
            csrf_token: new_token(),
            created_at: now,
            expires_at: now + ttl,
        })
        .await?;
    let jar = jar
        .remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/"))
        .add(cookie(&state, SESSION_COOKIE, token, ttl));
    Ok((jar, Redirect::to("/events")).into_response())
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

impl HasCsrf for LogoutForm {
    fn csrf_token(&self) -> &str {
        &self.csrf_token
    }
}

pub async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    FormCsrf(_, _): FormCsrf<LogoutForm>,
) -> ApiResult<(CookieJar, Redirect)> {
    if let Some(session) = jar.get(SESSION_COOKIE) {
        state
            .store
            .delete_session(&hash_secret(session.value()))
            .await?;
    }
    Ok((
        jar.remove(Cookie::build(SESSION_COOKIE).path("/")),
        Redirect::to("/login"),
    ))
}

fn cookie(state: &AppState, name: &'static str, value: String, ttl: Duration) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(state.config.secure_cookies)
        .same_site(SameSite::Lax)
        .max_age(time_duration(ttl))
        .build()
}

fn time_duration(ttl: Duration) -> time::Duration {
    time::Duration::seconds(ttl.num_seconds())
}

/// A real argon2 hash of a random password, made once per process.
fn dummy_hash() -> &'static String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash_password(&new_token()).unwrap_or_default())
}
