//! Seamline's store on PostgreSQL: the shape for several server instances
//! sharing one database.
//!
//! Architecture invariants:
//! - A thin mapping of [`seamline_store::Store`] to SQL; no business rules.
//!   Same migration versions, tables and semantics as `seamline-store-sqlite`,
//!   in native types (`uuid`, `timestamptz`, `jsonb` enrichment, `json`
//!   payload so the client's text and key order are kept exactly).
//! - Every query on tenant data filters by workspace; unique violations are
//!   [`StoreError::Conflict`], every other database failure is `Backend`.
//! - An append is one transaction: one `INSERT ... SELECT FROM UNNEST` per
//!   chunk plus one outbox row holding the new seqs. Seqs follow the input
//!   order; rows go in by key order so concurrent appends with overlapping
//!   message ids cannot deadlock, and the rare multi-chunk append that still
//!   does is retried whole.
//! - `seq` grows within an append and across appends, but concurrent appends
//!   may commit out of seq order: a reader tailing the log by seq can see a
//!   lower seq appear after a higher one. The outbox, not the seq, is what
//!   guarantees every committed event is published.
//! - The outbox is safe for several relays: claims lock with
//!   `FOR UPDATE SKIP LOCKED` and lease entries until a deadline.
//! - Identity transactions (and erasures) of one workspace are serialised
//!   across instances by a transaction-scoped advisory lock keyed by the
//!   workspace; other workspaces resolve in parallel.
//! - Inbox writes lock the conversation rows they read (`FOR UPDATE`, two
//!   at once in id order), and a profile's conversation is inserted with
//!   `ON CONFLICT DO NOTHING`, so racing instances create one.

mod calltracking;
mod channels;
mod events;
mod identity;
mod inbox;
mod profiles;
mod rows;
mod webhooks;
mod workspace;

use std::str::FromStr;
use std::sync::Arc;

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    /// Teams, webhook endpoints and settings as recently read.
    memos: Arc<Memos>,
}

/// How to connect to the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    pub max_connections: u32,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self { max_connections: 8 }
    }
}

impl PgStore {
    /// Connects to a `postgres://` URL.
    pub async fn connect(url: &str, options: PgOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url).map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await
            .map_err(backend)?;
        Ok(Self {
            pool,
            memos: Arc::default(),
        })
    }

    /// The pool, for the ingest benchmark's raw-insert baseline.
    pub fn pool(&self) -> &PgPool {
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

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
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
        Ok(events::append(&self.pool, events, None).await?.new)
    }

    async fn append_and_claim(
        &self,
        events: Vec<NewEvent>,
        consumer: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Appended> {
        let claim = Some((consumer, lease_until));
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
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE workspace_id = $1")
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
        events::claim_outbox(&self.pool, consumer, limit, now, lease_until).await
    }

    async fn outbox_backlog(&self, consumer: &str) -> StoreResult<u64> {
        let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE consumer = $1")
            .bind(consumer)
            .fetch_one(&self.pool)
            .await
            .map_err(backend)?;
        Ok(u64::try_from(waiting).unwrap_or_default())
    }

    async fn complete_outbox(&self, ids: &[i64]) -> StoreResult<()> {
        events::complete_outbox(&self.pool, ids).await
    }

    async fn import_checkpoint(
        &self,
        workspace: WorkspaceId,
        source: &str,
    ) -> StoreResult<Option<u64>> {
        let line: Option<i64> = sqlx::query_scalar(
            "SELECT line FROM import_checkpoints WHERE workspace_id = $1 AND source = $2",
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
            "INSERT INTO import_checkpoints (workspace_id, source, line) VALUES ($1, $2, $3)
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
impl ProfileStore for PgStore {
    async fn begin_identity(&self, workspace: WorkspaceId) -> StoreResult<Box<dyn IdentityTx>> {
        Ok(Box::new(identity::begin(&self.pool, workspace).await?))
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
        profiles::erase(&self.pool, workspace, profile, fingerprints, at).await
    }
}

#[async_trait]
impl InboxStore for PgStore {
    async fn create_team(&self, team: &Team) -> StoreResult<()> {
        let written = inbox::create_team(&self.pool, team).await;
        self.memos.teams.forget(&team.workspace_id);
        written
    }

    async fn update_team(&self, team: &Team) -> StoreResult<()> {
        let written = inbox::update_team(&self.pool, team).await;
        self.memos.teams.forget(&team.workspace_id);
        written
    }

    async fn delete_team(&self, workspace: WorkspaceId, id: TeamId) -> StoreResult<()> {
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
        inbox::add_team_member(&self.pool, workspace, team, member).await
    }

    async fn remove_team_member(
        &self,
        workspace: WorkspaceId,
        team: TeamId,
        member: MemberId,
    ) -> StoreResult<()> {
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
        inbox::set_presence(&self.pool, workspace, member, presence, at).await
    }

    async fn set_capacity(
        &self,
        workspace: WorkspaceId,
        member: MemberId,
        capacity: Option<u32>,
    ) -> StoreResult<()> {
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
        Ok(Box::new(identity::begin(&self.pool, workspace).await?))
    }

    async fn conversation_for_profile(
        &self,
        workspace: WorkspaceId,
        profile: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<(StoredConversation, bool)> {
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
        inbox::update_conversation(&self.pool, workspace, update).await
    }

    async fn mark_read(&self, workspace: WorkspaceId, id: ConversationId) -> StoreResult<()> {
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
        inbox::merge_conversations(&self.pool, workspace, survivor, absorbed, at).await
    }

    async fn split_conversation(
        &self,
        workspace: WorkspaceId,
        from: ProfileId,
        split_off: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>> {
        inbox::split_conversation(&self.pool, workspace, from, split_off, at).await
    }

    async fn create_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()> {
        inbox::create_canned_response(&self.pool, response).await
    }

    async fn update_canned_response(&self, response: &CannedResponseRecord) -> StoreResult<()> {
        inbox::update_canned_response(&self.pool, response).await
    }

    async fn delete_canned_response(&self, workspace: WorkspaceId, id: Uuid) -> StoreResult<()> {
        inbox::delete_canned_response(&self.pool, workspace, id).await
    }

    async fn canned_responses(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<CannedResponseRecord>> {
        inbox::canned_responses(&self.pool, workspace).await
    }

    async fn record_rating(&self, rating: &CsatRecord) -> StoreResult<()> {
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
        inbox::open_survey(&self.pool, survey).await
    }

    async fn take_survey(
        &self,
        workspace: WorkspaceId,
        conversation: ConversationId,
    ) -> StoreResult<Option<PendingSurvey>> {
        inbox::take_survey(&self.pool, workspace, conversation).await
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    async fn create_webhook(&self, endpoint: &WebhookEndpoint) -> StoreResult<()> {
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
        let written = webhooks::update(&self.pool, endpoint).await;
        self.memos.webhooks.forget(&endpoint.workspace_id);
        written
    }

    async fn delete_webhook(&self, workspace: WorkspaceId, id: WebhookId) -> StoreResult<()> {
        let written = webhooks::delete(&self.pool, workspace, id).await;
        self.memos.webhooks.forget(&workspace);
        written
    }

    async fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> StoreResult<u32> {
        webhooks::enqueue(&self.pool, deliveries).await
    }

    async fn claim_deliveries(
        &self,
        limit: u32,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        webhooks::claim(&self.pool, limit, now, lease_until).await
    }

    async fn record_attempt(
        &self,
        workspace: WorkspaceId,
        attempt: &DeliveryAttempt,
        next: NextStep,
    ) -> StoreResult<()> {
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
        webhooks::redeliver(&self.pool, workspace, id, now).await
    }
}
