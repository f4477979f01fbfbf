//! `/settings/call-tracking`: the tracking numbers and who holds each
//! right now (a visitor until when, or a static number's source), adding
//! and removing them, the settings the site script follows (how long a
//! visitor keeps a number, where it goes on the page, the default number),
//! and the last 30 days: calls by source as a chart, and pool misses.
//! Every member looks; owners and admins change. The operations are the
//! API's (`calltracking`), which check the role.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{TimeDelta, Utc};
use maud::{html, Markup};
use seamline_core::calltracking::{display, Settings};
use seamline_core::role::Permission;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::supervisor::bars;
use super::{
    csrf_field, form_error, layout, with_form_error, DoneParams, FormError, Nav, PlainForm,
};
use crate::auth::{FormCsrf, Principal};
use crate::calltracking::{
    add_number, numbers, remove_number, save_settings, settings_of, stats, NewNumber, NumberView,
    StatsView,
};
use crate::error::ApiResult;
use crate::AppState;

const HOME: &str = "/settings/call-tracking";
/// The period the page's figures cover.
const DAYS: i64 = 30;

/// A failed form, shown again with what was typed.
enum Failed<'a> {
    Number(&'a FormError, &'a NumberForm),
    Settings(&'a FormError, &'a SettingsForm),
    Other(&'a FormError),
}

pub async fn page(
    State(state): State<AppState>,
    super::UiPrincipal(principal): super::UiPrincipal,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    let done = match params.done.as_str() {
        "added" => Some("Number added."),
        "removed" => Some("Number removed. Calls it had already taken keep their source."),
        "saved" => Some("Settings saved. Pages pick them up on their next view."),
        _ => None,
    };
    render(&state, &principal, done, None).await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    done: Option<&str>,
    failed: Option<Failed<'_>>,
) -> ApiResult<Markup> {
    let list = numbers(state, principal).await?;
    let settings = settings_of(state.store.as_ref(), principal.workspace).await?;
    let to = Utc::now();
    let figures = stats(state, principal, to - TimeDelta::days(DAYS), to).await?;
    let manage = principal.role.allows(Permission::ManageWorkspace);
    let content = html! { div.narrow #call-tracking {
        div.page-head { h1 { "Call tracking" } }
        @if let Some(done) = done { p.flash role="status" { (done) } }
        @if let Some(Failed::Other(error)) = &failed { (form_error(Some(error))) }
        (figures_card(&figures))
        section.card aria-labelledby="numbers-title" {
            div.card-head {
                h2 #numbers-title { "Numbers" }
                span.muted { (figures.pool_held) " of " (figures.pool_size) " pool numbers held now" }
            }
            p.muted {
                "Pool numbers are shown to one site visitor at a time, so a call to one tells whose visit, "
                "and which ad, it came from. Static numbers stand for one source each: an offline ad, "
                "a partner site. The site widget script puts the visitor's number on the page."
            }
            @if !manage { p.muted { "Owners and admins add and remove numbers." } }
            @if list.is_empty() {
                p.empty-inline { "No tracking numbers yet." }
            } @else {
                div.table-wrap {
                    table.data #numbers {
                        thead { tr {
                            th scope="col" { "Number" } th scope="col" { "Type" }
                            th scope="col" { "State" }
                            th.actions scope="col" { span.sr-only { "Actions" } }
                        } }
                        tbody { @for n in &list { (number_row(principal, n, manage)) } }
                    }
                }
            }
            @if manage {
                @let (error, typed) = match &failed {
                    Some(Failed::Number(e, typed)) => (Some(*e), Some(*typed)),
                    _ => (None, None),
                };
                (add_form(principal, error, typed))
            }
        }
        @let (error, typed) = match &failed {
            Some(Failed::Settings(e, typed)) => (Some(*e), Some(*typed)),
            _ => (None, None),
        };
        (settings_card(principal, &settings, manage, error, typed))
    } };
    Ok(layout("Call tracking", principal, Nav::Settings, content))
}

fn figures_card(figures: &StatsView) -> Markup {
    let rows = figures.calls_by_source.iter().map(|s| {
        (
            s.source.as_str(),
            u32::try_from(s.calls).unwrap_or(u32::MAX),
        )
    });
    html! {
        section.card #call-stats aria-labelledby="stats-title" {
            div.card-head {
                h2 #stats-title { "Last " (DAYS) " days" }
                span.muted { "Calls to tracking numbers by the ad source behind them" }
            }
            div.stats.ct-figures {
                div.stat { span.label { "Tracked calls" } span.value #calls-total { (figures.calls) } }
                div.stat { span.label { "Sources" } span.value { (figures.calls_by_source.len()) } }
                div.stat title="Page views shown the default number because every pool number was held" {
                    span.label { "Pool misses" } span.value #pool-misses { (figures.misses) }
                }
                div.stat { span.label { "Pool held now" }
                    span.value { (figures.pool_held) " / " (figures.pool_size) } }
            }
            div.ct-chart #calls-by-source { (bars(rows)) }
            @if figures.misses > 0 {
                p.muted { "Misses mean visitors saw the default number and their calls cannot be told apart: "
                    "add pool numbers (about peak visitors at once × (visit + tail))." }
            }
        }
    }
}

fn number_row(principal: &Principal, n: &NumberView, manage: bool) -> Markup {
    html! {
        tr data-number=(n.number) {
            td { strong { (n.display) } div.muted.mono { (n.number) } }
            td { span.chip { (n.kind.as_str()) } }
            td {
                @match (n.state, &n.held_by) {
                    ("held", Some(holder)) => {
                        span.status { "held" } " "
                        span { "by visitor " code title=(holder.anonymous_id) { (short(&holder.anonymous_id)) }
                            " until " (holder.until.format("%H:%M:%S UTC")) }
                        div.muted { "from " (holder.source) }
                    }
                    ("static", _) => {
                        span.status.active { "static" } " → " (n.source_label.as_deref().unwrap_or(""))
                    }
                    _ => { span.status.active { "free" } }
                }
            }
            td.actions {
                @if manage {
                    form.inline method="post" action=(format!("{HOME}/numbers/{}/delete", n.id))
                        data-confirm=(format!("Remove {}? Calls to it will no longer be tracked.", n.display)) {
                        (csrf_field(principal))
                        button.danger type="submit" { "Remove" }
                    }
                }
            }
        }
    }
}

/// The start of a long visitor id, enough to tell two apart.
fn short(id: &str) -> String {
    let mut out: String = id.chars().take(12).collect();
    if id.chars().count() > 12 {
        out.push('…');
    }
    out
}

fn add_form(
    principal: &Principal,
    error: Option<&FormError>,
    typed: Option<&NumberForm>,
) -> Markup {
    let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
    let value = |pick: fn(&NumberForm) -> &str| typed.map_or("", pick);
    let kind = typed.map_or("pool", |t| t.kind.as_str());
    html! {
        form.stacked #add-number method="post" action=(format!("{HOME}/numbers")) {
            h3 { "Add a number" }
            (form_error(error))
            (csrf_field(principal))
            div.fields {
                label.field {
                    span { "Number" }
                    input type="tel" name="number" value=(value(|t| &t.number)) required
                        placeholder="+7 495 111-22-33" aria-invalid=[bad("number")];
                }
                label.field {
                    span { "Type" }
                    select name="kind" aria-invalid=[bad("kind")] {
                        option value="pool" selected[kind == "pool"] { "Pool" }
                        option value="static" selected[kind == "static"] { "Static" }
                    }
                }
                label.field {
                    span { "utm_source (static)" }
                    input type="text" name="utm_source" value=(value(|t| &t.utm_source))
                        placeholder="yandex" aria-invalid=[bad("source.utm_source")];
                }
                label.field {
                    span { "utm_medium (optional)" }
                    input type="text" name="utm_medium" value=(value(|t| &t.utm_medium)) placeholder="cpc";
                }
                label.field {
                    span { "utm_campaign (optional)" }
                    input type="text" name="utm_campaign" value=(value(|t| &t.utm_campaign)) placeholder="spring";
                }
                label.field {
                    span { "Label (offline sources)" }
                    input type="text" name="label" value=(value(|t| &t.label))
                        placeholder="Billboard on Tverskaya" aria-invalid=[bad("source.label")];
                }
            }
            button.primary type="submit" { "Add number" }
        }
    }
}

fn settings_card(
    principal: &Principal,
    settings: &Settings,
    manage: bool,
    error: Option<&FormError>,
    typed: Option<&SettingsForm>,
) -> Markup {
    let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
    let shown = SettingsForm::from(settings);
    let form = typed.unwrap_or(&shown);
    html! {
        section.card aria-labelledby="ct-settings-title" {
            h2 #ct-settings-title { "On the site" }
            p.muted {
                "The site widget script (see " a href="/settings/widget" { "Site widget" } ") asks for the visitor's "
                "number on every page, writes it into the elements matching the selector and wherever the page shows "
                "the site's phone (in text and tel: links), and keeps it while the page is open."
            }
            form.stacked #call-tracking-settings method="post" action=(format!("{HOME}/settings")) {
                (form_error(error))
                (csrf_field(principal))
                fieldset disabled[!manage] {
                    div.fields {
                        label.field {
                            span { "Kept after last activity, s" }
                            input type="number" name="tail_s" min="5" max="86400" value=(form.tail_s)
                                aria-invalid=[bad("tail_s")];
                        }
                        label.field {
                            span { "Phone element (CSS selector)" }
                            input type="text" name="selector" value=(form.selector)
                                placeholder=".phone" aria-invalid=[bad("selector")];
                        }
                        label.field {
                            span { "Site's own phone (replaced)" }
                            input type="tel" name="site_phone" value=(form.site_phone)
                                placeholder="+7 495 000-11-22" aria-invalid=[bad("site_phone")];
                        }
                        label.field {
                            span { "Default number (pool full)" }
                            input type="tel" name="default_number" value=(form.default_number)
                                placeholder="+7 495 111-22-99" aria-invalid=[bad("default_number")];
                        }
                    }
                    @if manage { button.primary type="submit" { "Save settings" } }
                }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NumberForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    utm_source: String,
    #[serde(default)]
    utm_medium: String,
    #[serde(default)]
    utm_campaign: String,
    #[serde(default)]
    label: String,
}

#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    tail_s: String,
    #[serde(default)]
    selector: String,
    #[serde(default)]
    site_phone: String,
    #[serde(default)]
    default_number: String,
}

has_csrf!(NumberForm, SettingsForm);

impl NumberForm {
    fn body(&self) -> NewNumber {
        let source = (self.kind == "static").then(|| {
            let mut source = serde_json::Map::new();
            for (key, typed) in [
                ("utm_source", &self.utm_source),
                ("utm_medium", &self.utm_medium),
                ("utm_campaign", &self.utm_campaign),
                ("label", &self.label),
            ] {
                if !typed.trim().is_empty() {
                    source.insert(key.into(), Value::from(typed.trim()));
                }
            }
            Value::Object(source)
        });
        NewNumber {
            number: self.number.clone(),
            kind: Some(self.kind.clone()),
            source,
        }
    }
}

impl From<&Settings> for SettingsForm {
    fn from(s: &Settings) -> Self {
        Self {
            csrf_token: String::new(),
            tail_s: s.tail_s.to_string(),
            selector: s.selector.clone(),
            site_phone: s.site_phone.as_deref().map(display).unwrap_or_default(),
            default_number: s.default_number.as_deref().map(display).unwrap_or_default(),
        }
    }
}

impl SettingsForm {
    fn body(&self) -> Value {
        let tail: Value = self
            .tail_s
            .trim()
            .parse::<u64>()
            .map_or_else(|_| Value::from(self.tail_s.trim()), Value::from);
        json!({
            "tail_s": tail,
            "selector": self.selector,
            "site_phone": self.site_phone,
            "default_number": self.default_number,
        })
    }
}

pub async fn add(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<NumberForm>,
) -> ApiResult<Response> {
    match add_number(&state, &principal, &form.body()).await {
        Ok(_) => Ok(Redirect::to(&format!("{HOME}?done=added")).into_response()),
        Err(e) => {
            let (state, principal, form) = (&state, &principal, &form);
            with_form_error(e, |error| async move {
                let error = match error.field {
                    None if error.status == axum::http::StatusCode::CONFLICT => FormError {
                        message: "The workspace has this number already.".into(),
                        field: Some("number".into()),
                        ..error
                    },
                    _ => error,
                };
                render(state, principal, None, Some(Failed::Number(&error, form))).await
            })
            .await
        }
    }
}

pub async fn save(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<SettingsForm>,
) -> ApiResult<Response> {
    match save_settings(&state, &principal, &form.body()).await {
        Ok(_) => Ok(Redirect::to(&format!("{HOME}?done=saved")).into_response()),
        Err(e) => {
            let (state, principal, form) = (&state, &principal, &form);
            with_form_error(e, |error| async move {
                render(state, principal, None, Some(Failed::Settings(&error, form))).await
            })
            .await
        }
    }
}

pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match remove_number(&state, &principal, id).await {
        Ok(()) => Ok(Redirect::to(&format!("{HOME}?done=removed")).into_response()),
        Err(e) => {
            let (state, principal) = (&state, &principal);
            with_form_error(e, |error| async move {
                render(state, principal, None, Some(Failed::Other(&error))).await
            })
            .await
        }
    }
}
