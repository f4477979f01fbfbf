//! The inbox at the edge: a customer's message from any channel becomes a
//! message in their one conversation, routed to an operator.
//!
//! The rules are the core's ([`seamline_core::inbox`]); the rows are the
//! store's ([`seamline_store::InboxStore`]). Every channel (the site widget,
//! messengers, e-mail, SMS, calls) enters through [`receive`]; the busy
//! ones (the widget's socket, providers' webhooks) through the group commit
//! of an [`InboundWriter`].

pub mod attachments;
pub mod automation;
pub mod live;
pub mod queue;
mod receive;
mod route;
pub mod supervisor;
pub mod visibility;
mod writer;

pub use live::LiveHub;
pub(crate) use receive::identify;
pub use receive::{receive, receive_with_files, AdClick, Customer, Inbound, InboxError, Received};
pub use route::{route_conversation, DEFAULT_CAPACITY};
pub use writer::InboundWriter;
