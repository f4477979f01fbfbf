//! Sign-in throttling: after too many wrong passwords for one e-mail in a
//! window, further tries are refused for a while, so passwords cannot be
//! guessed at speed. Kept per instance (memory), which bounds guessing per
//! instance; the window is short enough that no state needs sharing.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES: usize = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginThrottle {
    /// How long `email` must wait before another try, if at all.
    pub fn wait(&self, email: &str, now: Instant) -> Option<Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recent = failures.get_mut(email)?;
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() < MAX_FAILURES {
            return None;
        }
        recent
            .front()
            .map(|oldest| WINDOW.saturating_sub(now.duration_since(*oldest)))
    }

    pub fn failed(&self, email: &str, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() > 100_000 {
            // Bounded memory under a spray of e-mails: forget the oldest window.
            failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) <= WINDOW)
            });
        }
        failures.entry(email.to_owned()).or_default().push_back(now);
    }

    pub fn succeeded(&self, email: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(email);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_wrong_passwords_lock_the_email_for_the_window() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert_eq!(throttle.wait("a@x.ru", start), None);
            throttle.failed("a@x.ru", start);
        }
        assert!(throttle.wait("a@x.ru", start).is_some());
        assert_eq!(
            throttle.wait("b@x.ru", start),
            None,
            "other e-mails are not affected"
        );
        assert_eq!(
            throttle.wait("a@x.ru", start + WINDOW + Duration::from_secs(1)),
            None
        );
    }

    #[test]
    fn a_success_clears_the_count() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            throttle.failed("a@x.ru", now);
        }
        throttle.succeeded("a@x.ru");
        throttle.failed("a@x.ru", now);
        assert_eq!(throttle.wait("a@x.ru", now), None);
    }
}
