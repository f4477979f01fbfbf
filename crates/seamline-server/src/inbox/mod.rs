//! The inbox at the edge: a customer's message from any channel becomes a
//! message in their one conversation, routed to an operator.
//!
//! The rules are the core's ([`seamline_core::inbox`]); the rows are the
//! store's ([`seamline_store::InboxStore`]). Every channel (the site widget,
//! messengers, e-mail, SMS, calls) enters through [`receive`].

mod receive;
mod route;

pub use receive::{receive, Customer, Inbound, InboxError, Received};
pub use route::route_conversation;
