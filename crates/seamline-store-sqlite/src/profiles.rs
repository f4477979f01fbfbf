//! Profile reads, consent and erasure.

use chrono::{DateTime, Utc};
use seamline_core::identity::Identifier;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use uuid::Uuid;

use crate::{backend, millis, rows};

pub(crate) async fn profile(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ProfileId,
) -> StoreResult<Option<Profile>> {
    let row = sqlx::query("SELECT * FROM profiles WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::profile).transpose()
}

/// `(i.kind = … AND i.value = …)` for each identifier, joined by `OR`
/// (a constant term among them would keep SQLite off the index).
fn push_identifiers(select: &mut QueryBuilder<Sqlite>, identifiers: &[Identifier]) {
    for (n, id) in identifiers.iter().enumerate() {
        select
            .push(if n == 0 {
                "(i.kind = "
            } else {
                " OR (i.kind = "
            })
            .push_bind(id.kind.as_str().to_owned())
            .push(" AND i.value = ")
            .push_bind(id.value.clone())
            .push(")");
    }
}

pub(crate) async fn list(
    pool: &SqlitePool,
    ws: WorkspaceId,
    q: &ProfileQuery,
) -> StoreResult<Vec<Profile>> {
    let mut select: QueryBuilder<Sqlite> = QueryBuilder::new("SELECT p.* FROM ");
    let by_identifiers = q.text.is_none() && !q.identifiers.is_empty();
    if by_identifiers {
        // By identifiers alone (a widget finding its visitor): from the
        // identifiers' index to their profiles (CROSS JOIN keeps that
        // order), not a walk of every profile checking each.
        select
            .push("(SELECT DISTINCT profile_id FROM profile_identifiers i WHERE i.workspace_id = ")
            .push_bind(ws.as_uuid())
            .push(" AND (");
        push_identifiers(&mut select, &q.identifiers);
        select.push(")) AS held CROSS JOIN profiles p ON p.id = held.profile_id");
    } else {
        select.push("profiles p");
    }
    select
        .push(" WHERE p.workspace_id = ")
        .push_bind(ws.as_uuid())
        .push(" AND p.merged_into IS NULL");
    if !by_identifiers && q.text.is_some() {
        select
            .push(" AND (p.id IN (SELECT profile_id FROM profile_identifiers i WHERE i.workspace_id = ")
            .push_bind(ws.as_uuid())
            .push(" AND (0");
        if !q.identifiers.is_empty() {
            select.push(" OR ");
            push_identifiers(&mut select, &q.identifiers);
        }
        if let Some(text) = &q.text {
            select
                .push(" OR i.value LIKE ")
                .push_bind(format!("%{}%", escape_like(text)))
                .push(" ESCAPE '\\'");
        }
        select.push("))");
        if let Some(text) = &q.text {
            select
                .push(" OR p.traits LIKE ")
                .push_bind(format!("%{}%", escape_like(text)))
                .push(" ESCAPE '\\'");
        }
        select.push(")");
    }
    if let Some((seen, id)) = q.after {
        select.push(" AND (p.last_seen < ").push_bind(millis(seen));
        select.push(" OR (p.last_seen = ").push_bind(millis(seen));
        select
            .push(" AND p.id < ")
            .push_bind(id.as_uuid())
            .push("))");
    }
    select
        .push(" ORDER BY p.last_seen DESC, p.id DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::profile).collect()
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) async fn identifiers(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ProfileId,
) -> StoreResult<Vec<ProfileIdentifier>> {
    let found = sqlx::query(
        "SELECT * FROM profile_identifiers WHERE workspace_id = ? AND profile_id = ? ORDER BY first_seen, kind, value",
    )
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    found.iter().map(rows::profile_identifier).collect()
}

/// The profile's timeline: its events, filtered and paged like `list_events`.
pub(crate) async fn events(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: ProfileId,
    q: &EventQuery,
) -> StoreResult<Vec<StoredEvent>> {
    let mut select: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT e.* FROM event_profiles ep JOIN events e ON e.seq = ep.seq AND e.workspace_id = ep.workspace_id \
         WHERE ep.workspace_id = ",
    );
    select
        .push_bind(ws.as_uuid())
        .push(" AND ep.profile_id = ")
        .push_bind(id.as_uuid());
    crate::events::fetch_page(pool, select, q).await
}

pub(crate) async fn merges(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Vec<MergeRecord>> {
    let found = sqlx::query(
        "SELECT * FROM merges WHERE workspace_id = ? AND survivor = ? ORDER BY at DESC, id DESC",
    )
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    found.iter().map(rows::merge).collect()
}

pub(crate) async fn merge_record(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<Option<MergeRecord>> {
    let row = sqlx::query("SELECT * FROM merges WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::merge).transpose()
}

pub(crate) async fn conflicts(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: Option<ProfileId>,
) -> StoreResult<Vec<ConflictRecord>> {
    let mut select: QueryBuilder<Sqlite> = QueryBuilder::new(
        "SELECT * FROM identity_conflicts WHERE resolved_at IS NULL AND workspace_id = ",
    );
    select.push_bind(ws.as_uuid());
    if let Some(p) = profile {
        select
            .push(" AND (profile = ")
            .push_bind(p.as_uuid())
            .push(" OR other = ")
            .push_bind(p.as_uuid())
            .push(")");
    }
    select.push(" ORDER BY at DESC, id DESC LIMIT 500");
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::conflict).collect()
}

pub(crate) async fn resolve_conflict(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE identity_conflicts SET resolved_at = ? WHERE workspace_id = ? AND id = ? AND resolved_at IS NULL")
        .bind(millis(at))
        .bind(ws.as_uuid())
        .bind(id)
        .execute(pool)
        .await
        .map_err(backend)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::NotFound("open conflict"));
    }
    Ok(())
}

pub(crate) async fn record_consent(pool: &SqlitePool, c: &ConsentRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consents (id, workspace_id, profile_id, purpose, channel, granted, source, wording, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(c.id)
    .bind(c.workspace_id.as_uuid())
    .bind(c.profile_id.as_uuid())
    .bind(&c.purpose)
    .bind(&c.channel)
    .bind(i64::from(c.granted))
    .bind(&c.source)
    .bind(&c.wording)
    .bind(millis(c.at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn consents(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Vec<ConsentRecord>> {
    let found = sqlx::query(
        "SELECT * FROM consents WHERE workspace_id = ? AND profile_id = ? ORDER BY at, id",
    )
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    found.iter().map(rows::consent).collect()
}

/// The erased profile and every profile merged into it.
pub(crate) const PERSON: &str =
    "(SELECT id FROM profiles WHERE workspace_id = ?1 AND (id = ?2 OR merged_into = ?2))";

/// Scrubs a person everywhere in one transaction: the profile and the
/// profiles merged into it (their merge and conflict records included).
/// Statements bind `(ws, profile, at)`.
pub(crate) async fn erase(
    pool: &SqlitePool,
    ws: WorkspaceId,
    profile: ProfileId,
    fingerprints: &[String],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let scrub = [
        format!(
            "UPDATE events SET user_id = NULL, anonymous_id = NULL, payload = '{{}}', enrichment = '{{}}'
             WHERE workspace_id = ?1
               AND seq IN (SELECT seq FROM event_profiles WHERE workspace_id = ?1 AND profile_id IN {PERSON})"
        ),
        format!(
            "UPDATE events SET anonymous_id = NULL, payload = '{{}}', enrichment = '{{}}'
             WHERE workspace_id = ?1 AND seq IN (SELECT d.seq FROM device_anonymous_events d
               JOIN profile_identifiers i ON i.workspace_id = d.workspace_id AND i.kind = d.kind AND i.value = d.value
               WHERE d.workspace_id = ?1 AND i.profile_id IN {PERSON})"
        ),
        format!(
            "DELETE FROM device_anonymous_events WHERE workspace_id = ?1 AND (kind, value) IN
               (SELECT kind, value FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id IN {PERSON})"
        ),
        format!("DELETE FROM profile_identifiers WHERE workspace_id = ?1 AND profile_id IN {PERSON}"),
        format!(
            "UPDATE profile_identifiers SET active_profile = NULL
             WHERE workspace_id = ?1 AND active_profile IN {PERSON}"
        ),
        format!(
            "UPDATE profiles SET traits = '{{}}', trait_times = '{{}}'
             WHERE workspace_id = ?1 AND id IN {PERSON}"
        ),
        format!(
            "UPDATE merges SET via_kind = NULL, via_value = NULL
             WHERE workspace_id = ?1 AND (survivor IN {PERSON} OR absorbed IN {PERSON})"
        ),
        format!(
            "UPDATE identity_conflicts SET via_value = '[erased]', resolved_at = COALESCE(resolved_at, ?3)
             WHERE workspace_id = ?1 AND (profile IN {PERSON} OR other IN {PERSON})"
        ),
    ];
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    // Call tracking reads the person's identifiers, so it goes first.
    let visits = crate::calltracking::erase_statements(PERSON);
    for statement in visits
        .iter()
        .chain(&scrub)
        .chain(&crate::inbox::erase_statements(PERSON))
        .chain(&crate::webhooks::erase_statements(PERSON))
        .chain(&crate::channels::erase_statements(PERSON))
    {
        sqlx::query(statement)
            .bind(ws.as_uuid())
            .bind(profile.as_uuid())
            .bind(millis(at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    for fingerprint in fingerprints {
        sqlx::query("INSERT OR IGNORE INTO erased_identifiers (workspace_id, fingerprint, at) VALUES (?, ?, ?)")
            .bind(ws.as_uuid())
            .bind(fingerprint)
            .bind(millis(at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}
