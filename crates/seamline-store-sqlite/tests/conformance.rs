//! The shared store suites on a fresh SQLite file.

use async_trait::async_trait;
use seamline_store::conformance::RawScan;
use seamline_store::Store;
use seamline_store_sqlite::{SqliteOptions, SqliteStore};
use sqlx::SqlitePool;

async fn fresh_store(dir: &tempfile::TempDir) -> SqliteStore {
    let store = SqliteStore::open(&dir.path().join("seamline.db"), SqliteOptions::default())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    store
}

#[tokio::test]
async fn sqlite_passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    seamline_store::conformance::run_all(&store).await;
}

#[tokio::test]
async fn sqlite_passes_the_profile_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    let scan = Scan(store.pool().clone());
    seamline_store::conformance::run_profile_suite(&store, &scan).await;
}

#[tokio::test]
async fn sqlite_passes_the_inbox_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    let scan = Scan(store.pool().clone());
    seamline_store::conformance::run_inbox_suite(&store, &scan).await;
}

#[tokio::test]
async fn sqlite_passes_the_webhook_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    let scan = Scan(store.pool().clone());
    seamline_store::conformance::run_webhook_suite(&store, &scan).await;
}

#[tokio::test]
async fn sqlite_passes_the_channel_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    seamline_store::conformance::run_channel_suite(&store).await;
}

#[tokio::test]
async fn sqlite_passes_the_call_tracking_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = fresh_store(&dir).await;
    seamline_store::conformance::run_call_tracking_suite(&store).await;
}

/// Every column of every table (from `sqlite_master`), cast to text.
struct Scan(SqlitePool);

#[async_trait]
impl RawScan for Scan {
    async fn find_text(&self, needle: &str) -> Vec<String> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
        )
        .fetch_all(&self.0)
        .await
        .expect("list tables");
        assert!(
            tables.iter().any(|t| t == "profiles"),
            "tables found: {tables:?}"
        );
        let mut found = Vec::new();
        for table in tables {
            let columns: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
                    .bind(&table)
                    .fetch_all(&self.0)
                    .await
                    .expect("list columns");
            for column in columns {
                let hits: i64 = sqlx::query_scalar(&format!(
                    r#"SELECT COUNT(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0"#
                ))
                .bind(needle)
                .fetch_one(&self.0)
                .await
                .expect("scan column");
                found.extend((0..hits).map(|_| format!("{table}.{column}")));
            }
        }
        found
    }
}
