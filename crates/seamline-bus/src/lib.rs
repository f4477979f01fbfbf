//! The bus: stored events fanned out to whoever needs them.
//!
//! Architecture invariants:
//! - Knows nothing of events, workspaces or the store: it moves opaque
//!   [`Message`]s by subject. Only committed data is ever published (the
//!   server's outbox relay publishes after commit), so subscribers never see
//!   uncommitted writes.
//! - Delivery is at-least-once. A message carries an `id`; a publish of an id
//!   already seen within the dedupe window is dropped, and consumers must still
//!   be idempotent (a redelivery after a crash is normal).
//! - Two implementations behind one trait: [`InProcessBus`] for the single
//!   binary, [`NatsBus`] (JetStream) for many instances. Both pass the same
//!   suite in [`conformance`].
//!
//! Subjects are dot-separated tokens (`events.<workspace>`); filters use NATS
//! wildcards: `*` matches one token, `>` the rest.

mod in_process;
mod nats;
mod subject;

#[cfg(feature = "conformance")]
pub mod conformance;

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use in_process::InProcessBus;
pub use nats::{NatsBus, NatsOptions};
pub use subject::subject_matches;

/// One thing said on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Dot-separated, e.g. `events.0190f3c2-...`.
    pub subject: String,
    /// Dedupe key: a second publish with the same id is dropped.
    pub id: String,
    pub payload: Bytes,
}

/// How a subscriber shares the stream with others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// Every broadcast subscriber gets every message published after it
    /// subscribed, on every instance (live pushes to browsers).
    Broadcast,
    /// The members of one named group, on any instance, share the messages:
    /// each message goes to one member and is redelivered until acked.
    Group(String),
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("cannot reach the bus: {0}")]
    Unavailable(String),
    #[error("the bus refused the request: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Returns once the bus has accepted the message (for JetStream: stored).
    async fn publish(&self, message: Message) -> Result<(), BusError>;

    async fn subscribe(
        &self,
        filter: &str,
        kind: SubscriptionKind,
    ) -> Result<Subscription, BusError>;

    /// Is the bus reachable and working? Used by `/readyz`.
    async fn ping(&self) -> Result<(), BusError>;

    /// `in-process` or `nats`, for logs and health output.
    fn kind(&self) -> &'static str;
}

/// Settings shared by both implementations.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// How long a group member may hold a message before it is redelivered.
    pub ack_wait: Duration,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
        }
    }
}

/// A stream of deliveries. Dropping it unsubscribes.
pub struct Subscription {
    inner: Pin<Box<dyn Stream<Item = Delivery> + Send>>,
}

impl Subscription {
    pub fn new(stream: impl Stream<Item = Delivery> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for Subscription {
    type Item = Delivery;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Acknowledges one delivery to the bus that made it.
#[async_trait]
pub trait Acker: Send {
    async fn ack(self: Box<Self>) -> Result<(), BusError>;
}

/// A message handed to a subscriber. Group deliveries must be acked once
/// handled, or they come again; broadcast deliveries need no ack.
pub struct Delivery {
    pub message: Message,
    acker: Option<Box<dyn Acker>>,
}

impl Delivery {
    pub fn new(message: Message, acker: Option<Box<dyn Acker>>) -> Self {
        Self { message, acker }
    }

    pub async fn ack(self) -> Result<(), BusError> {
        match self.acker {
            Some(acker) => acker.ack().await,
            None => Ok(()),
        }
    }
}
