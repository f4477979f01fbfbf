//! The VK community messages connector end to end: a real server on an
//! ephemeral port and the fake VK API from `seamline-fakes`, which confirms
//! the callback server, puts the secret in its events, re-sends until the
//! answer is `ok`, keeps `random_id` unique and logs what it sent.

use std::net::SocketAddr;

use reqwest::StatusCode;
use seamline_fakes::vk::{Failure, FakeVk};
use seamline_server::channels::vk::random_id;
use seamline_server::widget::tracking::code_for;
use serde_json::{json, Value};

use super::channel_common::{
    bodies, connect, conversations, message_when, quick_app, reply, settled_delivery, thread_of,
};
use crate::support::{spawn_app, TestApp};

const GROUP: i64 = 218_000_001;
const TOKEN: &str = "vk1.a.fakeCommunityToken0123456789abcdef";
const SECRET: &str = "s3cr3t-callback-key";
const CODE: &str = "a1b2c3d4";
const USER: i64 = 1_234_567;

async fn fake() -> FakeVk {
    let fake = FakeVk::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake VK");
    fake.add_group(GROUP, TOKEN, CODE);
    fake
}

/// Connects the account and confirms the callback server; returns its URL.
async fn setup(app: &TestApp, fake: &FakeVk) -> String {
    let account = connect(
        app,
        "vk",
        json!({"api_base": fake.base_url(), "group_id": GROUP.to_string()}),
        json!({"access_token": TOKEN, "secret": SECRET}),
    )
    .await;
    assert_eq!(account["settings"]["confirmation"], CODE, "{account}");
    assert_eq!(account["status_detail"], "Магазин (fake)");
    let url = account["webhook_url"].as_str().expect("url").to_owned();
    fake.confirm(GROUP, &url, SECRET).await.expect("confirmed");
    url
}

async fn post(app: &TestApp, url: &str, event: &Value) -> (StatusCode, String) {
    let response = app.http.post(url).json(event).send().await.expect("post");
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn forged_and_malformed_vk_events_store_nothing() {
    let app = spawn_app().await;
    let fake = fake().await;
    let url = setup(&app, &fake).await;
    let events = app.count().await;
    let mut event = fake.message_new(GROUP, USER, "Привет", None);
    let (status, _) = post(&app, &url, &event).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no secret");
    event["secret"] = json!("guessed");
    let (status, answer) = post(&app, &url, &event).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_ne!(answer, "ok");

    event["secret"] = json!(SECRET);
    let mut no_sender = event.clone();
    no_sender["object"]["message"]
        .as_object_mut()
        .expect("message")
        .remove("from_id");
    let (status, answer) = post(&app, &url, &no_sender).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(body["error"]["field"], "object.message.from_id", "{body}");
    let mut no_id = event.clone();
    no_id.as_object_mut().expect("event").remove("event_id");
    let (status, answer) = post(&app, &url, &no_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&answer).expect("json");
    assert_eq!(body["error"]["field"], "event_id", "{body}");
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events, "no event either");

    // Another community's confirmation gets no code.
    let other = json!({"type": "confirmation", "group_id": 1});
    let (status, answer) = post(&app, &url, &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_ne!(answer, CODE);
}

#[tokio::test]
async fn a_vk_message_lands_once_and_is_answered_ok() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let mut event = fake.message_new(GROUP, USER, "Здравствуйте, <i>есть</i> размер M?", None);
    event["object"]["message"]["attachments"] =
        json!([{"type": "doc", "doc": {"title": "размеры.pdf", "ext": "pdf"}}]);
    fake.deliver(&event).await.expect("delivered");
    // VK re-sends the same event_id sometimes: stored once.
    fake.deliver(&event).await.expect("delivered");
    let answers: Vec<String> = fake
        .webhook_attempts()
        .into_iter()
        .filter(|a| a.event != "confirmation")
        .map(|a| a.answer)
        .collect();
    assert_eq!(answers, ["ok", "ok"], "VK needs exactly ok");
    let (_, thread) = thread_of(&app, "vk", &USER.to_string()).await;
    assert_eq!(
        bodies(&thread),
        ["Здравствуйте, <i>есть</i> размер M?\n[doc: размеры.pdf (pdf)]"]
    );
    assert_eq!(thread[0]["channel"], "vk");
}

#[tokio::test]
async fn a_vk_reply_goes_out_once_with_one_random_id_and_is_read() {
    let app = quick_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let event = fake.message_new(GROUP, USER, "Где заказ?", None);
    fake.deliver(&event).await.expect("delivered");
    let (cid, _) = thread_of(&app, "vk", &USER.to_string()).await;
    fake.fail_next([Failure::ServerError, Failure::TooManyRequests]);
    let id = reply(&app, &cid, "Уже едет").await;
    let who = ("vk", USER.to_string());
    let sent = settled_delivery(&app, (who.0, &who.1), &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].peer_id, USER);
    assert_eq!(delivered[0].text, "Уже едет");
    let calls = fake.calls();
    let outcomes: Vec<(u16, Option<u32>)> = calls.iter().map(|c| (c.status, c.error)).collect();
    assert_eq!(outcomes, [(500, None), (200, Some(6)), (200, None)]);
    let expected = random_id(id.parse().expect("uuid")).to_string();
    assert!(
        calls.iter().all(|c| c.params["random_id"] == expected),
        "every attempt carries the same random_id: {calls:?}"
    );

    let read = fake.message_read(GROUP, USER, delivered[0].message_id);
    fake.deliver(&read).await.expect("delivered");
    message_when(&app, (who.0, &who.1), &id, |m| m["delivery"] == "read").await;
}

#[tokio::test]
async fn a_vk_user_without_permission_fails_the_reply_with_the_reason() {
    let app = quick_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    fake.deliver(&fake.message_new(GROUP, USER, "Алло", None))
        .await
        .expect("delivered");
    let (cid, _) = thread_of(&app, "vk", &USER.to_string()).await;
    fake.fail_next([Failure::NoPermission]);
    let id = reply(&app, &cid, "Вы тут?").await;
    let failed = settled_delivery(&app, ("vk", &USER.to_string()), &id).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert_eq!(
        failed["delivery_reason"],
        "VK error 901: Can't send messages for users without permission"
    );
    assert_eq!(fake.calls().len(), 1, "a permanent error is not retried");
    assert!(fake.delivered().is_empty());
}

#[tokio::test]
async fn a_vk_ref_ties_the_sender_to_the_site_visitor() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let code = code_for("any key", "visitor-vk");
    app.track(
        "identify",
        &json!({"anonymousId": "visitor-vk",
                "context": {"externalIds": [{"type": "tracking_code", "id": code}]}}),
    )
    .await;
    let visitor = app.lookup("anonymous_id", "visitor-vk").await;
    let start = fake.message_new(GROUP, USER, "Начать", Some(&code));
    fake.deliver(&start).await.expect("delivered");
    let sender = app.lookup("vk", &USER.to_string()).await;
    assert_eq!(sender["id"], visitor["id"], "the chat joined the visitor");

    let friend = fake.message_new(GROUP, 7_654_321, "Начать", Some(&code));
    fake.deliver(&friend).await.expect("delivered");
    let friend = app.lookup("vk", "7654321").await;
    assert_ne!(friend["id"], visitor["id"], "a forwarded link glues nobody");
}
