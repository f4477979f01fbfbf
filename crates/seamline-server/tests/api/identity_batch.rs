//! A batch of events resolved in one transaction, on one graph read once,
//! ends in the same profiles as the same events resolved one at a time.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, TimeZone, Utc};
use seamline_core::identity::{observe, Identifier, IdentityPolicy};
use seamline_core::tracking::{parse_message, Envelope};
use seamline_core::{EventId, ProfileId, WorkspaceId};
use seamline_server::identity::{resolve_events, tracked_of};
use seamline_server::provision;
use seamline_store::{Backend, NewEvent, StoredEvent};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::spawn_app;

/// A day of one shop's visitors: logins that link cookies, a phone that
/// bridges two people into one, and a shared tablet two people log in on.
fn script() -> Vec<Value> {
    let track = |anonymous: &str, user: Option<&str>, traits: Value| {
        let mut message = json!({"type": "track", "event": "Viewed", "anonymousId": anonymous,
            "context": {"traits": traits}});
        if let Some(user) = user {
            message["userId"] = json!(user);
        }
        message
    };
    vec![
        track("c1", None, json!({})),
        track("c1", Some("u1"), json!({"name": "Анна"})),
        track("c2", None, json!({"email": "anna@example.com"})),
        track("c2", Some("u1"), json!({"city": "Казань"})),
        track("tablet", Some("u2"), json!({"name": "Борис"})),
        track("tablet", Some("u3"), json!({"name": "Вера"})),
        track("tablet", None, json!({})),
        track(
            "c3",
            None,
            json!({"email": "anna@example.com", "name": "Анна К."}),
        ),
        track("c4", None, json!({"phone": "+7 916 111-22-33"})),
        track("c4", Some("u2"), json!({})),
        track(
            "c5",
            None,
            json!({"phone": "+79161112233", "email": "boris@example.com"}),
        ),
    ]
}

async fn appended(store: &dyn Backend, ws: WorkspaceId, start: DateTime<Utc>) -> Vec<StoredEvent> {
    let envelope = Envelope {
        received_at: start,
        request_ip: None,
    };
    let events: Vec<NewEvent> = script()
        .into_iter()
        .enumerate()
        .map(|(n, mut message)| {
            let at = start + Duration::minutes(n as i64);
            message["timestamp"] = json!(at.to_rfc3339());
            let mut id = || Uuid::now_v7().to_string();
            NewEvent {
                id: EventId(Uuid::now_v7()),
                workspace_id: ws,
                event: parse_message(&message.to_string(), &envelope, &mut id).expect("event"),
            }
        })
        .collect();
    let mut tx = store.begin_inbound(ws).await.expect("begin");
    let stored = tx.append_events(&events).await.expect("append");
    tx.commit().await.expect("commit");
    stored.into_iter().map(|e| e.expect("new")).collect()
}

/// The workspace's people as the events left them, without ids: each
/// profile's identifiers, traits and first/last seen; and the shared devices.
async fn people(store: &dyn Backend, ws: WorkspaceId, events: &[StoredEvent]) -> Vec<String> {
    let policy = IdentityPolicy::default();
    let identifiers: BTreeSet<Identifier> = events
        .iter()
        .flat_map(|e| observe(&tracked_of(e), &policy).identifiers)
        .collect();
    let identifiers: Vec<Identifier> = identifiers.into_iter().collect();
    let mut tx = store.begin_identity(ws).await.expect("begin");
    let snapshot = tx.load(&identifiers, &[]).await.expect("load");
    let ids: Vec<ProfileId> = snapshot
        .profiles
        .iter()
        .map(|(p, _)| ProfileId(*p))
        .collect();
    let profiles = tx.profiles(&ids).await.expect("profiles");
    let mut people: Vec<String> = snapshot
        .profiles
        .iter()
        .map(|(key, held)| {
            let profile = profiles
                .iter()
                .find(|p| p.id.as_uuid() == *key)
                .expect("row");
            let mut held: Vec<String> = held
                .iter()
                .map(|i| format!("{}:{}", i.kind.as_str(), i.value))
                .collect();
            held.sort();
            format!(
                "{held:?} traits {} seen {}..{}",
                Value::Object(profile.traits.clone()),
                profile.first_seen,
                profile.last_seen
            )
        })
        .collect();
    people.extend(
        snapshot
            .shared
            .iter()
            .map(|(id, _)| format!("shared {}", id.value)),
    );
    people.sort();
    people
}

#[tokio::test]
async fn a_batch_resolved_on_one_graph_ends_as_the_events_one_by_one() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let policy = IdentityPolicy::default();
    let start = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .expect("time");
    let mut workspaces = Vec::new();
    for (name, owner) in [
        ("Batch", "batch@shop.example"),
        ("One by one", "alone@shop.example"),
    ] {
        let made = provision::create_workspace(store, name, owner, "password-123456")
            .await
            .expect("workspace");
        workspaces.push(made.workspace.id);
    }

    let batch = appended(store, workspaces[0], start).await;
    let refs: Vec<&StoredEvent> = batch.iter().collect();
    resolve_events(store, &policy, workspaces[0], &refs)
        .await
        .expect("resolved as a batch");
    let single = appended(store, workspaces[1], start).await;
    for event in &single {
        resolve_events(store, &policy, workspaces[1], &[event])
            .await
            .expect("resolved alone");
    }

    let (batched, alone) = (
        people(store, workspaces[0], &batch).await,
        people(store, workspaces[1], &single).await,
    );
    assert_eq!(batched, alone);
    // The script did what it means to: a merge, and a shared tablet.
    assert!(
        alone
            .iter()
            .any(|p| p.contains("user_id:u1") && p.contains("email:anna@example.com")),
        "{alone:#?}"
    );
    assert!(alone.iter().any(|p| p == "shared tablet"), "{alone:#?}");
}
