//! Files on messages: checked by what their bytes are, kept in the blob
//! store, served so a browser never runs them, gone with an erase.

use chrono::Utc;
use reqwest::StatusCode;
use seamline_core::inbox::conversation::Channel;
use seamline_server::inbox::{receive, Customer, Inbound};
use seamline_server::provision::create_workspace;
use serde_json::{json, Value};

use crate::support::{read, spawn_app, TestApp};

const PNG: [u8; 16] = [
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D, b'I', b'H', b'D', b'R',
];

async fn conversation(app: &TestApp) -> (String, String) {
    let received = receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), "8001".into())),
                phone: Some("+79160008001".into()),
                ..Customer::default()
            },
            body: "Пришлите фото чека".into(),
            external_id: Some("tg-8001".into()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received");
    let c = &received.message.conversation.conversation;
    (c.id.to_string(), c.profile.to_string())
}

async fn upload(
    app: &TestApp,
    id: &str,
    name: &str,
    kind: &str,
    bytes: &[u8],
) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(&format!(
            "/api/v1/conversations/{id}/attachments?name={name}"
        )))
        .bearer_auth(&app.workspace.api_key)
        .header("Content-Type", kind)
        .body(bytes.to_vec())
        .send()
        .await
        .expect("send");
    read(response).await
}

#[tokio::test]
async fn a_reply_carries_a_checked_file_served_safely() {
    let app = spawn_app().await;
    let (id, _) = conversation(&app).await;
    let (status, file) = upload(
        &app,
        &id,
        "%D1%87%D0%B5%D0%BA.png",
        "application/octet-stream",
        &PNG,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{file}");
    assert_eq!(
        file["content_type"], "image/png",
        "the bytes say what it is"
    );
    assert_eq!(file["name"], "чек.png");
    assert_eq!(file["size"], PNG.len());
    let key = file["key"].as_str().expect("key").to_owned();
    let owner = app.workspace.owner.id.to_string();
    let (status, message) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": "", "attachments": [key], "author_id": owner}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a file alone is a reply: {message}"
    );
    assert_eq!(message["attachments"][0]["key"], key.as_str());

    let response = app
        .http
        .get(app.url(&format!("/api/v1/attachments/{key}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap_or("")
        .starts_with("inline"));
    assert_eq!(response.bytes().await.expect("bytes").as_ref(), PNG);

    let other = create_workspace(
        app.store.as_ref(),
        "Чужие",
        "them@example.test",
        "long enough pw",
    )
    .await
    .expect("another workspace");
    let theirs = app
        .http
        .get(app.url(&format!("/api/v1/attachments/{key}")))
        .bearer_auth(&other.api_key)
        .send()
        .await
        .expect("get");
    assert_eq!(
        theirs.status(),
        StatusCode::NOT_FOUND,
        "another workspace's file"
    );
}

#[tokio::test]
async fn unsafe_or_unknown_files_are_refused_by_field() {
    let app = spawn_app().await;
    let (id, _) = conversation(&app).await;
    for (name, kind, bytes) in [
        (
            "x.svg",
            "image/svg+xml",
            &b"<svg onload=alert(1)></svg>"[..],
        ),
        ("x.html", "text/html", &b"<script>alert(1)</script>"[..]),
        ("x.txt", "text/plain", &b""[..]),
    ] {
        let (status, body) = upload(&app, &id, name, kind, bytes).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {body}");
        assert_eq!(body["error"]["field"], "file", "{name}");
    }
    let big = vec![b'a'; 10 * 1024 * 1024 + 1];
    let (status, body) = upload(&app, &id, "big.txt", "text/plain", &big).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    let owner = app.workspace.owner.id.to_string();
    let (status, body) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": "см. файл", "attachments": ["../../etc/passwd"], "author_id": owner}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "attachments");
}

#[tokio::test]
async fn erasing_the_customer_erases_their_files() {
    let app = spawn_app().await;
    let (id, profile) = conversation(&app).await;
    let (_, file) = upload(
        &app,
        &id,
        "receipt.txt",
        "text/plain",
        "Ольга, чек 4521".as_bytes(),
    )
    .await;
    let key = file["key"].as_str().expect("key").to_owned();
    let owner = app.workspace.owner.id.to_string();
    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": "Ваш чек", "attachments": [key], "author_id": owner}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = app
        .api_post(&format!("/api/v1/profiles/{profile}/erase"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.api_get(&format!("/api/v1/attachments/{key}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the file went with the person"
    );
    let on_disk = std::env::temp_dir()
        .join("seamline-blobs")
        .join(app.workspace.workspace.id.to_string())
        .join(&key);
    assert!(!on_disk.exists(), "nothing left at {}", on_disk.display());
}
