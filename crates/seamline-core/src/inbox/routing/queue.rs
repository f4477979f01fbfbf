//! The waiting queue: conversations nobody could take yet. Served by
//! priority (urgent first), then first come first served.

use chrono::{DateTime, Duration, Utc};

use crate::ids::ConversationId;
use crate::inbox::conversation::Priority;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub conversation: ConversationId,
    pub priority: Priority,
    /// When it joined the queue.
    pub since: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    pub conversation: ConversationId,
    pub priority: Priority,
    /// 1 is served next.
    pub position: usize,
    /// How long it has waited so far (never negative).
    pub waited: Duration,
}

/// The queue in serving order, with each conversation's position and wait.
pub fn queue(waiting: &[Waiting], now: DateTime<Utc>) -> Vec<QueuePosition> {
    let mut order: Vec<&Waiting> = waiting.iter().collect();
    order.sort_by_key(|w| (std::cmp::Reverse(w.priority), w.since, w.conversation));
    order
        .into_iter()
        .enumerate()
        .map(|(i, w)| QueuePosition {
            conversation: w.conversation,
            priority: w.priority,
            position: i + 1,
            waited: (now - w.since).max(Duration::zero()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 12, 0, 0).unwrap()
    }

    fn waiting(n: u128, priority: Priority, minutes_ago: i64) -> Waiting {
        Waiting {
            conversation: ConversationId(Uuid::from_u128(n)),
            priority,
            since: now() - Duration::minutes(minutes_ago),
        }
    }

    #[test]
    fn urgent_first_then_longest_waiting() {
        let queue = queue(
            &[
                waiting(1, Priority::None, 30),
                waiting(2, Priority::Urgent, 1),
                waiting(3, Priority::None, 45),
                waiting(4, Priority::High, 5),
            ],
            now(),
        );
        let order: Vec<u128> = queue.iter().map(|p| p.conversation.0.as_u128()).collect();
        assert_eq!(order, [2, 4, 3, 1]);
        let positions: Vec<usize> = queue.iter().map(|p| p.position).collect();
        assert_eq!(positions, [1, 2, 3, 4]);
        assert_eq!(queue[2].waited, Duration::minutes(45));
    }

    #[test]
    fn a_clock_behind_never_shows_a_negative_wait() {
        let queue = queue(&[waiting(1, Priority::Low, -2)], now());
        assert_eq!(queue[0].waited, Duration::zero());
        assert!(super::queue(&[], now()).is_empty());
    }

    proptest! {
        #[test]
        fn the_queue_is_a_fair_ordering(
            items in proptest::collection::vec((0usize..5, 0i64..120), 0..30)
        ) {
            let waiting: Vec<Waiting> = items
                .iter()
                .enumerate()
                .map(|(i, (p, ago))| waiting(i as u128, Priority::ALL[*p], *ago))
                .collect();
            let queue = queue(&waiting, now());
            prop_assert_eq!(queue.len(), waiting.len());
            for pair in queue.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                prop_assert!(a.priority > b.priority
                    || (a.priority == b.priority && a.waited >= b.waited));
                prop_assert_eq!(a.position + 1, b.position);
            }
        }
    }
}
