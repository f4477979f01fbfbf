//! Seamline's domain core: the words the rest of the system speaks.
//! Ids, roles, tracking events, identity resolution and the inbox's rules
//! (conversations, routing, business hours, bots, templates, CSAT).
//!
//! Architecture invariants:
//! - No I/O of any kind: no database, network, file system, clock or randomness.
//!   Callers pass in "now" and random bytes; everything here is a pure function,
//!   so it is tested with plain unit and property tests.
//! - Knows nothing of HTTP, SQL or the bus. Wire formats that are a compatibility
//!   promise (the Segment-style tracking payload) are parsed here into validated
//!   domain values; nothing outside holds an unvalidated event.
//! - Every validation failure names the field and the reason ([`FieldError`]).

pub mod calltracking;
pub mod cursor;
pub mod error;
pub mod identity;
pub mod ids;
pub mod inbox;
pub mod role;
pub mod sms;
pub mod tracking;

pub use error::FieldError;
pub use ids::{
    ChannelAccountId, ConversationId, ConversationMessageId, EventId, KeyId, MemberId, ProfileId,
    TeamId, WebhookDeliveryId, WebhookId, WorkspaceId,
};
pub use role::Role;
