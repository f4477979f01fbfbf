//! Which operator a conversation goes to.
//!
//! Sticky first (seed 001, scenarios 1 and 2): the operator who last served
//! this customer gets them again, on whatever channel they come back, when
//! that operator is online and under capacity, even if they sit in another
//! team. Otherwise the team's rule picks among its operators who are
//! online and under capacity: round robin, or least loaded (by share of
//! capacity in use). Nobody free: the conversation queues.
//!
//! The round-robin *cursor* is the member who last got a conversation by
//! the team's rule. Operators are taken in member-id order, starting after
//! the cursor, so operators joining, leaving or going away never reset the
//! rotation. The caller stores the returned cursor with the assignment, in
//! the same transaction.

mod queue;
mod unassign;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use queue::{queue, QueuePosition, Waiting};
pub use unassign::AutoUnassign;

use crate::ids::MemberId;
use crate::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    /// Keeps their conversations, takes no new ones.
    Away,
    Offline,
}

impl Presence {
    pub const ALL: [Presence; 3] = [Presence::Online, Presence::Away, Presence::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Offline => "offline",
        }
    }
}

impl fmt::Display for Presence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Presence {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let key = s.trim().to_ascii_lowercase();
        Presence::ALL
            .into_iter()
            .find(|p| p.as_str() == key)
            .ok_or_else(|| {
                FieldError::new(
                    "invalid_presence",
                    "presence",
                    "expected online, away or offline",
                )
            })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    #[default]
    RoundRobin,
    LeastLoaded,
}

/// A team's routing settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TeamRouting {
    pub rule: Rule,
    /// Send a returning customer to the operator who served them last.
    pub sticky: bool,
}

impl Default for TeamRouting {
    fn default() -> Self {
        Self {
            rule: Rule::RoundRobin,
            sticky: true,
        }
    }
}

/// An operator as routing sees them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub member: MemberId,
    pub presence: Presence,
    /// Conversations assigned to them and not resolved.
    pub load: u32,
    /// Most conversations they take at once (0: none).
    pub capacity: u32,
}

impl Operator {
    /// Online and under capacity.
    pub fn can_take(&self) -> bool {
        self.presence == Presence::Online && self.load < self.capacity
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Sticky,
    RoundRobin,
    LeastLoaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Assign {
        operator: MemberId,
        reason: Reason,
    },
    /// Nobody can take it now: it waits in the team's queue.
    Queue,
}

/// The decision and the team's cursor to store with it (unchanged unless
/// the team's rule assigned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    pub decision: Decision,
    pub cursor: Option<MemberId>,
}

/// Routes one conversation. `operators` are the team's; `last_operator` is
/// whoever last served this customer (from any team), if anyone.
pub fn route(
    team: &TeamRouting,
    operators: &[Operator],
    cursor: Option<MemberId>,
    last_operator: Option<&Operator>,
) -> Routed {
    if let Some(last) = last_operator.filter(|o| team.sticky && o.can_take()) {
        return Routed {
            decision: Decision::Assign {
                operator: last.member,
                reason: Reason::Sticky,
            },
            cursor,
        };
    }
    let turn = rotation(operators, cursor);
    let picked = match team.rule {
        Rule::RoundRobin => turn.first().map(|o| (o.member, Reason::RoundRobin)),
        // `min_by` keeps the first of equals: ties go round in turn.
        Rule::LeastLoaded => turn
            .iter()
            .min_by(|a, b| by_used_share(a, b))
            .map(|o| (o.member, Reason::LeastLoaded)),
    };
    match picked {
        Some((operator, reason)) => Routed {
            decision: Decision::Assign { operator, reason },
            cursor: Some(operator),
        },
        None => Routed {
            decision: Decision::Queue,
            cursor,
        },
    }
}

/// The operators who can take a conversation, in turn after `cursor`.
fn rotation(operators: &[Operator], cursor: Option<MemberId>) -> Vec<&Operator> {
    let mut free: Vec<&Operator> = operators.iter().filter(|o| o.can_take()).collect();
    free.sort_by_key(|o| o.member);
    free.dedup_by_key(|o| o.member);
    let after = cursor.map_or(0, |c| free.partition_point(|o| o.member <= c));
    free.rotate_left(after);
    free
}

/// Compares `load / capacity` exactly (capacity is never 0 here).
fn by_used_share(a: &Operator, b: &Operator) -> std::cmp::Ordering {
    (u64::from(a.load) * u64::from(b.capacity)).cmp(&(u64::from(b.load) * u64::from(a.capacity)))
}
