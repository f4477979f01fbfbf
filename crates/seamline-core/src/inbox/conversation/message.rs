//! The entries of a conversation's timeline. What the customer sees
//! (inbound, outbound, bot) travels on a customer channel; what only the
//! team sees (notes, system events such as assignment, handoff and status
//! changes) is on [`Channel::Internal`], so a note can never be sent out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::channel::Channel;
use super::label::{Label, Priority};
use super::StatusName;
use crate::ids::{ConversationId, ConversationMessageId, MemberId, TeamId};
use crate::inbox::bot::Collected;
use crate::inbox::routing::Reason;
use crate::FieldError;

/// Longest body accepted, in characters (a long e-mail fits; a dump does not).
pub const MAX_BODY_CHARS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MessageKind {
    /// From the customer.
    Inbound,
    /// From an operator to the customer.
    Outbound { operator: MemberId },
    /// From the chatbot to the customer.
    Bot,
    /// Internal note; `mentions` are notified.
    Note {
        author: MemberId,
        mentions: Vec<MemberId>,
    },
    /// Something that happened to the conversation; `actor` is who did it
    /// (none: the system, e.g. routing or a snooze expiring).
    Event {
        actor: Option<MemberId>,
        event: SystemEvent,
    },
}

impl MessageKind {
    /// Travels to or from the customer (as opposed to staying in the team).
    pub fn is_customer_visible(&self) -> bool {
        matches!(
            self,
            MessageKind::Inbound | MessageKind::Outbound { .. } | MessageKind::Bot
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SystemEvent {
    StatusChanged {
        from: StatusName,
        to: StatusName,
        /// Set when `to` is snoozed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<DateTime<Utc>>,
    },
    Assigned {
        operator: Option<MemberId>,
        team: Option<TeamId>,
        reason: AssignReason,
    },
    /// The bot passed the customer to a person, with what it collected.
    HandedOff {
        collected: Vec<Collected>,
        team: Option<TeamId>,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    Labelled {
        label: Label,
    },
    Unlabelled {
        label: Label,
    },
}

/// Why an assignment changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignReason {
    /// Routing: the operator who served this customer last.
    Sticky,
    RoundRobin,
    LeastLoaded,
    /// Picked by hand (assign or unassign).
    Manual,
    /// Passed on by the operator who had it, with a note.
    Transfer,
    /// A supervisor took it over.
    TakeOver,
    /// Its operator stayed offline past the grace period.
    OperatorOffline,
}

impl From<Reason> for AssignReason {
    fn from(reason: Reason) -> Self {
        match reason {
            Reason::Sticky => AssignReason::Sticky,
            Reason::RoundRobin => AssignReason::RoundRobin,
            Reason::LeastLoaded => AssignReason::LeastLoaded,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: ConversationMessageId,
    pub conversation: ConversationId,
    #[serde(flatten)]
    pub kind: MessageKind,
    pub channel: Channel,
    pub body: String,
    pub at: DateTime<Utc>,
}

impl Message {
    /// A timeline entry, refused when its channel does not fit its kind or
    /// its body is too long (or a note's is blank).
    pub fn new(
        id: ConversationMessageId,
        conversation: ConversationId,
        kind: MessageKind,
        channel: Channel,
        body: String,
        at: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        if kind.is_customer_visible() && !channel.is_customer_facing() {
            return Err(FieldError::new(
                "internal_channel",
                "channel",
                "a message to or from the customer needs a customer channel",
            ));
        }
        if !kind.is_customer_visible() && channel.is_customer_facing() {
            return Err(FieldError::new(
                "customer_channel",
                "channel",
                "notes and events stay on the internal channel",
            ));
        }
        if body.chars().count() > MAX_BODY_CHARS {
            return Err(FieldError::new(
                "too_long",
                "body",
                format!("at most {MAX_BODY_CHARS} characters"),
            ));
        }
        if matches!(kind, MessageKind::Note { .. }) && body.trim().is_empty() {
            return Err(FieldError::new("required", "body", "a note needs text"));
        }
        Ok(Self {
            id,
            conversation,
            kind,
            channel,
            body,
            at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn new(kind: MessageKind, channel: Channel, body: &str) -> Result<Message, FieldError> {
        Message::new(
            ConversationMessageId(Uuid::from_u128(1)),
            ConversationId(Uuid::from_u128(2)),
            kind,
            channel,
            body.into(),
            DateTime::<Utc>::UNIX_EPOCH,
        )
    }

    fn olga() -> MemberId {
        MemberId(Uuid::from_u128(7))
    }

    #[test]
    fn customer_messages_travel_on_customer_channels() {
        assert!(new(MessageKind::Inbound, Channel::Telegram, "hi").is_ok());
        assert!(new(MessageKind::Bot, Channel::WebChat, "hello").is_ok());
        let outbound = MessageKind::Outbound { operator: olga() };
        assert!(new(outbound.clone(), Channel::WhatsApp, "").is_ok());
        let err = new(outbound, Channel::Internal, "hi").unwrap_err();
        assert_eq!(
            (err.code, err.field.as_str()),
            ("internal_channel", "channel")
        );
    }

    #[test]
    fn notes_and_events_never_leave_the_team() {
        let note = MessageKind::Note {
            author: olga(),
            mentions: vec![],
        };
        assert!(new(note.clone(), Channel::Internal, "check the order").is_ok());
        let err = new(note.clone(), Channel::Email, "check").unwrap_err();
        assert_eq!(err.code, "customer_channel");
        assert_eq!(
            new(note, Channel::Internal, "  ").unwrap_err().field,
            "body"
        );
        let event = MessageKind::Event {
            actor: None,
            event: SystemEvent::PriorityChanged {
                from: Priority::None,
                to: Priority::High,
            },
        };
        assert!(new(event, Channel::Internal, "").is_ok());
    }

    #[test]
    fn long_bodies_are_refused() {
        let body = "я".repeat(MAX_BODY_CHARS);
        assert!(new(MessageKind::Inbound, Channel::Email, &body).is_ok());
        let err = new(MessageKind::Inbound, Channel::Email, &format!("{body}!")).unwrap_err();
        assert_eq!((err.code, err.field.as_str()), ("too_long", "body"));
    }

    #[test]
    fn messages_serialise_with_their_kind_inline() {
        let event = MessageKind::Event {
            actor: Some(olga()),
            event: SystemEvent::Assigned {
                operator: Some(olga()),
                team: None,
                reason: Reason::Sticky.into(),
            },
        };
        let message = new(event, Channel::Internal, "").unwrap();
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json["kind"], "event");
        assert_eq!(json["event"]["event"], "assigned");
        assert_eq!(json["event"]["reason"], "sticky");
        assert_eq!(json["channel"], "internal");
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, message);
    }
}
