//! Workspaces, members, sessions and keys.

use chrono::{DateTime, Utc};
use seamline_core::{KeyId, MemberId, Role, WorkspaceId};
use seamline_store::*;
use sqlx::{SqliteConnection, SqlitePool};

use crate::{backend, conflict_or_backend, millis, rows};

pub(crate) async fn create_workspace(
    pool: &SqlitePool,
    setup: WorkspaceSetup,
) -> StoreResult<Workspace> {
    let mut tx = pool.begin().await.map_err(backend)?;
    let ws = &setup.workspace;
    sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES (?, ?, ?)")
        .bind(ws.id.as_uuid())
        .bind(&ws.name)
        .bind(millis(ws.created_at))
        .execute(&mut *tx)
        .await
        .map_err(conflict_or_backend("workspace"))?;
    insert_member(&mut tx, &setup.owner).await?;
    for key in &setup.keys {
        insert_key(&mut tx, key).await?;
    }
    tx.commit().await.map_err(backend)?;
    Ok(setup.workspace)
}

pub(crate) async fn workspace(
    pool: &SqlitePool,
    id: WorkspaceId,
) -> StoreResult<Option<Workspace>> {
    let row = sqlx::query("SELECT * FROM workspaces WHERE id = ?")
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::workspace).transpose()
}

pub(crate) async fn list_workspaces(pool: &SqlitePool) -> StoreResult<Vec<Workspace>> {
    let rows = sqlx::query("SELECT * FROM workspaces ORDER BY id")
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.iter().map(rows::workspace).collect()
}

pub(crate) async fn insert_member(conn: &mut SqliteConnection, m: &Member) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO members (id, workspace_id, email, name, role, password_hash, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.id.as_uuid())
    .bind(m.workspace_id.as_uuid())
    .bind(&m.email)
    .bind(&m.name)
    .bind(m.role.as_str())
    .bind(&m.password_hash)
    .bind(millis(m.created_at))
    .execute(conn)
    .await
    .map_err(conflict_or_backend("member with this e-mail"))?;
    Ok(())
}

pub(crate) async fn member(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: MemberId,
) -> StoreResult<Option<Member>> {
    let row = sqlx::query("SELECT * FROM members WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::member).transpose()
}

pub(crate) async fn member_by_email(pool: &SqlitePool, email: &str) -> StoreResult<Option<Member>> {
    let row = sqlx::query("SELECT * FROM members WHERE email = ?")
        .bind(email)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::member).transpose()
}

pub(crate) async fn list_members(pool: &SqlitePool, ws: WorkspaceId) -> StoreResult<Vec<Member>> {
    let rows = sqlx::query("SELECT * FROM members WHERE workspace_id = ? ORDER BY id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.iter().map(rows::member).collect()
}

pub(crate) async fn set_member_role(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: MemberId,
    role: Role,
) -> StoreResult<()> {
    let done = sqlx::query("UPDATE members SET role = ? WHERE workspace_id = ? AND id = ?")
        .bind(role.as_str())
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(pool)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "member")
}

pub(crate) async fn delete_member(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: MemberId,
) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("DELETE FROM sessions WHERE workspace_id = ? AND member_id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let done = sqlx::query("DELETE FROM members WHERE workspace_id = ? AND id = ?")
        .bind(ws.as_uuid())
        .bind(id.as_uuid())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    found(done.rows_affected(), "member")?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn create_session(pool: &SqlitePool, s: Session) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (token_hash, member_id, workspace_id, csrf_token, created_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&s.token_hash)
    .bind(s.member_id.as_uuid())
    .bind(s.workspace_id.as_uuid())
    .bind(&s.csrf_token)
    .bind(millis(s.created_at))
    .bind(millis(s.expires_at))
    .execute(pool)
    .await
    .map_err(conflict_or_backend("session"))?;
    Ok(())
}

pub(crate) async fn session(
    pool: &SqlitePool,
    token_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<Option<Session>> {
    let row = sqlx::query("SELECT * FROM sessions WHERE token_hash = ? AND expires_at > ?")
        .bind(token_hash)
        .bind(millis(now))
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
    row.as_ref().map(rows::session).transpose()
}

pub(crate) async fn insert_key(conn: &mut SqliteConnection, k: &ApiKey) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, kind, name, prefix, plaintext, secret_hash, created_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(k.id.as_uuid())
    .bind(k.workspace_id.as_uuid())
    .bind(k.kind.as_str())
    .bind(&k.name)
    .bind(&k.prefix)
    .bind(&k.plaintext)
    .bind(&k.secret_hash)
    .bind(millis(k.created_at))
    .bind(k.revoked_at.map(millis))
    .execute(conn)
    .await
    .map_err(conflict_or_backend("key"))?;
    Ok(())
}

pub(crate) async fn list_keys(pool: &SqlitePool, ws: WorkspaceId) -> StoreResult<Vec<ApiKey>> {
    let rows = sqlx::query("SELECT * FROM api_keys WHERE workspace_id = ? ORDER BY id")
        .bind(ws.as_uuid())
        .fetch_all(pool)
        .await
        .map_err(backend)?;
    rows.iter().map(rows::api_key).collect()
}

pub(crate) async fn revoke_key(
    pool: &SqlitePool,
    ws: WorkspaceId,
    id: KeyId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE workspace_id = ? AND id = ?",
    )
    .bind(millis(at))
    .bind(ws.as_uuid())
    .bind(id.as_uuid())
    .execute(pool)
    .await
    .map_err(backend)?;
    found(done.rows_affected(), "key")
}

pub(crate) async fn key_by_hash(
    pool: &SqlitePool,
    kind: KeyKind,
    hash: &str,
) -> StoreResult<Option<ApiKey>> {
    let row = sqlx::query(
        "SELECT * FROM api_keys WHERE secret_hash = ? AND kind = ? AND revoked_at IS NULL",
    )
    .bind(hash)
    .bind(kind.as_str())
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    row.as_ref().map(rows::api_key).transpose()
}

pub(crate) fn found(rows_affected: u64, what: &'static str) -> StoreResult<()> {
    if rows_affected == 0 {
        return Err(StoreError::NotFound(what));
    }
    Ok(())
}

pub(crate) async fn setting(
    pool: &SqlitePool,
    ws: WorkspaceId,
    name: &str,
) -> StoreResult<Option<serde_json::Value>> {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT value FROM workspace_settings WHERE workspace_id = ? AND name = ?",
    )
    .bind(ws.as_uuid())
    .bind(name)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("setting {name}: {e}")))
    })
    .transpose()
}

pub(crate) async fn put_setting(
    pool: &SqlitePool,
    ws: WorkspaceId,
    name: &str,
    value: &serde_json::Value,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO workspace_settings (workspace_id, name, value, updated_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (workspace_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(ws.as_uuid())
    .bind(name)
    .bind(value.to_string())
    .bind(millis(at))
    .execute(pool)
    .await
    .map_err(backend)?;
    Ok(())
}
