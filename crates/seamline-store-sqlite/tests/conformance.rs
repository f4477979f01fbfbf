//! The shared store suite on a fresh SQLite file.

use seamline_store::Store;
use seamline_store_sqlite::{SqliteOptions, SqliteStore};

#[tokio::test]
async fn sqlite_passes_the_store_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("seamline.db"), SqliteOptions::default())
        .await
        .expect("open");
    store.migrate().await.expect("migrate");
    seamline_store::conformance::run_all(&store).await;
}
