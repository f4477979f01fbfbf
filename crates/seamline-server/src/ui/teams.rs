//! `/settings/teams`: each team's members and their capacity, routing
//! rule, channels, business hours, greeting and out-of-hours reply, and
//! its bot flow as JSON; and the workspace's satisfaction survey switch.
//!
//! Everyone may read; owners, admins and supervisors change. The forms go
//! through the same checks as `/api/v1/teams`: an error is shown next to
//! the field it names, with what was typed kept.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Weekday;
use maud::{html, Markup};
use seamline_core::inbox::bot::OutOfHours;
use seamline_core::inbox::routing::Rule;
use seamline_core::inbox::Channel;
use seamline_core::role::Permission;
use seamline_core::{FieldError, MemberId, TeamId};
use seamline_store::Member;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{csrf_field, form_error, layout, DoneParams, FormError, Nav, UiPrincipal};
use crate::api::reports::change_csat_settings;
use crate::api::teams::{capacity, change_capacity, save_team, team_views, TeamView};
use crate::auth::{FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::inbox::automation::csat::{settings_of, CsatSettings};
use crate::AppState;

const PAGE: &str = "/settings/teams";

/// Why the page is shown again: a form failed, on a team or not.
struct Failed {
    team: Option<TeamId>,
    error: FormError,
    /// What was typed into the team's settings form.
    typed: Option<TeamForm>,
}

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(params): Query<DoneParams>,
) -> ApiResult<Markup> {
    render(&state, &principal, None, params.done == "saved").await
}

async fn render(
    state: &AppState,
    principal: &Principal,
    failed: Option<Failed>,
    saved: bool,
) -> ApiResult<Markup> {
    let store = state.store.as_ref();
    let teams = team_views(store, principal.workspace).await?;
    let members = store.list_members(principal.workspace).await?;
    let csat = settings_of(store, principal.workspace).await?;
    let manage = principal.role.allows(Permission::ManageTeams);
    let page = Page {
        principal,
        members: &members,
        manage,
        failed: failed.as_ref(),
    };
    let general = failed
        .as_ref()
        .filter(|f| f.team.is_none() && f.typed.is_none());
    let content = html! { div.narrow.teams-page {
        div.page-head { h1 { "Teams" } }
        @if saved { p.flash role="status" { "Saved." } }
        @if let Some(failed) = general { (form_error(Some(&failed.error))) }
        @if !manage { p.muted { "Owners, admins and supervisors change teams." } }
        (page.survey(csat))
        @for team in &teams { (page.team(team)) }
        @if teams.is_empty() { p.empty-inline { "No teams yet: every conversation goes to the whole workspace." } }
        @if manage { (page.new_team()) }
    } };
    Ok(layout("Teams", principal, Nav::Settings, content))
}

struct Page<'a> {
    principal: &'a Principal,
    members: &'a [Member],
    manage: bool,
    failed: Option<&'a Failed>,
}

impl Page<'_> {
    fn survey(&self, csat: CsatSettings) -> Markup {
        html! {
            section.card #csat aria-labelledby="csat-title" {
                h2 #csat-title { "Satisfaction survey" }
                p.muted { "After a conversation is resolved, the bot asks the customer on their channel: "
                    "“How would you rate our help? Reply 1 to 5.” Answers are reported per operator and team "
                    "(" code { "GET /api/v1/reports/csat" } ")." }
                form.inline method="post" action="/settings/teams/csat" {
                    (csrf_field(self.principal))
                    label.check {
                        input type="checkbox" name="survey" value="on" checked[csat.survey] disabled[!self.manage];
                        " Ask after every resolve"
                    }
                    @if self.manage { button type="submit" { "Save" } }
                }
            }
        }
    }

    fn team(&self, team: &TeamView) -> Markup {
        let failed = self.failed.filter(|f| f.team == Some(team.id));
        let typed = failed.and_then(|f| f.typed.clone());
        let form = typed.unwrap_or_else(|| TeamForm::from(team));
        let error = failed.map(|f| &f.error);
        let anchor = format!("team-{}", team.id);
        html! {
            section.card.team id=(anchor) aria-labelledby={ (anchor) "-title" } {
                div.card-head {
                    h2 id={ (anchor) "-title" } { (team.name) }
                    span.muted { (team.members.len()) @if team.members.len() == 1 { " member" } @else { " members" } }
                }
                @if let Some(error) = error.filter(|e| e.field.is_none()) { (form_error(Some(error))) }
                (self.team_members(team, error))
                (self.settings_form(team.id, &form, error))
                @if self.manage {
                    form.inline.delete-team method="post" action={ "/settings/teams/" (team.id) "/delete" } {
                        (csrf_field(self.principal))
                        button.danger type="submit" { "Delete team" }
                    }
                }
            }
        }
    }

    fn team_members(&self, team: &TeamView, error: Option<&FormError>) -> Markup {
        let inside: BTreeSet<MemberId> = team.members.iter().map(|m| m.member_id).collect();
        let outside: Vec<&Member> = self
            .members
            .iter()
            .filter(|m| !inside.contains(&m.id))
            .collect();
        html! {
            h3 { "Members" }
            @if let Some(error) = error.filter(|e| e.is_about("capacity") || e.is_about("member_id")) {
                (form_error(Some(error)))
            }
            @if team.members.is_empty() {
                p.empty-inline { "Nobody yet." }
            } @else {
                div.table-wrap { table.team-members {
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Presence" } th scope="col" { "Load" }
                        th scope="col" { "Capacity" }
                        @if self.manage { th.actions scope="col" { span.sr-only { "Actions" } } }
                    } }
                    tbody { @for m in &team.members {
                        tr {
                            td {
                                @if m.name.is_empty() { (m.email) } @else { (m.name) div.faint { (m.email) } }
                            }
                            td { span class={ "state " (m.presence.as_str()) } { (m.presence.as_str()) } }
                            td { (m.load) }
                            td {
                                form.inline method="post" action={ "/settings/teams/" (team.id) "/capacity/" (m.member_id) } {
                                    (csrf_field(self.principal))
                                    input.capacity type="number" name="capacity" min="0" max="100" value=(m.capacity)
                                        aria-label={ "Capacity of " (m.email) } disabled[!self.manage];
                                    @if self.manage { button type="submit" { "Set" } }
                                }
                            }
                            @if self.manage { td.actions {
                                form.inline method="post" action={ "/settings/teams/" (team.id) "/members/" (m.member_id) "/remove" } {
                                    (csrf_field(self.principal))
                                    button.quiet.button type="submit" { "Remove" }
                                }
                            } }
                        }
                    } }
                } }
            }
            @if self.manage && !outside.is_empty() {
                form.inline.add-member method="post" action={ "/settings/teams/" (team.id) "/members" } {
                    (csrf_field(self.principal))
                    select name="member_id" aria-label="Member to add" {
                        @for m in &outside { option value=(m.id) { (if m.name.is_empty() { &m.email } else { &m.name }) } }
                    }
                    button type="submit" { "Add to team" }
                }
            }
        }
    }

    fn settings_form(&self, id: TeamId, form: &TeamForm, error: Option<&FormError>) -> Markup {
        let about = |prefix: &str| {
            error.filter(|e| {
                e.field.as_deref().is_some_and(|f| {
                    f == prefix
                        || f.starts_with(&format!("{prefix}."))
                        || f.starts_with(&format!("{prefix}["))
                })
            })
        };
        let invalid = |prefix: &str| about(prefix).map(|_| "true");
        let note = |prefix: &str| {
            html! {
                @if let Some(e) = about(prefix) { p.field-error role="alert" { (e.message) } }
            }
        };
        let rule = |value: &str, label: &str| {
            html! {
                option value=(value) selected[form.rule == value] { (label) }
            }
        };
        html! {
            form.team-form method="post" action={ "/settings/teams/" (id) } {
                (csrf_field(self.principal))
                fieldset disabled[!self.manage] {
                    h3 { "Routing" }
                    div.fields {
                        label.field { span { "Name" }
                            input type="text" name="name" value=(form.name) required maxlength="100" aria-invalid=[invalid("name")];
                            (note("name")) }
                        label.field { span { "Rule" }
                            select name="rule" aria-invalid=[invalid("routing")] {
                                (rule("round_robin", "Round robin"))
                                (rule("least_loaded", "Least loaded"))
                            }
                            (note("routing")) }
                        label.check.field-check {
                            input type="checkbox" name="sticky" value="on" checked[form.sticky.is_some()];
                            " Returning customers go to the operator who served them" }
                    }
                    fieldset.channels aria-invalid=[invalid("channels")] {
                        legend { "Channels whose new conversations come here" }
                        @for channel in Channel::ALL.into_iter().filter(|c| c.is_customer_facing()) {
                            label.check {
                                input type="checkbox" name={ "channel." (channel.as_str()) } value="on"
                                    checked[form.has_channel(channel)];
                                " " (channel.as_str())
                            }
                        }
                        (note("channels"))
                    }
                    h3 { "Business hours" }
                    div.fields {
                        label.field { span { "Time zone" }
                            input type="text" name="time_zone" value=(form.time_zone) placeholder="Europe/Moscow"
                                aria-invalid=[invalid("hours.time_zone")];
                            small.muted { "Empty: always open." } }
                        label.field { span { "Weekly hours" }
                            textarea name="weekly" rows="4" placeholder="Mon 09:00-18:00" aria-invalid=[invalid("hours.weekly")] { (form.weekly) }
                            small.muted { "One day a line, like Mon 09:00-18:00." } }
                        label.field { span { "Holidays" }
                            textarea name="holidays" rows="4" placeholder="2026-12-31" aria-invalid=[invalid("hours.holidays")] { (form.holidays) }
                            small.muted { "Closed all day; one date a line." } }
                    }
                    (note("hours"))
                    h3 { "Greeting and bot" }
                    div.fields {
                        label.field.wide { span { "Greeting (in hours)" }
                            textarea name="greeting" rows="3" aria-invalid=[invalid("bots.greeting")] { (form.greeting) }
                            (note("bots.greeting")) }
                        label.field.wide { span { "Out-of-hours reply" }
                            textarea name="out_of_hours" rows="3" aria-invalid=[invalid("bots.out_of_hours")] { (form.out_of_hours) }
                            (note("bots.out_of_hours")) }
                    }
                    label.field.flow { span { "Bot flow (JSON)" }
                        textarea.code name="flow" rows="12" spellcheck="false" aria-invalid=[invalid("bots.flow")]
                            placeholder=r#"{"start": "menu", "steps": {…}}"# { (form.flow) }
                        @if let Some(e) = about("bots.flow") {
                            p.field-error role="alert" { code { (e.field.as_deref().unwrap_or_default()) } ": " (e.message) }
                        }
                        small.muted { "Steps: send, buttons, keywords, ask (name, phone, email), faq, hand_off, end. "
                            "Empty: no bot, customers go straight to operators." } }
                    @if self.manage { div.form-actions { button.primary type="submit" { "Save team" } } }
                }
            }
        }
    }

    fn new_team(&self) -> Markup {
        let failed = self
            .failed
            .filter(|f| f.team.is_none() && f.typed.is_some());
        let typed = failed
            .and_then(|f| f.typed.as_ref())
            .map_or("", |t| t.name.as_str());
        html! {
            section.card #new-team aria-labelledby="new-team-title" {
                h2 #new-team-title { "New team" }
                @if let Some(failed) = failed { (form_error(Some(&failed.error))) }
                form.inline method="post" action=(PAGE) {
                    (csrf_field(self.principal))
                    input type="text" name="name" value=(typed) required maxlength="100" aria-label="Team name" placeholder="Support";
                    button.primary type="submit" { "Create team" }
                }
            }
        }
    }
}

/// A team's settings form as typed: text until checked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TeamForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    sticky: Option<String>,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    weekly: String,
    #[serde(default)]
    holidays: String,
    #[serde(default)]
    greeting: String,
    #[serde(default)]
    out_of_hours: String,
    #[serde(default)]
    flow: String,
    /// `channel.<name>` checkboxes.
    #[serde(flatten)]
    rest: BTreeMap<String, String>,
}

has_csrf!(TeamForm);

impl From<&TeamView> for TeamForm {
    fn from(team: &TeamView) -> Self {
        let hours = team.hours.as_ref();
        let rest = team
            .channels
            .iter()
            .map(|c| (format!("channel.{}", c.as_str()), "on".to_owned()))
            .collect();
        Self {
            csrf_token: String::new(),
            name: team.name.clone(),
            rule: match team.routing.rule {
                Rule::RoundRobin => "round_robin",
                Rule::LeastLoaded => "least_loaded",
            }
            .to_owned(),
            sticky: team.routing.sticky.then(|| "on".to_owned()),
            time_zone: hours.map(|h| h.time_zone.clone()).unwrap_or_default(),
            weekly: hours.map_or_else(String::new, |h| {
                h.weekly
                    .iter()
                    .map(|s| format!("{} {}-{}", s.day, s.from, s.to))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            holidays: hours.map_or_else(String::new, |h| {
                h.holidays
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            greeting: team.bots.greeting.clone().unwrap_or_default(),
            out_of_hours: match &team.bots.out_of_hours {
                Some(OutOfHours::Message { text }) => text.clone(),
                _ => String::new(),
            },
            flow: team
                .bots
                .flow
                .as_ref()
                .and_then(|f| serde_json::to_value(f).ok())
                .and_then(|f| serde_json::to_string_pretty(&without_nulls(f)).ok())
                .unwrap_or_default(),
            rest,
        }
    }
}

impl TeamForm {
    fn has_channel(&self, channel: Channel) -> bool {
        self.rest
            .contains_key(&format!("channel.{}", channel.as_str()))
    }

    /// The body `/api/v1/teams/{id}` takes; an out-of-hours flow set
    /// through the API is kept while the reply box is empty.
    fn body(&self, current: &TeamView) -> Result<Value, FieldError> {
        let channels: Vec<&str> = self
            .rest
            .keys()
            .filter_map(|k| k.strip_prefix("channel."))
            .collect();
        let hours = if self.time_zone.trim().is_empty() {
            Value::Null
        } else {
            json!({
                "time_zone": self.time_zone.trim(),
                "weekly": weekly(&self.weekly)?,
                "holidays": lines(&self.holidays),
            })
        };
        let out_of_hours = match (&current.bots.out_of_hours, self.out_of_hours.trim()) {
            (Some(flow @ OutOfHours::Flow { .. }), "") => json!(flow),
            (_, "") => Value::Null,
            (_, text) => json!({"type": "message", "text": text}),
        };
        Ok(json!({
            "name": self.name,
            "routing": {"rule": self.rule, "sticky": self.sticky.is_some()},
            "channels": channels,
            "hours": hours,
            "bots": {"greeting": self.greeting, "out_of_hours": out_of_hours, "flow": self.flow},
        }))
    }
}

/// `value` without its null fields: the flow as a person would write it.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(fields) => fields
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// "Mon 09:00-18:00" lines as the API's spans.
fn weekly(text: &str) -> Result<Vec<Value>, FieldError> {
    lines(text)
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let bad = || {
                FieldError::new(
                    "invalid_span",
                    format!("hours.weekly[{i}]"),
                    format!("{line:?}: write a day and hours, like Mon 09:00-18:00"),
                )
            };
            let (day, span) = line.split_once(char::is_whitespace).ok_or_else(bad)?;
            let day: Weekday = day.parse().map_err(|_| bad())?;
            let (from, to) = span.trim().split_once('-').ok_or_else(bad)?;
            Ok(json!({"day": day.to_string(), "from": from.trim(), "to": to.trim()}))
        })
        .collect()
}

/// Answers a form: back to the page on success, else the page again with
/// the error (`team`, `typed`: where to show it).
async fn answer(
    state: &AppState,
    principal: &Principal,
    result: ApiResult<Option<TeamId>>,
    team: Option<TeamId>,
    typed: Option<TeamForm>,
) -> ApiResult<Response> {
    match result {
        Ok(anchor) => {
            let to = match anchor {
                Some(id) => format!("{PAGE}?done=saved#team-{id}"),
                None => format!("{PAGE}?done=saved"),
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(error) => {
            let error = match error {
                // Shown next to its field: the message alone says it.
                ApiError::Invalid(errors) if !errors.is_empty() => FormError {
                    status: StatusCode::BAD_REQUEST,
                    message: super::sentence(&errors[0].message),
                    field: Some(errors[0].field.clone()),
                },
                other => FormError::from_api(other)?,
            };
            let status = error.status;
            let failed = Failed { team, error, typed };
            Ok((status, render(state, principal, Some(failed), false).await?).into_response())
        }
    }
}

pub async fn save(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<TeamId>,
    FormCsrf(principal, form): FormCsrf<TeamForm>,
) -> ApiResult<Response> {
    let result = async {
        let current = team_views(state.store.as_ref(), principal.workspace)
            .await?
            .into_iter()
            .find(|t| t.id == id)
            .ok_or(ApiError::NotFound("team"))?;
        let body = form.body(&current)?;
        save_team(&state, &principal, Some(id), &body).await?;
        Ok(Some(id))
    }
    .await;
    answer(&state, &principal, result, Some(id), Some(form)).await
}

pub async fn create(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<TeamForm>,
) -> ApiResult<Response> {
    let body = json!({"name": form.name});
    let result = save_team(&state, &principal, None, &body)
        .await
        .map(|team| Some(team.id));
    answer(&state, &principal, result, None, Some(form)).await
}

pub async fn delete(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<TeamId>,
    FormCsrf(principal, _): FormCsrf<super::PlainForm>,
) -> ApiResult<Response> {
    principal.require(Permission::ManageTeams)?;
    let store = state.store.as_ref();
    let result = async {
        store
            .team(principal.workspace, id)
            .await?
            .ok_or(ApiError::NotFound("team"))?;
        store.delete_team(principal.workspace, id).await?;
        Ok(None)
    }
    .await;
    answer(&state, &principal, result, None, None).await
}

#[derive(Deserialize)]
pub struct MemberForm {
    csrf_token: String,
    member_id: String,
}

has_csrf!(MemberForm);

pub async fn add_member(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<TeamId>,
    FormCsrf(principal, form): FormCsrf<MemberForm>,
) -> ApiResult<Response> {
    let result = async {
        principal.require(Permission::ManageTeams)?;
        let member: MemberId = form
            .member_id
            .trim()
            .parse()
            .map_err(|_| ApiError::field("invalid_id", "member_id", "not a member"))?;
        state
            .store
            .add_team_member(principal.workspace, id, member)
            .await?;
        Ok(Some(id))
    }
    .await;
    answer(&state, &principal, result, Some(id), None).await
}

pub async fn remove_member(
    State(state): State<AppState>,
    axum::extract::Path((id, member)): axum::extract::Path<(TeamId, MemberId)>,
    FormCsrf(principal, _): FormCsrf<super::PlainForm>,
) -> ApiResult<Response> {
    let result = async {
        principal.require(Permission::ManageTeams)?;
        state
            .store
            .remove_team_member(principal.workspace, id, member)
            .await?;
        Ok(Some(id))
    }
    .await;
    answer(&state, &principal, result, Some(id), None).await
}

#[derive(Deserialize)]
pub struct CapacityForm {
    csrf_token: String,
    capacity: String,
}

has_csrf!(CapacityForm);

pub async fn set_capacity(
    State(state): State<AppState>,
    axum::extract::Path((id, member)): axum::extract::Path<(TeamId, MemberId)>,
    FormCsrf(principal, form): FormCsrf<CapacityForm>,
) -> ApiResult<Response> {
    let result = async {
        let number: Value = form.capacity.trim().parse().unwrap_or(Value::Null);
        let capacity = capacity(&number)?;
        change_capacity(&state, &principal, member, Some(capacity)).await?;
        Ok(Some(id))
    }
    .await;
    answer(&state, &principal, result, Some(id), None).await
}

#[derive(Deserialize)]
pub struct SurveyForm {
    csrf_token: String,
    #[serde(default)]
    survey: Option<String>,
}

has_csrf!(SurveyForm);

pub async fn survey(
    State(state): State<AppState>,
    FormCsrf(principal, form): FormCsrf<SurveyForm>,
) -> ApiResult<Response> {
    let settings = CsatSettings {
        survey: form.survey.is_some(),
    };
    let result = change_csat_settings(&state, &principal, settings)
        .await
        .map(|()| None);
    answer(&state, &principal, result, None, None).await
}
