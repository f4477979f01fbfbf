//! The storage interface of Seamline.
//!
//! Architecture invariants:
//! - One trait, [`Store`], with domain types only: no SQL, no driver types;
//!   [`ProfileStore`], [`InboxStore`], [`WebhookStore`] and
//!   [`ChannelStore`] alongside, and [`Backend`] is all five.
//!   Each backend (`seamline-store-sqlite`, `seamline-store-postgres`) is a
//!   thin implementation with its own migrations, and both pass the one
//!   suite in [`conformance`].
//! - Every method that touches tenant data takes the [`WorkspaceId`] and
//!   filters by it; the only cross-workspace lookups are by unguessable
//!   secrets (a key's hash, a session token's hash) and a member's login e-mail.
//! - Multi-step writes are one transaction: a workspace with its owner and
//!   keys; events with their outbox entry; a message with its conversation.
//! - The event log is append-only. `append_events` stores each
//!   `(workspace, messageId)` once, ever, and writes an outbox entry in the
//!   same transaction so the bus relay publishes only committed events.
//!   `append_and_claim` also leases one consumer's new entry to the caller
//!   and hands it back with the events as stored, so a worker in the same
//!   process handles them without reading them back; if it dies first, the
//!   lease runs out and any worker of that consumer takes the entry.

mod calltracking;
mod channels;
mod identity;
mod inbox;
pub mod memo;
mod types;
mod webhooks;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::{KeyId, MemberId, ProfileId, Role, WorkspaceId};
use uuid::Uuid;

pub use calltracking::*;
pub use channels::*;
pub use identity::*;
pub use inbox::*;
pub use types::*;
pub use webhooks::*;

/// The consumers of the outbox: each append leaves one entry per consumer.
pub const OUTBOX_CONSUMERS: [&str; 2] = [BUS_CONSUMER, IDENTITY_CONSUMER];
/// Publishes committed events on the bus.
pub const BUS_CONSUMER: &str = "bus";
/// Resolves committed events into profiles.
pub const IDENTITY_CONSUMER: &str = "identity";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and health output.
    fn backend(&self) -> &'static str;
    /// Applies pending migrations (idempotent).
    async fn migrate(&self) -> StoreResult<()>;
    /// Is the database reachable? Used by `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    // Workspaces, members, sessions.

    /// Creates a workspace, its owner and its first keys in one transaction.
    async fn create_workspace(&self, setup: WorkspaceSetup) -> StoreResult<Workspace>;
    async fn workspace(&self, id: WorkspaceId) -> StoreResult<Option<Workspace>>;
    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;
    /// One of a workspace's settings: a JSON document by name (`identity`).
    /// A change another instance made may show up to [`memo::MEMO_TTL`] late.
    async fn setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<serde_json::Value>>;
    async fn put_setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
        value: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn create_member(&self, member: NewMember) -> StoreResult<Member>;
    async fn member(&self, workspace: WorkspaceId, id: MemberId) -> StoreResult<Option<Member>>;
    /// Login lookup: e-mails are unique across the installation.
    async fn member_by_email(&self, email: &str) -> StoreResult<Option<Member>>;
    async fn list_members(&self, workspace: WorkspaceId) -> StoreResult<Vec<Member>>;
    async fn set_member_role(
        &self,
        workspace: WorkspaceId,
        id: MemberId,
        role: Role,
    ) -> StoreResult<()>;
    /// Removes a member and all their sessions.
    async fn delete_member(&self, workspace: WorkspaceId, id: MemberId) -> StoreResult<()>;

    async fn create_session(&self, session: Session) -> StoreResult<()>;
    /// The live session with this token hash (expired ones are not returned).
    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<()>;

    // Keys.

    async fn create_key(&self, key: ApiKey) -> StoreResult<()>;
    async fn list_keys(&self, workspace: WorkspaceId) -> StoreResult<Vec<ApiKey>>;
    async fn revoke_key(
        &self,
        workspace: WorkspaceId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The unrevoked key with this secret hash, in whatever workspace it is.
    async fn key_by_hash(&self, kind: KeyKind, secret_hash: &str) -> StoreResult<Option<ApiKey>>;

    // The event log.

    /// Appends events (of any workspaces) and their outbox entry in one
    /// transaction. Returns, per input, whether it was new (`false`: its
    /// `(workspace, messageId)` was already stored, or repeated earlier in the input).
    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<bool>>;
    /// Appends like [`Store::append_events`] and, in the same transaction,
    /// leases `consumer`'s new outbox entry to the caller until
    /// `lease_until`; that entry comes back holding the new events exactly
    /// as stored. Other consumers' entries are left for their workers.
    async fn append_and_claim(
        &self,
        events: Vec<NewEvent>,
        consumer: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Appended>;
    async fn list_events(
        &self,
        workspace: WorkspaceId,
        query: &EventQuery,
    ) -> StoreResult<Vec<StoredEvent>>;
    async fn count_events(&self, workspace: WorkspaceId) -> StoreResult<u64>;

    // The outbox (events committed but not yet published on the bus).

    /// Leases up to `limit` of `consumer`'s unhandled entries until
    /// `lease_until`; entries leased by a worker that died become claimable
    /// again after their lease.
    async fn claim_outbox(
        &self,
        consumer: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboxEntry>>;
    /// Marks entries handled (deletes them).
    async fn complete_outbox(&self, ids: &[i64]) -> StoreResult<()>;
    /// How many of `consumer`'s entries wait (leased or not): its backlog.
    async fn outbox_backlog(&self, consumer: &str) -> StoreResult<u64>;

    // Imports.

    /// The last line committed by an import of `source` (a file fingerprint).
    async fn import_checkpoint(
        &self,
        workspace: WorkspaceId,
        source: &str,
    ) -> StoreResult<Option<u64>>;
    async fn set_import_checkpoint(
        &self,
        workspace: WorkspaceId,
        source: &str,
        line: u64,
    ) -> StoreResult<()>;
}

/// Profiles and the identity graph, their merges, conflicts and consent.
#[async_trait]
pub trait ProfileStore: Send + Sync + 'static {
    /// Starts a serialised identity transaction for `workspace`.
    async fn begin_identity(&self, workspace: WorkspaceId) -> StoreResult<Box<dyn IdentityTx>>;
    async fn profile(&self, workspace: WorkspaceId, id: ProfileId) -> StoreResult<Option<Profile>>;
    /// Live (not merged) profiles, most recently seen first.
    async fn list_profiles(
        &self,
        workspace: WorkspaceId,
        query: &ProfileQuery,
    ) -> StoreResult<Vec<Profile>>;
    async fn profile_identifiers(
        &self,
        workspace: WorkspaceId,
        id: ProfileId,
    ) -> StoreResult<Vec<ProfileIdentifier>>;
    /// The profile's events (its timeline), paged like `list_events`.
    async fn profile_events(
        &self,
        workspace: WorkspaceId,
        id: ProfileId,
        query: &EventQuery,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Merges into `profile` (undone ones too), newest first.
    async fn merges(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<MergeRecord>>;
    async fn merge_record(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> StoreResult<Option<MergeRecord>>;
    /// Open conflicts involving `profile` (all open ones when `None`).
    async fn conflicts(
        &self,
        workspace: WorkspaceId,
        profile: Option<ProfileId>,
    ) -> StoreResult<Vec<ConflictRecord>>;
    async fn resolve_conflict(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn record_consent(&self, consent: ConsentRecord) -> StoreResult<()>;
    /// The whole consent history of a profile, oldest first.
    async fn consents(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<ConsentRecord>>;
    /// Removes the person's data everywhere: identifiers, traits, event
    /// payloads and ids, IPs; keeps anonymised event rows for aggregates and
    /// remembers `fingerprints` so the identifiers never link again.
    async fn erase_profile(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
        fingerprints: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
}

/// Everything a runtime shape provides: the event store, the profiles,
/// the inbox, the webhooks, the channels and call tracking.
pub trait Backend:
    Store + ProfileStore + InboxStore + WebhookStore + ChannelStore + CallTrackingStore
{
}

impl<T: Store + ProfileStore + InboxStore + WebhookStore + ChannelStore + CallTrackingStore> Backend
    for T
{
}
