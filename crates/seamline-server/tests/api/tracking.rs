//! The tracking API: every call type, auth variants, bad input, dedupe,
//! clock skew, attribution, CORS and compressed bodies.

use std::io::Write;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{read, spawn_app};

#[tokio::test]
async fn every_call_type_is_stored_with_its_fields() {
    let app = spawn_app().await;
    let calls = [
        (
            "identify",
            json!({"userId": "u1", "traits": {"name": "Ольга", "email": "olga@example.ru"}, "messageId": "c-identify"}),
        ),
        (
            "track",
            json!({"userId": "u1", "event": "Order Completed", "properties": {"revenue": 12.5}, "messageId": "c-track"}),
        ),
        (
            "page",
            json!({"anonymousId": "a1", "name": "Меню", "messageId": "c-page"}),
        ),
        (
            "screen",
            json!({"anonymousId": "a1", "name": "Home", "messageId": "c-screen"}),
        ),
        (
            "group",
            json!({"userId": "u1", "groupId": "g1", "messageId": "c-group"}),
        ),
        (
            "alias",
            json!({"previousId": "a1", "userId": "u1", "messageId": "c-alias"}),
        ),
    ];
    for (call, body) in &calls {
        let (status, answer) = app.track(call, body).await;
        assert_eq!(status, StatusCode::OK, "{call}: {answer}");
        assert_eq!(answer, json!({"success": true}));
    }
    let stored = app.events("limit=10&order=asc").await;
    let types: Vec<_> = stored
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        types,
        ["identify", "track", "page", "screen", "group", "alias"]
    );
    assert_eq!(stored[1]["event"], "Order Completed");
    assert_eq!(stored[1]["messageId"], "c-track");
    assert_eq!(stored[1]["payload"]["properties"]["revenue"], 12.5);
    assert_eq!(stored[2]["name"], "Меню");
    assert_eq!(stored[2]["anonymousId"], "a1");
    assert!(stored[0]["timestamp"].is_string() && stored[0]["receivedAt"].is_string());
}

#[tokio::test]
async fn a_batch_is_stored_whole_with_shared_context() {
    let app = spawn_app().await;
    let body = json!({
        "batch": [
            {"type": "track", "userId": "u", "event": "A", "messageId": "b1"},
            {"type": "page", "anonymousId": "x", "messageId": "b2", "context": {"ip": "203.0.113.5"}}
        ],
        "context": {"userAgent": "BatchAgent/1.0", "ip": "198.51.100.1"}
    });
    let (status, _) = app.track("batch", &body).await;
    assert_eq!(status, StatusCode::OK);
    let stored = app.events("order=asc").await;
    assert_eq!(stored.len(), 2);
    assert_eq!(
        stored[0]["enrichment"]["attribution"]["user_agent"],
        "BatchAgent/1.0"
    );
    assert_eq!(stored[0]["enrichment"]["attribution"]["ip"], "198.51.100.1");
    assert_eq!(
        stored[1]["enrichment"]["attribution"]["ip"], "203.0.113.5",
        "the item's own context wins"
    );
}

#[tokio::test]
async fn the_write_key_is_accepted_in_every_documented_place() {
    let app = spawn_app().await;
    let key = app.workspace.write_key.clone();
    let body = json!({"userId": "u", "event": "E"});
    let url = app.url("/v1/track");
    let without_colon = base64_encode(&key);
    let attempts = [
        app.http
            .post(&url)
            .header("authorization", format!("Basic {without_colon}"))
            .json(&body),
        app.http.post(&url).header("x-write-key", &key).json(&body),
        app.http
            .post(&url)
            .json(&json!({"userId": "u", "event": "E", "writeKey": key})),
    ];
    for request in attempts {
        let (status, answer) = read(request.send().await.expect("send")).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    assert_eq!(app.count().await, 3);
    let stored = app.events("").await;
    assert!(
        stored
            .iter()
            .all(|e| e["payload"].get("writeKey").is_none()),
        "the key is never stored"
    );
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn missing_unknown_and_revoked_keys_are_refused() {
    let app = spawn_app().await;
    let body = json!({"userId": "u", "event": "E"});
    let (status, answer) = read(
        app.http
            .post(app.url("/v1/track"))
            .json(&body)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"]["code"], "unauthenticated");
    let request = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth("wk_not_a_key", Some(""))
        .json(&body);
    assert_eq!(
        request.send().await.expect("send").status(),
        StatusCode::UNAUTHORIZED
    );
    // The secret API key is not a write key.
    let request = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&app.workspace.api_key, Some(""))
        .json(&body);
    assert_eq!(
        request.send().await.expect("send").status(),
        StatusCode::UNAUTHORIZED
    );

    let keys = app.api_get("/api/v1/keys").await.1;
    let write_id = keys["data"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kind"] == "write"))
        .map(|k| k["id"].as_str().unwrap_or_default().to_owned())
        .expect("a write key");
    let revoked = app
        .http
        .delete(app.url(&format!("/api/v1/keys/{write_id}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.track("track", &body).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a revoked key stops working at once"
    );
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn bad_input_gets_a_named_field_and_nothing_is_stored() {
    let app = spawn_app().await;
    let cases: [(&str, Value, StatusCode, &str); 6] = [
        (
            "track",
            json!({"event": "E"}),
            StatusCode::BAD_REQUEST,
            "userId",
        ),
        (
            "track",
            json!({"userId": "u"}),
            StatusCode::BAD_REQUEST,
            "event",
        ),
        (
            "identify",
            json!({"userId": "u", "traits": "nope"}),
            StatusCode::BAD_REQUEST,
            "traits",
        ),
        (
            "track",
            json!({"userId": "u", "event": "E", "timestamp": "yesterday"}),
            StatusCode::BAD_REQUEST,
            "timestamp",
        ),
        (
            "alias",
            json!({"userId": "u"}),
            StatusCode::BAD_REQUEST,
            "previousId",
        ),
        (
            "track",
            json!({"userId": "u", "event": "x".repeat(40 * 1024)}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
    ];
    for (call, body, expected, field) in cases {
        let (status, answer) = app.track(call, &body).await;
        assert_eq!(status, expected, "{call} {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    let malformed = app
        .http
        .post(app.url("/v1/track"))
        .basic_auth(&app.workspace.write_key, Some(""))
        .header("content-type", "application/json")
        .body("{\"userId\": ")
        .send()
        .await
        .expect("send");
    let (status, answer) = read(malformed).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "malformed_json");
    let unknown = app.track("purchase", &json!({"userId": "u"})).await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND);
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn a_batch_with_invalid_items_is_refused_whole_listing_each() {
    let app = spawn_app().await;
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "userId": "u"},
        {"type": "identify"},
        {"type": "nonsense", "userId": "u"}
    ]});
    let (status, answer) = app.track("batch", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<_> = answer["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        fields,
        ["batch[1].event", "batch[2].userId", "batch[3].type"]
    );
    assert_eq!(app.count().await, 0, "the valid item is not stored either");

    let big: Vec<Value> = (0..40)
        .map(|i| json!({"type": "track", "userId": "u", "event": format!("e{i}"), "properties": {"p": "z".repeat(14_000)}}))
        .collect();
    let (status, answer) = app.track("batch", &json!({"batch": big})).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    let huge = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&app.workspace.write_key, Some(""))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .expect("send");
    let (status, answer) = read(huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer["error"]["field"], "body");
    assert_eq!(app.count().await, 0);
}

#[tokio::test]
async fn repeated_message_ids_are_stored_once() {
    let app = spawn_app().await;
    let event = json!({"userId": "u", "event": "Paid", "messageId": "retry-me"});
    for _ in 0..3 {
        assert_eq!(app.track("track", &event).await.0, StatusCode::OK);
    }
    let batch = json!({"batch": [
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "retry-me"},
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "in-batch"},
        {"type": "track", "userId": "u", "event": "Paid", "messageId": "in-batch"}
    ]});
    assert_eq!(app.track("batch", &batch).await.0, StatusCode::OK);
    assert_eq!(app.count().await, 2);
}

#[tokio::test]
async fn unicode_round_trips_exactly() {
    let app = spawn_app().await;
    let text = "Борщ, пирожок и кофе ☕ — 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👨‍👩‍👧 \u{200d} «ёлка»";
    let body = json!({"userId": "пользователь", "event": text, "properties": {"note": text}});
    assert_eq!(app.track("track", &body).await.0, StatusCode::OK);
    let stored = app.events("").await;
    assert_eq!(stored[0]["event"], text);
    assert_eq!(stored[0]["userId"], "пользователь");
    assert_eq!(stored[0]["payload"]["properties"]["note"], text);
}

#[tokio::test]
async fn the_device_clock_skew_is_corrected_and_kept() {
    let app = spawn_app().await;
    // The device's clock is two hours behind ours.
    let device_now = chrono::Utc::now() - chrono::Duration::hours(2);
    let happened = device_now - chrono::Duration::seconds(30);
    let body = json!({"userId": "u", "event": "E", "timestamp": happened.to_rfc3339(), "sentAt": device_now.to_rfc3339()});
    assert_eq!(app.track("track", &body).await.0, StatusCode::OK);
    let stored = &app.events("").await[0];
    let corrected: chrono::DateTime<chrono::Utc> = stored["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("time");
    let expected = chrono::Utc::now() - chrono::Duration::seconds(30);
    assert!(
        (corrected - expected).num_seconds().abs() <= 5,
        "corrected {corrected}, expected about {expected}"
    );
    let clock = &stored["enrichment"]["clock"];
    assert!(
        clock["skew_ms"]
            .as_i64()
            .is_some_and(|ms| (ms - 7_200_000).abs() < 5_000),
        "{clock}"
    );
    assert_eq!(clock["queued_ms"], 30_000);
    assert!(clock["original_timestamp"].is_string());
}

#[tokio::test]
async fn campaign_click_ids_referrer_ip_and_agent_are_kept_for_analytics() {
    let app = spawn_app().await;
    let body = json!({"anonymousId": "v1", "name": "Landing", "context": {
        "page": {"url": "https://shop.example/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&yclid=42&gclid=G&fbclid=F",
                 "referrer": "https://yandex.ru/search"},
        "userAgent": "Mozilla/5.0 Test"
    }});
    assert_eq!(app.track("page", &body).await.0, StatusCode::OK);
    let attribution = app.events("").await[0]["enrichment"]["attribution"].clone();
    assert_eq!(
        attribution,
        json!({"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring", "gclid": "G", "yclid": "42",
               "fbclid": "F", "page_url": "https://shop.example/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring&yclid=42&gclid=G&fbclid=F",
               "referrer": "https://yandex.ru/search", "ip": "127.0.0.1", "user_agent": "Mozilla/5.0 Test"})
    );
}

#[tokio::test]
async fn browsers_on_other_sites_may_post() {
    let app = spawn_app().await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/v1/track"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let post = app
        .http
        .post(app.url("/v1/track"))
        .header("origin", "https://shop.example")
        .basic_auth(&app.workspace.write_key, Some(""))
        .json(&json!({"anonymousId": "a", "event": "E"}))
        .send()
        .await
        .expect("post");
    assert_eq!(post.headers()["access-control-allow-origin"], "*");
    // The REST API is not open to other origins.
    let api = app
        .http
        .get(app.url("/api/v1/events"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("get");
    assert!(api.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn gzip_bodies_are_accepted() {
    let app = spawn_app().await;
    let body = serde_json::to_vec(
        &json!({"batch": [{"type": "track", "userId": "u", "event": "Zipped"}]}),
    )
    .expect("json");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&body).expect("gzip");
    let zipped = encoder.finish().expect("gzip");
    let response = app
        .http
        .post(app.url("/v1/batch"))
        .basic_auth(&app.workspace.write_key, Some(""))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(zipped)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.events("").await[0]["event"], "Zipped");
}
