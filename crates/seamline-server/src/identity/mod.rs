//! Identity resolution at the edge: turns committed events into profiles.
//!
//! The rules are the core's ([`seamline_core::identity`]); this module loads
//! the part of the graph an event touches, runs the rules, and writes what
//! they decided in one serialised transaction per workspace. A worker feeds
//! it from the outbox (`identity` consumer), so every committed event is
//! resolved once, on whichever instance leases it.

pub mod consent;
mod ops;
pub mod policy;
pub mod profiles;
mod resolve;
pub mod worker;

pub use policy::{policy_of, save_policy};
pub use resolve::{resolve_events, tracked_of, BatchGraph, Placed};
