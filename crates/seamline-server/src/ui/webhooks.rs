//! `/settings/webhooks`: the workspace's webhook endpoints and, per
//! endpoint, its delivery log. Owners and admins add, switch, rotate,
//! ping, delete and redeliver; supervisors look. Everything goes through
//! the REST API's operations (`api::webhooks`), which check the role.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::{WebhookDeliveryId, WebhookId};
use seamline_store::{DeliveryState, WebhookEndpoint, WebhookEvent};
use serde::Deserialize;

use super::{csrf_field, form_error, layout, with_form_error, FormError, Nav, PlainForm};
use crate::api::webhooks::{
    change_webhook, create_webhook, delete_webhook, delivery_log, list_webhooks, ping_webhook,
    redeliver, rotate_secret, LogParams, LoggedDelivery, NewWebhook, WebhookChange, WithSecret,
};
use crate::auth::{FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::AppState;

const HOME: &str = "/settings/webhooks";

/// What the list page shows besides the endpoints.
#[derive(Default)]
struct Outcome<'a> {
    done: Option<&'a str>,
    /// An endpoint just made or rotated, with its secret (shown this once).
    secret: Option<(&'a str, &'a WithSecret)>,
    error: Option<&'a FormError>,
    typed: Option<&'a EndpointForm>,
}

#[derive(Deserialize)]
pub struct PageParams {
    #[serde(default)]
    done: String,
}

pub async fn page(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    let done = done_message(&params.done);
    let outcome = Outcome {
        done,
        ..Outcome::default()
    };
    Ok(list_page(&state, &principal, outcome)
        .await?
        .into_response())
}

fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "enabled" => "Enabled: new events are sent to it again.",
        "disabled" => "Disabled: no events are sent to it until it is enabled.",
        "deleted" => "Deleted, with its delivery log.",
        "ping" => "A ping is on its way; it shows in the log below in a moment.",
        "redeliver" => "Sending it again now.",
        _ => return None,
    })
}

async fn list_page(
    state: &AppState,
    principal: &Principal,
    outcome: Outcome<'_>,
) -> ApiResult<Markup> {
    let endpoints = match list_webhooks(state, principal).await {
        Ok(endpoints) => endpoints,
        Err(ApiError::Forbidden(_)) => return Ok(not_allowed(principal)),
        Err(other) => return Err(other),
    };
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let content = html! { div.narrow {
        div.page-head { h1 { "Webhooks" } }
        @if let Some(done) = outcome.done { p.flash role="status" { (done) } }
        @if let Some((title, made)) = outcome.secret { (secret_notice(title, made)) }
        section.card aria-labelledby="endpoints-title" {
            div.card-head {
                h2 #endpoints-title { "Endpoints" }
                span.muted { (endpoints.len()) @if endpoints.len() == 1 { " endpoint" } @else { " endpoints" } }
            }
            p.muted { "Seamline POSTs JSON to each endpoint when a message is created and when a conversation "
                "is created or changes, signed in " code { "X-Seamline-Signature" } " with the endpoint's secret "
                "(see the README). A failed delivery is retried for about a day and a half." }
            @if !manage { p.muted { "Owners and admins add and change endpoints." } }
            @if outcome.typed.is_none() { (form_error(outcome.error)) }
            @if endpoints.is_empty() {
                p.empty-inline { "No endpoints yet." }
            } @else {
                div.table-wrap {
                    table.webhooks {
                        thead { tr {
                            th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "Status" }
                            th.actions scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody { @for e in &endpoints { (endpoint_row(principal, e, manage)) } }
                    }
                }
            }
            @if manage { (add_form(principal, outcome.typed, outcome.error)) }
        }
    } };
    Ok(layout("Webhooks", principal, Nav::Settings, content))
}

fn not_allowed(principal: &Principal) -> Markup {
    let content = html! { div.narrow {
        div.page-head { h1 { "Webhooks" } }
        section.card { p.muted { "Owners, admins and supervisors see the workspace's webhooks." } }
    } };
    layout("Webhooks", principal, Nav::Settings, content)
}

fn events_label(endpoint: &WebhookEndpoint) -> String {
    if endpoint.events.is_empty() {
        return "all events".to_owned();
    }
    endpoint
        .events
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn endpoint_row(principal: &Principal, e: &WebhookEndpoint, manage: bool) -> Markup {
    let action = |what: &str| format!("{HOME}/{}/{what}", e.id);
    html! {
        tr data-webhook=(e.id) {
            td {
                a.mono href=(format!("{HOME}/{}", e.id)) { (e.url) }
                @if !e.description.is_empty() { div.muted { (e.description) } }
            }
            td { (events_label(e)) }
            td {
                @if e.active { span.status.active { "active" } }
                @else { span.status.revoked { "disabled" } }
            }
            td.actions {
                a href=(format!("{HOME}/{}", e.id)) { "Delivery log" }
                @if manage {
                    form.inline method="post" action=(action("toggle")) {
                        (csrf_field(principal))
                        button type="submit" { @if e.active { "Disable" } @else { "Enable" } }
                    }
                    form.inline method="post" action=(action("rotate"))
                        data-confirm="Rotate the secret? Receivers must switch to the new one." {
                        (csrf_field(principal))
                        button type="submit" { "Rotate secret" }
                    }
                    form.inline method="post" action=(action("delete"))
                        data-confirm=(format!("Delete the endpoint {} and its delivery log?", e.url)) {
                        (csrf_field(principal))
                        button.danger type="submit" { "Delete" }
                    }
                }
            }
        }
    }
}

fn secret_notice(title: &str, made: &WithSecret) -> Markup {
    html! {
        section.card.notice #webhook-secret role="status" {
            h2 { (title) ": " (made.endpoint.url) }
            p { "Copy the signing secret now: it is shown only this once. Your receiver checks each request with it." }
            div.secret-row {
                code.secret #new-webhook-secret { (made.secret) }
                button type="button" data-copy="#new-webhook-secret" { "Copy" }
            }
        }
    }
}

fn add_form(
    principal: &Principal,
    typed: Option<&EndpointForm>,
    error: Option<&FormError>,
) -> Markup {
    let blank = EndpointForm::default();
    let form = typed.unwrap_or(&blank);
    let error = typed.and(error);
    let bad = |field: &str| {
        error
            .is_some_and(|e| e.field.as_deref().is_some_and(|f| f.starts_with(field)))
            .then_some("true")
    };
    html! {
        form.stacked #add-webhook method="post" action=(HOME) {
            h3 { "Add an endpoint" }
            (form_error(error))
            (csrf_field(principal))
            div.fields {
                label.field.wide {
                    span { "URL" }
                    input type="url" name="url" value=(form.url) required placeholder="https://example.com/seamline"
                        autocomplete="off" aria-invalid=[bad("url")] autofocus[bad("url").is_some()];
                }
                label.field.wide {
                    span { "Description" }
                    input type="text" name="description" value=(form.description) maxlength="200"
                        placeholder="Optional, e.g. CRM sync" aria-invalid=[bad("description")];
                }
            }
            fieldset.events {
                legend { "Events (none ticked: all)" }
                @for event in WebhookEvent::SUBSCRIBABLE {
                    label {
                        input type="checkbox" name=(field_of(event)) value="on" checked[form.wants(event)];
                        code { (event.as_str()) }
                    }
                }
            }
            button.primary type="submit" { "Add endpoint" }
        }
    }
}

/// The checkbox of `event`, `message_created` for `message.created`
/// (a form here cannot repeat one name).
fn field_of(event: WebhookEvent) -> String {
    event.as_str().replace('.', "_")
}

/// The add form as typed.
#[derive(Deserialize, Default)]
pub struct EndpointForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    message_created: Option<String>,
    conversation_created: Option<String>,
    conversation_updated: Option<String>,
}

has_csrf!(EndpointForm);

impl EndpointForm {
    fn wants(&self, event: WebhookEvent) -> bool {
        match event {
            WebhookEvent::MessageCreated => self.message_created.is_some(),
            WebhookEvent::ConversationCreated => self.conversation_created.is_some(),
            WebhookEvent::ConversationUpdated => self.conversation_updated.is_some(),
            WebhookEvent::Ping => false,
        }
    }

    fn body(&self) -> NewWebhook {
        NewWebhook {
            url: self.url.clone(),
            events: WebhookEvent::SUBSCRIBABLE
                .into_iter()
                .filter(|e| self.wants(*e))
                .map(|e| e.as_str().to_owned())
                .collect(),
            description: self.description.clone(),
            active: None,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<EndpointForm>,
) -> ApiResult<Response> {
    match create_webhook(&state, &principal, &form.body()).await {
        Ok(made) => {
            let outcome = Outcome {
                secret: Some(("New endpoint", &made)),
                ..Outcome::default()
            };
            Ok(list_page(&state, &principal, outcome)
                .await?
                .into_response())
        }
        Err(e) => {
            let (state, principal, form) = (&state, &principal, &form);
            with_form_error(e, |error| async move {
                let outcome = Outcome {
                    error: Some(&error),
                    typed: Some(form),
                    ..Outcome::default()
                };
                list_page(state, principal, outcome).await
            })
            .await
        }
    }
}

/// An action's error shown on the list page.
async fn failed(state: &AppState, principal: &Principal, error: ApiError) -> ApiResult<Response> {
    with_form_error(error, |error| async move {
        let outcome = Outcome {
            error: Some(&error),
            ..Outcome::default()
        };
        list_page(state, principal, outcome).await
    })
    .await
}

pub async fn toggle(
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    let current = match state.store.webhook(principal.workspace, id).await? {
        Some(e) => e.active,
        None => return failed(&state, &principal, ApiError::NotFound("webhook")).await,
    };
    let change = WebhookChange {
        active: Some(!current),
        ..WebhookChange::default()
    };
    match change_webhook(&state, &principal, id, &change).await {
        Ok(e) => {
            let done = if e.active { "enabled" } else { "disabled" };
            Ok(Redirect::to(&format!("{HOME}?done={done}")).into_response())
        }
        Err(e) => failed(&state, &principal, e).await,
    }
}

pub async fn rotate(
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match rotate_secret(&state, &principal, id).await {
        Ok(made) => {
            let outcome = Outcome {
                secret: Some(("New secret", &made)),
                ..Outcome::default()
            };
            Ok(list_page(&state, &principal, outcome)
                .await?
                .into_response())
        }
        Err(e) => failed(&state, &principal, e).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match delete_webhook(&state, &principal, id).await {
        Ok(()) => Ok(Redirect::to(&format!("{HOME}?done=deleted")).into_response()),
        Err(e) => failed(&state, &principal, e).await,
    }
}

pub async fn ping(
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match ping_webhook(&state, &principal, id).await {
        Ok(_) => Ok(Redirect::to(&format!("{HOME}/{id}?done=ping")).into_response()),
        Err(e) => failed(&state, &principal, e).await,
    }
}

pub async fn redeliver_one(
    State(state): State<AppState>,
    Path(id): Path<WebhookDeliveryId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match redeliver(&state, &principal, id).await {
        Ok(d) => {
            Ok(Redirect::to(&format!("{HOME}/{}?done=redeliver", d.endpoint_id)).into_response())
        }
        Err(e) => failed(&state, &principal, e).await,
    }
}

#[derive(Deserialize)]
pub struct LogPageParams {
    #[serde(default)]
    done: String,
    cursor: Option<String>,
}

/// One endpoint's delivery log, newest first.
pub async fn log(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    Path(id): Path<WebhookId>,
    Query(params): Query<LogPageParams>,
) -> ApiResult<Response> {
    if !principal.role.allows(Permission::ReadIntegrations) {
        return Ok(not_allowed(&principal).into_response());
    }
    let endpoint = state
        .store
        .webhook(principal.workspace, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let query = LogParams {
        cursor: params.cursor.clone(),
        limit: Some(25),
    };
    let page = delivery_log(&state, &principal, id, &query).await?;
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let content = html! { div.narrow {
        div.page-head {
            h1 { "Delivery log" }
            a href=(HOME) { "All endpoints" }
        }
        @if let Some(done) = done_message(&params.done) { p.flash role="status" { (done) } }
        section.card aria-labelledby="endpoint-title" {
            div.card-head {
                h2 #endpoint-title.mono { (endpoint.url) }
                @if endpoint.active { span.status.active { "active" } }
                @else { span.status.revoked { "disabled" } }
                @if manage && endpoint.active {
                    form.inline.ping method="post" action=(format!("{HOME}/{}/ping", endpoint.id)) {
                        (csrf_field(&principal))
                        button type="submit" { "Send a test ping" }
                    }
                }
            }
            p.muted { (events_label(&endpoint))
                @if !endpoint.description.is_empty() { " · " (endpoint.description) } }
            @if page.data.is_empty() {
                p.empty-inline { "Nothing sent yet." }
            } @else {
                div.table-wrap {
                    table.deliveries {
                        thead { tr {
                            th scope="col" { "Created" } th scope="col" { "Event" } th scope="col" { "Status" }
                            th scope="col" { "Attempts" } th scope="col" { "Last response" }
                            th scope="col" { "Next attempt" }
                            @if manage { th.actions scope="col" { span.sr-only { "Actions" } } }
                        } }
                        tbody { @for d in &page.data { (delivery_row(&principal, d, manage)) } }
                    }
                }
            }
            @if let Some(cursor) = &page.next_cursor {
                p { a href=(format!("{HOME}/{}?cursor={cursor}", endpoint.id)) { "Older deliveries →" } }
            }
        }
    } };
    Ok(layout("Delivery log", &principal, Nav::Settings, content).into_response())
}

fn state_class(state: DeliveryState) -> &'static str {
    match state {
        DeliveryState::Succeeded => "status active",
        DeliveryState::Failed | DeliveryState::GivenUp => "status revoked",
        DeliveryState::Pending => "status",
    }
}

fn delivery_row(principal: &Principal, logged: &LoggedDelivery, manage: bool) -> Markup {
    let d = &logged.delivery;
    let last = logged.attempt_log.last();
    let time = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! {
        tr data-delivery=(d.id) {
            td.date { (time(d.created_at)) }
            td { code { (d.event.as_str()) } }
            td { span class=(state_class(d.status)) { (d.status.as_str().replace('_', " ")) } }
            td { (d.attempts) }
            td.response {
                @match last {
                    None => { span.muted { "—" } }
                    Some(a) => {
                        @match a.status_code {
                            Some(code) => { strong { "HTTP " (code) } }
                            None => { span { (a.error.as_deref().unwrap_or("no answer")) } }
                        }
                        " " span.muted { (a.duration_ms) " ms" }
                        @if !a.response_excerpt.is_empty() {
                            div.mono.excerpt { (a.response_excerpt.chars().take(120).collect::<String>()) }
                        }
                    }
                }
            }
            td.date { @match d.next_attempt_at { Some(t) => (time(t)), None => span.muted { "—" } } }
            @if manage {
                td.actions {
                    form.inline method="post" action=(format!("{HOME}/deliveries/{}/redeliver", d.id)) {
                        (csrf_field(principal))
                        button type="submit" { "Redeliver" }
                    }
                }
            }
        }
    }
}
