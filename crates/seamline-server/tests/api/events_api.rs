//! `GET /api/v1/events`: filters, cursor pagination and parameter errors.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn events_page_with_cursors_and_filters() {
    let app = spawn_app().await;
    let batch: Vec<_> = (0..23)
        .map(|i| {
            let kind = if i % 4 == 0 { "identify" } else { "track" };
            json!({"type": kind, "userId": format!("u{}", i % 3), "anonymousId": "same", "event": "E", "messageId": format!("m{i:02}"),
                   "timestamp": format!("2024-05-01T10:{i:02}:00Z")})
        })
        .collect();
    assert_eq!(
        app.track("batch", &json!({ "batch": batch })).await.0,
        StatusCode::OK
    );

    let mut seen = Vec::new();
    let mut path = "/api/v1/events?limit=10".to_owned();
    loop {
        let (status, page) = app.api_get(&path).await;
        assert_eq!(status, StatusCode::OK);
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= 10);
        seen.extend(
            data.iter()
                .map(|e| e["messageId"].as_str().unwrap_or_default().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/events?limit=10&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<_> = (0..23).rev().map(|i| format!("m{i:02}")).collect();
    assert_eq!(seen, expected, "newest first, each once, across pages");

    assert_eq!(app.events("type=identify&limit=100").await.len(), 6);
    assert_eq!(app.events("user_id=u1&limit=100").await.len(), 8);
    assert_eq!(app.events("anonymous_id=same&limit=100").await.len(), 23);
    assert_eq!(app.events("anonymous_id=other").await.len(), 0);
    assert_eq!(app.events("since=2024-05-01T10:20:00Z").await.len(), 3);
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("type=purchase", "type"),
        ("since=last-week", "since"),
        ("limit=0", "limit"),
        ("limit=5000", "limit"),
        ("cursor=%21%21", "cursor"),
        ("order=sideways", "order"),
    ] {
        let (status, body) = app.api_get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    let (status, body) = app.api_get("/api/v1/events?limit=abc").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "query", "{body}");
    let (status, body) = app.api_get("/api/v1/members/not-a-uuid").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    let response = app
        .http
        .delete(app.url("/api/v1/keys/not-a-uuid"))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("delete");
    let (status, body) = crate::support::read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "id", "{body}");
}
