//! Outbound webhooks: conversation and message events, sent to each
//! workspace's endpoints, signed, retried with backoff, logged.
//!
//! Two workers per instance, both started in `startup.rs`:
//! - [`events`] turns the live inbox frames on the bus (`inbox.>`, as the
//!   group `webhooks`, so each frame is handled by one instance) into
//!   queued deliveries, once per endpoint and event, and acks the frame
//!   only after they are committed;
//! - [`sender`] leases due deliveries from the store (safe across
//!   instances), POSTs them signed ([`sign`]), and logs each attempt.
//!
//! The queue is durable: a delivery waiting for its retry is sent by
//! whichever instance runs next, after a restart too.

pub mod events;
pub mod sender;
pub mod sign;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use seamline_bus::{Bus, BusError};
use seamline_store::Backend;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How deliveries are sent and retried.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The wait before each retry, in order; a delivery failing once more
    /// than there are waits is given up (the first try plus one per wait).
    pub retry_delays: Vec<Duration>,
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// How often the sender looks for due retries when nothing wakes it.
    pub poll: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(60 * m);
        Self {
            // 8 attempts over about 1.5 days.
            retry_delays: vec![
                Duration::from_secs(30),
                minutes(2),
                minutes(10),
                minutes(60),
                minutes(6 * 60),
                minutes(12 * 60),
                minutes(24 * 60),
            ],
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// Starts both workers; the handle ends when both have stopped with `stop`.
pub async fn start(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    config: WebhookConfig,
    stop: CancellationToken,
) -> Result<JoinHandle<()>, BusError> {
    // The consumer wakes the sender when it queues something, so a
    // delivery does not wait for the next poll.
    let wake = Arc::new(Notify::new());
    let consumer = events::start(store.clone(), bus, wake.clone(), stop.clone()).await?;
    let sender = tokio::spawn(sender::run(store, config, wake, stop));
    Ok(tokio::spawn(async move {
        let _ = tokio::join!(consumer, sender);
    }))
}
