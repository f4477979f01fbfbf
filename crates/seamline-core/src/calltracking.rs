//! Call tracking (channels.md §7): which number a site visitor is shown,
//! how long they keep it, and whose visit a call to it belongs to.
//!
//! - A workspace has **pool** numbers, handed out to visitors one at a time
//!   (dynamic number insertion), and **static** numbers, each bound to one
//!   ad source (a UTM source, optionally medium and campaign, or just a
//!   label for offline ads).
//! - A visitor keeps their pool number while they are on the site and for
//!   a tail after their last activity ([`Settings::tail_s`]); then it is
//!   free again. While nobody holds it, nobody's calls are attributed by it.
//! - With every pool number held, the visitor sees the default number and
//!   the miss is counted: the pool is too small.
//! - A call is attributed by the reservation that held the called number
//!   when the call started ([`holder_at`]). Reservations are never deleted,
//!   so a late webhook still finds its visit.
//!
//! Pure rules: callers pass "now" and new ids; the store applies a
//! [`Decision`] inside its transaction.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::identity::{Identifier, IdentifierKind, IdentityPolicy};
use crate::tracking::Attribution;
use crate::FieldError;

/// CallScaler's default session timeout.
pub const DEFAULT_TAIL_S: u32 = 1800;
const MIN_TAIL_S: u32 = 5;
const MAX_TAIL_S: u32 = 86_400;
/// How often the page reports the visitor is still there, at most.
pub const HEARTBEAT_S: u32 = 60;
/// PBXs stamp a call in whole seconds, so a call can look up to this much
/// older than the reservation made just before it.
pub const START_GRACE: TimeDelta = TimeDelta::seconds(2);
/// The longest text of a source field we keep.
const MAX_SOURCE_CHARS: usize = 500;
const MAX_SELECTOR_CHARS: usize = 300;
/// The selector used when the workspace sets none.
pub const DEFAULT_SELECTOR: &str = ".seamline-phone";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberKind {
    /// Handed out to one visitor at a time.
    Pool,
    /// Fixed to one ad source.
    Static,
}

impl NumberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pool => "pool",
            Self::Static => "static",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pool, Self::Static]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// The ad source a static number stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceBinding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    /// What people call it ("Billboard on Tverskaya"); the only field of
    /// an offline source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

fn text_field(
    object: &Value,
    name: &str,
    prefix: &str,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let trimmed = s.replace('\0', "").trim().to_owned();
            if trimmed.chars().count() > max {
                return Err(FieldError::new(
                    "too_long",
                    format!("{prefix}{name}"),
                    format!("at most {max} characters"),
                ));
            }
            Ok(Some(trimmed).filter(|s| !s.is_empty()))
        }
        Some(_) => Err(FieldError::new(
            "invalid_type",
            format!("{prefix}{name}"),
            "text",
        )),
    }
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

impl SourceBinding {
    /// Reads `source` of a static number; `field` names it in errors.
    pub fn parse(value: &Value, field: &str) -> Result<Self, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new(
                "invalid_type",
                field,
                "an object with utm_source (and utm_medium, utm_campaign) or a label",
            ));
        }
        let prefix = format!("{field}.");
        let read = |name| text_field(value, name, &prefix, MAX_SOURCE_CHARS);
        let binding = Self {
            utm_source: read("utm_source")?,
            utm_medium: read("utm_medium")?,
            utm_campaign: read("utm_campaign")?,
            label: read("label")?,
        };
        if binding.utm_source.is_none() && binding.label.is_none() {
            return Err(FieldError::new(
                "required",
                format!("{prefix}utm_source"),
                "a static number stands for a source: give utm_source or a label",
            ));
        }
        if binding.utm_source.is_none()
            && (binding.utm_medium.is_some() || binding.utm_campaign.is_some())
        {
            return Err(FieldError::new(
                "required",
                format!("{prefix}utm_source"),
                "utm_medium and utm_campaign narrow a utm_source: give it too",
            ));
        }
        Ok(binding)
    }

    /// Whether a visitor from `source` is this binding's: the same UTM
    /// source, and medium and campaign where the binding names them. A
    /// label-only binding (offline) matches no visitor.
    pub fn matches(&self, source: &Attribution) -> bool {
        same(&self.utm_source, &source.utm_source)
            && (self.utm_medium.is_none() || same(&self.utm_medium, &source.utm_medium))
            && (self.utm_campaign.is_none() || same(&self.utm_campaign, &source.utm_campaign))
    }

    /// How many fields it names: the narrowest binding wins.
    fn specificity(&self) -> usize {
        [&self.utm_source, &self.utm_medium, &self.utm_campaign]
            .iter()
            .filter(|f| f.is_some())
            .count()
    }

    /// The source in words: its label, else its UTM.
    pub fn describe(&self) -> String {
        if let Some(label) = &self.label {
            return label.clone();
        }
        utm_words(&self.utm_source, &self.utm_medium, &self.utm_campaign)
            .unwrap_or_else(|| "unknown".into())
    }

    /// The source as the tracking API's `context.campaign` has it.
    pub fn as_attribution(&self) -> Attribution {
        Attribution {
            utm_source: self.utm_source.clone(),
            utm_medium: self.utm_medium.clone(),
            utm_campaign: self.utm_campaign.clone(),
            ..Attribution::default()
        }
    }
}

/// `yandex / cpc · spring`, as the inbox shows a source.
fn utm_words(
    source: &Option<String>,
    medium: &Option<String>,
    campaign: &Option<String>,
) -> Option<String> {
    let mut text = source.clone()?;
    if let Some(medium) = medium {
        text.push_str(" / ");
        text.push_str(medium);
    }
    if let Some(campaign) = campaign {
        text.push_str(" · ");
        text.push_str(campaign);
    }
    Some(text)
}

/// A visitor's source in words, for stats: the UTM; else an ad click id's
/// network; else the referring site; else `direct`.
pub fn describe_source(source: &Attribution) -> String {
    if let Some(words) = utm_words(&source.utm_source, &source.utm_medium, &source.utm_campaign) {
        return words;
    }
    let clicked = [
        (&source.yclid, "yandex / cpc"),
        (&source.gclid, "google / cpc"),
        (&source.fbclid, "facebook / cpc"),
    ];
    if let Some((_, network)) = clicked.iter().find(|(id, _)| id.is_some()) {
        return (*network).to_owned();
    }
    let host = source
        .referrer
        .as_deref()
        .and_then(|r| url::Url::parse(r).ok())
        .and_then(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_owned())
        });
    match host {
        Some(host) => format!("{host} / referral"),
        None => "direct".into(),
    }
}

/// Where the visitor came from, as the site script sends it: UTM tags,
/// click ids, referrer and landing page (`field` names it in errors).
pub fn visitor_source(value: &Value, field: &str) -> Result<Attribution, FieldError> {
    if value.is_null() {
        return Ok(Attribution::default());
    }
    if !value.is_object() {
        return Err(FieldError::new("invalid_type", field, "an object"));
    }
    let prefix = format!("{field}.");
    let read = |name| text_field(value, name, &prefix, MAX_SOURCE_CHARS);
    Ok(Attribution {
        utm_source: read("utm_source")?,
        utm_medium: read("utm_medium")?,
        utm_campaign: read("utm_campaign")?,
        utm_term: read("utm_term")?,
        utm_content: read("utm_content")?,
        gclid: read("gclid")?,
        yclid: read("yclid")?,
        fbclid: read("fbclid")?,
        ctwa_clid: read("ctwa_clid")?,
        page_url: text_field(value, "page_url", &prefix, 2000)?,
        referrer: text_field(value, "referrer", &prefix, 2000)?,
        ip: None,
        user_agent: None,
    })
}

/// The static number a visitor from `source` is shown, if one is theirs:
/// the narrowest matching binding.
pub fn static_for<'a, T>(numbers: &'a [(T, SourceBinding)], source: &Attribution) -> Option<&'a T> {
    numbers
        .iter()
        .filter(|(_, binding)| binding.matches(source))
        .max_by_key(|(_, binding)| binding.specificity())
        .map(|(number, _)| number)
}

/// A phone number as E.164 (the identity rules' normalisation); `field`
/// names it in errors.
pub fn tracking_number(
    raw: &str,
    policy: &IdentityPolicy,
    field: &str,
) -> Result<String, FieldError> {
    Identifier::parse(IdentifierKind::Phone, raw, policy)
        .map(|id| id.value)
        .map_err(|_| {
            FieldError::new(
                "invalid_phone",
                field,
                "a phone number with its country code, such as +7 495 111-22-33",
            )
        })
}

/// `+7 (495) 111-22-33` for Russian and Kazakh numbers; other numbers as
/// E.164 (the page's own formatting is unknown).
pub fn display(number: &str) -> String {
    let Some(national) = number.strip_prefix("+7").filter(|n| n.len() == 10) else {
        return number.to_owned();
    };
    format!(
        "+7 ({}) {}-{}-{}",
        &national[..3],
        &national[3..6],
        &national[6..8],
        &national[8..]
    )
}

/// The workspace's call-tracking settings (`call_tracking`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How long a visitor keeps their number after their last activity.
    pub tail_s: u32,
    /// Elements whose text (and `tel:` link) becomes the visitor's number.
    pub selector: String,
    /// The number printed on the site: wherever the page shows it (text
    /// or `tel:` link, any formatting) the visitor's number replaces it.
    pub site_phone: Option<String>,
    /// Shown when every pool number is held (the miss is counted).
    pub default_number: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            tail_s: DEFAULT_TAIL_S,
            selector: DEFAULT_SELECTOR.into(),
            site_phone: None,
            default_number: None,
        }
    }
}

impl Settings {
    /// Reads settings from the API; those left out take their defaults.
    pub fn parse(value: &Value, policy: &IdentityPolicy) -> Result<Self, FieldError> {
        if !value.is_object() {
            return Err(FieldError::new("invalid_type", "body", "an object"));
        }
        let tail_s = match value.get("tail_s") {
            None | Some(Value::Null) => DEFAULT_TAIL_S,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (MIN_TAIL_S..=MAX_TAIL_S).contains(n))
                .ok_or_else(|| {
                    FieldError::new(
                        "out_of_range",
                        "tail_s",
                        format!("whole seconds from {MIN_TAIL_S} to {MAX_TAIL_S} (a day)"),
                    )
                })?,
        };
        let selector = text_field(value, "selector", "", MAX_SELECTOR_CHARS)?
            .unwrap_or_else(|| DEFAULT_SELECTOR.into());
        if selector.contains(['{', '}', '<', '>']) {
            return Err(FieldError::new(
                "invalid_selector",
                "selector",
                "a CSS selector such as .phone or #header a[href^=\"tel:\"]",
            ));
        }
        let phone = |name: &str| -> Result<Option<String>, FieldError> {
            text_field(value, name, "", 100)?
                .map(|raw| tracking_number(&raw, policy, name))
                .transpose()
        };
        Ok(Self {
            tail_s,
            selector,
            site_phone: phone("site_phone")?,
            default_number: phone("default_number")?,
        })
    }

    pub fn tail(&self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.tail_s))
    }

    /// How often the page says the visitor is still there: every minute,
    /// or often enough that a short tail does not lapse while they read.
    pub fn heartbeat_s(&self) -> u32 {
        (self.tail_s / 3).clamp(1, HEARTBEAT_S)
    }
}

/// A visitor holding a pool number, from `held_from` until `expires_at`
/// (their last activity plus the tail). Kept after it lapses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: Uuid,
    pub number_id: Uuid,
    /// E.164, kept with the reservation: the history outlives the number.
    pub number: String,
    pub anonymous_id: String,
    pub session_id: Option<String>,
    pub source: Attribution,
    pub held_from: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Reservation {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}

/// A pool number as the decision sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolNumber {
    pub id: Uuid,
    pub number: String,
    /// When its latest reservation lapsed (or lapses); never held: `None`.
    pub last_expiry: Option<DateTime<Utc>>,
}

/// The workspace's pool at the moment of a request, read in the
/// reservation's transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub numbers: Vec<PoolNumber>,
    /// The reservations active now.
    pub active: Vec<Reservation>,
}

/// What a visitor's request does to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// They hold a number: keep it until `until`.
    Extend {
        reservation: Uuid,
        until: DateTime<Utc>,
    },
    /// A free number becomes theirs until `until`.
    Take { number: Uuid, until: DateTime<Utc> },
    /// All held: show the default number, count the miss.
    Miss,
}

/// The visitor's number: the one they hold, else the free number idle the
/// longest (a late call to it is least likely to be the last holder's),
/// else none.
pub fn decide(pool: &Pool, visitor: &str, now: DateTime<Utc>, tail: TimeDelta) -> Decision {
    let until = now + tail;
    let in_pool = |id: Uuid| pool.numbers.iter().any(|n| n.id == id);
    if let Some(held) = pool
        .active
        .iter()
        .find(|r| r.anonymous_id == visitor && r.active(now) && in_pool(r.number_id))
    {
        return Decision::Extend {
            reservation: held.id,
            until: until.max(held.expires_at),
        };
    }
    // By number too: a number removed and added again is the same line.
    let taken = |n: &PoolNumber| {
        pool.active
            .iter()
            .any(|r| (r.number_id == n.id || r.number == n.number) && r.active(now))
    };
    pool.numbers
        .iter()
        .filter(|n| !taken(n))
        .min_by(|a, b| {
            a.last_expiry
                .cmp(&b.last_expiry)
                .then_with(|| a.number.cmp(&b.number))
        })
        .map_or(Decision::Miss, |n| Decision::Take {
            number: n.id,
            until,
        })
}

/// The reservation that held the number when a call started at `at`: the
/// latest one begun by then (allowing [`START_GRACE`] for whole-second
/// PBX clocks) and not yet lapsed.
pub fn holder_at(reservations: &[Reservation], at: DateTime<Utc>) -> Option<&Reservation> {
    reservations
        .iter()
        .filter(|r| r.held_from <= at + START_GRACE && at < r.expires_at)
        .max_by_key(|r| r.held_from)
}

#[cfg(test)]
mod tests;
