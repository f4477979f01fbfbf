//! `/settings/channels`: the workspace's channel accounts (Telegram,
//! WhatsApp, Viber, VK, phone, e-mail): the masked token, the webhook URL to copy, the last connection
//! check and a button to run it again. Owners and admins add, test and
//! delete; supervisors look. Everything goes through the REST API's
//! operations (`api::channels`), which check the role.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::ChannelAccountId;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{csrf_field, form_error, layout, with_form_error, FormError, Nav, PlainForm};
use crate::api::channels::{
    create_channel, delete_channel, list_channels, public_base, test_channel, ChannelView,
    NewChannel,
};
use crate::auth::{FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

const HOME: &str = "/settings/channels";

#[derive(Default)]
struct Outcome<'a> {
    done: Option<&'a str>,
    error: Option<&'a FormError>,
    typed: Option<&'a AddForm>,
}

#[derive(Deserialize)]
pub struct PageParams {
    #[serde(default)]
    done: String,
}

pub async fn page(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    headers: HeaderMap,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    let done = match params.done.as_str() {
        "added" => Some("Added. Press \"Test connection\" to check the token and set the webhook."),
        "tested" => Some("Checked: the status below says how it went."),
        "deleted" => Some("Deleted. Replies on that channel can no longer be sent."),
        _ => None,
    };
    let outcome = Outcome {
        done,
        ..Outcome::default()
    };
    Ok(list_page(&state, &principal, &headers, outcome)
        .await?
        .into_response())
}

async fn list_page(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    outcome: Outcome<'_>,
) -> ApiResult<Markup> {
    let base = public_base(state, headers);
    let accounts = match list_channels(state, principal, &base).await {
        Ok(accounts) => accounts,
        Err(ApiError::Forbidden(_)) => return Ok(not_allowed(principal)),
        Err(other) => return Err(other),
    };
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let content = html! { div.narrow {
        div.page-head { h1 { "Channels" } }
        @if let Some(done) = outcome.done { p.flash role="status" { (done) } }
        section.card aria-labelledby="channels-title" {
            div.card-head {
                h2 #channels-title { "Connected accounts" }
                span.muted { (accounts.len()) @if accounts.len() == 1 { " account" } @else { " accounts" } }
            }
            p.muted { "Customers' messages from each account land in their one conversation; "
                "operators' replies go back through it. Tokens are stored encrypted and shown masked." }
            @if !manage { p.muted { "Owners and admins add and change channels." } }
            @if outcome.typed.is_none() { (form_error(outcome.error)) }
            @if accounts.is_empty() {
                p.empty-inline { "No channels yet." }
            } @else {
                div.table-wrap {
                    table.channels {
                        thead { tr {
                            th scope="col" { "Account" } th scope="col" { "Token" }
                            th scope="col" { "Webhook URL" } th scope="col" { "Status" }
                            th.actions scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody { @for a in &accounts { (account_row(principal, a, manage)) } }
                    }
                }
            }
            @if manage { @for kind in &KINDS { (add_form(principal, kind, outcome.typed, outcome.error)) } }
        }
    } };
    Ok(layout("Channels", principal, Nav::Settings, content))
}

fn not_allowed(principal: &Principal) -> Markup {
    let content = html! { div.narrow {
        div.page-head { h1 { "Channels" } }
        section.card { p.muted { "Owners, admins and supervisors see the workspace's channels." } }
    } };
    layout("Channels", principal, Nav::Settings, content)
}

fn account_row(principal: &Principal, a: &ChannelView, manage: bool) -> Markup {
    let action = |what: &str| format!("{HOME}/{}/{what}", a.id);
    let url_id = format!("webhook-url-{}", a.id);
    let username = a.settings.get("bot_username").and_then(Value::as_str);
    html! {
        tr data-channel=(a.id) {
            td {
                strong { (a.name) }
                div.muted { (a.kind.as_str()) @if let Some(u) = username { " · @" (u) } }
            }
            td { @for (field, masked) in &a.secrets { code title=(field) { (masked) } " " } }
            td {
                div.secret-row {
                    code.secret #(url_id) { (a.webhook_url) }
                    button type="button" data-copy=(format!("#{url_id}")) { "Copy" }
                }
            }
            td {
                @match a.status.as_str() {
                    "connected" => { span.status.active { "connected" } }
                    "error" => { span.status.revoked { "error" } }
                    _ => { span.status { "not checked" } }
                }
                @if !a.active { " " span.status.revoked { "disabled" } }
                @if let Some(detail) = &a.status_detail { div.muted { (detail) } }
            }
            td.actions {
                @if manage {
                    form.inline method="post" action=(action("test")) {
                        (csrf_field(principal))
                        button type="submit" { "Test connection" }
                    }
                    form.inline method="post" action=(action("delete"))
                        data-confirm=(format!("Delete the channel {}? Replies on it stop going out.", a.name)) {
                        (csrf_field(principal))
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
    }
}

/// One field of an add form: a public setting or a secret (never echoed).
struct Field {
    name: &'static str,
    label: &'static str,
    placeholder: &'static str,
    secret: bool,
    required: bool,
}

const fn field(name: &'static str, label: &'static str, placeholder: &'static str) -> Field {
    Field {
        name,
        label,
        placeholder,
        secret: false,
        required: true,
    }
}

const fn secret(name: &'static str, label: &'static str, placeholder: &'static str) -> Field {
    Field {
        secret: true,
        ..field(name, label, placeholder)
    }
}

const fn optional(name: &'static str, label: &'static str, placeholder: &'static str) -> Field {
    Field {
        required: false,
        ..field(name, label, placeholder)
    }
}

/// A channel kind the page adds, with its form.
struct Kind {
    kind: &'static str,
    title: &'static str,
    help: &'static str,
    name_placeholder: &'static str,
    fields: &'static [Field],
}

const KINDS: [Kind; 6] = [
    Kind {
        kind: "telegram",
        title: "Telegram bot",
        help: "Create a bot with @BotFather and paste its token. \
               \"Test connection\" then checks it and points the bot's webhook here.",
        name_placeholder: "Shop bot",
        fields: &[
            secret("bot_token", "Bot token", "123456789:AA…"),
            optional("api_base", "Bot API URL (optional; for a test server)", "https://api.telegram.org"),
        ],
    },
    Kind {
        kind: "whatsapp",
        title: "WhatsApp number",
        help: "From the Meta app's WhatsApp API setup: the phone number ID, an access token and \
               the app secret. Make up a verify token; after adding, paste the webhook URL and the \
               same verify token into the app's Webhooks settings and subscribe to \"messages\".",
        name_placeholder: "Shop WhatsApp",
        fields: &[
            field("phone_number_id", "Phone number ID", "106540352242922"),
            secret("access_token", "Access token", "EAAG…"),
            secret("app_secret", "App secret", "signs Meta's webhooks"),
            secret("verify_token", "Verify token", "any phrase; the same in Meta"),
            optional("api_base", "Graph API URL (optional; for a test server)", "https://graph.facebook.com/v21.0"),
        ],
    },
    Kind {
        kind: "viber",
        title: "Viber bot",
        help: "Paste the bot's token from the Viber Admin Panel. \
               \"Test connection\" then checks it and sets the bot's webhook here.",
        name_placeholder: "Shop Viber",
        fields: &[
            secret("auth_token", "Bot token", "445da6az1s345z78-…"),
            optional("sender_name", "Sender name (optional, up to 28 characters)", "Shop"),
            optional("api_base", "Bot API URL (optional; for a test server)", "https://chatapi.viber.com/pa"),
        ],
    },
    Kind {
        kind: "vk",
        title: "VK community",
        help: "In the community's Manage → API usage: a community token with messages access, \
               and a Callback API server with a secret key. Add the server with the webhook URL \
               below after \"Test connection\" (it learns the confirmation string), then confirm it in VK.",
        name_placeholder: "Shop VK",
        fields: &[
            field("group_id", "Community ID", "218000001"),
            secret("access_token", "Community token", "vk1.a.…"),
            secret("secret", "Callback API secret key", "the secret key set in VK"),
            optional("api_base", "API URL (optional; for a test server)", "https://api.vk.com/method"),
        ],
    },
    Kind {
        kind: "phone",
        title: "phone line (virtual PBX)",
        help: "From the PBX's API settings: its API key and salt (they sign the call events both \
               ways) and its API URL. After adding, paste the webhook URL into the PBX's event \
               settings: calls, missed calls and recordings then join the caller's conversation, \
               and \"call me back\" dials through it.",
        name_placeholder: "Shop phone",
        fields: &[
            secret("api_key", "API key", "vpbx_api_key"),
            secret("api_salt", "API salt", "signs the PBX's events"),
            field("api_base", "PBX API URL", "https://app.mango-office.ru/vpbx"),
            optional("extension", "Callback extension (optional; default 101)", "101"),
        ],
    },
    Kind {
        kind: "email",
        title: "mailbox",
        help: "The support mailbox: Seamline reads new mail over IMAP and sends replies over SMTP. \
               TLS is \"tls\" (ports 993/465), \"starttls\" (143/587) or \"none\" (a server on this machine only). \
               Replies carry a reply+… address at the reply domain, which must deliver to this mailbox. \
               \"Test connection\" logs into both servers.",
        name_placeholder: "Support mail",
        fields: &[
            field("from_address", "From address", "support@shop.example"),
            optional("from_name", "From name (optional)", "Shop support"),
            field("reply_domain", "Reply domain", "reply.shop.example"),
            field("imap_host", "IMAP server", "imap.shop.example"),
            field("imap_port", "IMAP port", "993"),
            optional("imap_tls", "IMAP TLS (tls, starttls or none; default tls)", "tls"),
            field("imap_user", "IMAP user", "support@shop.example"),
            secret("imap_password", "IMAP password", "the mailbox password"),
            field("smtp_host", "SMTP server", "smtp.shop.example"),
            field("smtp_port", "SMTP port", "465"),
            optional("smtp_tls", "SMTP TLS (tls, starttls or none; default tls)", "tls"),
            optional("smtp_user", "SMTP user (optional: no login when empty)", "support@shop.example"),
            secret("smtp_password", "SMTP password", "the sending password"),
        ],
    },
];

fn add_form(
    principal: &Principal,
    kind: &Kind,
    typed: Option<&AddForm>,
    error: Option<&FormError>,
) -> Markup {
    let typed = typed.filter(|t| t.kind == kind.kind);
    let error = typed.and(error);
    let bad = |field: &str| {
        error
            .is_some_and(|e| e.field.as_deref().is_some_and(|f| f.ends_with(field)))
            .then_some("true")
    };
    let value = |name: &str| {
        typed
            .and_then(|t| t.values.get(name))
            .map_or("", String::as_str)
    };
    html! {
        form.stacked id=(format!("add-{}", kind.kind)) method="post" action=(HOME) {
            h3 { "Add a " (kind.title) }
            p.muted { (kind.help) }
            (form_error(error))
            (csrf_field(principal))
            input type="hidden" name="kind" value=(kind.kind);
            div.fields {
                label.field {
                    span { "Name" }
                    input type="text" name="name" value=(typed.map_or("", |t| t.name.as_str()))
                        maxlength="100" placeholder=(kind.name_placeholder) aria-invalid=[bad("name")];
                }
                @for f in kind.fields {
                    label.field.wide {
                        span { (f.label) }
                        @if f.secret {
                            input type="password" name=(f.name) required autocomplete="off"
                                placeholder=(f.placeholder) aria-invalid=[bad(f.name)]
                                autofocus[bad(f.name).is_some()];
                        } @else {
                            input type="text" name=(f.name) value=(value(f.name)) required[f.required]
                                placeholder=(f.placeholder) aria-invalid=[bad(f.name)];
                        }
                    }
                }
            }
            button.primary type="submit" { "Add " (kind.title) }
        }
    }
}

/// An add form as typed (secrets are never sent back into the page).
#[derive(Deserialize, Default)]
pub struct AddForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    /// The kind's fields by name.
    #[serde(flatten)]
    values: HashMap<String, String>,
}

has_csrf!(AddForm);

impl AddForm {
    fn body(&self) -> NewChannel {
        let fields = KINDS
            .iter()
            .find(|k| k.kind == self.kind)
            .map_or(&[][..], |k| k.fields);
        let mut settings = Map::new();
        let mut secrets = BTreeMap::new();
        for f in fields {
            let typed = self.values.get(f.name).map_or("", |v| v.trim());
            if f.secret {
                secrets.insert(f.name.to_owned(), typed.to_owned());
            } else if !typed.is_empty() {
                settings.insert(f.name.to_owned(), Value::from(typed));
            }
        }
        NewChannel {
            kind: self.kind.clone(),
            name: self.name.clone(),
            settings,
            secrets,
            active: None,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    FormCsrf(principal, form): FormCsrf<AddForm>,
) -> ApiResult<Response> {
    let base = public_base(&state, &headers);
    match create_channel(&state, &principal, &base, &form.body()).await {
        Ok(_) => Ok(Redirect::to(&format!("{HOME}?done=added")).into_response()),
        Err(e) => {
            let (state, principal, headers, form) = (&state, &principal, &headers, &form);
            with_form_error(e, |error| async move {
                let outcome = Outcome {
                    error: Some(&error),
                    typed: Some(form),
                    ..Outcome::default()
                };
                list_page(state, principal, headers, outcome).await
            })
            .await
        }
    }
}

/// An action's outcome: back to the list, or its error shown there.
async fn after(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    result: ApiResult<&str>,
) -> ApiResult<Response> {
    match result {
        Ok(done) => Ok(Redirect::to(&format!("{HOME}?done={done}")).into_response()),
        Err(error) => {
            with_form_error(error, |error| async move {
                let outcome = Outcome {
                    error: Some(&error),
                    ..Outcome::default()
                };
                list_page(state, principal, headers, outcome).await
            })
            .await
        }
    }
}

pub async fn test(
    State(state): State<AppState>,
    Path(id): Path<ChannelAccountId>,
    headers: HeaderMap,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    let base = public_base(&state, &headers);
    let result = test_channel(&state, &principal, &base, id)
        .await
        .map(|_| "tested");
    after(&state, &principal, &headers, result).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<ChannelAccountId>,
    headers: HeaderMap,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    let result = delete_channel(&state, &principal, id)
        .await
        .map(|()| "deleted");
    after(&state, &principal, &headers, result).await
}
