//! Health, readiness, metrics and request ids.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let health = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
    let (status, ready) = crate::support::read(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .expect("readyz"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["database"], json!({"ok": true, "kind": "sqlite"}));
    assert_eq!(ready["bus"], json!({"ok": true, "kind": "in-process"}));

    assert_eq!(
        app.track("track", &json!({"userId": "u", "event": "Counted"}))
            .await
            .0,
        StatusCode::OK
    );
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("seamline_events_stored_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("seamline_http_requests_total"),
        "{metrics}"
    );
    // The identity worker reports its backlog; it drains to zero.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        if text
            .lines()
            .any(|l| l == "seamline_identity_backlog_entries 0")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no drained identity backlog gauge: {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pages_cannot_be_framed_by_other_sites() {
    let app = spawn_app().await;
    let page = app.http.get(app.url("/login")).send().await.expect("get");
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app.http.get(app.url("/healthz")).send().await.expect("get");
    let id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(id.len(), 36, "a uuid: {id:?}");
    let given = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "from-the-proxy")
        .send()
        .await
        .expect("get");
    assert_eq!(
        given.headers()["x-request-id"],
        "from-the-proxy",
        "an upstream id is kept"
    );
}
