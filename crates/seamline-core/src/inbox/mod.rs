//! The omnichannel inbox's rules: one conversation per customer across
//! every channel, and the decisions made about it. Pure functions of the
//! state and "now" that the server loads and passes in; the server persists
//! what they return.
//!
//! - [`conversation`]: status and its transitions, assignment, priority,
//!   labels, channels, messages and the response/resolution timers.
//! - [`mention`]: who an internal note's `@mentions` name.
//! - [`routing`]: which operator a conversation goes to (sticky, round
//!   robin, least loaded), the waiting queue, auto-unassign.
//! - [`hours`]: a team's business hours in its time zone, with holidays.
//! - [`bot`]: rule-based chatbot flows and the engine that runs them.
//! - [`template`]: canned responses with `{{variables}}`.
//! - [`widget_identity`]: the site widget's HMAC proof of a logged-in user.
//! - [`csat`]: satisfaction scores and their aggregates.
//! - [`visibility`]: who sees a private team's conversations.

pub mod bot;
pub mod conversation;
pub mod csat;
pub mod hours;
pub mod mention;
pub mod routing;
pub mod template;
pub mod visibility;
pub mod widget_identity;

pub use conversation::{Channel, Conversation, Label, Message, MessageKind, Priority, Status};
