//! The WhatsApp Cloud API connector end to end: a real server on an
//! ephemeral port and the fake Graph API from `seamline-fakes`, which does
//! Meta's verify-token handshake, signs its webhooks, re-sends them,
//! keeps the 24-hour window, fails on request and logs what it delivered.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use reqwest::StatusCode;
use seamline_core::inbox::conversation::Channel;
use seamline_core::Role;
use seamline_fakes::telegram::FakeTelegram;
use seamline_fakes::whatsapp::{Failure, FakeWhatsApp, SIGNATURE_HEADER};
use seamline_server::widget::tracking::code_for;
use seamline_store::DeliveryStatus;
use serde_json::{json, Value};

use super::channel_common::{
    bodies, connect, conversations, impatient_app, message_when, quick_app, reply,
    settled_delivery, thread_of,
};
use crate::support::{spawn_app, TestApp};

pub(crate) const NUMBER_ID: &str = "106540352242922";
const TOKEN: &str = "EAAGfakeWhatsAppAccessToken0123456789";
const APP_SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const VERIFY: &str = "seamline-verify-4711";
const ANNA: &str = "79161234567";

pub(crate) async fn fake() -> FakeWhatsApp {
    let fake = FakeWhatsApp::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake WhatsApp");
    fake.add_number(NUMBER_ID, TOKEN, "15550001234");
    fake
}

/// Connects the account and completes Meta's handshake; returns the
/// webhook URL.
pub(crate) async fn setup(app: &TestApp, fake: &FakeWhatsApp) -> String {
    let account = connect(
        app,
        "whatsapp",
        json!({"api_base": fake.base_url(), "phone_number_id": NUMBER_ID}),
        json!({"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY}),
    )
    .await;
    assert_eq!(account["status_detail"], "+15550001234 Seamline fake shop");
    assert_eq!(account["secrets"]["app_secret"], "••••e1f0");
    let url = account["webhook_url"].as_str().expect("url").to_owned();
    fake.subscribe(&url, VERIFY, APP_SECRET)
        .await
        .expect("handshake");
    url
}

/// A connected number on which Anna has written `body`: her conversation's id.
async fn anna_wrote(app: &TestApp, fake: &FakeWhatsApp, body: &str) -> String {
    setup(app, fake).await;
    fake.deliver(&text(fake, ANNA, body))
        .await
        .expect("delivered");
    thread_of(app, "whatsapp", ANNA).await.0
}

fn text(fake: &FakeWhatsApp, from: &str, body: &str) -> Value {
    fake.text_message(NUMBER_ID, from, "Анна", body, Utc::now())
}

async fn post_signed(app: &TestApp, url: &str, secret: &str, body: &Value) -> reqwest::Response {
    let raw = serde_json::to_vec(body).expect("json");
    let signature = seamline_fakes::hook::hmac_sha256_hex(secret, &raw);
    app.http
        .post(url)
        .header(SIGNATURE_HEADER, format!("sha256={signature}"))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn the_handshake_wants_the_verify_token_and_forgeries_store_nothing() {
    let app = spawn_app().await;
    let fake = fake().await;
    let url = setup(&app, &fake).await;
    let wrong = fake.subscribe(&url, "guessed", APP_SECRET).await;
    assert!(wrong.is_err(), "a wrong verify token is refused");
    let refused = app
        .http
        .get(format!(
            "{url}?hub.mode=subscribe&hub.verify_token=guessed&hub.challenge=1"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let events = app.count().await;
    let message = text(&fake, ANNA, "Привет");
    let unsigned = app
        .http
        .post(&url)
        .json(&message)
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = post_signed(&app, &url, "not-the-app-secret", &message).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // Signed over other bytes (the JSON re-serialised): refused too.
    let raw = serde_json::to_vec(&message).expect("json");
    let signature = seamline_fakes::hook::hmac_sha256_hex(APP_SECRET, &raw);
    let tampered = app
        .http
        .post(&url)
        .header(SIGNATURE_HEADER, format!("sha256={signature}"))
        .header("content-type", "application/json")
        .body(serde_json::to_string_pretty(&message).expect("json"))
        .send()
        .await
        .expect("post");
    assert_eq!(tampered.status(), StatusCode::UNAUTHORIZED);

    let mut no_sender = message.clone();
    no_sender["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .expect("message")
        .remove("from");
    let bad = post_signed(&app, &url, APP_SECRET, &no_sender).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(
        body["error"]["field"], "entry.changes.value.messages.from",
        "{body}"
    );
    let bad = post_signed(
        &app,
        &url,
        APP_SECRET,
        &json!({"object": "whatsapp_business_account"}),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["field"], "entry", "{body}");
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events, "no event either");
}

#[tokio::test]
async fn a_whatsapp_message_lands_once_in_the_phones_profile() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let message = text(&fake, ANNA, "Здравствуйте, <b>где</b> заказ? 😊");
    assert_eq!(fake.deliver(&message).await.expect("delivered"), 200);
    // Meta re-sends what it thinks was lost: stored once.
    assert_eq!(fake.deliver(&message).await.expect("delivered"), 200);
    let mut document = text(&fake, ANNA, "");
    document["entry"][0]["changes"][0]["value"]["messages"][0] = json!({
        "from": ANNA, "id": fake.wamid(), "timestamp": Utc::now().timestamp().to_string(),
        "type": "document", "document": {"id": "m1", "filename": "счёт.pdf",
        "mime_type": "application/pdf", "sha256": "x", "caption": "вот"}});
    fake.deliver(&document).await.expect("delivered");
    let (_, thread) = thread_of(&app, "whatsapp", ANNA).await;
    assert_eq!(
        bodies(&thread),
        [
            "Здравствуйте, <b>где</b> заказ? 😊",
            "[document: счёт.pdf (application/pdf)]\nвот"
        ]
    );
    assert_eq!(thread[0]["channel"], "whatsapp");
    assert_eq!(thread[0]["sender"], "Анна");
    let by_phone = app.lookup("phone", "+79161234567").await;
    assert_eq!(by_phone["id"], app.lookup("whatsapp", ANNA).await["id"]);
}

#[tokio::test]
async fn a_reply_goes_out_once_through_a_500_and_a_429_and_its_statuses_follow() {
    let app = quick_app().await;
    let fake = fake().await;
    let cid = anna_wrote(&app, &fake, "Где мой заказ?").await;
    fake.fail_next([
        Failure::ServerError,
        Failure::TooManyRequests { retry_after: 1 },
    ]);
    let id = reply(&app, &cid, "Заказ уже в пути").await;
    let sent = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1, "exactly one delivered: {delivered:?}");
    assert_eq!(delivered[0].to, ANNA);
    assert_eq!(delivered[0].text, "Заказ уже в пути");
    let statuses: Vec<u16> = fake.calls().iter().map(|c| c.status).collect();
    assert_eq!(statuses, [500, 429, 200]);

    // Statuses arrive out of order; they only move forward.
    let wamid = delivered[0].wamid.clone();
    for status in ["delivered", "sent"] {
        let report = FakeWhatsApp::status(NUMBER_ID, &wamid, status, ANNA);
        fake.deliver(&report).await.expect("status");
    }
    let shown = message_when(&app, ("whatsapp", ANNA), &id, |m| {
        m["delivery"] == "delivered"
    })
    .await;
    assert_eq!(shown["delivery"], "delivered");
    let report = FakeWhatsApp::status(NUMBER_ID, &wamid, "read", ANNA);
    fake.deliver(&report).await.expect("status");
    message_when(&app, ("whatsapp", ANNA), &id, |m| m["delivery"] == "read").await;
    assert_eq!(fake.delivered().len(), 1, "nothing more went out");
}

#[tokio::test]
async fn undeliverable_fails_the_reply_with_the_reason() {
    let app = quick_app().await;
    let fake = fake().await;
    let cid = anna_wrote(&app, &fake, "Алло").await;
    fake.fail_next([Failure::Undeliverable]);
    let id = reply(&app, &cid, "Вы тут?").await;
    let failed = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    let reason = failed["delivery_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("131026"), "{reason}");
    assert_eq!(fake.calls().len(), 1, "a permanent error is not retried");

    // A later failed status says why too.
    let second = reply(&app, &cid, "Ещё раз").await;
    settled_delivery(&app, ("whatsapp", ANNA), &second).await;
    let wamid = fake.delivered()[0].wamid.clone();
    let report = FakeWhatsApp::status(NUMBER_ID, &wamid, "failed", ANNA);
    fake.deliver(&report).await.expect("status");
    let failed = message_when(&app, ("whatsapp", ANNA), &second, |m| {
        m["delivery"] == "failed"
    })
    .await;
    assert_eq!(failed["delivery_reason"], "(#131026) Message undeliverable");
}

#[tokio::test]
async fn after_24_hours_only_a_template_goes_out() {
    let app = quick_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let yesterday = Utc::now() - TimeDelta::hours(25);
    let old = fake.text_message(NUMBER_ID, ANNA, "Анна", "Спасибо!", yesterday);
    fake.deliver(&old).await.expect("delivered");
    let (cid, _) = thread_of(&app, "whatsapp", ANNA).await;
    // The inbox says so next to the reply box.
    let (client, _) = app.sign_in_as(Role::Owner).await;
    let page = client
        .get(app.url(&format!("/inbox?c={cid}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("WhatsApp&#39;s 24-hour window is closed")
            || page.contains("WhatsApp's 24-hour window is closed"),
        "the note is shown"
    );
    assert!(page.contains("last wrote on WhatsApp 25 h ago"));
    let id = reply(&app, &cid, "Как вам покупка?").await;
    let refused = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(refused["delivery"], "failed", "{refused}");
    let reason = refused["delivery_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("24-hour"), "{reason}");
    assert!(reason.contains("template"), "{reason}");
    assert!(fake.calls().is_empty(), "refused before reaching Meta");

    let id = reply(&app, &cid, "/template order_update ru\n12345").await;
    let sent = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].kind, "template");
    // Once the customer writes again, the note is gone.
    fake.deliver(&text(&fake, ANNA, "Отлично!"))
        .await
        .expect("delivered");
    let page = client
        .get(app.url(&format!("/inbox?c={cid}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(!page.contains("reply-window"), "no note inside the window");
    assert_eq!(delivered[0].text, "order_update");
    let body = &fake.calls()[0].body;
    assert_eq!(body["template"]["language"]["code"], "ru");
    assert_eq!(
        body["template"]["components"][0]["parameters"][0]["text"],
        "12345"
    );
}

#[tokio::test]
async fn a_prefilled_code_ties_the_whatsapp_sender_to_the_site_visitor() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let code = code_for("any key", "visitor-wa");
    app.track(
        "identify",
        &json!({"anonymousId": "visitor-wa",
                "context": {"externalIds": [{"type": "tracking_code", "id": code}]}}),
    )
    .await;
    let visitor = app.lookup("anonymous_id", "visitor-wa").await;
    let first = text(&fake, ANNA, &format!("Здравствуйте! [{code}]"));
    fake.deliver(&first).await.expect("delivered");
    let sender = app.lookup("whatsapp", ANNA).await;
    assert_eq!(sender["id"], visitor["id"], "the chat joined the visitor");
    let (_, thread) = thread_of(&app, "whatsapp", ANNA).await;
    assert_eq!(bodies(&thread), ["Здравствуйте!"], "the code is not shown");

    // The same link sent on to a friend does not glue them to the visitor.
    let friend = text(&fake, "79990000000", &format!("[{code}] привет"));
    fake.deliver(&friend).await.expect("delivered");
    let friend = app.lookup("whatsapp", "79990000000").await;
    assert_ne!(friend["id"], visitor["id"]);
}

#[tokio::test]
async fn a_phone_shared_on_telegram_and_writing_on_whatsapp_is_one_customer() {
    let app = spawn_app().await;
    let whatsapp = fake().await;
    setup(&app, &whatsapp).await;
    let telegram = FakeTelegram::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake Telegram");
    let bot = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";
    telegram.add_bot(bot);
    connect(
        &app,
        "telegram",
        json!({"api_base": telegram.base_url()}),
        json!({"bot_token": bot}),
    )
    .await;
    let hello = telegram.text_update(555, "Анна", "Привет из Telegram");
    telegram.deliver(bot, &hello).await.expect("delivered");
    let mut contact = telegram.text_update(555, "Анна", "");
    let message = contact["message"].as_object_mut().expect("message");
    message.remove("text");
    message.insert(
        "contact".into(),
        json!({"phone_number": ANNA, "first_name": "Анна", "user_id": 555}),
    );
    telegram.deliver(bot, &contact).await.expect("delivered");

    whatsapp
        .deliver(&text(&whatsapp, ANNA, "А это я в WhatsApp"))
        .await
        .expect("delivered");
    let on_telegram = app.lookup("telegram", "555").await;
    assert_eq!(app.lookup("whatsapp", ANNA).await["id"], on_telegram["id"]);
    let (tg_cid, _) = thread_of(&app, "telegram", "555").await;
    let (wa_cid, thread) = thread_of(&app, "whatsapp", ANNA).await;
    assert_eq!(tg_cid, wa_cid, "one conversation");
    let channels: Vec<&str> = thread
        .iter()
        .filter_map(|m| m["channel"].as_str())
        .collect();
    assert_eq!(channels, ["telegram", "telegram", "whatsapp"]);
    assert_eq!(conversations(&app).await, 1);
}

/// A chat opened from a Click-to-WhatsApp ad is a touch of that ad: the
/// message's event carries the ad as its campaign, with Meta's click id.
#[tokio::test]
async fn a_chat_from_a_click_to_whatsapp_ad_is_a_touch_of_that_ad() {
    let app = spawn_app().await;
    let fake = fake().await;
    setup(&app, &fake).await;
    let mut from_ad = text(&fake, ANNA, "Хочу бизнес-ланч");
    from_ad["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = json!({
        "source_url": "https://fb.me/3cr4Wq", "source_id": "120200000000001",
        "source_type": "ad", "headline": "Бизнес-ланч за 450 ₽", "body": "Каждый день",
        "media_type": "image", "ctwa_clid": "ARAkLkA8rmlFeiCk"});
    fake.deliver(&from_ad).await.expect("delivered");
    fake.deliver(&text(&fake, ANNA, "А доставка есть?"))
        .await
        .expect("delivered");

    let profile = app.lookup("whatsapp", ANNA).await;
    let pid = profile["id"].as_str().expect("id");
    let received = |t: &Value| -> Vec<Value> {
        t["data"].as_array().map_or_else(Vec::new, |events| {
            events
                .iter()
                .filter(|e| e["event"] == "Message Received")
                .cloned()
                .collect()
        })
    };
    let timeline = app
        .eventually(&format!("/api/v1/profiles/{pid}/timeline?limit=50"), |t| {
            received(t).len() == 2
        })
        .await;
    let touches: Vec<Value> = received(&timeline)
        .iter()
        .map(|e| e["enrichment"]["attribution"].clone())
        .filter(|a| a.get("utm_source").is_some())
        .collect();
    assert_eq!(touches.len(), 1, "only the message from the ad: {timeline}");
    let ad = &touches[0];
    assert_eq!(ad["utm_source"], "facebook");
    assert_eq!(ad["utm_medium"], "paid_social");
    assert_eq!(ad["utm_campaign"], "Бизнес-ланч за 450 ₽");
    assert_eq!(ad["utm_content"], "120200000000001");
    assert_eq!(ad["ctwa_clid"], "ARAkLkA8rmlFeiCk");
    assert_eq!(ad["page_url"], "https://fb.me/3cr4Wq");
}

#[tokio::test]
async fn statuses_that_beat_the_answer_to_the_send_wait_for_it_and_apply_in_order() {
    let app = quick_app().await;
    let fake = fake().await;
    let cid = anna_wrote(&app, &fake, "Когда доставка?").await;
    // Meta sends the reply at once but answers our request 5 s later (long
    // enough for the checks below to run before it, on a busy test machine).
    fake.fail_next([Failure::AnswerAfter(Duration::from_secs(5))]);
    let id = reply(&app, &cid, "Завтра до обеда").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fake.delivered().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wamid = fake.delivered()[0].wamid.clone();
    // Its statuses arrive first, out of order and one of them twice.
    for status in ["read", "delivered", "delivered", "sent"] {
        let report = FakeWhatsApp::status(NUMBER_ID, &wamid, status, ANNA);
        assert_eq!(fake.deliver(&report).await.expect("status"), 200);
    }
    let ws = app.workspace.workspace.id;
    let parked = app
        .store
        .parked_deliveries(ws, Channel::WhatsApp, &wamid)
        .await
        .expect("parked");
    let statuses: Vec<DeliveryStatus> = parked.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            DeliveryStatus::Read,
            DeliveryStatus::Delivered,
            DeliveryStatus::Sent
        ],
        "each report kept once until the message is known"
    );
    let (_, thread) = thread_of(&app, "whatsapp", ANNA).await;
    let waiting = thread
        .iter()
        .find(|m| m["id"] == id.as_str())
        .expect("reply");
    assert_eq!(waiting["delivery"], "pending", "{waiting}");

    // The answer records the wamid; the parked reports apply, forward only.
    let shown = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(shown["delivery"], "read", "{shown}");
    assert_eq!(shown["external_id"], wamid.as_str());
    let left = app
        .store
        .parked_deliveries(ws, Channel::WhatsApp, &wamid)
        .await
        .expect("parked");
    assert!(left.is_empty(), "applied reports are forgotten: {left:?}");
    assert_eq!(fake.delivered().len(), 1, "sent once");
}

#[tokio::test]
async fn a_send_meta_never_answers_in_time_is_tried_once_more_then_unknown() {
    let app = impatient_app().await;
    let fake = fake().await;
    let cid = anna_wrote(&app, &fake, "Алло?").await;
    let slow = Failure::AnswerAfter(Duration::from_secs(1));
    fake.fail_next([slow.clone(), slow]);
    let id = reply(&app, &cid, "Мы здесь").await;
    let unsure = settled_delivery(&app, ("whatsapp", ANNA), &id).await;
    assert_eq!(unsure["delivery"], "unknown", "{unsure}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.calls().len(), 2, "one retry after a timeout, no more");
}
