//! One customer profile: identifiers, traits, computed fields, consent,
//! merges and conflicts, the timeline; and the forms that change it (undo
//! a merge, merge by hand, record consent, erase). Handlers parse and
//! render; the work is done by the REST API's operations, so a page and
//! the API never disagree.
//!
//! As in settings, a form that fails is answered with the page again and
//! the error next to the form; one that works redirects with a notice.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::tracking::EventType;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::{Backend, ConflictRecord, ConsentRecord, MergeRecord, StoredEvent};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::format::{
    ago, conflict_reason, full_time, identifier_value, kind_label, money, thousands, time_ago,
    time_exact,
};
use super::profiles::{display_name, revenue, title, ProfileLink};
use super::{
    csrf_field, form_error, layout, with_form_error, FormError, Nav, PlainForm, UiPrincipal,
};
use crate::api::profiles::{
    add_consent, dismiss, erase_person, merge_profiles, profile_view, timeline_page, undo_merge,
    ConsentBody, ProfileView,
};
use crate::auth::{FormCsrf, Principal};
use crate::error::{ApiError, ApiResult};
use crate::identity::consent::{self, CHANNELS, PURPOSES};
use crate::identity::profiles::{amount_of, channel_of, live_profile};
use crate::AppState;

/// Events on one page of a timeline.
const TIMELINE_SIZE: u32 = 25;

// --------------------------------------------------------- notices

/// Notices after a form worked: fixed texts, chosen by a query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Done {
    Unmerged,
    Merged,
    ConsentRecorded,
    Dismissed,
    Erased,
}

impl Done {
    const ALL: [Done; 5] = [
        Done::Unmerged,
        Done::Merged,
        Done::ConsentRecorded,
        Done::Dismissed,
        Done::Erased,
    ];

    pub fn parse(name: &str) -> Option<Done> {
        Done::ALL.into_iter().find(|done| done.name() == name)
    }

    /// The query value.
    pub fn name(self) -> &'static str {
        match self {
            Done::Unmerged => "unmerged",
            Done::Merged => "merged",
            Done::ConsentRecorded => "consent",
            Done::Dismissed => "dismissed",
            Done::Erased => "erased",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Done::Unmerged => "Merge undone: the profile was split in two.",
            Done::Merged => {
                "Profiles merged. The merge is listed in the history and can be undone."
            }
            Done::ConsentRecorded => "Consent recorded.",
            Done::Dismissed => "Conflict dismissed: the profiles stay apart.",
            Done::Erased => "Personal data erased.",
        }
    }

    /// Back to profile `id` with this notice (and the other profile of an
    /// unmerge), scrolled to `section` if one is given.
    pub fn redirect(self, id: ProfileId, other: Option<ProfileId>, section: &str) -> Response {
        let other = other.map(|o| format!("&other={o}")).unwrap_or_default();
        let section = if section.is_empty() {
            String::new()
        } else {
            format!("#{section}")
        };
        Redirect::to(&format!(
            "/profiles/{id}?done={}{other}{section}",
            self.name()
        ))
        .into_response()
    }
}

// --------------------------------------------------------- one profile

#[derive(Deserialize, Default)]
pub struct PageParams {
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    done: String,
    /// The other profile after an unmerge.
    #[serde(default)]
    other: String,
    /// The merged profile a link pointed to.
    #[serde(default)]
    from: String,
}

/// What the page shows besides the profile's data.
#[derive(Default)]
struct Outcome {
    done: Option<Done>,
    other: Option<ProfileId>,
    from: Option<ProfileId>,
    cursor: Option<String>,
    failed: Option<Failed>,
}

/// The form a [`FormError`] belongs to.
pub(super) enum Failed {
    /// Undoing this merge.
    Undo(Uuid, FormError),
    /// Dismissing or merging this conflict.
    Conflict(Uuid, FormError),
    Consent(FormError, ConsentForm),
    Erase(FormError),
}

impl Failed {
    fn error(&self) -> &FormError {
        match self {
            Failed::Undo(_, e)
            | Failed::Conflict(_, e)
            | Failed::Consent(e, _)
            | Failed::Erase(e) => e,
        }
    }

    /// Whether the form this error belongs to is on the page.
    fn shown_by_form(&self, may: &May) -> bool {
        match self {
            Failed::Undo(..) | Failed::Conflict(..) | Failed::Consent(..) => may.write,
            Failed::Erase(_) => may.manage,
        }
    }
}

/// What the signed-in member may do here.
struct May {
    write: bool,
    manage: bool,
}

pub async fn page(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadData)?;
    let Ok(id) = id.parse::<ProfileId>() else {
        return Ok(not_found(&principal));
    };
    let profile = match live_profile(state.store.as_ref(), principal.workspace, id).await {
        Ok(profile) => profile,
        Err(ApiError::NotFound(_)) => return Ok(not_found(&principal)),
        Err(e) => return Err(e),
    };
    if profile.id != id {
        let to = format!("/profiles/{}?from={id}", profile.id);
        return Ok(Redirect::to(&to).into_response());
    }
    let outcome = Outcome {
        done: Done::parse(&params.done),
        other: params.other.parse().ok(),
        from: params.from.parse().ok(),
        cursor: Some(params.cursor).filter(|c| !c.is_empty()),
        failed: None,
    };
    Ok(render(&state, &principal, id, outcome)
        .await?
        .into_response())
}

fn not_found(principal: &Principal) -> Response {
    let content = html! {
        div.empty.card {
            h2 { "No such profile" }
            p { "It may have been mistyped, or it belongs to another workspace." }
            p { a href="/profiles" { "Search the profiles" } }
        }
    };
    (
        StatusCode::NOT_FOUND,
        layout("Profile not found", principal, Nav::Profiles, content),
    )
        .into_response()
}

/// Everything the page shows of one profile.
struct Loaded {
    view: ProfileView,
    merges: Vec<MergeRecord>,
    conflicts: Vec<(ConflictRecord, ProfileLink)>,
    consent: Vec<ConsentRecord>,
    events: Vec<StoredEvent>,
    next: Option<String>,
}

async fn load(
    store: &dyn Backend,
    ws: WorkspaceId,
    id: ProfileId,
    cursor: Option<&str>,
) -> ApiResult<Loaded> {
    let profile = live_profile(store, ws, id).await?;
    let view = profile_view(store, ws, profile).await?;
    let mut conflicts = Vec::new();
    for conflict in store.conflicts(ws, Some(view.id)).await? {
        let side = ProfileLink::of(store, ws, conflict.profile).await?;
        let other = if side.id == view.id {
            ProfileLink::of(store, ws, conflict.other).await?
        } else {
            side
        };
        conflicts.push((conflict, other));
    }
    // A stale page link starts again from the newest events.
    let (events, next) = match timeline_page(store, ws, view.id, TIMELINE_SIZE, cursor).await {
        Err(ApiError::Invalid(_)) => timeline_page(store, ws, view.id, TIMELINE_SIZE, None).await?,
        page => page?,
    };
    Ok(Loaded {
        merges: store.merges(ws, view.id).await?,
        consent: store.consents(ws, view.id).await?,
        conflicts,
        events,
        next,
        view,
    })
}

async fn render(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
    outcome: Outcome,
) -> ApiResult<Markup> {
    let store = state.store.as_ref();
    let data = load(store, principal.workspace, id, outcome.cursor.as_deref()).await?;
    let profile = &data.view;
    // Nothing names the person any more: only an erasure does that.
    let erased = profile.identifiers.is_empty() && profile.traits.is_empty();
    let view = ProfilePage {
        principal,
        // An erased profile is history: nothing to change on it.
        may: May {
            write: principal.role.allows(Permission::WriteData) && !erased,
            manage: principal.role.allows(Permission::ManageWorkspace) && !erased,
        },
        data: &data,
        failed: outcome.failed.as_ref(),
        now: Utc::now(),
    };
    let failed = outcome.failed.as_ref();
    let content = html! {
        (view.head())
        @if let Some(from) = outcome.from {
            p.flash role="status" { span { "Profile " code { (from) } " was merged into this one." } }
        }
        @if let Some(done) = outcome.done {
            p.flash role="status" { span {
                (done.message())
                @if let Some(other) = outcome.other {
                    " " a #other-profile href=(format!("/profiles/{other}")) { "Open the other profile" }
                }
            } }
        }
        @if let Some(failed) = failed.filter(|f| !f.shown_by_form(&view.may)) {
            (form_error(Some(failed.error())))
        }
        @if let Some(Failed::Erase(error)) = failed.filter(|f| f.shown_by_form(&view.may)) {
            (form_error(Some(error)))
        }
        @if erased {
            section.card.notice #erased role="status" {
                h2 { "This person’s data was erased" }
                p { "Identifiers, traits and the contents of their events are gone. The events stay, "
                    "anonymised, for aggregate reports; the erased identifiers will never link to a profile again." }
            }
        }
        (view.computed())
        @if !data.conflicts.is_empty() { (view.conflicts()) }
        div.profile-grid {
            div.column {
                (view.identifiers())
                (view.timeline(outcome.cursor.is_some()))
            }
            div.column {
                (view.traits())
                (view.merges())
                (view.consent())
            }
        }
    };
    Ok(layout(&title(profile), principal, Nav::Profiles, content))
}

/// Renders one profile's page for one signed-in member.
struct ProfilePage<'a> {
    principal: &'a Principal,
    may: May,
    data: &'a Loaded,
    failed: Option<&'a Failed>,
    now: DateTime<Utc>,
}

impl ProfilePage<'_> {
    fn id(&self) -> ProfileId {
        self.data.view.id
    }

    fn action(&self, what: &str) -> String {
        format!("/profiles/{}/{what}", self.id())
    }

    fn head(&self) -> Markup {
        let profile = &self.data.view;
        let name = title(profile);
        let initials: String = display_name(&profile.traits)
            .map(|n| {
                n.split_whitespace()
                    .filter_map(|w| w.chars().next())
                    .take(2)
                    .collect()
            })
            .unwrap_or_default();
        let primary = profile.identifiers.iter().filter(|i| {
            matches!(
                i.kind.as_str(),
                "email" | "phone" | "user_id" | "loyalty_card"
            )
        });
        html! {
            div.profile-head {
                div.avatar.blank[initials.is_empty()] aria-hidden="true" {
                    @if initials.is_empty() { "?" } @else { (initials.to_uppercase()) }
                }
                div.profile-title {
                    h1 #profile-name { (name) }
                    div.primary {
                        @for i in primary {
                            span.chip.ident title=(kind_label(&i.kind)) {
                                span.k { (kind_label(&i.kind)) } " " (identifier_value(&i.kind, &i.value))
                            }
                        }
                        span.muted.small { "Profile " code #profile-id { (profile.id) } }
                    }
                }
                span.spacer {}
                @if self.may.manage {
                    div.actions {
                        a.button #export href=(format!("/api/v1/profiles/{}/export", profile.id))
                            download=(format!("profile-{}.json", profile.id)) { "Export data" }
                        form.inline #erase method="post" action=(self.action("erase"))
                            data-confirm=(format!("Erase all personal data of {name}? Identifiers, traits and event contents are deleted for good; this cannot be undone.")) {
                            (csrf_field(self.principal))
                            button.danger type="submit" { "Erase personal data" }
                        }
                    }
                }
            }
        }
    }

    fn computed(&self) -> Markup {
        let profile = &self.data.view;
        let c = &profile.computed;
        html! {
            section.stats #computed aria-label="Computed from events" {
                div.stat { span.label { "Orders" } span.value #order-count { (c.order_count) } }
                div.stat { span.label { "Lifetime revenue" } span.value #revenue { (revenue(profile)) } }
                div.stat { span.label { "Last order" } span.value {
                    @match c.last_order_at { Some(at) => (time_ago(at, self.now)), None => span.faint { "—" } }
                } }
                div.stat { span.label { "Events" } span.value { (thousands(c.event_count as u64)) } }
                div.stat { span.label { "First seen" } span.value { (time_ago(profile.first_seen, self.now)) } }
                div.stat { span.label { "Last seen" } span.value { (time_ago(profile.last_seen, self.now)) } }
                div.stat.wide { span.label { "Channels" } span.value {
                    @for channel in &c.channels { span.chip { (channel) } " " }
                    @if c.channels.is_empty() { span.faint { "—" } }
                } }
            }
        }
    }

    fn identifiers(&self) -> Markup {
        let ids = &self.data.view.identifiers;
        html! {
            section.card #identifiers aria-labelledby="identifiers-title" {
                div.card-head {
                    h2 #identifiers-title { "Identifiers" }
                    span.muted { (ids.len()) }
                }
                @if ids.is_empty() {
                    p.empty-inline { "No identifiers." }
                } @else {
                    div.table-wrap {
                        table.identifiers {
                            thead { tr {
                                th scope="col" { "Type" } th scope="col" { "Value" }
                                th scope="col" { "Source" } th scope="col" { "First seen" }
                            } }
                            tbody {
                                @for i in ids {
                                    tr data-kind=(i.kind) {
                                        td.type { (kind_label(&i.kind)) }
                                        td.value {
                                            span.mono { (identifier_value(&i.kind, &i.value)) }
                                            @if i.shared {
                                                " " span.status.shared title="Seen with more than one person: it links nobody any more; its anonymous events go to whoever is logged in on it in that session, and stay anonymous when nobody is." { "shared device" }
                                            }
                                        }
                                        td.source { (i.source) }
                                        td.date { (time_exact(i.first_seen)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn traits(&self) -> Markup {
        let traits = &self.data.view.traits;
        html! {
            section.card #traits aria-labelledby="traits-title" {
                h2 #traits-title { "Traits" }
                @if traits.is_empty() {
                    p.empty-inline { "No traits yet: they come from identify calls." }
                } @else {
                    dl.facts.traits {
                        @for (key, value) in traits {
                            dt { (key) }
                            dd { (scalar(value).unwrap_or_else(|| value.to_string())) }
                        }
                    }
                }
            }
        }
    }

    fn consent(&self) -> Markup {
        let history = &self.data.consent;
        let current = consent::current(history);
        html! {
            section.card #consent aria-labelledby="consent-title" {
                h2 #consent-title { "Consent" }
                @if current.is_empty() {
                    p.empty-inline { "Nothing recorded. Without a recorded yes, no marketing is sent." }
                } @else {
                    ul.consents {
                        @for record in &current { (consent_item(record)) }
                    }
                    @if history.len() > current.len() {
                        details.history {
                            summary { "All " (history.len()) " answers" }
                            ul.consents.past {
                                @for record in history.iter().rev() { (consent_item(record)) }
                            }
                        }
                    }
                }
                @if self.may.write {
                    @match self.failed {
                        Some(Failed::Consent(error, typed)) => (self.consent_form(Some(error), typed)),
                        _ => (self.consent_form(None, &ConsentForm::default())),
                    }
                }
            }
        }
    }

    fn consent_form(&self, error: Option<&FormError>, typed: &ConsentForm) -> Markup {
        let bad = |field: &str| error.is_some_and(|e| e.is_about(field)).then_some("true");
        let source = if typed.source.is_empty() && error.is_none() {
            "operator"
        } else {
            typed.source.as_str()
        };
        html! {
            form.stacked.consent-form #consent-form method="post" action=(self.action("consent")) {
                h3 { "Record an answer" }
                (form_error(error))
                (csrf_field(self.principal))
                div.fields {
                    label.field {
                        span { "Purpose" }
                        select name="purpose" aria-invalid=[bad("purpose")] {
                            @for purpose in PURPOSES {
                                option value=(purpose) selected[typed.purpose == purpose] { (purpose_label(purpose)) }
                            }
                        }
                    }
                    label.field {
                        span { "Channel" }
                        select name="channel" aria-invalid=[bad("channel")] {
                            @for channel in CHANNELS {
                                option value=(channel) selected[typed.channel == channel] { (channel_label(channel)) }
                            }
                        }
                    }
                }
                fieldset.answer aria-invalid=[bad("answer")] {
                    legend { "Answer" }
                    label.radio { input type="radio" name="answer" value="granted" required checked[typed.answer == "granted"]; " Granted" }
                    label.radio { input type="radio" name="answer" value="withdrawn" required checked[typed.answer == "withdrawn"]; " Withdrawn" }
                }
                div.fields {
                    label.field {
                        span { "Where it was given" }
                        input type="text" name="source" value=(source) list="consent-sources" required autocomplete="off"
                            aria-invalid=[bad("source")];
                        datalist #consent-sources {
                            @for s in ["operator", "phone_call", "web_form", "widget", "sms_stop", "in_store", "email_reply"] {
                                option value=(s) {}
                            }
                        }
                    }
                }
                div.fields {
                    label.field.full {
                        span { "The words shown or said" }
                        input type="text" name="wording" value=(typed.wording) required autocomplete="off"
                            placeholder="e.g. “Please stop sending me SMS”" aria-invalid=[bad("wording")]
                            autofocus[bad("wording").is_some()];
                    }
                }
                button.primary type="submit" { "Record consent" }
            }
        }
    }

    fn merges(&self) -> Markup {
        let merges = &self.data.merges;
        html! {
            section.card #merges aria-labelledby="merges-title" {
                h2 #merges-title { "Merge history" }
                @if merges.is_empty() {
                    p.empty-inline { "No merges. When an event links this person to another profile, the merge is recorded here and can be undone." }
                } @else {
                    ol.merges {
                        @for merge in merges { (self.merge_item(merge)) }
                    }
                }
            }
        }
    }

    fn merge_item(&self, merge: &MergeRecord) -> Markup {
        let error = match self.failed {
            Some(Failed::Undo(id, error)) if *id == merge.id => Some(error),
            _ => None,
        };
        let event = merge.event_id.map(|e| e.to_string());
        html! {
            li.merge.undone[merge.undone_at.is_some()] data-merge=(merge.id) {
                div.what {
                    @match &merge.via {
                        Some(via) => {
                            "Merged via " span.chip.ident title=(via.value) {
                                span.k { (kind_label(via.kind.as_str())) } " "
                                (identifier_value(via.kind.as_str(), &via.value))
                            }
                        }
                        None => @if merge.actor.is_some() { "Merged by hand" } @else { "Merged" },
                    }
                }
                div.meta {
                    (time_exact(merge.at)) " · "
                    @match &merge.actor { Some(actor) => { "by " (actor) }, None => "automatically" }
                    @if let Some(event) = &event {
                        " · event " code title=(event) { (event.get(..8).unwrap_or(event)) "…" }
                    }
                }
                div.state {
                    @if let Some(at) = merge.undone_at {
                        span.status.undone title=(full_time(at)) { "undone " (ago(at, self.now)) }
                    } @else if self.may.write {
                        form.inline.undo method="post" action=(self.action("unmerge"))
                            data-confirm="Undo this merge? The profile is split in two again, and the two are kept apart from now on." {
                            (csrf_field(self.principal))
                            input type="hidden" name="merge_id" value=(merge.id);
                            button type="submit" { "Undo" }
                        }
                    }
                }
                @if error.is_some() { div.merge-error { (form_error(error)) } }
            }
        }
    }

    fn conflicts(&self) -> Markup {
        html! {
            section.card.attention #conflicts aria-labelledby="conflicts-title" {
                div.card-head {
                    h2 #conflicts-title { "To review" }
                    span.muted { "Events linked this person with another profile, but the rules kept them apart." }
                }
                ul.conflicts {
                    @for (conflict, other) in &self.data.conflicts { (self.conflict_item(conflict, other)) }
                }
            }
        }
    }

    fn conflict_item(&self, conflict: &ConflictRecord, other: &ProfileLink) -> Markup {
        let error = match self.failed {
            Some(Failed::Conflict(id, error)) if *id == conflict.id => Some(error),
            _ => None,
        };
        let already_one = other.id == self.id();
        html! {
            li.conflict data-conflict=(conflict.id) {
                div.what {
                    "Kept apart from " (other.render())
                    div.meta {
                        (conflict_reason(&conflict.reason)) " · via "
                        span.ident { span.k { (kind_label(conflict.via.kind.as_str())) } " "
                            span.mono { (identifier_value(conflict.via.kind.as_str(), &conflict.via.value)) } }
                        " · " (time_ago(conflict.at, self.now))
                    }
                    (form_error(error))
                }
                @if self.may.write {
                    div.state {
                        @if !already_one {
                            form.inline.merge-anyway method="post" action=(self.action("merge"))
                                data-confirm=(format!("Merge {} into this profile?", other.label)) {
                                (csrf_field(self.principal))
                                input type="hidden" name="other_profile_id" value=(other.id);
                                input type="hidden" name="conflict_id" value=(conflict.id);
                                button type="submit" { "Merge anyway" }
                            }
                        }
                        form.inline.dismiss method="post" action=(format!("/conflicts/{}/dismiss", conflict.id)) {
                            (csrf_field(self.principal))
                            input type="hidden" name="profile" value=(self.id());
                            button type="submit" { "Dismiss" }
                        }
                    }
                }
            }
        }
    }

    fn timeline(&self, paged: bool) -> Markup {
        let events = &self.data.events;
        let total = self.data.view.computed.event_count;
        let id = self.id();
        html! {
            section.card #timeline aria-labelledby="timeline-title" {
                div.card-head {
                    h2 #timeline-title { "Timeline" }
                    span.muted { (thousands(total as u64)) @if total == 1 { " event" } @else { " events" } ", newest first" }
                }
                @if events.is_empty() {
                    p.empty-inline { "No events." }
                } @else {
                    div.table-wrap {
                        table.timeline {
                            thead { tr {
                                th.time scope="col" { "Time (UTC)" } th scope="col" { "Type" } th scope="col" { "Event" }
                                th scope="col" { "Details" } th scope="col" { "Source" }
                            } }
                            tbody #timeline-rows { @for event in events { (timeline_row(event)) } }
                        }
                    }
                }
                @if paged || self.data.next.is_some() {
                    nav.pager aria-label="Timeline pages" {
                        span.spacer {}
                        @if paged { a.button.quiet href=(format!("/profiles/{id}#timeline")) { "Newest events" } }
                        @if let Some(next) = &self.data.next {
                            a.button #older-events rel="next"
                                href=(format!("/profiles/{id}?{}#timeline", url::form_urlencoded::Serializer::new(String::new()).append_pair("cursor", next).finish())) {
                                "Older events →"
                            }
                        }
                    }
                }
            }
        }
    }
}

fn consent_item(record: &ConsentRecord) -> Markup {
    html! {
        li.consent data-purpose=(record.purpose) data-channel=(record.channel) {
            div.line {
                @if record.granted { span.status.granted { "granted" } } @else { span.status.withdrawn { "withdrawn" } }
                " " strong { (purpose_label(&record.purpose)) } " · " (channel_label(&record.channel))
            }
            div.meta { (record.source) " · " (time_exact(record.at)) }
            @if !record.wording.is_empty() { blockquote.wording { "“" (record.wording) "”" } }
        }
    }
}

fn purpose_label(purpose: &str) -> &str {
    match purpose {
        "marketing" => "Marketing",
        "analytics" => "Analytics",
        "service" => "Service messages",
        other => other,
    }
}

fn channel_label(channel: &str) -> &str {
    match channel {
        "any" => "Any channel",
        "email" => "E-mail",
        "sms" => "SMS",
        "whatsapp" => "WhatsApp",
        "telegram" => "Telegram",
        "viber" => "Viber",
        "vk" => "VK",
        "calls" => "Calls",
        "push" => "Push",
        "web" => "Web",
        other => other,
    }
}

/// A JSON value as text, if it is a plain one.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The few properties that say what an event was.
pub(super) fn details(e: &StoredEvent) -> Vec<(String, String)> {
    fn plain(object: &Value, skip: &[&str], out: &mut Vec<(String, String)>) {
        for (key, value) in object.as_object().into_iter().flatten() {
            if let Some(text) = scalar(value).filter(|_| !skip.contains(&key.as_str())) {
                out.push((key.clone(), text));
            }
        }
    }
    let p = &e.payload;
    let mut out = Vec::new();
    match e.event_type {
        EventType::Track => {
            let props = &p["properties"];
            if props
                .get("revenue")
                .or_else(|| props.get("total"))
                .is_some()
            {
                out.push(("amount".to_owned(), money(&amount_of(props))));
            }
            plain(
                props,
                &["revenue", "total", "currency", "price", "channel"],
                &mut out,
            );
        }
        EventType::Page | EventType::Screen => {
            let url = p["properties"]["url"]
                .as_str()
                .or_else(|| e.enrichment["attribution"]["page_url"].as_str());
            if let Some(url) = url {
                let path = url::Url::parse(url)
                    .map(|u| u.path().to_owned())
                    .unwrap_or_else(|_| url.to_owned());
                out.push(("path".to_owned(), path));
            }
        }
        EventType::Identify => plain(&p["traits"], &[], &mut out),
        EventType::Group => {
            if let Some(group) = scalar(&p["groupId"]) {
                out.push(("group".to_owned(), group));
            }
            plain(&p["traits"], &[], &mut out);
        }
        EventType::Alias => {
            if let Some(previous) = scalar(&p["previousId"]) {
                out.push(("previous id".to_owned(), previous));
            }
        }
    }
    out.truncate(4);
    out
}

fn timeline_row(e: &StoredEvent) -> Markup {
    let name = match (e.event_name.as_deref(), e.event_type) {
        (Some(name), _) => name.to_owned(),
        (None, EventType::Identify) => "Identified".to_owned(),
        (None, other) => other.as_str().to_owned(),
    };
    let attribution = &e.enrichment["attribution"];
    let utm: Vec<&str> = ["utm_source", "utm_medium"]
        .iter()
        .filter_map(|k| attribution[k].as_str())
        .collect();
    let campaign = attribution["utm_campaign"].as_str();
    html! {
        tr {
            td.time { (time_exact(e.timestamp)) }
            td { span class={ "badge " (e.event_type.as_str()) } { (e.event_type.as_str()) } }
            td.name title=(name) { (name) }
            td.details {
                @for (key, value) in details(e) {
                    span.kv title={ (key) ": " (value) } { span.k { (key) } " " (value) }
                }
            }
            td.source {
                @if utm.is_empty() {
                    span.chip { (channel_of(e)) }
                } @else {
                    span title=[campaign.map(|c| format!("campaign: {c}"))] { (utm.join(" / ")) }
                }
            }
        }
    }
}

// --------------------------------------------------------- the forms

#[derive(Deserialize)]
pub struct UnmergeForm {
    csrf_token: String,
    merge_id: Uuid,
}

#[derive(Deserialize)]
pub struct MergeForm {
    csrf_token: String,
    other_profile_id: ProfileId,
    conflict_id: Uuid,
}

#[derive(Deserialize, Default)]
pub struct ConsentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    channel: String,
    /// `granted` or `withdrawn`.
    #[serde(default)]
    answer: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    wording: String,
}

has_csrf!(UnmergeForm, MergeForm, ConsentForm);

/// The profile page again with `failed` shown.
pub(super) async fn failed(
    state: &AppState,
    principal: &Principal,
    id: ProfileId,
    error: ApiError,
    failed: impl FnOnce(FormError) -> Failed,
) -> ApiResult<Response> {
    with_form_error(error, |error| {
        let outcome = Outcome {
            failed: Some(failed(error)),
            ..Outcome::default()
        };
        render(state, principal, id, outcome)
    })
    .await
}

pub async fn unmerge(
    State(state): State<AppState>,
    Path(id): Path<ProfileId>,
    FormCsrf(principal, form): FormCsrf<UnmergeForm>,
) -> ApiResult<Response> {
    match undo_merge(&state, &principal, id, form.merge_id).await {
        Ok(profiles) => {
            let here = live_profile(state.store.as_ref(), principal.workspace, id)
                .await?
                .id;
            let other = profiles.into_iter().find(|p| *p != here);
            Ok(Done::Unmerged.redirect(here, other, ""))
        }
        Err(e) => {
            failed(&state, &principal, id, e, |e| {
                Failed::Undo(form.merge_id, e)
            })
            .await
        }
    }
}

pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<ProfileId>,
    FormCsrf(principal, form): FormCsrf<MergeForm>,
) -> ApiResult<Response> {
    // The conflict answered must be one of this profile's own.
    let open = state.store.conflicts(principal.workspace, Some(id)).await?;
    if !open.iter().any(|c| c.id == form.conflict_id) {
        return Err(ApiError::NotFound("open conflict of this profile"));
    }
    let merged = match merge_profiles(&state, &principal, id, form.other_profile_id).await {
        // Merging answers the conflict.
        Ok(record) => dismiss(&state, &principal, form.conflict_id)
            .await
            .map(|()| record),
        Err(e) => Err(e),
    };
    match merged {
        Ok(record) => Ok(Done::Merged.redirect(record.survivor, None, "merges")),
        Err(e) => {
            failed(&state, &principal, id, e, |e| {
                Failed::Conflict(form.conflict_id, e)
            })
            .await
        }
    }
}

pub async fn consent(
    State(state): State<AppState>,
    Path(id): Path<ProfileId>,
    FormCsrf(principal, form): FormCsrf<ConsentForm>,
) -> ApiResult<Response> {
    let granted = match form.answer.as_str() {
        "granted" => Ok(true),
        "withdrawn" => Ok(false),
        _ => Err(ApiError::field(
            "required",
            "answer",
            "choose granted or withdrawn",
        )),
    };
    let recorded = match granted {
        Ok(granted) => {
            let body = ConsentBody {
                purpose: form.purpose.clone(),
                channel: form.channel.clone(),
                granted,
                source: form.source.trim().to_owned(),
                wording: form.wording.trim().to_owned(),
            };
            add_consent(&state, &principal, id, body).await
        }
        Err(e) => Err(e),
    };
    match recorded {
        Ok(record) => Ok(Done::ConsentRecorded.redirect(record.profile_id, None, "consent")),
        Err(e) => failed(&state, &principal, id, e, |e| Failed::Consent(e, form)).await,
    }
}

pub async fn erase(
    State(state): State<AppState>,
    Path(id): Path<ProfileId>,
    FormCsrf(principal, _): FormCsrf<PlainForm>,
) -> ApiResult<Response> {
    match erase_person(&state, &principal, id).await {
        Ok(()) => Ok(Done::Erased.redirect(id, None, "")),
        Err(e) => failed(&state, &principal, id, e, Failed::Erase).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_through_their_names() {
        for done in Done::ALL {
            assert_eq!(Done::parse(done.name()), Some(done));
        }
        assert_eq!(Done::parse("<script>"), None);
    }
}
