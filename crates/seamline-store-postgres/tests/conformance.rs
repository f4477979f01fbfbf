//! The shared store suite on a fresh PostgreSQL database, what only
//! PostgreSQL can get wrong (concurrent appends), and the check that both
//! backends ship the same migration versions.

use std::future::Future;
use std::path::Path;

use chrono::Utc;
use seamline_core::tracking::{Enrichment, EventType, TrackedEvent};
use seamline_core::{EventId, WorkspaceId};
use seamline_store::{NewEvent, Store};
use seamline_store_postgres::{PgOptions, PgStore};
use serde_json::{json, Map};
use sqlx::{Connection, PgConnection};
use url::Url;
use uuid::Uuid;

#[tokio::test]
async fn postgres_passes_the_store_conformance_suite() {
    with_fresh_store(|store| async move {
        seamline_store::conformance::run_all(&store).await;
    })
    .await;
}

/// Keys are inserted in one global order, so two appends of the same
/// message ids in opposite orders wait for each other instead of deadlocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_appends_in_opposite_orders_both_succeed() {
    with_fresh_store(|store| async move {
        let (ws, _, _) = seamline_store::conformance::new_workspace(&store).await;
        for round in 0..5 {
            let forward: Vec<NewEvent> = (0..1000)
                .map(|i| event(ws.id, format!("r{round}-{i}")))
                .collect();
            let backward: Vec<NewEvent> = forward.iter().rev().cloned().collect();
            let (a, b) = tokio::join!(
                store.append_events(&forward),
                store.append_events(&backward)
            );
            let (a, b) = (a.expect("forward append"), b.expect("backward append"));
            let stored = a.iter().chain(&b).filter(|new| **new).count();
            assert_eq!(stored, forward.len(), "each message stored once");
        }
    })
    .await;
}

fn event(ws: WorkspaceId, message_id: String) -> NewEvent {
    let now = Utc::now();
    let mut payload = Map::new();
    payload.insert("type".into(), json!("track"));
    payload.insert("messageId".into(), json!(message_id));
    NewEvent {
        id: EventId(Uuid::now_v7()),
        workspace_id: ws,
        event: TrackedEvent {
            message_id,
            event_type: EventType::Track,
            event_name: Some("Order Completed".into()),
            user_id: Some("u1".into()),
            anonymous_id: None,
            timestamp: now,
            received_at: now,
            enrichment: Enrichment::default(),
            payload,
        },
    }
}

/// Runs `check` on a fresh, migrated database of its own, which is dropped
/// afterwards even when the check fails. Skips without a test database.
async fn with_fresh_store<F, Fut>(check: F)
where
    F: FnOnce(PgStore) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(admin_url) = seamline_testing::require_env("SEAMLINE_TEST_POSTGRES_URL", "PostgreSQL")
    else {
        return;
    };
    let name = format!("seamline_test_{}", Uuid::now_v7().simple());
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .expect("connect to SEAMLINE_TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");

    let store = PgStore::connect(&database_url(&admin_url, &name), PgOptions::default())
        .await
        .expect("connect to test database");
    store.migrate().await.expect("migrate");
    let outcome = tokio::spawn(check(store.clone())).await;
    store.pool().close().await;

    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .expect("drop test database");
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure.into_panic());
    }
}

/// `url` with its database replaced by `name`.
fn database_url(url: &str, name: &str) -> String {
    let mut url = Url::parse(url).expect("SEAMLINE_TEST_POSTGRES_URL is a URL");
    url.set_path(name);
    url.into()
}

#[test]
fn migration_versions_match_the_sqlite_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let postgres = migration_files(&root.join("migrations"));
    let sqlite = migration_files(&root.join("../seamline-store-sqlite/migrations"));
    assert!(!postgres.is_empty(), "no PostgreSQL migrations found");
    assert_eq!(
        postgres, sqlite,
        "both backends need the same migration files (version and name)"
    );
}

fn migration_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name())
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    names
}
