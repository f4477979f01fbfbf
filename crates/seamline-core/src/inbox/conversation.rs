//! One continuous conversation per customer profile, whatever the channel.
//!
//! Status moves between open, pending (waiting on the customer), snoozed
//! (until a time) and resolved. Each change goes through a function here
//! that refuses what makes no sense with a typed error and returns the
//! change for the timeline. A message from the customer always reopens the
//! conversation: nobody's question is left in a closed box.

mod channel;
mod label;
mod message;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use channel::{Channel, UnknownChannel};
pub use label::{Label, Priority, MAX_LABEL_CHARS};
pub use message::{AssignReason, Message, MessageKind, SystemEvent, MAX_BODY_CHARS};
pub use timers::{cycles, Cycle};

use crate::ids::{ConversationId, MemberId, ProfileId, TeamId};
use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Needs an operator.
    Open,
    /// Waiting on the customer.
    Pending,
    /// Out of the way until `until`, then open again.
    Snoozed {
        until: DateTime<Utc>,
    },
    Resolved,
}

impl Status {
    pub fn name(self) -> StatusName {
        match self {
            Status::Open => StatusName::Open,
            Status::Pending => StatusName::Pending,
            Status::Snoozed { .. } => StatusName::Snoozed,
            Status::Resolved => StatusName::Resolved,
        }
    }
}

/// A status without its data: for filters, events and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusName {
    Open,
    Pending,
    Snoozed,
    Resolved,
}

impl StatusName {
    pub const ALL: [StatusName; 4] = [
        StatusName::Open,
        StatusName::Pending,
        StatusName::Snoozed,
        StatusName::Resolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatusName::Open => "open",
            StatusName::Pending => "pending",
            StatusName::Snoozed => "snoozed",
            StatusName::Resolved => "resolved",
        }
    }
}

impl fmt::Display for StatusName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StatusName {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let key = s.trim().to_ascii_lowercase();
        StatusName::ALL
            .into_iter()
            .find(|n| n.as_str() == key)
            .ok_or_else(|| {
                FieldError::new(
                    "invalid_status",
                    "status",
                    "expected open, pending, snoozed or resolved",
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("the conversation is already {0}")]
    Already(StatusName),
    #[error("a resolved conversation cannot become {0}; reopen it first")]
    ReopenFirst(StatusName),
    #[error("cannot snooze until {0}: that is not in the future")]
    SnoozeNotInFuture(DateTime<Utc>),
    #[error("{0} is not a customer channel")]
    NotACustomerChannel(Channel),
    #[error("the customer has not written yet; pick the channel to reply on")]
    NoReplyChannel,
}

/// A status change, for the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusChange {
    pub from: Status,
    pub to: Status,
}

impl StatusChange {
    pub fn event(self) -> SystemEvent {
        SystemEvent::StatusChanged {
            from: self.from.name(),
            to: self.to.name(),
            until: match self.to {
                Status::Snoozed { until } => Some(until),
                _ => None,
            },
        }
    }
}

/// The conversation's state. Change it only through the methods: they
/// hold the rules and return what to record on the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub profile: ProfileId,
    #[serde(flatten)]
    pub status: Status,
    pub assignee: Option<MemberId>,
    pub team: Option<TeamId>,
    pub priority: Priority,
    pub labels: BTreeSet<Label>,
    /// The channel of the customer's latest message: where replies go by default.
    pub last_inbound_channel: Option<Channel>,
    pub last_inbound_at: Option<DateTime<Utc>>,
    /// Since when the customer has been waiting for an operator's answer.
    pub waiting_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl Conversation {
    pub fn new(id: ConversationId, profile: ProfileId, now: DateTime<Utc>) -> Self {
        Self {
            id,
            profile,
            status: Status::Open,
            assignee: None,
            team: None,
            priority: Priority::None,
            labels: BTreeSet::new(),
            last_inbound_channel: None,
            last_inbound_at: None,
            waiting_since: None,
            created_at: now,
        }
    }

    /// The customer wrote on `channel`: replies default to it, the customer
    /// now waits for an answer, and a conversation that is not open reopens.
    pub fn receive(
        &mut self,
        channel: Channel,
        at: DateTime<Utc>,
    ) -> Result<Option<StatusChange>, ConversationError> {
        if !channel.is_customer_facing() {
            return Err(ConversationError::NotACustomerChannel(channel));
        }
        self.last_inbound_channel = Some(channel);
        self.last_inbound_at = Some(at);
        self.waiting_since.get_or_insert(at);
        Ok(self.reopen().ok())
    }

    /// An operator answered: the customer no longer waits.
    pub fn replied(&mut self) {
        self.waiting_since = None;
    }

    /// The channel a reply goes out on: the operator's pick, else the
    /// channel of the customer's latest message.
    pub fn reply_channel(&self, picked: Option<Channel>) -> Result<Channel, ConversationError> {
        match picked {
            Some(channel) if !channel.is_customer_facing() => {
                Err(ConversationError::NotACustomerChannel(channel))
            }
            Some(channel) => Ok(channel),
            None => self
                .last_inbound_channel
                .ok_or(ConversationError::NoReplyChannel),
        }
    }

    pub fn reopen(&mut self) -> Result<StatusChange, ConversationError> {
        match self.status {
            Status::Open => Err(ConversationError::Already(StatusName::Open)),
            _ => Ok(self.set(Status::Open)),
        }
    }

    pub fn mark_pending(&mut self) -> Result<StatusChange, ConversationError> {
        match self.status {
            Status::Pending => Err(ConversationError::Already(StatusName::Pending)),
            Status::Resolved => Err(ConversationError::ReopenFirst(StatusName::Pending)),
            _ => Ok(self.set(Status::Pending)),
        }
    }

    /// Snoozing again moves the wake-up time.
    pub fn snooze(
        &mut self,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<StatusChange, ConversationError> {
        if until <= now {
            return Err(ConversationError::SnoozeNotInFuture(until));
        }
        match self.status {
            Status::Resolved => Err(ConversationError::ReopenFirst(StatusName::Snoozed)),
            Status::Snoozed { until: current } if current == until => {
                Err(ConversationError::Already(StatusName::Snoozed))
            }
            _ => Ok(self.set(Status::Snoozed { until })),
        }
    }

    /// Resolving also ends the customer's wait.
    pub fn resolve(&mut self) -> Result<StatusChange, ConversationError> {
        match self.status {
            Status::Resolved => Err(ConversationError::Already(StatusName::Resolved)),
            _ => {
                self.waiting_since = None;
                Ok(self.set(Status::Resolved))
            }
        }
    }

    /// The snooze is over.
    pub fn wake_due(&self, now: DateTime<Utc>) -> bool {
        matches!(self.status, Status::Snoozed { until } if until <= now)
    }

    /// Reopens a conversation whose snooze is over; nothing otherwise.
    pub fn wake(&mut self, now: DateTime<Utc>) -> Option<StatusChange> {
        self.wake_due(now).then(|| self.set(Status::Open))
    }

    /// Sets the operator and team together (a transfer to a team clears the
    /// operator by passing `None`). `None` when nothing changed.
    pub fn assign(
        &mut self,
        operator: Option<MemberId>,
        team: Option<TeamId>,
        reason: AssignReason,
    ) -> Option<SystemEvent> {
        if (self.assignee, self.team) == (operator, team) {
            return None;
        }
        self.assignee = operator;
        self.team = team;
        Some(SystemEvent::Assigned {
            operator,
            team,
            reason,
        })
    }

    pub fn set_priority(&mut self, priority: Priority) -> Option<SystemEvent> {
        let from = std::mem::replace(&mut self.priority, priority);
        (from != priority).then_some(SystemEvent::PriorityChanged { from, to: priority })
    }

    pub fn add_label(&mut self, label: Label) -> Option<SystemEvent> {
        self.labels
            .insert(label.clone())
            .then_some(SystemEvent::Labelled { label })
    }

    pub fn remove_label(&mut self, label: &Label) -> Option<SystemEvent> {
        self.labels.remove(label).then(|| SystemEvent::Unlabelled {
            label: label.clone(),
        })
    }

    fn set(&mut self, to: Status) -> StatusChange {
        let from = std::mem::replace(&mut self.status, to);
        StatusChange { from, to }
    }
}
