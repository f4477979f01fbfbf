//! `/settings/identity`: the workspace's identity rules, as a form.
//!
//! Everyone may read the rules (they explain why profiles merged); owners
//! and admins change them. A bad value is answered with the form again, the
//! error on it and what was typed kept.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use seamline_core::identity::IdentityPolicy;
use seamline_core::role::Permission;
use serde::Deserialize;

use super::{csrf_field, form_error, layout, with_form_error, DoneParams, FormError, Nav};
use crate::api::settings::save;
use crate::auth::{FormCsrf, Principal};
use crate::error::ApiResult;
use crate::identity::policy_of;
use crate::AppState;

/// The kinds whose limit the form shows, with their labels.
const LIMITS: [(&str, &str); 4] = [
    ("user_id", "User ids"),
    ("loyalty_card", "Loyalty cards"),
    ("email", "E-mails"),
    ("phone", "Phones"),
];

pub async fn page(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    let policy = policy_of(state.store.as_ref(), principal.workspace).await?;
    let saved = params.done == "saved";
    Ok(render(&principal, &RulesForm::from(&policy), None, saved))
}

pub async fn submit(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<RulesForm>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageWorkspace)?;
    let current = policy_of(state.store.as_ref(), principal.workspace).await?;
    let saved = match form.policy(current) {
        Ok(policy) => save(&state, &principal, &policy).await,
        Err(e) => Err(e.into()),
    };
    match saved {
        Ok(()) => Ok(Redirect::to("/settings/identity?done=saved").into_response()),
        Err(e) => {
            with_form_error(e, |error| async move {
                Ok(render(&principal, &form, Some(&error), false))
            })
            .await
        }
    }
}

fn render(
    principal: &Principal,
    form: &RulesForm,
    error: Option<&FormError>,
    saved: bool,
) -> Markup {
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
    let content = html! { div.narrow {
        div.page-head { h1 { "Identity rules" } }
        @if saved { p.flash role="status" { "Saved. The rules apply to events resolved from now on." } }
        section.card aria-labelledby="rules-title" {
            h2 #rules-title { "How events become one customer" }
            p.muted { "Events that share an identifier join one profile, unless a guard below stops it. "
                "Two profiles with different user ids or loyalty cards are never merged automatically: "
                "they go to " a href="/conflicts" { "conflicts" } " for review." }
            @if !manage { p.muted { "Owners and admins change these rules." } }
            form.stacked #identity-rules method="post" action="/settings/identity" {
                (form_error(error))
                (csrf_field(principal))
                fieldset disabled[!manage] {
                    div.fields {
                        label.field {
                            span { "Default phone region" }
                            input type="text" name="default_region" value=(form.default_region) required
                                maxlength="2" pattern="[A-Za-z]{2}" title="Two letters, e.g. RU"
                                aria-invalid=[bad("default_region")];
                            small.muted { "For numbers written without a country code, like 8 916 123-45-67." }
                        }
                        label.field {
                            span { "Shared-device session, minutes" }
                            input type="number" name="shared_device_session_minutes" min="1" max="1440"
                                value=(form.shared_device_session_minutes)
                                aria-invalid=[bad("shared_device_session_minutes")];
                            small.muted { "On a family tablet or shop kiosk, anonymous events go to whoever "
                                "logged in on it within this time; after that they stay anonymous." }
                        }
                    }
                    h3 { "Most identifiers of one type on a profile" }
                    div.fields {
                        @for (kind, label) in LIMITS {
                            @let name = format!("limit_{kind}");
                            label.field {
                                span { (label) }
                                input type="number" name=(name) min="1" max="1000"
                                    value=(form.limit(kind)) aria-invalid=[bad(&format!("limits.{kind}"))];
                            }
                        }
                    }
                    label.check {
                        input type="checkbox" name="fold_emails" value="on" checked[form.fold_emails.is_some()];
                        " Treat gmail-style addresses as one: dots and +tags ignored (o.lga+shop@gmail.com = olga@gmail.com)"
                    }
                    label.field.wide {
                        span { "Block list" }
                        textarea name="block_list" rows="4" placeholder="phone:+79000000000"
                            aria-invalid=[error.is_some_and(|e| e.field.as_deref().is_some_and(|f| f.starts_with("block_list"))).then_some("true")] {
                            (form.block_list)
                        }
                        small.muted { "One type:value per line, as stored (phones in +7… form, e-mails in lower case). "
                            "These values never link anyone, like null or test@test.com." }
                    }
                    @if manage { button.primary type="submit" { "Save rules" } }
                }
            }
        }
    } };
    layout("Identity rules", principal, Nav::Settings, content)
}

/// The form as typed: numbers stay text until they are checked.
#[derive(Deserialize)]
pub struct RulesForm {
    csrf_token: String,
    default_region: String,
    shared_device_session_minutes: String,
    #[serde(default)]
    fold_emails: Option<String>,
    #[serde(default)]
    block_list: String,
    #[serde(default)]
    limit_user_id: String,
    #[serde(default)]
    limit_loyalty_card: String,
    #[serde(default)]
    limit_email: String,
    #[serde(default)]
    limit_phone: String,
}

has_csrf!(RulesForm);

impl From<&IdentityPolicy> for RulesForm {
    fn from(policy: &IdentityPolicy) -> Self {
        let limit = |kind: &str| {
            policy
                .limits
                .get(kind)
                .copied()
                .unwrap_or(policy.default_limit)
                .to_string()
        };
        Self {
            csrf_token: String::new(),
            default_region: policy.default_region.clone(),
            shared_device_session_minutes: policy.shared_device_session_minutes.to_string(),
            fold_emails: policy.fold_emails.then(|| "on".to_owned()),
            block_list: policy.block_list.join("\n"),
            limit_user_id: limit("user_id"),
            limit_loyalty_card: limit("loyalty_card"),
            limit_email: limit("email"),
            limit_phone: limit("phone"),
        }
    }
}

impl RulesForm {
    fn limit(&self, kind: &str) -> &str {
        match kind {
            "user_id" => &self.limit_user_id,
            "loyalty_card" => &self.limit_loyalty_card,
            "email" => &self.limit_email,
            _ => &self.limit_phone,
        }
    }

    /// The rules the form asks for, on top of `current` (limits of other
    /// kinds are kept).
    fn policy(
        &self,
        mut current: IdentityPolicy,
    ) -> Result<IdentityPolicy, seamline_core::FieldError> {
        let number = |field: &str, text: &str| {
            text.trim().parse::<u32>().map_err(|_| {
                seamline_core::FieldError::new("not_a_number", field, "must be a whole number")
            })
        };
        current.default_region = self.default_region.trim().to_ascii_uppercase();
        current.shared_device_session_minutes = number(
            "shared_device_session_minutes",
            &self.shared_device_session_minutes,
        )?;
        current.fold_emails = self.fold_emails.is_some();
        for (kind, _) in LIMITS {
            let field = format!("limits.{kind}");
            current
                .limits
                .insert(kind.to_owned(), number(&field, self.limit(kind))? as usize);
        }
        current.block_list = self
            .block_list
            .lines()
            .map(|line| line.trim().to_lowercase())
            .filter(|line| !line.is_empty())
            .collect();
        Ok(current)
    }
}
