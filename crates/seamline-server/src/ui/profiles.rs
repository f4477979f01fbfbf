//! Customer profiles: the searchable list, and what to call a profile.
//! One person's page and its forms are in [`super::profile`].

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use seamline_core::role::Permission;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::Backend;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::format::{best_identifier, identifier_value, money, time_ago};
use super::{form_error, layout, FormError, Nav, UiPrincipal};
use crate::api::profiles::{profile_views, search_page, ProfileView};
use crate::error::ApiResult;
use crate::identity::profiles::live_profile;
use crate::AppState;

/// Profiles on one page of the list.
const PAGE_SIZE: u32 = 50;

// ------------------------------------------------------------------ the list

#[derive(Deserialize, Default)]
pub struct ListParams {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
}

pub async fn list(
    State(state): State<AppState>,
    UiPrincipal(principal): UiPrincipal,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    principal.require(Permission::ReadData)?;
    let store = state.store.as_ref();
    let ws = principal.workspace;
    let q = params.q.trim();
    let cursor = Some(params.cursor.as_str()).filter(|c| !c.is_empty());
    let to_review = store.conflicts(ws, None).await?.len();
    let (profiles, next, error) = match search_page(store, ws, Some(q), PAGE_SIZE, cursor).await {
        Ok((found, next)) => (profile_views(store, ws, found).await?, next, None),
        Err(e) => (Vec::new(), None, Some(FormError::from_api(e)?)),
    };
    let status = error.as_ref().map_or(StatusCode::OK, |e| e.status);
    let now = Utc::now();
    let content = html! {
        div.page-head {
            h1 { "Profiles" }
            span.spacer {}
            (review_link(to_review))
        }
        form.toolbar.search method="get" action="/profiles" role="search" {
            label.field.grow {
                span { "Find a person" }
                input #q type="search" name="q" value=(q) autocomplete="off" autofocus[q.is_empty() && cursor.is_none()]
                    placeholder="E-mail, phone in any format, user id, loyalty card, cookie or name";
            }
            button.primary type="submit" { "Search" }
            @if !q.is_empty() { a.button.quiet href="/profiles" { "Clear" } }
        }
        (form_error(error.as_ref()))
        @if profiles.is_empty() && error.is_none() {
            (list_empty(q, cursor.is_some()))
        } @else if !profiles.is_empty() {
            div.table-wrap {
                table.profiles #profiles {
                    thead { tr {
                        th scope="col" { "Person" } th scope="col" { "E-mail · phone" } th scope="col" { "User id" }
                        th scope="col" { "Channels" } th.num scope="col" { "Orders" } th.num scope="col" { "Revenue" }
                        th scope="col" { "Last seen" }
                    } }
                    tbody { @for view in &profiles { (list_row(view, now)) } }
                }
            }
            nav.pager aria-label="Pages" {
                span.muted {
                    (profiles.len()) @if profiles.len() == 1 { " profile" } @else { " profiles" }
                    @if !q.is_empty() { " matching “" (q) "”" }
                    @if cursor.is_some() { " on this page" }
                    ", most recently seen first"
                }
                span.spacer {}
                @if cursor.is_some() { a.button.quiet href=(list_href(q, None)) { "First page" } }
                @if let Some(next) = &next { a.button #next-page href=(list_href(q, Some(next))) rel="next" { "Next page →" } }
            }
        }
    };
    Ok((
        status,
        layout("Profiles", &principal, Nav::Profiles, content),
    )
        .into_response())
}

/// The link to the conflicts, with how many are open.
fn review_link(open: usize) -> Markup {
    html! {
        a.review.attention[open > 0] #review-link href="/conflicts" {
            "Conflicts to review" span.count { (open) }
        }
    }
}

fn list_href(q: &str, cursor: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    if !q.is_empty() {
        query.append_pair("q", q);
    }
    if let Some(cursor) = cursor {
        query.append_pair("cursor", cursor);
    }
    let query = query.finish();
    if query.is_empty() {
        "/profiles".to_owned()
    } else {
        format!("/profiles?{query}")
    }
}

fn list_empty(q: &str, paged: bool) -> Markup {
    html! {
        div.empty.card #no-profiles {
            @if !q.is_empty() {
                h2 { "No profile matches “" (q) "”" }
                p { "Search finds any identifier however it is typed — "
                    span.nowrap { "8 916 123-45-67" } " finds " span.nowrap { "+7 916 123-45-67" }
                    ", upper-case e-mails find lower-case ones — and any part of a name, e-mail or id." }
                p { a href="/profiles" { "Show all profiles" } }
            } @else if paged {
                h2 { "No more profiles" }
                p { a href="/profiles" { "Back to the first page" } }
            } @else {
                h2 { "No profiles yet" }
                p { "A profile appears a few seconds after the first event that names someone: an "
                    code { "anonymousId" } ", a " code { "userId" } ", an e-mail or a phone. "
                    "Events from one person on every device and channel end up in one profile." }
                p { a href="/events" { "See the events as they arrive" } }
            }
        }
    }
}

fn list_row(view: &ProfileView, now: DateTime<Utc>) -> Markup {
    let find = |kind: &str| {
        view.identifiers
            .iter()
            .find(|i| i.kind == kind)
            .map(|i| identifier_value(&i.kind, &i.value))
    };
    let contacts: Vec<String> = ["email", "phone"].into_iter().filter_map(find).collect();
    let contacts = contacts.join(" · ");
    let user = find("user_id").unwrap_or_default();
    let named = display_name(&view.traits).is_some();
    // A visitor known only by a cookie: say so, and which cookie.
    let cookie = view
        .identifiers
        .iter()
        .find(|i| !named && is_device(&i.kind))
        .filter(|_| view.identifiers.iter().all(|i| is_device(&i.kind)));
    html! {
        tr data-profile=(view.id) data-href=(format!("/profiles/{}", view.id)) {
            td.person {
                a.unnamed[!named] href=(format!("/profiles/{}", view.id)) { (title(view)) }
                @if let Some(cookie) = cookie { " " span.cookie title=(cookie.value) { (cookie.value) } }
            }
            td.contacts title=(contacts) { (contacts) }
            td.user.mono title=(user) { (user) }
            td.channels { @for channel in &view.computed.channels { span.chip { (channel) } " " } }
            td.num { @if view.computed.order_count > 0 { (view.computed.order_count) } @else { span.faint { "—" } } }
            td.num.revenue { (revenue(view)) }
            td.date { (time_ago(view.last_seen, now)) }
        }
    }
}

/// Lifetime revenue, a line per currency; a dash when there is none.
pub(super) fn revenue(view: &ProfileView) -> Markup {
    let earned: Vec<String> = view
        .computed
        .lifetime_revenue
        .iter()
        .filter(|m| m.amount_minor != 0)
        .map(money)
        .collect();
    html! {
        @if earned.is_empty() { span.faint { "—" } }
        @for (i, amount) in earned.iter().enumerate() { @if i > 0 { br; } (amount) }
    }
}

// ------------------------------------------------------- naming a profile

/// A person's name from their traits: `name`, else first and last name.
pub(super) fn display_name(traits: &Map<String, Value>) -> Option<String> {
    let text = |key: &str| traits.get(key).and_then(Value::as_str).map(str::trim);
    if let Some(name) = text("name").filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = [["first_name", "firstName"], ["last_name", "lastName"]]
        .iter()
        .filter_map(|keys| keys.iter().find_map(|k| text(k)).filter(|p| !p.is_empty()))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Whether an identifier names a device rather than a person.
fn is_device(kind: &str) -> bool {
    matches!(kind, "anonymous_id" | "device_id")
}

/// What to call a profile: the name, else the identifier that names the
/// person best; an anonymous visitor when only a cookie or device does.
pub(super) fn name_of<'a>(
    traits: &Map<String, Value>,
    identifiers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    if let Some(name) = display_name(traits) {
        return name;
    }
    match best_identifier(identifiers) {
        Some((kind, _)) if is_device(kind) => "Anonymous visitor".to_owned(),
        Some((kind, value)) => identifier_value(kind, value),
        None => "Erased profile".to_owned(),
    }
}

pub(super) fn title(view: &ProfileView) -> String {
    name_of(
        &view.traits,
        view.identifiers
            .iter()
            .map(|i| (i.kind.as_str(), i.value.as_str())),
    )
}

/// A live profile and what to call it, for links between profiles.
pub(super) struct ProfileLink {
    pub id: ProfileId,
    pub label: String,
}

impl ProfileLink {
    pub async fn of(store: &dyn Backend, ws: WorkspaceId, id: ProfileId) -> ApiResult<Self> {
        let profile = live_profile(store, ws, id).await?;
        let identifiers = store.profile_identifiers(ws, profile.id).await?;
        let label = name_of(
            &profile.traits,
            identifiers
                .iter()
                .map(|i| (i.identifier.kind.as_str(), i.identifier.value.as_str())),
        );
        Ok(ProfileLink {
            id: profile.id,
            label,
        })
    }

    pub fn render(&self) -> Markup {
        html! { a.profile-link href=(format!("/profiles/{}", self.id)) { (self.label) } }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_name_comes_from_traits_else_the_best_identifier() {
        let traits = |v: Value| v.as_object().cloned().unwrap_or_default();
        let ids = [("anonymous_id", "c1"), ("phone", "+79161234567")];
        assert_eq!(name_of(&traits(json!({"name": " Оля "})), ids), "Оля");
        assert_eq!(
            name_of(&traits(json!({"firstName": "Ivan", "last_name": "K"})), ids),
            "Ivan K"
        );
        assert_eq!(name_of(&traits(json!({})), ids), "+7 916 123-45-67");
        assert_eq!(
            name_of(&traits(json!({})), [("anonymous_id", "c1")]),
            "Anonymous visitor"
        );
        assert_eq!(name_of(&traits(json!({})), []), "Erased profile");
    }
}
