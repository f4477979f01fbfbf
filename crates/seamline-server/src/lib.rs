//! Seamline's HTTP edge and background workers.
//!
//! Architecture invariants:
//! - Handlers are thin: parse, authorise, call core/store/bus, render. Rules
//!   live in `seamline-core`; persistence behind `seamline-store`.
//! - Wire DTOs (JSON shapes of the REST API) live only here and are converted
//!   by hand from domain types; the tracking payload is parsed by the core.
//! - Every route that reads or writes tenant data gets its workspace from the
//!   authenticated [`auth::Principal`] (session or key), never from the request.
//! - A 2xx on ingest means the events are committed ([`ingest`]); the bus
//!   sees them only after commit, through the outbox ([`outbox`]).
//! - Errors have one JSON shape: `{"error": {"code", "message", "field"}}`.

pub mod api;
pub mod auth;
pub mod calltracking;
pub mod channels;
pub mod demo;
pub mod error;
pub mod extract;
pub mod identity;
pub mod inbox;
pub mod ingest;
pub mod ops;
pub mod outbox;
pub mod provision;
mod startup;
pub mod tracking;
pub mod ui;
pub mod views;
pub mod webhooks;
pub mod widget;

pub use startup::{without_nagle, Application, ServerConfig};

use std::sync::Arc;

use seamline_bus::Bus;
use seamline_store::Backend;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Backend>,
    pub bus: Arc<dyn Bus>,
    /// This instance's fan-out of live inbox frames to its sockets.
    pub live: inbox::LiveHub,
    /// Attachments' bytes.
    pub blobs: inbox::attachments::BlobStore,
    pub ingest: ingest::Ingest,
    /// Group commit of customers' inbound messages.
    pub inbound: inbox::InboundWriter,
    pub config: Arc<ServerConfig>,
    /// The channel connectors and the outbox sender's bell.
    pub channels: channels::sender::Outbox,
    pub login_throttle: Arc<auth::throttle::LoginThrottle>,
}
