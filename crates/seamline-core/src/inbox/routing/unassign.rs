//! Auto-unassign: an operator who stays offline past a grace period gives
//! their open conversations back to their teams' queues, so customers are
//! not left with someone who is gone. Away keeps them: away is a short break.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::Presence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoUnassign {
    /// How long an operator may be offline (a dropped connection, a reload)
    /// before their conversations go back.
    pub grace_secs: u32,
}

impl Default for AutoUnassign {
    fn default() -> Self {
        Self { grace_secs: 600 }
    }
}

impl AutoUnassign {
    pub fn grace(&self) -> Duration {
        Duration::seconds(i64::from(self.grace_secs))
    }

    /// When to unassign an operator whose presence is `presence` since
    /// `since`: `None` unless offline. Schedule the check for this time.
    pub fn due_at(&self, presence: Presence, since: DateTime<Utc>) -> Option<DateTime<Utc>> {
        (presence == Presence::Offline).then(|| since + self.grace())
    }

    /// The operator's conversations should go back now.
    pub fn is_due(&self, presence: Presence, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.due_at(presence, since).is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0).unwrap()
    }

    #[test]
    fn offline_past_the_grace_period_unassigns() {
        let rule = AutoUnassign { grace_secs: 300 };
        let gone = t0();
        assert!(!rule.is_due(Presence::Offline, gone, gone + Duration::seconds(299)));
        assert!(rule.is_due(Presence::Offline, gone, gone + Duration::seconds(300)));
        assert_eq!(
            rule.due_at(Presence::Offline, gone),
            Some(gone + Duration::minutes(5))
        );
        assert_eq!(AutoUnassign::default().grace(), Duration::minutes(10));
    }

    proptest! {
        #[test]
        fn online_or_away_never_unassigns(secs in 0i64..1_000_000, away in any::<bool>()) {
            let presence = if away { Presence::Away } else { Presence::Online };
            let rule = AutoUnassign::default();
            prop_assert!(!rule.is_due(presence, t0(), t0() + Duration::seconds(secs)));
            prop_assert_eq!(rule.due_at(presence, t0()), None);
        }
    }
}
