//! How values read on a page: numbers, money, times, identifiers.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use crate::identity::profiles::Money;

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Money from minor units: `34050 RUB` as `340.50 ₽`, `1999 USD` as `$19.99`.
pub(crate) fn money(m: &Money) -> String {
    let sign = if m.amount_minor < 0 { "−" } else { "" };
    let minor = m.amount_minor.unsigned_abs();
    let amount = format!("{}.{:02}", thousands(minor / 100), minor % 100);
    match m.currency.as_str() {
        "USD" => format!("{sign}${amount}"),
        "EUR" => format!("{sign}€{amount}"),
        "GBP" => format!("{sign}£{amount}"),
        "RUB" => format!("{sign}{amount} ₽"),
        other => format!("{sign}{amount} {other}"),
    }
}

/// A moment in full, in UTC.
pub(crate) fn full_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How long ago `at` was, the way people say it.
pub(crate) fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - at).num_seconds();
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match seconds {
        s if s < 60 => "just now".to_owned(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s if s < 2 * 86_400 => "yesterday".to_owned(),
        s if s < 30 * 86_400 => plural(s / 86_400, "day"),
        _ => at.format("%Y-%m-%d").to_string(),
    }
}

/// A `<time>` saying how long ago, with the full moment on hover.
pub(crate) fn time_ago(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) title=(full_time(at)) { (ago(at, now)) } }
}

/// A wait in words: "45 s", "12 min", "2 h 05 min".
pub(crate) fn wait_text(wait: chrono::Duration) -> String {
    let seconds = wait.num_seconds().max(0);
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        _ => format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60),
    }
}

/// Customer text with its web links made clickable and safe: only
/// `http(s)` addresses become links, which open in a new tab without the
/// opener or referrer and count for nothing (`nofollow`); everything else,
/// markup included, stays text.
pub(crate) fn linked_text(text: &str) -> Markup {
    html! {
        @for (part, is_link) in link_parts(text) {
            @if is_link {
                a href=(part) target="_blank" rel="noopener noreferrer nofollow ugc" { (part) }
            } @else { (part) }
        }
    }
}

/// `text` split into plain parts and `http(s)` links, in order.
fn link_parts(text: &str) -> Vec<(&str, bool)> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        // A sentence's closing punctuation is not part of the address.
        let link =
            tail[..end].trim_end_matches(['.', ',', ')', '!', '?', ';', ':', '"', '\'', '»']);
        let scheme_only = link.ends_with("//");
        if start > 0 {
            parts.push((&rest[..start], false));
        }
        parts.push((link, !scheme_only));
        rest = &tail[link.len()..];
    }
    if !rest.is_empty() {
        parts.push((rest, false));
    }
    parts
}

/// A `<time>` with the date and minute.
pub(crate) fn time_exact(at: DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M")) } }
}

/// The name of an identifier type for people.
pub(crate) fn kind_label(kind: &str) -> &str {
    match kind {
        "anonymous_id" => "Anonymous id",
        "user_id" => "User id",
        "device_id" => "Device id",
        "email" => "E-mail",
        "phone" => "Phone",
        "loyalty_card" => "Loyalty card",
        "telegram" => "Telegram",
        "whatsapp" => "WhatsApp",
        "viber" => "Viber",
        "vk" => "VK",
        other => other.strip_prefix("custom:").unwrap_or(other),
    }
}

/// An identifier's value as people write it: Russian numbers grouped
/// (`+79161234567` as `+7 916 123-45-67`), everything else as stored.
pub(crate) fn identifier_value(kind: &str, value: &str) -> String {
    let phone_like = matches!(kind, "phone" | "whatsapp" | "viber");
    let digits = value
        .strip_prefix("+7")
        .filter(|d| phone_like && d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()));
    match digits {
        Some(d) => format!("+7 {} {}-{}-{}", &d[..3], &d[3..6], &d[6..8], &d[8..]),
        None => value.to_owned(),
    }
}

/// Which identifier names a person best, lower first.
fn rank(kind: &str) -> u8 {
    match kind {
        "email" => 0,
        "phone" => 1,
        "user_id" => 2,
        "loyalty_card" => 3,
        "telegram" | "whatsapp" | "viber" | "vk" => 4,
        "anonymous_id" | "device_id" => 9,
        _ => 5,
    }
}

/// The identifier that names a person best, of `(kind, value)` pairs.
pub(crate) fn best_identifier<'a>(
    identifiers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Option<(&'a str, &'a str)> {
    identifiers.into_iter().min_by_key(|(kind, _)| rank(kind))
}

/// Words for a conflict's reason (`strong_identifiers:user_id`, `limit:email`,
/// `separated`).
pub(crate) fn conflict_reason(reason: &str) -> String {
    let (what, kind) = reason.split_once(':').unwrap_or((reason, ""));
    let kind = kind_label(kind).to_lowercase();
    match what {
        "strong_identifiers" => format!("Each has a different {kind}"),
        "limit" => format!("Together they would hold too many: {kind}"),
        "separated" => "Separated by hand (a merge was undone)".to_owned(),
        _ => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn money_reads_in_major_units_with_its_currency() {
        let m = |currency: &str, amount_minor| Money {
            currency: currency.into(),
            amount_minor,
        };
        assert_eq!(money(&m("RUB", 34050)), "340.50 ₽");
        assert_eq!(money(&m("RUB", 123456700)), "1,234,567.00 ₽");
        assert_eq!(money(&m("USD", 1999)), "$19.99");
        assert_eq!(money(&m("EUR", -505)), "−€5.05");
        assert_eq!(money(&m("KZT", 7)), "0.07 KZT");
    }

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc.with_ymd_and_hms(2024, 5, 10, 12, 0, 0).unwrap();
        assert_eq!(ago(now - Duration::seconds(5), now), "just now");
        assert_eq!(ago(now - Duration::minutes(7), now), "7 min ago");
        assert_eq!(ago(now - Duration::hours(1), now), "1 hour ago");
        assert_eq!(ago(now - Duration::hours(30), now), "yesterday");
        assert_eq!(ago(now - Duration::days(3), now), "3 days ago");
        assert_eq!(ago(now - Duration::days(90), now), "2024-02-10");
    }

    #[test]
    fn identifiers_read_as_people_write_them() {
        assert_eq!(
            identifier_value("phone", "+79161234567"),
            "+7 916 123-45-67"
        );
        assert_eq!(
            identifier_value("phone", "+4915112345678"),
            "+4915112345678"
        );
        assert_eq!(identifier_value("user_id", "+79161234567"), "+79161234567");
        assert_eq!(kind_label("custom:crm_id"), "crm_id");
        let ids = [("anonymous_id", "c1"), ("phone", "+7"), ("email", "a@b")];
        assert_eq!(best_identifier(ids), Some(("email", "a@b")));
        assert_eq!(
            conflict_reason("strong_identifiers:user_id"),
            "Each has a different user id"
        );
    }
}
