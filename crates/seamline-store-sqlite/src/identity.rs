//! The identity transaction: load the part of the graph an event touches,
//! apply the server's writes. `BEGIN IMMEDIATE` takes SQLite's write lock at
//! once, so resolutions are serialised.

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::identity::{Identifier, Snapshot};
use seamline_core::inbox::Channel;
use seamline_core::{EventId, ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

use crate::{backend, events, inbox, millis, rows};

pub(crate) struct SqliteIdentityTx {
    tx: Transaction<'static, Sqlite>,
    workspace: WorkspaceId,
    /// The store's writer turn, held until commit or drop.
    _turn: OwnedMutexGuard<()>,
}

/// The workspace's write transaction, for identity alone or for inbound
/// messages ([`InboundTx`]).
pub(crate) async fn begin(
    pool: &SqlitePool,
    workspace: WorkspaceId,
    turn: OwnedMutexGuard<()>,
) -> StoreResult<SqliteIdentityTx> {
    let tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    Ok(SqliteIdentityTx {
        tx,
        workspace,
        _turn: turn,
    })
}

#[async_trait]
impl InboundTx for SqliteIdentityTx {
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
        let written = events::append_in(&mut self.tx, events, &[], None).await?;
        seq_per_event(&written.new, &written.seqs)
            .into_iter()
            .zip(events)
            .map(|(seq, event)| seq.map(|seq| rows::stored(event.clone(), seq)).transpose())
            .collect()
    }

    async fn queue_for_bus(&mut self, seqs: &[i64]) -> StoreResult<()> {
        if !seqs.is_empty() {
            events::insert_outbox(&mut self.tx, seqs, &[BUS_CONSUMER], None).await?;
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

    async fn append_messages(
        &mut self,
        conversations: &[StoredConversation],
        messages: &[NewMessage],
    ) -> StoreResult<Vec<AppendedMessage>> {
        append_in_sets(self, conversations, messages).await
    }
}

#[async_trait]
impl MessageSets for SqliteIdentityTx {
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
        inbox::write_conversations(&mut self.tx, states).await
    }

    async fn stored_instead(&mut self, message: &NewMessage) -> StoreResult<AppendedMessage> {
        inbox::stored_instead(&mut self.tx, self.workspace, message).await
    }
}

fn ordered(a: ProfileId, b: ProfileId) -> (Uuid, Uuid) {
    let (a, b) = (a.as_uuid(), b.as_uuid());
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

#[async_trait]
impl IdentityTx for SqliteIdentityTx {
    async fn load(
        &mut self,
        identifiers: &[Identifier],
        profiles: &[ProfileId],
    ) -> StoreResult<Snapshot> {
        load_snapshot(
            &mut self.tx,
            self.workspace.as_uuid(),
            identifiers,
            profiles,
        )
        .await
    }

    async fn erased(&mut self, identifiers: &[Identifier]) -> StoreResult<Vec<Identifier>> {
        let mut erased = Vec::new();
        for id in identifiers {
            let found: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM erased_identifiers WHERE workspace_id = ? AND fingerprint = ?",
            )
            .bind(self.workspace.as_uuid())
            .bind(id.fingerprint())
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(backend)?;
            if found.is_some() {
                erased.push(id.clone());
            }
        }
        Ok(erased)
    }

    async fn profiles(&mut self, ids: &[ProfileId]) -> StoreResult<Vec<Profile>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            let row = sqlx::query("SELECT * FROM profiles WHERE workspace_id = ? AND id = ?")
                .bind(self.workspace.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(&mut *self.tx)
                .await
                .map_err(backend)?;
            if let Some(row) = row {
                found.push(rows::profile(&row)?);
            }
        }
        Ok(found)
    }

    async fn is_assigned(&mut self, event: EventId) -> StoreResult<bool> {
        // Left anonymous on a shared device counts as resolved too.
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM event_profiles WHERE workspace_id = ?1 AND event_id = ?2
             UNION ALL SELECT 1 FROM device_anonymous_events WHERE workspace_id = ?1 AND event_id = ?2
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

/// The profiles holding (or active on) any of `identifiers`, plus
/// `profiles`, each with its identifiers, then their separations: two
/// statements whatever the number of identifiers and profiles.
async fn load_snapshot(
    conn: &mut SqliteConnection,
    ws: Uuid,
    identifiers: &[Identifier],
    profiles: &[ProfileId],
) -> StoreResult<Snapshot> {
    if identifiers.is_empty() && profiles.is_empty() {
        return Ok(Snapshot::default());
    }
    // The identifiers as a table joined on the identifier index (ORed
    // pairs let SQLite scan the workspace's identifiers instead), each once:
    // an unmerge passes every event's, and a statement's binds are limited.
    let distinct: BTreeSet<(&str, &str)> = identifiers
        .iter()
        .map(|id| (id.kind.as_str(), id.value.as_str()))
        .collect();
    let mut select: QueryBuilder<Sqlite> = QueryBuilder::new("WITH w(kind, value) AS (");
    inbox::push_pairs(&mut select, distinct.into_iter());
    select
        .push("), holders AS (SELECT i.profile_id, i.active_profile FROM w JOIN profile_identifiers i ON i.workspace_id = ")
        .push_bind(ws)
        .push(" AND i.kind = w.kind AND i.value = w.value), wanted(id) AS (SELECT profile_id FROM holders UNION SELECT active_profile FROM holders WHERE active_profile IS NOT NULL");
    for profile in profiles {
        select
            .push(" UNION VALUES (")
            .push_bind(profile.as_uuid())
            .push(")");
    }
    // One row per identifier of each wanted profile; a profile without
    // any gives one row of NULLs, so that it is still in the snapshot.
    select
        .push(") SELECT w.id AS wanted_id, i.* FROM wanted w LEFT JOIN profile_identifiers i ON i.workspace_id = ")
        .push_bind(ws)
        .push(" AND i.profile_id = w.id ORDER BY w.id, i.first_seen, i.kind, i.value");
    let found = select
        .build()
        .fetch_all(&mut *conn)
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
    let wanted = snapshot.profiles.iter().map(|(p, _)| *p);
    snapshot.separated = separations(conn, ws, wanted).await?;
    Ok(snapshot)
}

/// The separated pairs that involve any of `profiles`, each once, in order.
async fn separations(
    conn: &mut SqliteConnection,
    ws: Uuid,
    profiles: impl Iterator<Item = Uuid>,
) -> StoreResult<Vec<(Uuid, Uuid)>> {
    let profiles: Vec<Uuid> = profiles.collect();
    if profiles.is_empty() {
        return Ok(Vec::new());
    }
    let mut select: QueryBuilder<Sqlite> =
        QueryBuilder::new("SELECT DISTINCT a, b FROM separations WHERE workspace_id = ");
    select.push_bind(ws).push(" AND (a IN (");
    let mut ids = select.separated(", ");
    for profile in &profiles {
        ids.push_bind(*profile);
    }
    select.push(") OR b IN (");
    let mut ids = select.separated(", ");
    for profile in &profiles {
        ids.push_bind(*profile);
    }
    select.push(")) ORDER BY a, b");
    let pairs: Vec<(Uuid, Uuid)> = select
        .build_query_as()
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    Ok(pairs)
}

async fn apply_one(conn: &mut SqliteConnection, ws: Uuid, op: &IdentityOp) -> StoreResult<()> {
    match op {
        IdentityOp::CreateProfile { id, at } => return create_profile(conn, ws, *id, *at).await,
        IdentityOp::Own { identifier, profile, at, source, event } => {
            sqlx::query(
                "INSERT INTO profile_identifiers (workspace_id, kind, value, profile_id, first_seen, source, source_event)
                 VALUES (?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (workspace_id, kind, value) DO UPDATE
                 SET profile_id = excluded.profile_id, shared = 0, active_profile = NULL",
            )
            .bind(ws)
            .bind(identifier.kind.as_str())
            .bind(&identifier.value)
            .bind(profile.as_uuid())
            .bind(millis(*at))
            .bind(source)
            .bind(event.map(|e| e.as_uuid()))
            .execute(conn)
            .await
        }
        IdentityOp::Share { identifier, session } => {
            sqlx::query(
                "UPDATE profile_identifiers SET shared = 1, active_profile = ?, session_last_at = ?, anonymous_since = ?
                 WHERE workspace_id = ? AND kind = ? AND value = ?",
            )
            .bind(session.active)
            .bind(millis(session.last_at))
            .bind(session.anonymous_since.map(millis))
            .bind(ws)
            .bind(identifier.kind.as_str())
            .bind(&identifier.value)
            .execute(conn)
            .await
        }
        IdentityOp::LeaveAnonymous { event, seq, at, devices } => {
            return leave_anonymous(conn, ws, *event, *seq, *at, devices).await
        }
        IdentityOp::Claim { device, since, until, profile } => {
            return claim(conn, ws, device, (*since, *until), *profile).await
        }
        IdentityOp::Absorb { survivor, absorbed } => return absorb(conn, ws, *survivor, *absorbed).await,
        IdentityOp::Reset { profile } => return reset(conn, ws, *profile).await,
        IdentityOp::Merge(m) => {
            sqlx::query(
                "INSERT INTO merges (id, workspace_id, survivor, absorbed, via_kind, via_value, event_id, actor, at, undone_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(m.id)
            .bind(ws)
            .bind(m.survivor.as_uuid())
            .bind(m.absorbed.as_uuid())
            .bind(m.via.as_ref().map(|v| v.kind.as_str().to_owned()))
            .bind(m.via.as_ref().map(|v| v.value.clone()))
            .bind(m.event_id.map(|e| e.as_uuid()))
            .bind(&m.actor)
            .bind(millis(m.at))
            .bind(m.undone_at.map(millis))
            .execute(conn)
            .await
        }
        IdentityOp::Conflict(c) => {
            sqlx::query(
                "INSERT INTO identity_conflicts (id, workspace_id, profile, other, via_kind, via_value, reason, event_id, at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(c.id)
            .bind(ws)
            .bind(c.profile.as_uuid())
            .bind(c.other.as_uuid())
            .bind(c.via.kind.as_str())
            .bind(&c.via.value)
            .bind(&c.reason)
            .bind(c.event_id.map(|e| e.as_uuid()))
            .bind(millis(c.at))
            .execute(conn)
            .await
        }
        IdentityOp::UndoMerge { id, at } => {
            sqlx::query("UPDATE merges SET undone_at = ? WHERE workspace_id = ? AND id = ?")
                .bind(millis(*at))
                .bind(ws)
                .bind(id)
                .execute(conn)
                .await
        }
        IdentityOp::Separate { a, b } => {
            let (a, b) = ordered(*a, *b);
            sqlx::query("INSERT OR IGNORE INTO separations (workspace_id, a, b) VALUES (?, ?, ?)")
                .bind(ws)
                .bind(a)
                .bind(b)
                .execute(conn)
                .await
        }
        IdentityOp::Assign { event, seq, profile } => {
            sqlx::query(
                "INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id) VALUES (?, ?, ?, ?)
                 ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
            )
            .bind(ws)
            .bind(event.as_uuid())
            .bind(seq)
            .bind(profile.as_uuid())
            .execute(conn)
            .await
        }
        IdentityOp::Touch { profile, traits, trait_times, first_seen, last_seen } => {
            sqlx::query(
                "UPDATE profiles SET traits = ?, trait_times = ?, first_seen = ?, last_seen = ? WHERE workspace_id = ? AND id = ?",
            )
            .bind(serde_json::Value::Object(traits.clone()).to_string())
            .bind(serde_json::Value::Object(trait_times.clone()).to_string())
            .bind(millis(*first_seen))
            .bind(millis(*last_seen))
            .bind(ws)
            .bind(profile.as_uuid())
            .execute(conn)
            .await
        }
    }
    .map_err(backend)?;
    Ok(())
}

/// Rows per multi-row statement, well inside SQLite's limit on binds.
const ROWS_PER_STATEMENT: usize = 500;

/// Several events' placements, one statement per few hundred.
async fn assign_all(conn: &mut SqliteConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    for rows in placements(run).chunks(ROWS_PER_STATEMENT) {
        let mut insert: QueryBuilder<Sqlite> = QueryBuilder::new(
            "INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id) ",
        );
        insert.push_values(rows, |mut row, (event, seq, profile)| {
            row.push_bind(ws)
                .push_bind(event.as_uuid())
                .push_bind(*seq)
                .push_bind(profile.as_uuid());
        });
        insert.push(
            " ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
        );
        insert.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Several profiles' touches, one statement per few hundred.
async fn touch_all(conn: &mut SqliteConnection, ws: Uuid, run: &[IdentityOp]) -> StoreResult<()> {
    for rows in touches(run).chunks(ROWS_PER_STATEMENT) {
        let mut update: QueryBuilder<Sqlite> =
            QueryBuilder::new("WITH t(id, traits, trait_times, first_seen, last_seen) AS (");
        update.push_values(rows, |mut row, op| {
            if let IdentityOp::Touch {
                profile,
                traits,
                trait_times,
                first_seen,
                last_seen,
            } = op
            {
                row.push_bind(profile.as_uuid())
                    .push_bind(serde_json::Value::Object(traits.clone()).to_string())
                    .push_bind(serde_json::Value::Object(trait_times.clone()).to_string())
                    .push_bind(millis(*first_seen))
                    .push_bind(millis(*last_seen));
            }
        });
        update
            .push(
                ") UPDATE profiles SET traits = t.traits, trait_times = t.trait_times,
                   first_seen = t.first_seen, last_seen = t.last_seen
                 FROM t WHERE profiles.workspace_id = ",
            )
            .push_bind(ws)
            .push(" AND profiles.id = t.id");
        update.build().execute(&mut *conn).await.map_err(backend)?;
    }
    Ok(())
}

/// Creates the profile, or revives it (a replay recreating a profile that
/// was merged away). An id held by another workspace is a `Conflict`.
async fn create_profile(
    conn: &mut SqliteConnection,
    ws: Uuid,
    id: ProfileId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "INSERT INTO profiles (id, workspace_id, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (id) DO UPDATE SET merged_into = NULL WHERE profiles.workspace_id = excluded.workspace_id",
    )
    .bind(id.as_uuid())
    .bind(ws)
    .bind(millis(at))
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
/// separations, rekeyed as ordered pairs (pairs that already exist, or
/// would pair the survivor with itself, are dropped). Each statement binds
/// `(survivor, ws, absorbed)` in that order. Absorbing a profile into
/// itself changes nothing.
async fn absorb(
    conn: &mut SqliteConnection,
    ws: Uuid,
    survivor: ProfileId,
    absorbed: ProfileId,
) -> StoreResult<()> {
    if survivor == absorbed {
        return Ok(());
    }
    const MOVES: [&str; 6] = [
        "UPDATE profile_identifiers SET profile_id = ?1 WHERE workspace_id = ?2 AND profile_id = ?3",
        "UPDATE profile_identifiers SET active_profile = ?1 WHERE workspace_id = ?2 AND active_profile = ?3",
        "UPDATE event_profiles SET profile_id = ?1 WHERE workspace_id = ?2 AND profile_id = ?3",
        "UPDATE profiles SET merged_into = ?1 WHERE workspace_id = ?2 AND (id = ?3 OR merged_into = ?3)",
        "INSERT OR IGNORE INTO separations (workspace_id, a, b)
         SELECT ?2, min(?1, other), max(?1, other)
         FROM (SELECT CASE WHEN a = ?3 THEN b ELSE a END AS other
               FROM separations WHERE workspace_id = ?2 AND (a = ?3 OR b = ?3))
         WHERE other <> ?1",
        "DELETE FROM separations WHERE ?1 IS NOT NULL AND workspace_id = ?2 AND (a = ?3 OR b = ?3)",
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
    Ok(())
}

/// Takes the event off any profile and notes it on each shared device.
async fn leave_anonymous(
    conn: &mut SqliteConnection,
    ws: Uuid,
    event: EventId,
    seq: i64,
    at: DateTime<Utc>,
    devices: &[Identifier],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM event_profiles WHERE workspace_id = ? AND event_id = ?")
        .bind(ws)
        .bind(event.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    for device in devices {
        sqlx::query(
            "INSERT OR IGNORE INTO device_anonymous_events (workspace_id, kind, value, event_id, seq, at)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(ws)
        .bind(device.kind.as_str())
        .bind(&device.value)
        .bind(event.as_uuid())
        .bind(seq)
        .bind(millis(at))
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    }
    Ok(())
}

/// Gives `profile` the events left anonymous on `device` in the session
/// `(since, until)`. Each statement binds `(ws, kind, value, since, until,
/// profile)`.
async fn claim(
    conn: &mut SqliteConnection,
    ws: Uuid,
    device: &Identifier,
    (since, until): (DateTime<Utc>, DateTime<Utc>),
    profile: ProfileId,
) -> StoreResult<()> {
    const CLAIM: [&str; 2] = [
        "INSERT INTO event_profiles (workspace_id, event_id, seq, profile_id)
         SELECT ?1, event_id, seq, ?6 FROM device_anonymous_events
         WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3 AND at BETWEEN ?4 AND ?5
         ON CONFLICT (workspace_id, event_id) DO UPDATE SET profile_id = excluded.profile_id",
        "DELETE FROM device_anonymous_events WHERE workspace_id = ?1 AND event_id IN (
             SELECT event_id FROM device_anonymous_events
             WHERE workspace_id = ?1 AND kind = ?2 AND value = ?3 AND at BETWEEN ?4 AND ?5 AND ?6 IS NOT NULL)",
    ];
    for statement in CLAIM {
        sqlx::query(statement)
            .bind(ws)
            .bind(device.kind.as_str())
            .bind(&device.value)
            .bind(millis(since))
            .bind(millis(until))
            .bind(profile.as_uuid())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

async fn reset(conn: &mut SqliteConnection, ws: Uuid, profile: ProfileId) -> StoreResult<()> {
    sqlx::query("DELETE FROM profile_identifiers WHERE workspace_id = ? AND profile_id = ?")
        .bind(ws)
        .bind(profile.as_uuid())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
    sqlx::query("UPDATE profiles SET traits = '{}', trait_times = '{}', merged_into = NULL WHERE workspace_id = ? AND id = ?")
        .bind(ws)
        .bind(profile.as_uuid())
        .execute(conn)
        .await
        .map_err(backend)?;
    Ok(())
}
