//! The identity transaction: load the part of the graph an event touches,
//! apply the server's writes. Each transaction first takes the workspace's
//! transaction-scoped advisory lock, so resolutions of one workspace are
//! serialised across every server instance (other workspaces run in
//! parallel); the lock goes with the commit or rollback.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::identity::{Identifier, Snapshot};
use seamline_core::inbox::Channel;
use seamline_core::{EventId, ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::{backend, events, inbox, rows};

pub(crate) struct PgIdentityTx {
    tx: Transaction<'static, Postgres>,
    workspace: WorkspaceId,
}

/// The workspace's write transaction, for identity alone or for inbound
/// messages ([`InboundTx`]).
pub(crate) async fn begin(pool: &PgPool, workspace: WorkspaceId) -> StoreResult<PgIdentityTx> {
    // The lock is taken after `BEGIN` has been answered: a waiter dropped
    // while it waits then rolls back, instead of going back to the pool
    // inside a transaction (which `BEGIN; SELECT pg_advisory_xact_lock(..)`
    // as one statement would).
    let mut tx = pool.begin().await.map_err(backend)?;
    lock_identity(&mut tx, workspace).await?;
    Ok(PgIdentityTx { tx, workspace })
}

#[async_trait]
impl InboundTx for PgIdentityTx {
    async fn messages_by_external_id(
        &mut self,
        wanted: &[(Channel, &str)],
    ) -> StoreResult<Vec<StoredMessage>> {
        inbox::messages_by_external_id_in(&mut self.tx, self.workspace, wanted).await
    }

    async fn append_events(
        &mut self,
        events: &[NewEvent],
    ) -> StoreResult<Vec<Option<StoredEvent>>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let written = events::append_in(&mut self.tx, events).await?;
        seq_per_event(&written.new, &written.seqs)
            .into_iter()
            .zip(events)
            .map(|(seq, event)| seq.map(|seq| rows::stored(event.clone(), seq)).transpose())
            .collect()
    }

    async fn queue_for_bus(&mut self, seqs: &[i64]) -> StoreResult<()> {
        if !seqs.is_empty() {
            events::insert_outbox(&mut self.tx, seqs.to_vec(), &[BUS_CONSUMER], None)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn conversation_for_profile(
        &mut self,
        profile: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<(StoredConversation, bool)> {
        inbox::conversation_for_profile_in(&mut self.tx, self.workspace, profile, at).await
    }

    async fn append_message(
        &mut self,
        conversation: &StoredConversation,
        message: &NewMessage,
    ) -> StoreResult<AppendedMessage> {
        inbox::append_message_to(&mut self.tx, self.workspace, conversation, message).await
    }

    async fn merge_conversations(
        &mut self,
        survivor: ProfileId,
        absorbed: ProfileId,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<StoredConversation>> {
        inbox::merge_conversations_in(&mut self.tx, self.workspace, survivor, absorbed, at).await
    }

    async fn conversations_for_profiles(
        &mut self,
        asked: &[(ProfileId, DateTime<Utc>)],
    ) -> StoreResult<Vec<(StoredConversation, bool)>> {
        inbox::conversations_for_profiles(&mut self.tx, self.workspace, asked).await
    }

    async fn append_messages(
        &mut self,
        conversations: &[StoredConversation],
        messages: &[NewMessage],
    ) -> StoreResult<Vec<AppendedMessage>> {
        append_in_sets(self, conversations, messages).await
    }
}

#[async_trait]
impl MessageSets for PgIdentityTx {
    async fn insert_messages(
        &mut self,
        messages: &[(ProfileId, &NewMessage)],
    ) -> StoreResult<Vec<StoredMessage>> {
        inbox::insert_messages(&mut self.tx, self.workspace, messages).await
    }

    async fn write_conversations(
        &mut self,
        states: &[StoredConversation],
    ) -> StoreResult<Vec<StoredConversation>> {
        inbox::write_conversations(&mut self.tx, self.workspace, states).await
    }

    async fn stored_instead(&mut self, message: &NewMessage) -> StoreResult<AppendedMessage> {
        inbox::stored_instead(&mut self.tx, self.workspace, message).await
    }
}

/// Waits for, then holds until the end of the transaction, the lock on
/// `workspace`'s identity graph.
pub(crate) async fn lock_identity(
    conn: &mut PgConnection,
    workspace: WorkspaceId,
) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(lock_key(workspace))
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// The advisory-lock key of a workspace: its uuid's two halves folded into
/// 64 bits. Stable across processes and releases; two workspaces sharing a
/// key would only wait for each other, never see each other's data.
pub(crate) fn lock_key(workspace: WorkspaceId) -> i64 {
    let (high, low) = workspace.as_uuid().as_u64_pair();
    i64::from_be_bytes((high ^ low).to_be_bytes())
}

fn ordered(a: ProfileId, b: ProfileId) -> (Uuid, Uuid) {
    let (a, b) = (a.as_uuid(), b.as_uuid());
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// Identifiers as two parallel arrays, for `UNNEST($kinds, $values)`.
pub(crate) fn identifier_columns(identifiers: &[Identifier]) -> (Vec<String>, Vec<String>) {
    identifiers
        .iter()
        .map(|id| (id.kind.as_str().to_owned(), id.value.clone()))
        .unzip()
}

#[async_trait]
impl IdentityTx for PgIdentityTx {
    async fn load(
        &mut self,
        identifiers: &[Identifier],
        profiles: &[ProfileId],
    ) -> StoreResult<Snapshot> {
        if identifiers.is_empty() && profiles.is_empty() {
            return Ok(Snapshot::default());
        }
        let ws = self.workspace.as_uuid();
        let (kinds, values) = identifier_columns(identifiers);
        let profiles: Vec<Uuid> = profiles.iter().map(ProfileId::as_uuid).collect();
        // One row per identifier of each wanted profile; a profile without
        // any gives one row of NULLs, so that it is still in the snapshot.
        // Every row also carries the profiles' separations (computed once),
        // which spares a round trip per resolved event.
        let found = sqlx::query(
            "WITH holders AS (
               SELECT i.profile_id, i.active_profile FROM profile_identifiers i
               JOIN UNNEST($2::text[], $3::text[]) AS w(kind, value)
                 ON i.kind = w.kind AND i.value = w.value
               WHERE i.workspace_id = $1
             ), wanted(id) AS (
               SELECT profile_id FROM holders
               UNION SELECT active_profile FROM holders WHERE active_profile IS NOT NULL
               UNION SELECT UNNEST($4::uuid[])
             )
             SELECT w.id AS wanted_id, i.*,
               (SELECT COALESCE(jsonb_agg(jsonb_build_array(s.a, s.b) ORDER BY s.a, s.b), '[]')
                FROM separations s
                WHERE s.workspace_id = $1
                  AND (s.a IN (SELECT id FROM wanted) OR s.b IN (SELECT id FROM wanted))
               ) AS separated
             FROM wanted w
             LEFT JOIN profile_identifiers i ON i.workspace_id = $1 AND i.profile_id = w.id
             ORDER BY w.id, i.first_seen, i.kind, i.value",
        )
        .bind(ws)
        .bind(kinds)
        .bind(values)
        .bind(profiles)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(backend)?;
        let mut held = Vec::with_capacity(found.len());
        for row in &found {
            let profile: Uuid = row.try_get("wanted_id").map_err(backend)?;
            let kind: Option<String> = row.try_get("kind").map_err(backend)?;
            held.push((
                profile,
                kind.map(|_| rows::profile_identifier(row)).transpose()?,
            ));
        }
        let mut snapshot = snapshot_of(held);
        if let Some(row) = found.first() {
            let separated: Json<Vec<(Uuid, Uuid)>> = row.try_get("separated").map_err(backend)?;
            snapshot.separated = separated.0;
        }
        Ok(snapshot)
    }

    async fn erased(&mut self, identifiers: &[Identifier]) -> StoreResult<Vec<Identifier>> {
        if identifiers.is_empty() {
            return Ok(Vec::new());
        }
        let fingerprints: Vec<String> = identifiers.iter().map(Identifier::fingerprint).collect();
        let found: Vec<String> = sqlx::query_scalar(
            "SELECT fingerprint FROM erased_identifiers WHERE workspace_id = $1 AND fingerprint = ANY($2)",
        )
        .bind(self.workspace.as_uuid())
        .bind(&fingerprints)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(identifiers
            .iter()
            .zip(&fingerprints)
            .filter(|(_, fingerprint)| found.contains(fingerprint))
            .map(|(id, _)| id.clone())
            .collect())
    }

    async fn profiles(&mut self, ids: &[ProfileId]) -> StoreResult<Vec<Profile>> {
        let ids: Vec<Uuid> = ids.iter().map(ProfileId::as_uuid).collect();
        let found = sqlx::query(
            "SELECT p.* FROM UNNEST($2::uuid[]) WITH ORDINALITY AS w(id, position)
             JOIN profiles p ON p.id = w.id
             WHERE p.workspace_id = $1
             ORDER BY w.position",
        )
        .bind(self.workspace.as_uuid())
        .bind(ids)
        .fetch_all(&mut *self.tx)
        .await
        .map_err(backend)?;
        found.iter().map(rows::profile).collect()
    }

    async fn is_assigned(&mut self, event: EventId) -> StoreResult<bool> {
        // Left anonymous on a shared device counts as resolved too.
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM event_profiles WHERE workspace_id = $1 AND event_id = $2
             UNION ALL SELECT 1 FROM device_anonymous_events WHERE workspace_id = $1 AND event_id = $2
             LIMIT 1",
        )
        .bind(self.workspace.as_uuid())
        .bind(event.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(backend)?;
        Ok(found.is_some())
    }

    async fn apply(&mut self, ops: &[IdentityOp]) -> StoreResult<()> {
        let ws = self.workspace.as_uuid();
        let mut rest = ops;
        while !rest.is_empty() {
            let (run, after) = rest.split_at(set_run(rest));
            match run {
                [IdentityOp::CreateProfile { .. }, _, ..] => {
                    create_all(&mut self.tx, ws, run).await?
                }
                [IdentityOp::Own { .. }, _, ..] => own_all(&mut self.tx, ws, run).await?,
                [IdentityOp::Assign { .. }, _, ..] => assign_all(&mut self.tx, ws, run).await?,
                [IdentityOp::Touch { .. }, _, ..] => touch_all(&mut self.tx, ws, run).await?,
                _ => {
                    for op in run {
                        apply_one(&mut self.tx, ws, op).await?;
                    }
                }
            }
            rest = after;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> StoreResult<()> {
        self.tx.commit().await.map_err(backend)
    }
}

async fn apply_one(conn: &mut PgConnection, ws: Uuid, op: &IdentityOp) -> StoreResult<()> {
    match op {
        IdentityOp::CreateProfile { id, at } => return create_profile(conn, ws, *id, *at).await,
        IdentityOp::Own {
            identifier,
            profile,
            at,
            source,
            event,
        } => {
            sqlx::query(
                "INSERT INTO profile_identifiers (workspace_id, kind, value, profile_id, first_seen, source, source_event)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (workspace_id, kind, value) DO UPDATE
                 SET profile_id = excluded.profile_id, shared = FALSE, active_profile = NULL",
            )
            .bind(ws)
            .bind(identifier.kind.as_str())
            .bind(&identifier.value)
            .bind(profile.as_uuid())
            .bind(at)
            .bind(source)
            .bind(event.map(|e| e.as_uuid()))
            .execute(conn)
            .await
        }
        IdentityOp::Share { identifier, session } => {
            sqlx::query(
                "UPDATE profile_identifiers
                 SET shared = TRUE, active_profile = $4, session_last_at = $5, anonymous_since = $6
                 WHERE workspace_id = $1 AND kind = $2 AND value = $3",
            )
            .bind(ws)
            .bind(identifier.kind.as_str())
            .bind(&identifier.value)
            .bind(session.active)
            .bind(session.last_at)
            .bind(session.anonymous_since)
            .execute(conn)
            .await
        }
        IdentityOp::LeaveAnonymous {
            event,
            seq,
            at,
            devices,
        } => return leave_anonymous(conn, ws, *event, *seq, *at, devices).await,
        IdentityOp::Claim {
            device,
            since,
            until,
            profile,
        } => return claim(conn, ws, device, (*since, *until), *profile).await,
        IdentityOp::Absorb { survivor, absorbed } => {
            return absorb(conn, ws, *survivor, *absorbed).await
        }
        IdentityOp::Reset { profile } => return reset(conn, ws, *profile).await,
        IdentityOp::Merge(m) => {
            sqlx::query(
                "INSERT INTO merges (id, workspace_id, survivor, absorbed, via_kind, via_value, event_id, actor, at, undone_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(m.id)
            .bind(ws)
            .bind(m.survivor.as_uuid())
            .bind(m.absorbed.as_uuid())
            .bind(m.via.as_ref().map(|v| v.kind.as_str()))
            .bind(m.via.as_ref().map(|v| v.value.as_str()))
            .bind(m.event_id.map(|e| e.as_uuid()))
            .bind(&m.actor)
            .bind(m.at)
            .bind(m.undone_at)
            .execute(conn)
            .await
        }
        IdentityOp::Conflict(c) => {
            sqlx::query(
                "INSERT INTO identity_conflicts (id, workspace_id, profile, other, via_kind, via_value, reason, event_id, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(c.id)
            .bind(ws)
            .bind(c.profile.as_uuid())
            .bind(c.other.as_uuid())
            .bind(c.via.kind.as_str())
            .bind(&c.via.value)
            .bind(&c.reason)
            .bind(c.event_id.map(|e| e.as_uuid()))
            .bind(c.at)
            .execute(conn)
            .await
        }
        IdentityOp::UndoMerge { id, at } => {
            sqlx::query("UPDATE merges SET undone_at = $1 WHERE workspace_id = $2 AND id = $3")
                .bind(at)
                .bind(ws)
                .bind(id)
                .execute(conn)
                .await
        }
        IdentityOp::Separate { a, b } => {
            let (a, b) = ordered(*a, *b);
            sqlx::query(
                "INSERT INTO separations (workspace_id, a, b) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(ws)
            .bind(a)
            .bind(b)
            .execute(conn)
            .await
        }
        IdentityOp::Assign {
            event,
            seq,
            profile,
        } => {
            sqlx::query(
                "INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
            )
            .bind(ws)
            .bind(event.as_uuid())
            .bind(seq)
            .bind(profile.as_uuid())
            .execute(conn)
            .await
        }
        IdentityOp::Touch {
            profile,
            traits,
            trait_times,
            first_seen,
            last_seen,
        } => {
            sqlx::query(
                "UPDATE profiles SET traits = $1, trait_times = $2, first_seen = $3, last_seen = $4
                 WHERE workspace_id = $5 AND id = $6",
            )
            .bind(serde_json::Value::Object(traits.clone()))
            .bind(serde_json::Value::Object(trait_times.clone()))
            .bind(first_seen)
            .bind(last_seen)
            .bind(ws)
            .bind(profile.as_uuid())
            .execute(conn)
            .await
        }
    }
    .map_err(backend)?;
    Ok(())
}

/// Several events' placements in one statement.
async fn assign_all(conn: &mut PgConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    let placed = placements(run);
    let events: Vec<Uuid> = placed.iter().map(|(e, _, _)| e.as_uuid()).collect();
    let seqs: Vec<i64> = placed.iter().map(|(_, seq, _)| *seq).collect();
    let profiles: Vec<Uuid> = placed.iter().map(|(_, _, p)| p.as_uuid()).collect();
    sqlx::query(
        "INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id)
         SELECT $1, * FROM UNNEST($2::uuid[], $3::bigint[], $4::uuid[])
         ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
    )
    .bind(ws)
    .bind(events)
    .bind(seqs)
    .bind(profiles)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Several profiles created in one statement (as [`create_profile`]).
async fn create_all(conn: &mut PgConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    let (ids, ats): (Vec<Uuid>, Vec<DateTime<Utc>>) = creations(run)
        .into_iter()
        .map(|(id, at)| (id.as_uuid(), at))
        .unzip();
    let done = sqlx::query(
        "INSERT INTO profiles (id, workspace_id, first_seen, last_seen)
         SELECT id, $1, at, at FROM UNNEST($2::uuid[], $3::timestamptz[]) AS c(id, at)
         ON CONFLICT (id) DO UPDATE SET merged_into = NULL WHERE profiles.workspace_id = excluded.workspace_id",
    )
    .bind(ws)
    .bind(&ids)
    .bind(ats)
    .execute(conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() != ids.len() as u64 {
        return Err(StoreError::Conflict("profile id"));
    }
    Ok(())
}

/// Several identifiers owned in one statement, each as the run leaves it.
async fn own_all(conn: &mut PgConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    let owned = owned(run);
    sqlx::query(
        "INSERT INTO profile_identifiers (workspace_id, kind, value, profile_id, first_seen, source, source_event)
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::uuid[], $5::timestamptz[], $6::text[], $7::uuid[])
         ON CONFLICT (workspace_id, kind, value) DO UPDATE
         SET profile_id = excluded.profile_id, shared = FALSE, active_profile = NULL",
    )
    .bind(ws)
    .bind(owned.iter().map(|o| o.identifier.kind.as_str()).collect::<Vec<_>>())
    .bind(owned.iter().map(|o| o.identifier.value.as_str()).collect::<Vec<_>>())
    .bind(owned.iter().map(|o| o.profile.as_uuid()).collect::<Vec<_>>())
    .bind(owned.iter().map(|o| o.at).collect::<Vec<_>>())
    .bind(owned.iter().map(|o| o.source).collect::<Vec<_>>())
    .bind(owned.iter().map(|o| o.event.map(|e| e.as_uuid())).collect::<Vec<_>>())
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Several profiles' touches in one statement.
async fn touch_all(conn: &mut PgConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    let mut columns = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for op in touches(run) {
        if let IdentityOp::Touch {
            profile,
            traits,
            trait_times,
            first_seen,
            last_seen,
        } = op
        {
            columns.0.push(profile.as_uuid());
            columns.1.push(serde_json::Value::Object(traits.clone()));
            columns
                .2
                .push(serde_json::Value::Object(trait_times.clone()));
            columns.3.push(*first_seen);
            columns.4.push(*last_seen);
        }
    }
    sqlx::query(
        "UPDATE profiles p
         SET traits = t.traits, trait_times = t.trait_times, first_seen = t.first_seen, last_seen = t.last_seen
         FROM UNNEST($2::uuid[], $3::jsonb[], $4::jsonb[], $5::timestamptz[], $6::timestamptz[])
           AS t(id, traits, trait_times, first_seen, last_seen)
         WHERE p.workspace_id = $1 AND p.id = t.id",
    )
    .bind(ws)
    .bind(columns.0)
    .bind(columns.1)
    .bind(columns.2)
    .bind(columns.3)
    .bind(columns.4)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Creates the profile, or revives it (a replay recreating a profile that
/// was merged away). An id held by another workspace is a `Conflict`.
async fn create_profile(
    conn: &mut PgConnection,
    ws: Uuid,
    id: ProfileId,
    at: chrono::DateTime<chrono::Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO profiles (id, workspace_id, first_seen, last_seen) VALUES ($1, $2, $3, $3)
         ON CONFLICT (id) DO UPDATE SET merged_into = NULL WHERE profiles.workspace_id = excluded.workspace_id",
    )
    .bind(id.as_uuid())
    .bind(ws)
    .bind(at)
    .execute(conn)
    .await
    .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Conflict("profile id"));
    }
    Ok(())
}

/// Moves everything of `absorbed` to `survivor`: identifiers, the devices
/// it was active on, its events, the profiles merged into it, and its
/// separations (rekeyed pairs that already exist, or would pair the
/// survivor with itself, are dropped). Absorbing a profile into itself
/// changes nothing.
async fn absorb(
    conn: &mut PgConnection,
    ws: Uuid,
    survivor: ProfileId,
    absorbed: ProfileId,
) -> StoreResult<()> {
    if survivor == absorbed {
        return Ok(());
    }
    const MOVES: [&str; 5] = [
        "UPDATE profile_identifiers SET profile_id = $1 WHERE workspace_id = $2 AND profile_id = $3",
        "UPDATE profile_identifiers SET active_profile = $1 WHERE workspace_id = $2 AND active_profile = $3",
        "UPDATE event_profiles SET profile_id = $1 WHERE workspace_id = $2 AND profile_id = $3",
        "UPDATE profiles SET merged_into = $1 WHERE workspace_id = $2 AND (id = $3 OR merged_into = $3)",
        "INSERT INTO separations (workspace_id, a, b)
         SELECT $2, LEAST($1, other), GREATEST($1, other)
         FROM (SELECT CASE WHEN a = $3 THEN b ELSE a END AS other
               FROM separations WHERE workspace_id = $2 AND (a = $3 OR b = $3)) AS rekeyed
         WHERE other <> $1
         ON CONFLICT DO NOTHING",
    ];
    for statement in MOVES {
        sqlx::query(statement)
            .bind(survivor.as_uuid())
            .bind(ws)
            .bind(absorbed.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    sqlx::query("DELETE FROM separations WHERE workspace_id = $1 AND (a = $2 OR b = $2)")
        .bind(ws)
        .bind(absorbed.as_uuid())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}

/// Takes the event off any profile and notes it on each shared device.
async fn leave_anonymous(
    conn: &mut PgConnection,
    ws: Uuid,
    event: EventId,
    seq: i64,
    at: DateTime<Utc>,
    devices: &[Identifier],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM event_profiles WHERE workspace_id = $1 AND event_id = $2")
        .bind(ws)
        .bind(event.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    let (kinds, values) = identifier_columns(devices);
    sqlx::query(
        "INSERT INTO device_anonymous_events (workspace_id, kind, value, event_id, seq, at)
         SELECT $1, kind, value, $4, $5, $6 FROM UNNEST($2::text[], $3::text[]) AS d(kind, value)
         ON CONFLICT DO NOTHING",
    )
    .bind(ws)
    .bind(kinds)
    .bind(values)
    .bind(event.as_uuid())
    .bind(seq)
    .bind(at)
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

/// Gives `profile` the events left anonymous on `device` in the session
/// `(since, until)`.
async fn claim(
    conn: &mut PgConnection,
    ws: Uuid,
    device: &Identifier,
    (since, until): (DateTime<Utc>, DateTime<Utc>),
    profile: ProfileId,
) -> StoreResult<()> {
    sqlx::query(
        "WITH claimed AS (
             DELETE FROM device_anonymous_events
             WHERE workspace_id = $1 AND event_id IN (
                 SELECT event_id FROM device_anonymous_events
                 WHERE workspace_id = $1 AND kind = $2 AND value = $3 AND at BETWEEN $4 AND $5)
             RETURNING event_id, seq)
         INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id)
         SELECT DISTINCT $1, event_id, seq, $6::uuid FROM claimed
         ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
    )
    .bind(ws)
    .bind(device.kind.as_str())
    .bind(&device.value)
    .bind(since)
    .bind(until)
    .bind(profile.as_uuid())
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}

async fn reset(conn: &mut PgConnection, ws: Uuid, profile: ProfileId) -> StoreResult<()> {
    sqlx::query("DELETE FROM profile_identifiers WHERE workspace_id = $1 AND profile_id = $2")
        .bind(ws)
        .bind(profile.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query(
        "UPDATE profiles SET traits = '{}', trait_times = '{}', merged_into = NULL
         WHERE workspace_id = $1 AND id = $2",
    )
    .bind(ws)
    .bind(profile.as_uuid())
    .execute(conn)
    .await
    .map_err(backend)?;
    Ok(())
}
