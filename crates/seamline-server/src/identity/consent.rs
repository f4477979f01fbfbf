//! Consent: what the customer agreed to, per purpose and channel. Every
//! capability that sends marketing asks [`allows`] first.

use seamline_store::ConsentRecord;

pub const PURPOSES: [&str; 3] = ["marketing", "analytics", "service"];
pub const CHANNELS: [&str; 10] = [
    "any", "email", "sms", "whatsapp", "telegram", "viber", "vk", "calls", "push", "web",
];

/// The latest record for each (purpose, channel), from an oldest-first history.
pub fn current(history: &[ConsentRecord]) -> Vec<&ConsentRecord> {
    let mut latest: Vec<&ConsentRecord> = Vec::new();
    for record in history {
        latest.retain(|r| !(r.purpose == record.purpose && r.channel == record.channel));
        latest.push(record);
    }
    latest
}

/// May we use the person's data for `purpose` on `channel`? The channel's
/// own answer wins over an `any` answer; no answer is no.
pub fn allows(history: &[ConsentRecord], purpose: &str, channel: &str) -> bool {
    let now = current(history);
    let answer = |ch: &str| {
        now.iter()
            .find(|r| r.purpose == purpose && r.channel == ch)
            .map(|r| r.granted)
    };
    answer(channel).or_else(|| answer("any")).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use seamline_core::{ProfileId, WorkspaceId};
    use uuid::Uuid;

    fn record(purpose: &str, channel: &str, granted: bool) -> ConsentRecord {
        ConsentRecord {
            id: Uuid::now_v7(),
            workspace_id: WorkspaceId(Uuid::nil()),
            profile_id: ProfileId(Uuid::nil()),
            purpose: purpose.into(),
            channel: channel.into(),
            granted,
            source: "web_form".into(),
            wording: "Согласен получать новости".into(),
            at: Utc::now(),
        }
    }

    #[test]
    fn no_answer_is_no_and_the_latest_answer_counts() {
        assert!(!allows(&[], "marketing", "sms"));
        let history = vec![
            record("marketing", "sms", true),
            record("marketing", "sms", false),
        ];
        assert!(!allows(&history, "marketing", "sms"), "withdrawn later");
        assert_eq!(current(&history).len(), 1);
    }

    #[test]
    fn a_channel_answer_beats_any() {
        let history = vec![
            record("marketing", "any", true),
            record("marketing", "sms", false),
        ];
        assert!(allows(&history, "marketing", "email"));
        assert!(!allows(&history, "marketing", "sms"), "STOP by SMS holds");
        assert!(
            !allows(&history, "analytics", "email"),
            "purposes are separate"
        );
    }
}
