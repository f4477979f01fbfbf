//! Seamline's store on embedded SQLite: the single-binary shape.
//!
//! Architecture invariants:
//! - A thin mapping of [`seamline_store::Store`] to SQL; no business rules.
//! - The file is opened in WAL mode with `synchronous = NORMAL`: a commit
//!   survives the process being killed (kill -9); `synchronous = FULL`
//!   (`durable_power_loss`) also survives power loss, at some throughput.
//! - Writes are serialised by SQLite itself, so `seq` grows in commit order.
//! - A background task checkpoints the WAL every second, so a commit never
//!   pays for copying the WAL into the database file (and its fsync).
//! - Inbox writes queue on the same writer lock; a conversation read inside
//!   a `BEGIN IMMEDIATE` transaction is the one its write replaces.
//! - Identity and inbound transactions, the busiest writers, run on one
//!   connection of their own so its page cache stays warm; the file is also
//!   memory-mapped, so a page another connection must read again is a
//!   memory copy, not a system call.
//! - Lookups by several keys join the keys as a `VALUES` table: ORed key
//!   pairs let SQLite's planner scan a workspace's rows instead.

mod calltracking;
mod channels;
mod events;
mod identity;
mod inbox;
mod profiles;
mod rows;
mod webhooks;
mod workspace;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::inbox::routing::Presence;
use seamline_core::inbox::Channel;
use seamline_core::{
    ConversationId, ConversationMessageId, KeyId, MemberId, ProfileId, Role, TeamId,
    WebhookDeliveryId, WebhookId, WorkspaceId,
};
use seamline_store::memo::Memos;
use seamline_store::*;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::Mutex;
use uuid::Uuid;

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Every write transaction takes this first, in arrival order. SQLite
    /// has one writer; queueing here instead of in SQLite's busy handler
    /// (which sleeps up to 100 ms between tries) keeps ingest and identity
    /// resolution taking turns instead of starving each other.
    writer: Arc<Mutex<()>>,
    /// One connection of its own for identity and inbound transactions, the
    /// busiest writers: its page cache survives from one to the next
    /// (SQLite drops a connection's cache whenever another wrote since).
    identity_pool: SqlitePool,
    /// Teams, webhook endpoints and settings as recently read.
    memos: Arc<Memos>,
    /// The WAL's checkpoints, stopped with the last clone of the store.
    _checkpoints: Arc<Checkpoints>,
}

/// How large the WAL may grow (in pages) before a commit checkpoints it
/// itself: far above what a second of writes adds, so only a stalled
/// background checkpoint leaves the work to a commit.
const WAL_AUTOCHECKPOINT_PAGES: &str = "20000";
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

struct Checkpoints(tokio::task::JoinHandle<()>);

impl Drop for Checkpoints {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies committed WAL frames into the database file without waiting for
/// readers or writers (`PASSIVE`), on a connection of its own.
async fn checkpoints(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        // A failed checkpoint is retried next second; the commit-time
        // checkpoint is the backstop.
        if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(%error, "WAL checkpoint");
        }
    }
}

/// How to open the database file.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// fsync on every commit (survives power loss, not only a process crash).
    pub durable_power_loss: bool,
    pub max_connections: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durable_power_loss: false,
            max_connections: 8,
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`.
    pub async fn open(path: &Path, options: SqliteOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::new().filename(path);
        Self::connect_with(connect, options).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn connect(url: &str, options: SqliteOptions) -> StoreResult<Self> {
        let connect = SqliteConnectOptions::from_str(url).map_err(backend)?;
        Self::connect_with(connect, options).await
    }

    async fn connect_with(
        connect: SqliteConnectOptions,
        options: SqliteOptions,
    ) -> StoreResult<Self> {
        let synchronous = if options.durable_power_loss {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .pragma("cache_size", "-65536")
            .pragma("temp_store", "memory")
            .pragma("mmap_size", "268435456")
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES);
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect.clone())
            .await
            .map_err(backend)?;
        let identity_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(backend)?;
        Ok(Self {
            identity_pool,
            _checkpoints: Arc::new(Checkpoints(tokio::spawn(checkpoints(pool.clone())))),
            pool,
            writer: Arc::new(Mutex::new(())),
            memos: Arc::default(),
        })
    }

    /// The pool, for the ingest benchmark's raw-insert baseline.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

pub(crate) fn backend(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(error))
}

/// Maps a unique-constraint violation to `Conflict(what)`, anything else to `Backend`.
pub(crate) fn conflict_or_backend(what: &'static str) -> impl Fn(sqlx::Error) -> StoreError {
    move |error| match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(error),
    }
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> StoreResult<()> {
        sqlx::migrate!("./migrations")
            .run(&self.pool)
            .await
            .map_err(backend)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_workspace(&self, setup: WorkspaceSetup) -> StoreResult<Workspace> {
        workspace::create_workspace(&self.pool, setup).await
    }

    async fn workspace(&self, id: WorkspaceId) -> StoreResult<Option<Workspace>> {
        workspace::workspace(&self.pool, id).await
    }

    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>> {
        workspace::list_workspaces(&self.pool).await
    }

    async fn setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<serde_json::Value>> {
        let key = (workspace, name.to_owned());
        let load = || workspace::setting(&self.pool, workspace, name);
        self.memos.settings.get_or_load(&key, load).await
    }

    async fn put_setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
        value: &serde_json::Value,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let written = workspace::put_setting(&self.pool, workspace, name, value, at).await;
        self.memos.settings.forget(&(workspace, name.to_owned()));
        written
    }

    async fn create_member(&self, member: NewMember) -> StoreResult<Member> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        workspace::insert_member(&mut conn, &member).await?;
        Ok(member)
    }

    async fn member(&self, workspace: WorkspaceId, id: MemberId) -> StoreResult<Option<Member>> {
        workspace::member(&self.pool, workspace, id).await
    }

    async fn member_by_email(&self, email: &str) -> StoreResult<Option<Member>> {
        workspace::member_by_email(&self.pool, email).await
    }

    async fn list_members(&self, workspace: WorkspaceId) -> StoreResult<Vec<Member>> {
        workspace::list_members(&self.pool, workspace).await
    }

    async fn set_member_role(
        &self,
        workspace: WorkspaceId,
        id: MemberId,
        role: Role,
    ) -> StoreResult<()> {
        workspace::set_member_role(&self.pool, workspace, id, role).await
    }

    async fn delete_member(&self, workspace: WorkspaceId, id: MemberId) -> StoreResult<()> {
        workspace::delete_member(&self.pool, workspace, id).await
    }

    async fn create_session(&self, session: Session) -> StoreResult<()> {
        workspace::create_session(&self.pool, session).await
    }

    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<Session>> {
        workspace::session(&self.pool, token_hash, now).await
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn create_key(&self, key: ApiKey) -> StoreResult<()> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        workspace::insert_key(&mut conn, &key).await
    }

    async fn list_keys(&self, workspace: WorkspaceId) -> StoreResult<Vec<ApiKey>> {
        workspace::list_keys(&self.pool, workspace).await
    }

    async fn revoke_key(
        &self,
        workspace: WorkspaceId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        workspace::revoke_key(&self.pool, workspace, id, at).await
    }

    async fn key_by_hash(&self, kind: KeyKind, secret_hash: &str) -> StoreResult<Option<ApiKey>> {
        workspace::key_by_hash(&self.pool, kind, secret_hash).await
    }

    async fn append_events(&self, events: &[NewEvent]) -> StoreResult<Vec<bool>> {
        let _turn = self.writer.lock().await;
        Ok(events::append(&self.pool, events, None).await?.new)
    }

    async fn append_and_claim(
        &self,
        events: Vec<NewEvent>,
        consumer: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Appended> {
        let claim = Some((consumer, lease_until));
        let _turn = self.writer.lock().await;
        let written = events::append(&self.pool, &events, claim).await?;
        let entry = events::entry(&written, events)?;
        Ok(Appended {
            new: written.new,
            entry,
        })
    }

    async fn list_events(
        &self,
        workspace: WorkspaceId,
        query: &EventQuery,
    ) -> StoreResult<Vec<StoredEvent>> {
        events::list(&self.pool, workspace, query).await
    }

    async fn count_events(&self, workspace: WorkspaceId) -> StoreResult<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE workspace_id = ?")
            .bind(workspace.as_uuid())
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    async fn claim_outbox(
        &self,
        consumer: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let leased = {
            let _turn = self.writer.lock().await;
            events::lease_outbox(&self.pool, consumer, limit, now, lease_until).await?
        };
        // Out of the turn: reading what the entries name is no write.
        events::leased_entries(&self.pool, leased).await
    }

    async fn outbox_backlog(&self, consumer: &str) -> StoreResult<u64> {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE consumer = ?")
            .bind(consumer)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(waiting).unwrap_or_default())
    }

    async fn complete_outbox(&self, ids: &[i64]) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        events::complete_outbox(&self.pool, ids).await
    }

    async fn import_checkpoint(
        &self,
        workspace: WorkspaceId,
        source: &str,
    ) -> StoreResult<Option<u64>> {
        let line: Option<i64> = sqlx::query_scalar(
            "SELECT line FROM import_checkpoints WHERE workspace_id = ? AND source = ?",
        )
        .bind(workspace.as_uuid())
        .bind(source)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(line.and_then(|l| u64::try_from(l).ok()))
    }

    async fn set_import_checkpoint(
        &self,
        workspace: WorkspaceId,
        source: &str,
        line: u64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO import_checkpoints (workspace_id, source, line) VALUES (?, ?, ?)
             ON CONFLICT (workspace_id, source) DO UPDATE SET line = excluded.line",
        )
        .bind(workspace.as_uuid())
        .bind(source)
        .bind(i64::try_from(line).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn begin_identity(&self, workspace: WorkspaceId) -> StoreResult<Box<dyn IdentityTx>> {
        let turn = self.writer.clone().lock_owned().await;
        Ok(Box::new(
            identity::begin(&self.identity_pool, workspace, turn).await?,
        ))
    }

    async fn profile(&self, workspace: WorkspaceId, id: ProfileId) -> StoreResult<Option<Profile>> {
        profiles::profile(&self.pool, workspace, id).await
    }

    async fn list_profiles(
        &self,
        workspace: WorkspaceId,
        query: &ProfileQuery,
    ) -> StoreResult<Vec<Profile>> {
        profiles::list(&self.pool, workspace, query).await
    }

    async fn profile_identifiers(
        &self,
        workspace: WorkspaceId,
        id: ProfileId,
    ) -> StoreResult<Vec<ProfileIdentifier>> {
        profiles::identifiers(&self.pool, workspace, id).await
    }

    async fn profile_events(
        &self,
        workspace: WorkspaceId,
        id: ProfileId,
        query: &EventQuery,
    ) -> StoreResult<Vec<StoredEvent>> {
        profiles::events(&self.pool, workspace, id, query).await
    }

    async fn merges(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<MergeRecord>> {
        profiles::merges(&self.pool, workspace, profile).await
    }

    async fn merge_record(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
    ) -> StoreResult<Option<MergeRecord>> {
        profiles::merge_record(&self.pool, workspace, id).await
    }

    async fn conflicts(
        &self,
        workspace: WorkspaceId,
        profile: Option<ProfileId>,
    ) -> StoreResult<Vec<ConflictRecord>> {
        profiles::conflicts(&self.pool, workspace, profile).await
    }

    async fn resolve_conflict(
        &self,
        workspace: WorkspaceId,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        profiles::resolve_conflict(&self.pool, workspace, id, at).await
    }

    async fn record_consent(&self, consent: ConsentRecord) -> StoreResult<()> {
        profiles::record_consent(&self.pool, &consent).await
    }

    async fn consents(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<ConsentRecord>> {
        profiles::consents(&self.pool, workspace, profile).await
    }

    async fn erase_profile(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
        fingerprints: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        profiles::erase(&self.pool, workspace, profile, fingerprints, at).await
    }
}

#[async_trait]
impl InboxStore for SqliteStore {
    async fn create_team(&self, team: &Team) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = inbox::create_team(&self.pool, team).await;
        self.memos.teams.forget(&team.workspace_id);
        written
    }

    async fn update_team(&self, team: &Team) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = inbox::update_team(&self.pool, team).await;
        self.memos.teams.forget(&team.workspace_id);
        written
    }

    async fn delete_team(&self, workspace: WorkspaceId, id: TeamId) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = inbox::delete_team(&self.pool, workspace, id).await;
        self.memos.teams.forget(&workspace);
        written
    }

    async fn team(&self, workspace: WorkspaceId, id: TeamId) -> StoreResult<Option<Team>> {
        inbox::team(&self.pool, workspace, id).await
    }

    async fn list_teams(&self, workspace: WorkspaceId) -> StoreResult<Vec<Team>> {
        let load = || inbox::list_teams(&self.pool, workspace);
        self.memos.teams.get_or_load(&workspace, load).await
    }

    async fn add_team_member(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
        member: MemberId,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::add_team_member(&self.pool, workspace, team, member).await
    }

    async fn remove_team_member(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
        member: MemberId,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::remove_team_member(&self.pool, workspace, team, member).await
    }

    async fn member_teams(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
    ) -> StoreResult<Vec<TeamId>> {
        inbox::member_teams(&self.pool, workspace, member).await
    }

    async fn routing_cursor(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
    ) -> StoreResult<Option<MemberId>> {
        inbox::routing_cursor(&self.pool, workspace, team).await
    }

    async fn set_presence(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        presence: Presence,
        at: DateTime<Utc>,
    ) -> StoreResult<OperatorState> {
        let _turn = self.writer.lock().await;
        inbox::set_presence(&self.pool, workspace, member, presence, at).await
    }

    async fn set_capacity(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        capacity: Option<u32>,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::set_capacity(&self.pool, workspace, member, capacity).await
    }

    async fn operator(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
    ) -> StoreResult<Option<OperatorState>> {
        inbox::operator(&self.pool, workspace, member).await
    }

    async fn operators(
        &self,
        workspace: WorkspaceId,
        team: Option<TeamId>,
    ) -> StoreResult<Vec<OperatorState>> {
        inbox::operators(&self.pool, workspace, team).await
    }

    async fn begin_inbound(&self, workspace: WorkspaceId) -> StoreResult<Box<dyn InboundTx>> {
        let turn = self.writer.clone().lock_owned().await;
        Ok(Box::new(
            identity::begin(&self.identity_pool, workspace, turn).await?,
        ))
    }

    async fn conversation_for_profile(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<(StoredConversation, bool)> {
        let _turn = self.writer.lock().await;
        inbox::conversation_for_profile(&self.pool, workspace, profile, at).await
    }

    async fn conversation(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Option<StoredConversation>> {
        inbox::conversation(&self.pool, workspace, id).await
    }

    async fn update_conversation(
        &self,
        workspace: WorkspaceId,
        update: &ConversationUpdate,
    ) -> StoreResult<StoredConversation> {
        let _turn = self.writer.lock().await;
        inbox::update_conversation(&self.pool, workspace, update).await
    }

    async fn mark_read(&self, workspace: WorkspaceId, id: ConversationId) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::mark_read(&self.pool, workspace, id).await
    }

    async fn list_conversations(
        &self,
        workspace: WorkspaceId,
        query: &ConversationQuery,
    ) -> StoreResult<Vec<StoredConversation>> {
        inbox::list_conversations(&self.pool, workspace, query).await
    }

    async fn assignment_history(
        &self,
        workspace: WorkspaceId,
        id: ConversationId,
    ) -> StoreResult<Vec<AssignmentRecord>> {
        inbox::assignment_history(&self.pool, workspace, id).await
    }

    async fn append_message(
        &self,
        workspace: WorkspaceId,
        message: &NewMessage,
    ) -> StoreResult<AppendedMessage> {
        let _turn = self.writer.lock().await;
        inbox::append_message(&self.pool, workspace, message).await
    }

    async fn list_messages(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
        query: &MessageQuery,
    ) -> StoreResult<Vec<StoredMessage>> {
        inbox::list_messages(&self.pool, workspace, conversation, query).await
    }

    async fn message_by_external_id(
        &self,
        workspace: WorkspaceId,
        channel: Channel,
        external_id: &str,
    ) -> StoreResult<Option<StoredMessage>> {
        inbox::message_by_external_id(&self.pool, workspace, channel, external_id).await
    }

    async fn set_delivery(
        &self,
        workspace: WorkspaceId,
        id: ConversationMessageId,
        status: DeliveryStatus,
        reason: Option<&str>,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::set_delivery(&self.pool, workspace, id, status, reason).await
    }

    async fn last_operator(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
    ) -> StoreResult<Option<MemberId>> {
        inbox::last_operator(&self.pool, workspace, conversation).await
    }

    async fn mentioned_in(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        since: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ConversationId>> {
        inbox::mentioned_in(&self.pool, workspace, member, since, limit).await
    }

    async fn person_attachments(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
    ) -> StoreResult<Vec<Attachment>> {
        inbox::person_attachments(&self.pool, workspace, profile).await
    }

    async fn merge_conversations(
        &self,
        workspace: WorkspaceId,
        survivor: ProfileId,
        absorbed: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>> {
        let _turn = self.writer.lock().await;
        inbox::merge_conversations(&self.pool, workspace, survivor, absorbed, at).await
    }

    async fn split_conversation(
        &self,
        workspace: WorkspaceId,
        from: ProfileId,
        split_off: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>> {
        let _turn = self.writer.lock().await;
        inbox::split_conversation(&self.pool, workspace, from, split_off, at).await
    }

    async fn create_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::create_canned_response(&self.pool, response).await
    }

    async fn update_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::update_canned_response(&self.pool, response).await
    }

    async fn delete_canned_response(&self, workspace: WorkspaceId, id: Uuid) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::delete_canned_response(&self.pool, workspace, id).await
    }

    async fn canned_responses(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<CannedResponseRecord>> {
        inbox::canned_responses(&self.pool, workspace).await
    }

    async fn record_rating(&self, rating: &CsatRecord) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        inbox::record_rating(&self.pool, rating).await
    }

    async fn ratings(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<CsatRecord>> {
        inbox::ratings(&self.pool, workspace, from, to).await
    }

    async fn open_survey(&self, survey: &PendingSurvey) -> StoreResult<bool> {
        let _turn = self.writer.lock().await;
        inbox::open_survey(&self.pool, survey).await
    }

    async fn take_survey(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
    ) -> StoreResult<Option<PendingSurvey>> {
        let _turn = self.writer.lock().await;
        inbox::take_survey(&self.pool, workspace, conversation).await
    }
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = webhooks::create(&self.pool, endpoint).await;
        self.memos.webhooks.forget(&endpoint.workspace_id);
        written
    }

    async fn webhook(
        &self,
        workspace: WorkspaceId,
        id: WebhookId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        webhooks::get_one(&self.pool, workspace, id).await
    }

    async fn list_webhooks(&self, workspace: WorkspaceId) -> StoreResult<Vec<WebhookEndpoint>> {
        let load = || webhooks::list(&self.pool, workspace);
        self.memos.webhooks.get_or_load(&workspace, load).await
    }

    async fn update_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = webhooks::update(&self.pool, endpoint).await;
        self.memos.webhooks.forget(&endpoint.workspace_id);
        written
    }

    async fn delete_webhook(&self, workspace: WorkspaceId, id: WebhookId) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        let written = webhooks::delete(&self.pool, workspace, id).await;
        self.memos.webhooks.forget(&workspace);
        written
    }

    async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<u32> {
        let _turn = self.writer.lock().await;
        webhooks::enqueue(&self.pool, deliveries).await
    }

    async fn claim_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let _turn = self.writer.lock().await;
        webhooks::claim(&self.pool, limit, now, lease_until).await
    }

    async fn record_attempt(
        &self,
        workspace: WorkspaceId,
        attempt: &DeliveryAttempt,
        next: NextStep,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        webhooks::record_attempt(&self.pool, workspace, attempt, next).await
    }

    async fn deliveries(
        &self,
        workspace: WorkspaceId,
        endpoint: WebhookId,
        query: DeliveryQuery,
    ) -> StoreResult<Vec<WebhookDelivery>> {
        webhooks::deliveries(&self.pool, workspace, endpoint, query).await
    }

    async fn delivery(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDelivery>> {
        webhooks::delivery_by_id(&self.pool, workspace, id).await
    }

    async fn delivery_attempts(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        webhooks::attempts(&self.pool, workspace, id).await
    }

    async fn redeliver(
        &self,
        workspace: WorkspaceId,
        id: WebhookDeliveryId,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let _turn = self.writer.lock().await;
        webhooks::redeliver(&self.pool, workspace, id, now).await
    }
}
