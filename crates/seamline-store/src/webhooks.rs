//! Outbound webhooks as stored: each workspace's endpoints and a durable
//! queue of deliveries, one per (endpoint, event), with every attempt logged.
//!
//! The store keeps what the sender decided; it does only what must happen
//! in one statement or transaction:
//! - a delivery is queued once per `(endpoint, dedupe_key)`, so an event
//!   handled twice (a bus redelivery) is sent once;
//! - a due delivery is leased to one sender until its lease runs out
//!   ([`WebhookStore::claim_deliveries`]), so several instances never send
//!   the same attempt at once and a sender that dies leaves it to another;
//! - an attempt is logged and the delivery's next state written together.
//!
//! Deliveries carry the profile they are about, so erasing the profile
//! removes them and their attempts (the payload holds the person's words).

use std::collections::BTreeSet;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::{ProfileId, WebhookDeliveryId, WebhookId, WorkspaceId};
use serde::Serialize;

use crate::StoreResult;

/// Most bytes of a receiver's answer kept in the attempt log.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;

/// What an endpoint can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum WebhookEvent {
    #[serde(rename = "message.created")]
    MessageCreated,
    #[serde(rename = "conversation.created")]
    ConversationCreated,
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    /// A test sent on request; endpoints cannot subscribe to it.
    #[serde(rename = "ping")]
    Ping,
}

impl WebhookEvent {
    /// The events an endpoint may subscribe to.
    pub const SUBSCRIBABLE: [WebhookEvent; 3] = [
        WebhookEvent::MessageCreated,
        WebhookEvent::ConversationCreated,
        WebhookEvent::ConversationUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::ConversationCreated => "conversation.created",
            Self::ConversationUpdated => "conversation.updated",
            Self::Ping => "ping",
        }
    }

    /// Any event, `ping` included (as stored).
    pub fn parse(text: &str) -> Option<Self> {
        Self::SUBSCRIBABLE
            .into_iter()
            .chain([Self::Ping])
            .find(|e| e.as_str() == text)
    }
}

/// The key receivers verify signatures with. Never printed: `Debug` hides
/// it and it is not serialised; the API shows it once, on purpose.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

/// Where a workspace wants its events sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookEndpoint {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    /// An `http` or `https` URL (checked by the caller).
    pub url: String,
    #[serde(skip)]
    pub secret: WebhookSecret,
    /// The events it wants; empty: every subscribable one.
    pub events: BTreeSet<WebhookEvent>,
    pub active: bool,
    pub description: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    /// Whether this endpoint is sent `event` now (a ping always is).
    pub fn wants(&self, event: WebhookEvent) -> bool {
        self.active
            && (event == WebhookEvent::Ping
                || self.events.is_empty()
                || self.events.contains(&event))
    }
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not tried yet (or asked to be sent again).
    Pending,
    /// The receiver answered 2xx.
    Succeeded,
    /// The last attempt failed; another is scheduled.
    Failed,
    /// Failed too often; no more attempts unless redelivered by hand.
    GivenUp,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::GivenUp => "given_up",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed, Self::GivenUp]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An event to queue for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub id: WebhookDeliveryId,
    pub workspace_id: WorkspaceId,
    pub endpoint_id: WebhookId,
    pub event: WebhookEvent,
    /// What makes the event the same event when it is seen twice.
    pub dedupe_key: String,
    /// Whose conversation it is about, so erasure can find it.
    pub profile_id: Option<ProfileId>,
    /// The body's `data`.
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// A delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub workspace_id: WorkspaceId,
    pub endpoint_id: WebhookId,
    pub event: WebhookEvent,
    pub profile_id: Option<ProfileId>,
    pub payload: serde_json::Value,
    pub status: DeliveryState,
    pub attempts: u32,
    /// When it is due next; none once it succeeded or was given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Position in the log (newest first); a page continues below it.
    pub seq: i64,
}

/// A delivery leased to a sender, with where and how to sign it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub delivery: WebhookDelivery,
    pub url: String,
    pub secret: WebhookSecret,
}

/// One try at sending a delivery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryAttempt {
    pub delivery_id: WebhookDeliveryId,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; none when it never answered.
    pub status_code: Option<u16>,
    pub duration_ms: u32,
    /// Why it failed when there was no answer (timeout, refused, ...).
    pub error: Option<String>,
    /// The start of the answer's body, at most [`RESPONSE_EXCERPT_BYTES`].
    pub response_excerpt: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

/// A page of one endpoint's deliveries, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Continue below this seq.
    pub before: Option<i64>,
    pub limit: u32,
}

/// Webhook endpoints and their delivery queue. Every method but the
/// sender's lease takes the workspace and stays inside it.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    async fn webhook(
        &self,
        workspace: WorkspaceId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>>;
    /// Oldest first. A change another instance made may show up to
    /// [`MEMO_TTL`](crate::memo::MEMO_TTL) late.
    async fn list_webhooks(&self, workspace: WorkspaceId) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Writes url, secret, events, active, description and `updated_at`;
    /// `NotFound` when it is not the workspace's.
    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// Removes the endpoint with its deliveries and their attempts.
    async fn delete_webhook(&self, workspace: WorkspaceId, id: WebhookId) -> StoreResult<()>;

    /// Queues deliveries due at once; one already queued for its
    /// `(endpoint, dedupe_key)` is skipped. Returns how many were new.
    async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<u32>;
    /// Leases up to `limit` due deliveries of active endpoints (any
    /// workspace: this is the sender's queue) until `lease_until`.
    async fn claim_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Logs `attempt`, counts it and moves the delivery on by `next`,
    /// releasing its lease.
    async fn record_attempt(
        &self,
        workspace: WorkspaceId,
        attempt: &DeliveryAttempt,
        next: NextStep,
    ) -> StoreResult<()>;
    async fn deliveries(
        &self,
        workspace: WorkspaceId,
        endpoint: WebhookId,
        query: DeliveryQuery,
    ) -> StoreResult<Vec<WebhookDelivery>>;
    async fn delivery(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDelivery>>;
    /// Its attempts, oldest first.
    async fn delivery_attempts(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<Vec<DeliveryAttempt>>;
    /// Makes a delivery due again at `now` (whatever its status), keeping
    /// its attempts; `NotFound` when it is not the workspace's.
    async fn redeliver(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
}
