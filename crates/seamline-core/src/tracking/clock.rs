//! Clock-skew correction: `timestamp = receivedAt − (sentAt − originalTimestamp)`.
//! The device's clock may be wrong; the gap between its clock when the request
//! left (`sentAt`) and ours when it arrived is applied to the event's own time.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::FieldError;

/// Events that waited on the device longer than this are flagged `delayed`
/// (an offline queue flushed later) rather than silently re-timed.
pub const DELAYED_AFTER: Duration = Duration::hours(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Clock {
    /// The corrected time of the event.
    pub timestamp: DateTime<Utc>,
    /// `timestamp` as the client sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_timestamp: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Our clock minus the device's clock, in milliseconds.
    pub skew_ms: i64,
    /// How long the event waited on the device before it was sent.
    pub queued_ms: i64,
    pub delayed: bool,
}

impl Default for Clock {
    fn default() -> Self {
        Self {
            timestamp: DateTime::<Utc>::UNIX_EPOCH,
            original_timestamp: None,
            sent_at: None,
            skew_ms: 0,
            queued_ms: 0,
            delayed: false,
        }
    }
}

impl Clock {
    pub fn from_payload(
        payload: &Map<String, Value>,
        received_at: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        let original = parse_time(payload, "timestamp")?;
        let sent_at = parse_time(payload, "sentAt")?;
        Ok(Self::correct(original, sent_at, received_at))
    }

    pub fn correct(
        original: Option<DateTime<Utc>>,
        sent_at: Option<DateTime<Utc>>,
        received_at: DateTime<Utc>,
    ) -> Self {
        let skew = sent_at.map_or(Duration::zero(), |sent| received_at - sent);
        let queued = match (original, sent_at) {
            (Some(original), Some(sent)) => (sent - original).max(Duration::zero()),
            _ => Duration::zero(),
        };
        let timestamp = original.map_or(received_at, |t| t + skew);
        Self {
            timestamp,
            original_timestamp: original,
            sent_at,
            skew_ms: skew.num_milliseconds(),
            queued_ms: queued.num_milliseconds(),
            delayed: queued > DELAYED_AFTER,
        }
    }
}

/// Accepts ISO 8601 / RFC 3339 text or Unix epoch milliseconds.
fn parse_time(
    payload: &Map<String, Value>,
    field: &str,
) -> Result<Option<DateTime<Utc>>, FieldError> {
    let invalid = || {
        FieldError::new(
            "invalid_timestamp",
            field,
            "must be an ISO 8601 date-time such as 2024-05-01T12:30:00.000Z",
        )
    };
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .or_else(|_| parse_naive_utc(s).ok_or(()))
            .map_err(|_| invalid()),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
            .map(Some)
            .ok_or_else(invalid),
        Some(_) => Err(invalid()),
    }
}

/// `2024-05-01T12:30:00` or `2024-05-01 12:30:00.123` without an offset: taken as UTC.
fn parse_naive_utc(s: &str) -> Option<Option<DateTime<Utc>>> {
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| chrono::NaiveDateTime::parse_from_str(s, format).ok())
        .map(|naive| Some(naive.and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .expect("test time")
    }

    #[test]
    fn a_device_clock_five_minutes_behind_is_corrected() {
        let clock = Clock::correct(
            Some(t("2024-05-01T11:55:00Z")),
            Some(t("2024-05-01T11:55:10Z")),
            t("2024-05-01T12:00:10Z"),
        );
        assert_eq!(clock.timestamp, t("2024-05-01T12:00:00Z"));
        assert_eq!(clock.skew_ms, 5 * 60 * 1000);
        assert_eq!(clock.queued_ms, 10_000);
        assert!(!clock.delayed);
    }

    #[test]
    fn events_queued_for_hours_are_flagged_not_rewritten() {
        let clock = Clock::correct(
            Some(t("2024-05-01T08:00:00Z")),
            Some(t("2024-05-01T12:00:00Z")),
            t("2024-05-01T12:00:00Z"),
        );
        assert_eq!(clock.timestamp, t("2024-05-01T08:00:00Z"));
        assert!(clock.delayed);
    }

    #[test]
    fn without_a_timestamp_the_event_happened_on_receipt() {
        let received = t("2024-05-01T12:00:00Z");
        assert_eq!(Clock::correct(None, None, received).timestamp, received);
    }
}
