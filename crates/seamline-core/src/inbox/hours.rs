//! A team's business hours: a weekly schedule on the wall clock of an IANA
//! time zone, and holidays (local dates closed all day). Used for routing,
//! out-of-hours autoreplies and the bot.
//!
//! Wall-clock rules across daylight saving: a span is open while the local
//! clock reads inside it, so on the day clocks jump forward a span starting
//! in the skipped hour opens when the clock lands in it (02:30 on the spring
//! Sunday in Berlin opens at 03:00), and on the day they fall back a span in
//! the repeated hour is open both times. A span that ends past midnight
//! (`22:00`–`02:00`) runs into the next day; a holiday closes its whole
//! local date.

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Days, LocalResult, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::FieldError;

const MINUTES_PER_DAY: u16 = 24 * 60;
/// How far ahead `next_open` looks (a year and a week of holidays).
const SEARCH_DAYS: u64 = 373;

/// Business hours as entered and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoursConfig {
    /// IANA name, such as `Europe/Moscow`.
    pub time_zone: String,
    pub weekly: Vec<Span>,
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
}

/// Open on `day` from `from` to `to` (`HH:MM`, `to` may be `24:00`; a `to`
/// earlier than `from` ends on the next day).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub day: Weekday,
    pub from: String,
    pub to: String,
}

/// Validated business hours.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "HoursConfig", into = "HoursConfig")]
pub struct BusinessHours {
    config: HoursConfig,
    tz: Tz,
    /// Open minutes of each day from Monday, sorted and merged: `[from, to)`.
    week: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessHours {
    pub fn new(config: HoursConfig) -> Result<Self, FieldError> {
        let tz: Tz = config.time_zone.trim().parse().map_err(|_| {
            FieldError::new(
                "invalid_time_zone",
                "time_zone",
                format!(
                    "{:?} is not an IANA time zone such as Europe/Moscow",
                    config.time_zone
                ),
            )
        })?;
        // (day, from, to, index of the span it came from)
        let mut pieces: Vec<(usize, u16, u16, usize)> = Vec::new();
        for (i, span) in config.weekly.iter().enumerate() {
            let field = |name: &str| format!("weekly[{i}].{name}");
            let from = parse_minute(&span.from, false).ok_or_else(|| bad_time(field("from")))?;
            let to = parse_minute(&span.to, true).ok_or_else(|| bad_time(field("to")))?;
            let day = span.day.num_days_from_monday() as usize;
            if from == to {
                return Err(FieldError::new(
                    "empty_span",
                    field("to"),
                    "the span ends when it starts",
                ));
            }
            if from < to {
                pieces.push((day, from, to, i));
            } else {
                pieces.push((day, from, MINUTES_PER_DAY, i));
                pieces.push(((day + 1) % 7, 0, to, i));
            }
        }
        pieces.sort();
        let mut week: [Vec<(u16, u16)>; 7] = Default::default();
        let mut last: Option<(usize, u16, usize)> = None;
        for (day, from, to, i) in pieces {
            if let Some((last_day, last_to, j)) = last {
                if last_day == day && from < last_to {
                    return Err(FieldError::new(
                        "overlap",
                        format!("weekly[{}]", i.max(j)),
                        format!("overlaps weekly[{}]", i.min(j)),
                    ));
                }
            }
            match week[day].last_mut() {
                Some(open) if open.1 == from => open.1 = to,
                _ => week[day].push((from, to)),
            }
            last = Some((day, to, i));
        }
        let holidays = config.holidays.iter().copied().collect();
        Ok(Self {
            config,
            tz,
            week,
            holidays,
        })
    }

    pub fn config(&self) -> &HoursConfig {
        &self.config
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn is_open(&self, now: DateTime<Utc>) -> bool {
        let local = now.with_timezone(&self.tz);
        if self.holidays.contains(&local.date_naive()) {
            return false;
        }
        let minute = (local.hour() * 60 + local.minute()) as u16;
        self.day(local.weekday())
            .iter()
            .any(|&(from, to)| from <= minute && minute < to)
    }

    /// `now` when open, else the next moment it opens; `None` if it does not
    /// open within a year.
    pub fn next_open(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.is_open(now) {
            return Some(now);
        }
        let today = now.with_timezone(&self.tz).date_naive();
        (0..=SEARCH_DAYS)
            .filter_map(|offset| today.checked_add_days(Days::new(offset)))
            .filter(|date| !self.holidays.contains(date))
            .flat_map(|date| {
                self.day(date.weekday())
                    .iter()
                    .flat_map(move |&(from, to)| self.openings(date, from, to))
            })
            .find(|at| *at > now)
    }

    fn day(&self, day: Weekday) -> &[(u16, u16)] {
        &self.week[day.num_days_from_monday() as usize]
    }

    /// The instants a span on `date` opens: one, two when its start is in
    /// the hour repeated as clocks fall back, or the first existing minute
    /// of the span when its start was skipped as clocks jumped forward.
    fn openings(&self, date: NaiveDate, from: u16, to: u16) -> Vec<DateTime<Utc>> {
        for minute in from..to {
            let Some(local) = date.and_hms_opt(u32::from(minute / 60), u32::from(minute % 60), 0)
            else {
                continue;
            };
            match self.tz.from_local_datetime(&local) {
                LocalResult::Single(at) => return vec![at.to_utc()],
                LocalResult::Ambiguous(first, second) => {
                    return vec![first.to_utc(), second.to_utc()]
                }
                LocalResult::None => continue,
            }
        }
        Vec::new()
    }
}

impl TryFrom<HoursConfig> for BusinessHours {
    type Error = FieldError;
    fn try_from(config: HoursConfig) -> Result<Self, FieldError> {
        BusinessHours::new(config)
    }
}

impl From<BusinessHours> for HoursConfig {
    fn from(hours: BusinessHours) -> Self {
        hours.config
    }
}

/// `HH:MM` as minutes after midnight; `24:00` only as an end.
fn parse_minute(raw: &str, end: bool) -> Option<u16> {
    let (h, m) = raw.trim().split_once(':')?;
    let digits = |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || m.len() != 2 || !digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) if end => Some(MINUTES_PER_DAY),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn bad_time(field: String) -> FieldError {
    FieldError::new(
        "invalid_time",
        field,
        "expected a time of day such as 09:00 (24:00 only as an end)",
    )
}
