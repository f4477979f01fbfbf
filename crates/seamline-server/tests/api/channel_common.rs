//! What the messenger connector tests (WhatsApp, Viber, VK) share: a
//! server that retries quickly, an account connected through the API, the
//! customer's thread, an operator's reply and waiting for its delivery.

use std::time::Duration;

use reqwest::StatusCode;
use seamline_server::channels::ChannelsConfig;
use seamline_server::ServerConfig;
use seamline_store::ConversationQuery;
use serde_json::{json, Value};

use crate::support::{spawn_app_configured, TestApp};

/// Retries in a fraction of a second, so a test sees several.
pub async fn quick_app() -> TestApp {
    spawn_app_configured(ServerConfig {
        channels: ChannelsConfig {
            poll: Duration::from_millis(50),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..ChannelsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
}

/// Gives providers 300 ms to answer a send (tests of the timeout rule).
pub async fn impatient_app() -> TestApp {
    spawn_app_configured(ServerConfig {
        channels: ChannelsConfig {
            poll: Duration::from_millis(50),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            send_timeout: Duration::from_millis(300),
            ..ChannelsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await
}

/// Creates an account of `kind` and presses "test"; returns its view.
pub async fn connect(app: &TestApp, kind: &str, settings: Value, secrets: Value) -> Value {
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": kind, "name": "Магазин", "settings": settings, "secrets": secrets}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let (status, tested) = app
        .api_post(&format!("/api/v1/channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "connected", "{tested}");
    tested
}

pub async fn conversations(app: &TestApp) -> usize {
    let query = ConversationQuery {
        limit: 100,
        ..ConversationQuery::default()
    };
    app.store
        .list_conversations(app.workspace.workspace.id, &query)
        .await
        .expect("conversations")
        .len()
}

/// The conversation id and messages (oldest first) of the profile holding
/// the identifier `kind`/`value`.
pub async fn thread_of(app: &TestApp, kind: &str, value: &str) -> (String, Vec<Value>) {
    let profile = app.lookup(kind, value).await;
    let id = profile["id"].as_str().expect("profile id");
    let (_, conversation) = app
        .api_get(&format!("/api/v1/profiles/{id}/conversation"))
        .await;
    let cid = conversation["id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let (_, page) = app
        .api_get(&format!(
            "/api/v1/conversations/{cid}/messages?limit=100&order=oldest"
        ))
        .await;
    (cid, page["data"].as_array().cloned().unwrap_or_default())
}

pub fn bodies(thread: &[Value]) -> Vec<&str> {
    thread.iter().filter_map(|m| m["body"].as_str()).collect()
}

/// The operator answers in conversation `cid`; returns the reply's id.
pub async fn reply(app: &TestApp, cid: &str, text: &str) -> String {
    let (status, written) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/messages"),
            &json!({"body": text, "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    assert_eq!(written["delivery"], "pending");
    written["id"].as_str().expect("id").to_owned()
}

/// Waits (bounded) until message `id` of the thread of `kind`/`value`
/// satisfies `done`; returns it.
pub async fn message_when(
    app: &TestApp,
    (kind, value): (&str, &str),
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, thread) = thread_of(app, kind, value).await;
        let mine = thread
            .into_iter()
            .find(|m| m["id"] == id)
            .expect("the reply");
        if done(&mine) {
            return mine;
        }
        assert!(tokio::time::Instant::now() < deadline, "never done: {mine}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the reply is no longer pending.
pub async fn settled_delivery(app: &TestApp, who: (&str, &str), id: &str) -> Value {
    message_when(app, who, id, |m| m["delivery"] != "pending").await
}
