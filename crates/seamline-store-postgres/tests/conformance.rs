//! The shared store suites on a fresh PostgreSQL database, what only
//! PostgreSQL can get wrong (concurrent appends, identity locks held across
//! connections), and the check that both backends ship the same migration
//! versions.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::tracking::{Enrichment, EventType, TrackedEvent};
use seamline_core::{EventId, ProfileId, WorkspaceId};
use seamline_store::conformance::{new_workspace, RawScan};
use seamline_store::{IdentityOp, InboxStore, NewEvent, ProfileQuery, ProfileStore, Store};
use seamline_store_postgres::{PgOptions, PgStore};
use serde_json::{json, Map};
use sqlx::{Connection, PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

#[tokio::test]
async fn postgres_passes_the_store_conformance_suite() {
    with_fresh_store(|store| async move {
        seamline_store::conformance::run_all(&store).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_passes_the_profile_conformance_suite() {
    with_fresh_store(|store| async move {
        let scan = Scan(store.pool().clone());
        seamline_store::conformance::run_profile_suite(&store, &scan).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_passes_the_inbox_conformance_suite() {
    with_fresh_store(|store| async move {
        let scan = Scan(store.pool().clone());
        seamline_store::conformance::run_inbox_suite(&store, &scan).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_passes_the_webhook_conformance_suite() {
    with_fresh_store(|store| async move {
        let scan = Scan(store.pool().clone());
        seamline_store::conformance::run_webhook_suite(&store, &scan).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_passes_the_channel_conformance_suite() {
    with_fresh_store(|store| async move {
        seamline_store::conformance::run_channel_suite(&store).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_passes_the_call_tracking_conformance_suite() {
    with_fresh_store(|store| async move {
        seamline_store::conformance::run_call_tracking_suite(&store).await;
    })
    .await;
}

/// Every column of every table (from `information_schema`), cast to text.
struct Scan(PgPool);

#[async_trait]
impl RawScan for Scan {
    async fn find_text(&self, needle: &str) -> Vec<String> {
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.table_name::text, c.column_name::text
             FROM information_schema.columns c
             JOIN information_schema.tables t
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
             ORDER BY c.table_name, c.ordinal_position",
        )
        .fetch_all(&self.0)
        .await
        .expect("list columns");
        assert!(
            columns
                .iter()
                .any(|(t, c)| t == "profiles" && c == "traits"),
            "columns found: {columns:?}"
        );
        let mut found = Vec::new();
        for (table, column) in columns {
            let hits: i64 = sqlx::query_scalar(&format!(
                r#"SELECT COUNT(*) FROM "{table}" WHERE strpos("{column}"::text, $1) > 0"#
            ))
            .bind(needle)
            .fetch_one(&self.0)
            .await
            .expect("scan column");
            found.extend((0..hits).map(|_| format!("{table}.{column}")));
        }
        found
    }
}

/// The identity lock is per workspace: a second transaction on the same
/// workspace waits for the first, whatever connection it runs on, while
/// another workspace goes ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_transactions_lock_their_workspace_only() {
    with_fresh_store(|store| async move {
        let (a, _, _) = new_workspace(&store).await;
        let (b, _, _) = new_workspace(&store).await;
        let held = store.begin_identity(a.id).await.expect("begin A");
        let other = tokio::time::timeout(Duration::from_secs(5), store.begin_identity(b.id))
            .await
            .expect("B does not wait for A")
            .expect("begin B");
        other.commit().await.expect("commit B");

        let waiter = tokio::spawn({
            let store = store.clone();
            async move {
                let tx = store.begin_identity(a.id).await.expect("begin A again");
                tx.commit().await.expect("commit");
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiter.is_finished(),
            "A's second transaction waits for the first"
        );
        held.commit().await.expect("commit A");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the commit releases the lock")
            .expect("waiter");
    })
    .await;
}

/// Resolutions racing on one identifier (from several instances) end in
/// one profile: each sees what the previous one committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_resolutions_of_one_identifier_create_one_profile() {
    with_fresh_store(|store| async move {
        let (ws, _, _) = new_workspace(&store).await;
        let email = Identifier {
            kind: IdentifierKind::Email,
            value: "race@example.test".into(),
        };
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, email) = (store.clone(), email.clone());
                tokio::spawn(async move {
                    let mut tx = store.begin_identity(ws.id).await.expect("begin");
                    let seen = tx
                        .load(std::slice::from_ref(&email), &[])
                        .await
                        .expect("load");
                    if seen.profiles.is_empty() {
                        let id = ProfileId(Uuid::now_v7());
                        let at = Utc::now();
                        tx.apply(&[
                            IdentityOp::CreateProfile { id, at },
                            IdentityOp::Own {
                                identifier: email,
                                profile: id,
                                at,
                                source: "track".into(),
                                event: None,
                            },
                        ])
                        .await
                        .expect("apply");
                    }
                    tx.commit().await.expect("commit");
                })
            })
            .collect();
        for racer in racers {
            racer.await.expect("racer");
        }
        let profiles = store
            .list_profiles(
                ws.id,
                &ProfileQuery {
                    limit: 100,
                    ..ProfileQuery::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(profiles.len(), 1, "one person, one profile");
    })
    .await;
}

/// Instances racing to open a customer's conversation (a first message on
/// two channels at once) end with one, and exactly one of them created it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_instances_open_one_conversation_per_profile() {
    with_fresh_store(|store| async move {
        let (ws, _, _) = new_workspace(&store).await;
        let profile = ProfileId(Uuid::now_v7());
        let mut tx = store.begin_identity(ws.id).await.expect("begin");
        tx.apply(&[IdentityOp::CreateProfile {
            id: profile,
            at: Utc::now(),
        }])
        .await
        .expect("apply");
        tx.commit().await.expect("commit");
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .conversation_for_profile(ws.id, profile, Utc::now())
                        .await
                        .expect("conversation")
                })
            })
            .collect();
        let mut opened = Vec::new();
        for racer in racers {
            opened.push(racer.await.expect("racer"));
        }
        assert_eq!(opened.iter().filter(|(_, created)| *created).count(), 1);
        assert!(opened
            .iter()
            .all(|(c, _)| c.conversation.id == opened[0].0.conversation.id));
    })
    .await;
}

/// Keys are inserted in one global order, so two appends of the same
/// message ids in opposite orders wait for each other instead of deadlocking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_appends_in_opposite_orders_both_succeed() {
    with_fresh_store(|store| async move {
        let (ws, _, _) = new_workspace(&store).await;
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
