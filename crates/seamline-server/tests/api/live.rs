//! Live events: the SSE stream shows committed events as they arrive, and
//! with PostgreSQL + NATS an event posted to one instance reaches a browser
//! connected to another.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::json;

use crate::support::{spawn_app, spawn_with, TestApp};

/// Opens the live stream on `viewer` and waits (bounded) until an event with
/// `message_id` arrives; returns the SSE text seen up to then.
async fn stream_until(viewer: &TestApp, sender: &TestApp, message_id: &str) -> String {
    let response = viewer
        .http
        .get(viewer.url("/api/v1/events/stream"))
        .bearer_auth(&viewer.workspace.api_key)
        .send()
        .await
        .expect("open stream");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut chunks = response.bytes_stream();
    // The subscription is live once the response started; now send.
    let body = json!({"userId": "live-user", "event": "Live «event» 🚀", "messageId": message_id});
    assert_eq!(sender.track("track", &body).await.0, StatusCode::OK);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains(message_id) {
        let chunk = tokio::time::timeout_at(deadline, chunks.next())
            .await
            .unwrap_or_else(|_| panic!("no live event within 10 s; saw {seen:?}"));
        let bytes = chunk.expect("stream open").expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    seen
}

#[tokio::test]
async fn the_live_stream_shows_committed_events() {
    let app = spawn_app().await;
    let seen = stream_until(&app, &app, "live-1").await;
    assert!(seen.contains("event: event"), "{seen}");
    assert!(seen.contains("Live «event» 🚀"), "{seen}");
}

#[tokio::test]
async fn another_workspace_sees_nothing_on_its_stream() {
    let a = spawn_app().await;
    let b = spawn_with(
        a.store.clone(),
        Arc::new(seamline_bus::InProcessBus::new(Default::default())),
        1,
    )
    .await;
    let response = b
        .http
        .get(b.url("/api/v1/events/stream"))
        .bearer_auth(&b.workspace.api_key)
        .send()
        .await
        .expect("open stream");
    let mut chunks = response.bytes_stream();
    assert_eq!(
        a.track(
            "track",
            &json!({"userId": "u", "event": "Private", "messageId": "a-only"})
        )
        .await
        .0,
        StatusCode::OK
    );
    let waited = tokio::time::timeout(Duration::from_millis(1500), async {
        while let Some(Ok(bytes)) = chunks.next().await {
            if String::from_utf8_lossy(&bytes).contains("a-only") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        !waited.unwrap_or(false),
        "B's stream must not carry A's event"
    );
}

#[tokio::test]
async fn two_instances_on_postgres_and_nats_share_live_events() {
    let Some((a, b)) = crate::support::postgres::two_instances("live", 4).await else {
        return;
    };
    let unique = uuid::Uuid::now_v7().simple().to_string();

    let seen = stream_until(&b, &a, &format!("cross-{unique}")).await;
    assert!(seen.contains("Live «event» 🚀"));
    // Both instances read the same log.
    assert_eq!(b.events("user_id=live-user").await.len(), 1);
}
