//! Profile reads, consent and erasure.

use chrono::{DateTime, Utc};
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::*;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::identity::{identifier_columns, lock_identity};
use crate::{backend, rows};

pub(crate) async fn profile(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ProfileId,
) -> StoreResult<Option<Profile>> {
    let row = sqlx::query("SELECT * FROM profiles WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::profile).transpose()
}

/// Live profiles, most recently seen first, keyset-paged by `(last_seen, id)`.
/// Text matches case-insensitively (`ILIKE`: SQLite's `LIKE` folds ASCII
/// case), with the user's `%`, `_` and `\` taken literally.
pub(crate) async fn list(
    pool: &PgPool,
    ws: WorkspaceId,
    q: &ProfileQuery,
) -> StoreResult<Vec<Profile>> {
    let mut select: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT p.* FROM profiles p WHERE p.workspace_id = ");
    select
        .push_bind(ws.as_uuid())
        .push(" AND p.merged_into IS NULL");
    let pattern = q.text.as_ref().map(|t| format!("%{}%", escape_like(t)));
    if pattern.is_none() && !q.identifiers.is_empty() {
        // By identifiers alone (a widget finding its visitor): a join the
        // plan walks from the identifiers' index, not a scan of profiles.
        let (kinds, values) = identifier_columns(&q.identifiers);
        select
            .push(" AND p.id IN (SELECT i.profile_id FROM profile_identifiers i")
            .push(" JOIN UNNEST(")
            .push_bind(kinds)
            .push("::text[], ")
            .push_bind(values)
            .push("::text[]) AS w(kind, value) ON i.kind = w.kind AND i.value = w.value")
            .push(" WHERE i.workspace_id = ")
            .push_bind(ws.as_uuid())
            .push(")");
    } else if pattern.is_some() {
        select
            .push(" AND (p.id IN (SELECT i.profile_id FROM profile_identifiers i WHERE i.workspace_id = ")
            .push_bind(ws.as_uuid())
            .push(" AND (FALSE");
        if !q.identifiers.is_empty() {
            let (kinds, values) = identifier_columns(&q.identifiers);
            select
                .push(" OR (i.kind, i.value) IN (SELECT * FROM UNNEST(")
                .push_bind(kinds)
                .push("::text[], ")
                .push_bind(values)
                .push("::text[]))");
        }
        if let Some(pattern) = &pattern {
            select
                .push(" OR i.value ILIKE ")
                .push_bind(pattern.clone())
                .push(LIKE_ESCAPE);
        }
        select.push("))");
        if let Some(pattern) = pattern {
            select
                .push(" OR p.traits::text ILIKE ")
                .push_bind(pattern)
                .push(LIKE_ESCAPE);
        }
        select.push(")");
    }
    if let Some((seen, id)) = q.after {
        select
            .push(" AND (p.last_seen, p.id) < (")
            .push_bind(seen)
            .push(", ")
            .push_bind(id.as_uuid())
            .push(")");
    }
    select
        .push(" ORDER BY p.last_seen DESC, p.id DESC LIMIT ")
        .push_bind(i64::from(q.limit));
    let found = select.build().fetch_all(pool).await.map_err(backend)?;
    found.iter().map(rows::profile).collect()
}

/// A backslash escapes LIKE wildcards, whatever `standard_conforming_strings` says.
const LIKE_ESCAPE: &str = " ESCAPE E'\\\\'";

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(crate) async fn identifiers(
    pool: &PgPool,
    ws: WorkspaceId,
    id: ProfileId,
) -> StoreResult<Vec<ProfileIdentifier>> {
    let found = sqlx::query(
        "SELECT * FROM profile_identifiers WHERE workspace_id = $1 AND profile_id = $2
         ORDER BY first_seen, kind, value",
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: ProfileId,
    q: &EventQuery,
) -> StoreResult<Vec<StoredEvent>> {
    let mut select: QueryBuilder<Postgres> = QueryBuilder::new(
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
    pool: &PgPool,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Vec<MergeRecord>> {
    let found = sqlx::query(
        "SELECT * FROM merges WHERE workspace_id = $1 AND survivor = $2 ORDER BY at DESC, id DESC",
    )
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    found.iter().map(rows::merge).collect()
}

pub(crate) async fn merge_record(
    pool: &PgPool,
    ws: WorkspaceId,
    id: Uuid,
) -> StoreResult<Option<MergeRecord>> {
    let row = sqlx::query("SELECT * FROM merges WHERE workspace_id = $1 AND id = $2")
        .bind(ws.as_uuid())
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::merge).transpose()
}

pub(crate) async fn conflicts(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: Option<ProfileId>,
) -> StoreResult<Vec<ConflictRecord>> {
    let mut select: QueryBuilder<Postgres> = QueryBuilder::new(
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
    pool: &PgPool,
    ws: WorkspaceId,
    id: Uuid,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE identity_conflicts SET resolved_at = $1
         WHERE workspace_id = $2 AND id = $3 AND resolved_at IS NULL",
    )
    .bind(at)
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

pub(crate) async fn record_consent(pool: &PgPool, c: &ConsentRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO consents (id, workspace_id, profile_id, purpose, channel, granted, source, wording, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(c.id)
    .bind(c.workspace_id.as_uuid())
    .bind(c.profile_id.as_uuid())
    .bind(&c.purpose)
    .bind(&c.channel)
    .bind(c.granted)
    .bind(&c.source)
    .bind(&c.wording)
    .bind(c.at)
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}

pub(crate) async fn consents(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: ProfileId,
) -> StoreResult<Vec<ConsentRecord>> {
    let found = sqlx::query(
        "SELECT * FROM consents WHERE workspace_id = $1 AND profile_id = $2 ORDER BY at, id",
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
    "(SELECT id FROM profiles WHERE workspace_id = $1 AND (id = $2 OR merged_into = $2))";

/// Scrubs a person everywhere in one transaction, under the workspace's
/// identity lock so no resolution interleaves. Statements bind `(ws, profile)`.
pub(crate) async fn erase(
    pool: &PgPool,
    ws: WorkspaceId,
    profile: ProfileId,
    fingerprints: &[String],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let scrub = [
        format!(
            "UPDATE events SET user_id = NULL, anonymous_id = NULL, payload = '{{}}', enrichment = '{{}}'
             WHERE workspace_id = $1
               AND seq IN (SELECT seq FROM event_profiles WHERE workspace_id = $1 AND profile_id IN {PERSON})"
        ),
        format!(
            "UPDATE events SET anonymous_id = NULL, payload = '{{}}', enrichment = '{{}}'
             WHERE workspace_id = $1 AND seq IN (SELECT d.seq FROM device_anonymous_events d
               JOIN profile_identifiers i ON i.workspace_id = d.workspace_id AND i.kind = d.kind AND i.value = d.value
               WHERE d.workspace_id = $1 AND i.profile_id IN {PERSON})"
        ),
        format!(
            "DELETE FROM device_anonymous_events WHERE workspace_id = $1 AND (kind, value) IN
               (SELECT kind, value FROM profile_identifiers WHERE workspace_id = $1 AND profile_id IN {PERSON})"
        ),
        format!("DELETE FROM profile_identifiers WHERE workspace_id = $1 AND profile_id IN {PERSON}"),
        format!(
            "UPDATE profile_identifiers SET active_profile = NULL
             WHERE workspace_id = $1 AND active_profile IN {PERSON}"
        ),
        format!(
            "UPDATE profiles SET traits = '{{}}', trait_times = '{{}}'
             WHERE workspace_id = $1 AND id IN {PERSON}"
        ),
        format!(
            "UPDATE merges SET via_kind = NULL, via_value = NULL
             WHERE workspace_id = $1 AND (survivor IN {PERSON} OR absorbed IN {PERSON})"
        ),
    ];
    let mut tx = pool.begin().await.map_err(backend)?;
    lock_identity(&mut tx, ws).await?;
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
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    sqlx::query(&format!(
        "UPDATE identity_conflicts SET via_value = '[erased]', resolved_at = COALESCE(resolved_at, $3)
         WHERE workspace_id = $1 AND (profile IN {PERSON} OR other IN {PERSON})"
    ))
    .bind(ws.as_uuid())
    .bind(profile.as_uuid())
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "INSERT INTO erased_identifiers (workspace_id, fingerprint, at)
         SELECT $1, f, $3 FROM UNNEST($2::text[]) AS f
         ON CONFLICT DO NOTHING",
    )
    .bind(ws.as_uuid())
    .bind(fingerprints)
    .bind(at)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}
