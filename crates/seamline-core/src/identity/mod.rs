//! Identity resolution: which identifiers belong to one person.
//!
//! - [`identifier`]: the kinds of identifiers and their normalisation (phones
//!   to E.164, e-mails folded per the workspace's policy, junk refused).
//! - [`extract`]: the identifiers and traits an event carries.
//! - [`graph`]: the resolution rules, applied to an in-memory graph; the
//!   store applies the same decisions durably.

pub mod extract;
pub mod graph;
pub mod identifier;
pub mod policy;

pub use extract::{observe, Observation};
pub use graph::{
    ConflictReason, Decision, DeviceSession, IdentityGraph, ProfileKey, Resolution, Snapshot,
};
pub use identifier::{Identifier, IdentifierKind};
pub use policy::IdentityPolicy;
