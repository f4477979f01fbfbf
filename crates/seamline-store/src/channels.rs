//! Channel accounts (a workspace's Telegram bot, WhatsApp number, ...) and
//! the durable outbox of messages waiting to go out through them.
//!
//! The store never sees a provider secret in clear: the server seals them
//! ([`SealedSecrets`]) before they get here. It does only what must happen
//! in one statement or transaction:
//! - an outbound message is queued once, keyed by its message id, so a
//!   second enqueue (the API's, then a sweep's) changes nothing;
//! - a due entry is leased to one sender until its lease runs out
//!   ([`ChannelStore::claim_outbound`]), so instances never send it twice at
//!   once and a sender that died leaves it to another;
//! - an entry's outcome and its message's delivery status are written
//!   together ([`ChannelStore::finish_outbound`]).

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::Channel;
use seamline_core::{ChannelAccountId, ConversationMessageId, ProfileId, WorkspaceId};

use crate::{DeliveryStatus, StoreResult};

/// Provider secrets as the server sealed them (nonce and ciphertext,
/// encoded). Opaque to the store; `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecrets(pub String);

impl fmt::Debug for SealedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecrets(..)")
    }
}

/// One connected channel account of a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelAccount {
    pub id: ChannelAccountId,
    pub workspace_id: WorkspaceId,
    pub kind: Channel,
    pub name: String,
    /// Settings that are not secret (a bot's username, an API base URL).
    pub settings: serde_json::Value,
    pub secrets: SealedSecrets,
    /// The unguessable last segment of the account's webhook URL.
    pub path_token: String,
    pub active: bool,
    /// The last connection check: `unchecked`, `connected` or `error`.
    pub status: String,
    /// What the last check said (the provider's error, the bot's name).
    pub status_detail: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an outbound message is in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundState {
    /// Waiting (not tried, or retrying at `next_attempt_at`).
    Pending,
    Sent,
    /// Failed for good; the reason is on the message.
    Failed,
    /// Not tried again: it may have been sent (the message's status is
    /// `unknown`, the reason on it).
    Unknown,
}

impl OutboundState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Failed, Self::Unknown]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An outbound message in the outbox, with what a sender needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundEntry {
    /// The message's id: the idempotency key of the entry.
    pub message_id: ConversationMessageId,
    pub workspace_id: WorkspaceId,
    /// The customer it goes to.
    pub profile_id: ProfileId,
    pub channel: Channel,
    pub body: String,
    pub state: OutboundState,
    /// Attempts that reached the provider (or failed to).
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    /// The provider's id of the sent message.
    pub provider_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a send attempt (or a decision not to try yet) leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundStep {
    /// Accepted by the provider: the message becomes `sent`.
    Sent { provider_id: Option<String> },
    /// Refused for good: the message becomes `failed` with the reason.
    Failed { reason: String },
    /// Given up on without knowing whether it went out (a send that timed
    /// out, where trying again could send it twice): the message becomes
    /// `unknown` with the reason.
    Unknown { reason: String },
    /// Failed for now: try again at `at` (counts an attempt).
    Retry { at: DateTime<Utc>, reason: String },
    /// Not tried (a rate limit): due again at `at`, no attempt counted.
    Defer { at: DateTime<Utc> },
}

/// A delivery report kept until its message is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParkedDelivery {
    pub status: DeliveryStatus,
    pub reason: Option<String>,
    pub received_at: DateTime<Utc>,
}

/// Channel accounts and the outbound outbox. Every method but the
/// webhook's token lookup and the sender's queue takes the workspace.
#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    async fn create_channel_account(&self, account: &ChannelAccount) -> StoreResult<()>;
    async fn channel_account(
        &self,
        workspace: WorkspaceId,
        id: ChannelAccountId,
    ) -> StoreResult<Option<ChannelAccount>>;
    /// Oldest first.
    async fn list_channel_accounts(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<ChannelAccount>>;
    /// The account whose webhook URL ends in `path_token` (any workspace:
    /// the token is the unguessable part of a public URL).
    async fn channel_account_by_token(
        &self,
        kind: Channel,
        path_token: &str,
    ) -> StoreResult<Option<ChannelAccount>>;
    /// Writes name, settings, secrets, active, status and `updated_at`;
    /// `NotFound` when it is not the workspace's.
    async fn update_channel_account(&self, account: &ChannelAccount) -> StoreResult<()>;
    async fn delete_channel_account(
        &self,
        workspace: WorkspaceId,
        id: ChannelAccountId,
    ) -> StoreResult<()>;

    /// Queues the stored message `id` if it is an outbound message waiting
    /// for delivery (`pending`) and not queued yet. Returns whether it was.
    async fn enqueue_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Queues every pending outbound message on `channels` that has no
    /// entry (one lost between its write and its enqueue). Returns how many.
    async fn sweep_outbound(&self, channels: &[Channel], now: DateTime<Utc>) -> StoreResult<u32>;
    /// Leases up to `limit` due pending entries (any workspace: the
    /// sender's queue) until `lease_until`, oldest due first.
    async fn claim_outbound(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboundEntry>>;
    /// Moves the entry on by `step` and releases its lease; `Sent`,
    /// `Failed` and `Unknown` also set the message's delivery status (and reason) in the
    /// same transaction, and `Sent` its external id (the provider's, for
    /// later delivery reports) unless another message holds that id.
    async fn finish_outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        step: &OutboundStep,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn outbound(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
    ) -> StoreResult<Option<OutboundEntry>>;

    /// Keeps a delivery report for the provider's id `external_id` whose
    /// message is not known yet (the report came before the send recorded
    /// the id); the same status for the same id is kept once.
    async fn park_delivery(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
        parked: &ParkedDelivery,
    ) -> StoreResult<()>;
    /// The reports parked for `external_id`, in the order they came.
    async fn parked_deliveries(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Vec<ParkedDelivery>>;
    /// Forgets the report `status` parked for `external_id` (applied).
    async fn drop_parked_delivery(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
        status: DeliveryStatus,
    ) -> StoreResult<()>;
}
