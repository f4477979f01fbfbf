//! Response and resolution times, computed from the timeline alone so a
//! report can be rebuilt from stored messages at any time.
//!
//! A conversation that is reopened lives several *cycles*: each starts with
//! the customer's first message while no cycle is running and ends when the
//! conversation is resolved. First response is the first operator reply in
//! the cycle (bots and notes do not count: the customer waits for a
//! person); resolution runs from the cycle's start to its resolve.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::message::{Message, MessageKind, SystemEvent};
use super::StatusName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Cycle {
    pub started_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Cycle {
    pub fn first_response_time(&self) -> Option<Duration> {
        self.first_response_at.map(|at| at - self.started_at)
    }

    pub fn resolution_time(&self) -> Option<Duration> {
        self.resolved_at.map(|at| at - self.started_at)
    }
}

/// The cycles of one conversation's timeline (in any order), oldest first;
/// the last may still be running.
pub fn cycles(messages: &[Message]) -> Vec<Cycle> {
    let mut timeline: Vec<&Message> = messages.iter().collect();
    timeline.sort_by_key(|m| m.at);
    let mut done = Vec::new();
    let mut current: Option<Cycle> = None;
    for message in timeline {
        match (&message.kind, current.as_mut()) {
            (MessageKind::Inbound, None) => {
                current = Some(Cycle {
                    started_at: message.at,
                    first_response_at: None,
                    resolved_at: None,
                });
            }
            (MessageKind::Outbound { .. }, Some(cycle)) => {
                cycle.first_response_at.get_or_insert(message.at);
            }
            (
                MessageKind::Event {
                    event:
                        SystemEvent::StatusChanged {
                            to: StatusName::Resolved,
                            ..
                        },
                    ..
                },
                Some(cycle),
            ) => {
                cycle.resolved_at = Some(message.at);
                done.extend(current.take());
            }
            _ => {}
        }
    }
    done.extend(current);
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ConversationId, ConversationMessageId, MemberId};
    use crate::inbox::conversation::Channel;
    use chrono::TimeZone;
    use uuid::Uuid;

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 3, 9, minute, 0).unwrap()
    }

    fn message(kind: MessageKind, minute: u32) -> Message {
        let channel = if kind.is_customer_visible() {
            Channel::WhatsApp
        } else {
            Channel::Internal
        };
        Message::new(
            ConversationMessageId(Uuid::from_u128(u128::from(minute))),
            ConversationId(Uuid::from_u128(1)),
            kind,
            channel,
            "x".into(),
            at(minute),
        )
        .unwrap()
    }

    fn operator() -> MessageKind {
        MessageKind::Outbound {
            operator: MemberId(Uuid::from_u128(9)),
        }
    }

    fn status(to: StatusName) -> MessageKind {
        MessageKind::Event {
            actor: None,
            event: SystemEvent::StatusChanged {
                from: StatusName::Open,
                to,
                until: None,
            },
        }
    }

    #[test]
    fn first_response_and_resolution_of_one_cycle() {
        let timeline = [
            message(MessageKind::Inbound, 0),
            message(MessageKind::Bot, 1),
            message(MessageKind::Inbound, 2),
            message(operator(), 5),
            message(operator(), 6),
            message(status(StatusName::Resolved), 20),
        ];
        let cycles = cycles(&timeline);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].first_response_time(), Some(Duration::minutes(5)));
        assert_eq!(cycles[0].resolution_time(), Some(Duration::minutes(20)));
    }

    #[test]
    fn a_reopened_conversation_starts_a_new_cycle() {
        let timeline = [
            message(status(StatusName::Resolved), 40),
            message(MessageKind::Inbound, 30),
            message(operator(), 31),
            message(MessageKind::Inbound, 0),
            message(operator(), 3),
            message(status(StatusName::Resolved), 10),
        ];
        let cycles = cycles(&timeline);
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[1].started_at, at(30));
        assert_eq!(cycles[1].first_response_time(), Some(Duration::minutes(1)));
        assert_eq!(cycles[1].resolution_time(), Some(Duration::minutes(10)));
    }

    #[test]
    fn a_running_cycle_has_no_times_yet() {
        let note = MessageKind::Note {
            author: MemberId(Uuid::from_u128(9)),
            mentions: vec![],
        };
        let timeline = [
            message(operator(), 0),
            message(MessageKind::Inbound, 1),
            message(note, 2),
            message(status(StatusName::Pending), 3),
        ];
        let cycles = cycles(&timeline);
        assert_eq!(cycles.len(), 1);
        assert_eq!(cycles[0].started_at, at(1));
        assert_eq!(cycles[0].first_response_time(), None);
        assert_eq!(cycles[0].resolution_time(), None);
    }

    #[test]
    fn resolving_without_a_customer_message_is_no_cycle() {
        let timeline = [
            message(operator(), 0),
            message(status(StatusName::Resolved), 1),
        ];
        assert!(cycles(&timeline).is_empty());
    }
}
