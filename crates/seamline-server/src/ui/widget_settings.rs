//! `/settings/widget`: the site widget's buttons, texts, colour and
//! pre-chat form; the identity secret (owners and admins only); the embed
//! snippet; and `/settings/widget/preview`, a page that embeds the widget
//! as a customer's site would.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use seamline_core::role::Permission;
use seamline_store::KeyKind;
use serde::Deserialize;

use super::{csrf_field, form_error, layout, with_form_error, DoneParams, FormError, Nav};
use crate::api::widget_settings::{rotate, save};
use crate::auth::{FormCsrf, Principal};
use crate::error::ApiResult;
use crate::widget::settings::{self, Ask, WidgetSettings};
use crate::AppState;

const MESSENGERS: [(&str, &str, &str); 4] = [
    ("whatsapp", "WhatsApp number", "+7 916 123-45-67"),
    ("telegram", "Telegram bot", "myshop_bot"),
    ("viber", "Viber chat URI", "myshop"),
    ("vk", "VK community", "club123456"),
];
/// Spacing for the form's section headings and check boxes (the shared
/// stylesheet styles neither inside a stacked form).
const SECTION: &str = "margin:20px 0 10px";
const CHECK: &str = "display:flex;align-items:center;gap:8px;font-weight:500";
const PRECHAT: [(&str, &str); 3] = [("name", "Name"), ("email", "E-mail"), ("phone", "Phone")];

pub async fn page(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    headers: HeaderMap,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    let widget = settings::load(state.store.as_ref(), principal.workspace).await?;
    let page = Page::load(&state, &principal, &headers).await?;
    Ok(page.render(&WidgetForm::from(&widget), None, params.done.as_str()))
}

pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormCsrf(principal, form): FormCsrf<WidgetForm>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageWorkspace)?;
    let saved = match form.settings() {
        Ok(widget) => save(&state, &principal, &widget).await,
        Err(e) => Err(e.into()),
    };
    match saved {
        Ok(()) => Ok(Redirect::to("/settings/widget?done=saved").into_response()),
        Err(e) => {
            with_form_error(e, |error| async move {
                let page = Page::load(&state, &principal, &headers).await?;
                Ok(page.render(&form, Some(&error), ""))
            })
            .await
        }
    }
}

/// Generates a new identity secret.
pub async fn rotate_secret(
    State(state): State<AppState>,
    FormCsrf(principal, _): FormCsrf<super::PlainForm>,
) -> ApiResult<Response> {
    rotate(&state, &principal).await?;
    Ok(Redirect::to("/settings/widget?done=rotated").into_response())
}

/// A customer's site, as far as the widget can tell: a page embedding it.
pub async fn preview(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    headers: HeaderMap,
) -> ApiResult<Markup> {
    let page = Page::load(&state, &principal, &headers).await?;
    Ok(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Widget preview · Seamline" }
                style { (PreEscaped("body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1f2328;background:#f3f5f9}\
                    header{background:#fff;border-bottom:1px solid #d0d7de;padding:18px 40px;font-weight:700;font-size:20px}\
                    main{max-width:720px;margin:40px auto;padding:0 24px}.hero{background:#fff;border-radius:14px;padding:32px;\
                    box-shadow:0 2px 10px rgba(0,0,0,.06)}.muted{color:#656d76}")) }
            }
            body {
                header { "Your shop" }
                main {
                    div.hero {
                        h1 { "Widget preview" }
                        p.muted { "This page embeds the widget exactly as your site will. "
                            "Messages and callback requests sent here reach your inbox for real." }
                        p { a href="/settings/widget" { "Back to the widget settings" } }
                    }
                }
                @if let Some(key) = &page.write_key {
                    script src=(format!("{}/widget.js", page.origin)) data-key=(key) async {}
                } @else {
                    p.muted { "Create a write key in Settings to see the widget." }
                }
            }
        }
    })
}

/// What the page shows besides the form.
struct Page<'a> {
    principal: &'a Principal,
    manage: bool,
    /// Where sites load the script from, as this request reached us.
    origin: String,
    write_key: Option<String>,
    secret: Option<String>,
}

impl<'a> Page<'a> {
    async fn load(
        state: &AppState,
        principal: &'a Principal,
        headers: &HeaderMap,
    ) -> ApiResult<Page<'a>> {
        let store = state.store.as_ref();
        let manage = principal.role.allows(Permission::ManageWorkspace);
        let write_key = store
            .list_keys(principal.workspace)
            .await?
            .into_iter()
            .find(|k| k.kind == KeyKind::Write && k.revoked_at.is_none())
            .and_then(|k| k.plaintext);
        let secret = if manage {
            settings::identity_secret(store, principal.workspace).await?
        } else {
            None
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = if state.config.secure_cookies {
            "https"
        } else {
            "http"
        };
        Ok(Page {
            principal,
            manage,
            origin: format!("{scheme}://{host}"),
            write_key,
            secret,
        })
    }

    fn render(&self, form: &WidgetForm, error: Option<&FormError>, done: &str) -> Markup {
        let manage = self.manage;
        let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
        let snippet = format!(
            "<script src=\"{}/widget.js\" data-key=\"{}\" async></script>",
            self.origin,
            self.write_key.as_deref().unwrap_or("WRITE_KEY")
        );
        let content = html! { div.narrow {
            div.page-head {
                h1 { "Site widget" }
                span.spacer {}
                a.button.quiet href="/settings/widget/preview" target="_blank" { "Open preview" }
            }
            @if done == "saved" {
                p.flash role="status" { "Saved. Visitors see the changes on their next page." }
            }
            @if done == "rotated" {
                p.flash role="status" { "New identity secret generated. Update your site: the old one no longer works." }
            }
            section.card aria-labelledby="embed-title" {
                h2 #embed-title { "Put it on your site" }
                p.muted { "Paste this before </body> on every page. The widget uses the same visitor id as your tracking." }
                div.secret-row {
                    code.secret #widget-snippet { (snippet) }
                    button type="button" data-copy="#widget-snippet" { "Copy" }
                }
            }
            section.card aria-labelledby="look-title" {
                h2 #look-title { "Buttons and texts" }
                @if !manage { p.muted { "Owners and admins change the widget." } }
                form.stacked #widget-settings method="post" action="/settings/widget" {
                    (form_error(error))
                    (csrf_field(self.principal))
                    fieldset disabled[!manage] style="border:0;margin:0;padding:0;min-width:0" {
                        div.fields {
                            label.field {
                                span { "Title" }
                                input type="text" name="title" value=(form.title) required maxlength="60"
                                    aria-invalid=[bad("title")];
                            }
                            label.field {
                                span { "Accent colour" }
                                input type="color" name="accent_color" value=(form.accent_color)
                                    aria-invalid=[bad("accent_color")];
                            }
                            label.field.wide {
                                span { "Greeting" }
                                input type="text" name="greeting" value=(form.greeting) maxlength="200"
                                    aria-invalid=[bad("greeting")];
                            }
                        }
                        h3 style=(SECTION) { "Launcher buttons" }
                        div style="display:flex;flex-wrap:wrap;gap:8px 28px;margin-bottom:14px" {
                            label style=(CHECK) {
                                input type="checkbox" name="chat" value="on" checked[form.chat.is_some()];
                                "Online chat (an offline form when nobody is online)"
                            }
                            label style=(CHECK) {
                                input type="checkbox" name="callback" value="on" checked[form.callback.is_some()];
                                "Call me back"
                            }
                        }
                        div.fields {
                            @for (key, label, example) in MESSENGERS {
                                label.field {
                                    span { (label) }
                                    input type="text" name=(key) value=(form.messenger(key)) placeholder=(example)
                                        aria-invalid=[bad(&format!("buttons.{key}"))];
                                }
                            }
                        }
                        p.muted style="margin:6px 0 0" { "Each messenger link carries the visitor's tracking code, so a chat started there joins their visit." }
                        h3 style=(SECTION) { "Pre-chat form" }
                        div.fields {
                            @for (key, label) in PRECHAT {
                                label.field {
                                    span { (label) }
                                    select name=(format!("prechat_{key}")) aria-invalid=[bad(&format!("prechat.{key}"))] {
                                        @for (value, text) in [("off", "Not asked"), ("optional", "Optional"), ("required", "Required")] {
                                            option value=(value) selected[form.prechat(key) == value] { (text) }
                                        }
                                    }
                                }
                            }
                        }
                        p.muted style="margin:6px 0 14px" { "Asked before the first message. Name, e-mail and phone join the visitor's profile." }
                        @if manage { button.primary type="submit" { "Save widget" } }
                    }
                }
            }
            @if manage { (self.secret_card()) }
        } };
        layout("Site widget", self.principal, Nav::Settings, content)
    }

    fn secret_card(&self) -> Markup {
        html! {
            section.card aria-labelledby="secret-title" {
                h2 #secret-title { "Identity verification" }
                p.muted { "For logged-in customers your server signs the user id: "
                    code { "data-user-hash = hex(HMAC-SHA256(secret, user id))" }
                    ". Keep the secret on your server, never in the page." }
                @if let Some(secret) = &self.secret {
                    div.secret-row {
                        code.secret #identity-secret { (secret) }
                        button type="button" data-copy="#identity-secret" { "Copy" }
                    }
                } @else {
                    p { "No secret yet: visitors' user ids are not believed until you generate one." }
                }
                form method="post" action="/settings/widget/identity-secret" {
                    (csrf_field(self.principal))
                    button.danger type="submit" {
                        @if self.secret.is_some() { "Rotate secret" } @else { "Generate secret" }
                    }
                }
            }
        }
    }
}

/// The form as typed.
#[derive(Deserialize)]
pub struct WidgetForm {
    csrf_token: String,
    title: String,
    #[serde(default)]
    greeting: String,
    accent_color: String,
    #[serde(default)]
    chat: Option<String>,
    #[serde(default)]
    callback: Option<String>,
    #[serde(default)]
    whatsapp: String,
    #[serde(default)]
    telegram: String,
    #[serde(default)]
    viber: String,
    #[serde(default)]
    vk: String,
    #[serde(default)]
    prechat_name: String,
    #[serde(default)]
    prechat_email: String,
    #[serde(default)]
    prechat_phone: String,
}

has_csrf!(WidgetForm);

fn ask_name(ask: Ask) -> String {
    match ask {
        Ask::Off => "off",
        Ask::Optional => "optional",
        Ask::Required => "required",
    }
    .into()
}

impl From<&WidgetSettings> for WidgetForm {
    fn from(w: &WidgetSettings) -> Self {
        let b = &w.buttons;
        let on = |flag: bool| flag.then(|| "on".to_owned());
        Self {
            csrf_token: String::new(),
            title: w.title.clone(),
            greeting: w.greeting.clone(),
            accent_color: w.accent_color.clone(),
            chat: on(b.chat),
            callback: on(b.callback),
            whatsapp: b
                .whatsapp
                .as_deref()
                .map(|n| format!("+{n}"))
                .unwrap_or_default(),
            telegram: b.telegram.clone().unwrap_or_default(),
            viber: b.viber.clone().unwrap_or_default(),
            vk: b.vk.clone().unwrap_or_default(),
            prechat_name: ask_name(w.prechat.name),
            prechat_email: ask_name(w.prechat.email),
            prechat_phone: ask_name(w.prechat.phone),
        }
    }
}

impl WidgetForm {
    fn messenger(&self, key: &str) -> &str {
        match key {
            "whatsapp" => &self.whatsapp,
            "telegram" => &self.telegram,
            "viber" => &self.viber,
            _ => &self.vk,
        }
    }

    fn prechat(&self, key: &str) -> &str {
        match key {
            "name" => &self.prechat_name,
            "email" => &self.prechat_email,
            _ => &self.prechat_phone,
        }
    }

    /// The settings the form asks for, checked as the API checks them.
    fn settings(&self) -> Result<WidgetSettings, seamline_core::FieldError> {
        let mut buttons = serde_json::Map::new();
        buttons.insert("chat".into(), self.chat.is_some().into());
        buttons.insert("callback".into(), self.callback.is_some().into());
        let mut prechat = serde_json::Map::new();
        for (key, _, _) in MESSENGERS {
            buttons.insert(key.into(), self.messenger(key).trim().into());
        }
        for (key, _) in PRECHAT {
            prechat.insert(key.into(), self.prechat(key).into());
        }
        WidgetSettings::parse(&serde_json::json!({
            "title": self.title,
            "greeting": self.greeting,
            "accent_color": self.accent_color,
            "buttons": buttons,
            "prechat": prechat,
        }))
    }
}
