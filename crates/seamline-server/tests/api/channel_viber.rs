//! The Viber bot connector end to end: a real server on an ephemeral port
//! and the fake Viber API from `seamline-fakes`, which checks the webhook
//! on `set_webhook`, signs its callbacks, re-sends them, lets the bot write
//! only to subscribed users, fails on request and logs what it sent.

use std::net::SocketAddr;

use reqwest::StatusCode;
use seamline_fakes::viber::{Failure, FakeViber, SIGNATURE_HEADER};
use seamline_server::widget::tracking::code_for;
use serde_json::{json, Value};

use super::channel_common::{
    bodies, connect, conversations, message_when, quick_app, reply, settled_delivery, thread_of,
};
use crate::support::{spawn_app, TestApp};

const TOKEN: &str = "445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9";
const USER: &str = "01234567890A=";

async fn fake() -> FakeViber {
    let fake = FakeViber::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake Viber");
    fake.add_bot(TOKEN, "Seamline Shop");
    fake
}

/// Connects the account (which sets and checks the webhook); returns its URL.
async fn setup(app: &TestApp, fake: &FakeViber) -> String {
    let account = connect(
        app,
        "viber",
        json!({"api_base": fake.base_url()}),
        json!({"auth_token": TOKEN}),
    )
    .await;
    assert_eq!(account["status_detail"], "Seamline Shop");
    assert_eq!(account["settings"]["sender_name"], "Seamline Shop");
    assert!(!account.to_string().contains("445da6az"), "{account}");
    account["webhook_url"].as_str().expect("url").to_owned()
}

async fn post_signed(app: &TestApp, url: &str, key: &str, event: &Value) -> reqwest::Response {
    let raw = serde_json::to_vec(event).expect("json");
    app.http
        .post(url)
        .header(
            SIGNATURE_HEADER,
            seamline_fakes::hook::hmac_sha256_hex(key, &raw),
        )
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("post")
}

async fn field_of(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    body["error"]["field"].clone()
}

#[tokio::test]
async fn forged_and_malformed_viber_callbacks_store_nothing() {
    let app = spawn_app().await;
    let fake = fake().await;
    let url = setup(&app, &fake).await;
    let events = app.count().await;
    let event = fake.message(USER, "Анна", "Привет");
    let unsigned = app.http.post(&url).json(&event).send().await.expect("post");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = post_signed(&app, &url, "some-other-bot-token", &event).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let no_event = json!({"timestamp": 1, "message_token": 1});
    assert_eq!(
        field_of(post_signed(&app, &url, TOKEN, &no_event).await).await,
        "event"
    );
    let mut no_sender = event.clone();
    no_sender["sender"]
        .as_object_mut()
        .expect("sender")
        .remove("id");
    assert_eq!(
        field_of(post_signed(&app, &url, TOKEN, &no_sender).await).await,
        "sender.id"
    );
    let mut no_token = event.clone();
    no_token["message_token"] = json!("abc");
    assert_eq!(
        field_of(post_signed(&app, &url, TOKEN, &no_token).await).await,
        "message_token"
    );
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events, "no event either");
}

#[tokio::test]
async fn a_viber_message_lands_once_and_a_shared_contact_gives_the_phone() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let message = fake.message(USER, "Анна", "Здравствуйте <b>!</b>");
    fake.deliver(TOKEN, &message).await.expect("delivered");
    // Viber re-sends when it did not hear back in time: stored once.
    fake.deliver(TOKEN, &message).await.expect("delivered");
    let mut contact = fake.message(USER, "Анна", "");
    contact["message"] = json!({"type": "contact",
        "contact": {"name": "Анна", "phone_number": "79161234567"}});
    fake.deliver(TOKEN, &contact).await.expect("delivered");
    let (_, thread) = thread_of(&app, "viber", USER).await;
    assert_eq!(
        bodies(&thread),
        ["Здравствуйте <b>!</b>", "[contact: Анна 79161234567]"]
    );
    assert_eq!(thread[0]["channel"], "viber");
    assert_eq!(thread[0]["sender"], "Анна");
    let by_phone = app.lookup("phone", "+79161234567").await;
    assert_eq!(by_phone["id"], app.lookup("viber", USER).await["id"]);
}

#[tokio::test]
async fn a_viber_reply_goes_out_once_through_a_500_and_status_12_and_is_seen() {
    let app = quick_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let hello = fake.message(USER, "Анна", "Где заказ?");
    fake.deliver(TOKEN, &hello).await.expect("delivered");
    let (cid, _) = thread_of(&app, "viber", USER).await;
    fake.fail_next([Failure::ServerError, Failure::TooManyRequests]);
    let id = reply(&app, &cid, "Уже едет").await;
    let sent = settled_delivery(&app, ("viber", USER), &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].receiver, USER);
    assert_eq!(delivered[0].text, "Уже едет");
    let outcomes: Vec<(u16, Option<u64>)> =
        fake.calls().iter().map(|c| (c.http, c.status)).collect();
    assert_eq!(outcomes, [(500, None), (200, Some(12)), (200, Some(0))]);
    assert_eq!(fake.calls()[2].body["sender"]["name"], "Seamline Shop");

    // Seen before delivered: the status only moves forward.
    let token = delivered[0].message_token;
    for event in ["seen", "delivered"] {
        let report = FakeViber::report(event, token, USER);
        fake.deliver(TOKEN, &report).await.expect("delivered");
    }
    let seen = message_when(&app, ("viber", USER), &id, |m| m["delivery"] == "read").await;
    assert_eq!(seen["delivery"], "read");
}

#[tokio::test]
async fn an_unreachable_viber_user_fails_the_reply_with_the_reason() {
    let app = quick_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    fake.deliver(TOKEN, &fake.message(USER, "Анна", "Алло"))
        .await
        .expect("delivered");
    let (cid, _) = thread_of(&app, "viber", USER).await;
    fake.fail_next([Failure::NotRegistered]);
    let id = reply(&app, &cid, "Вы тут?").await;
    let failed = settled_delivery(&app, ("viber", USER), &id).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert_eq!(
        failed["delivery_reason"],
        "Viber status 5: receiverNotRegistered"
    );
    assert_eq!(fake.calls().len(), 1, "a permanent error is not retried");

    // A later `failed` report says why too.
    let second = reply(&app, &cid, "Ещё раз").await;
    settled_delivery(&app, ("viber", USER), &second).await;
    let token = fake.delivered()[0].message_token;
    let report = FakeViber::report("failed", token, USER);
    fake.deliver(TOKEN, &report).await.expect("delivered");
    let failed = message_when(&app, ("viber", USER), &second, |m| {
        m["delivery"] == "failed"
    })
    .await;
    assert_eq!(failed["delivery_reason"], "failure description");
}

#[tokio::test]
async fn a_viber_context_ties_the_user_to_the_site_visitor_before_they_write() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let code = code_for("any key", "visitor-vb");
    app.track(
        "identify",
        &json!({"anonymousId": "visitor-vb",
                "context": {"externalIds": [{"type": "tracking_code", "id": code}]}}),
    )
    .await;
    let visitor = app.lookup("anonymous_id", "visitor-vb").await;
    let opened = fake.conversation_started(USER, "Анна", &code);
    fake.deliver(TOKEN, &opened).await.expect("delivered");
    assert_eq!(
        app.lookup("viber", USER).await["id"],
        visitor["id"],
        "tied on opening"
    );
    assert_eq!(conversations(&app).await, 0, "no message yet");
    fake.deliver(TOKEN, &fake.message(USER, "Анна", "Здравствуйте"))
        .await
        .expect("delivered");
    let (_, thread) = thread_of(&app, "anonymous_id", "visitor-vb").await;
    assert_eq!(bodies(&thread), ["Здравствуйте"]);

    let friend = fake.conversation_started("FRIEND0000000=", "Друг", &code);
    fake.deliver(TOKEN, &friend).await.expect("delivered");
    let friend = app.lookup("viber", "FRIEND0000000=").await;
    assert_ne!(friend["id"], visitor["id"], "a forwarded link glues nobody");
}
