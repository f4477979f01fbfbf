//! The live inbox in real headless Chromium (see `support/browser.rs`):
//! a visitor on a customer's site chats through the widget while an
//! operator answers from the inbox in another browser; a returning
//! customer reaches the same operator; the supervisor watches the queue
//! move. Nothing is reloaded by the tests: what changes arrives live.

use std::time::{Duration, Instant};

use crate::support::browser::{Browser, PATIENCE};
use crate::support::{spawn_app, TestApp, PASSWORD};
use axum::response::Html;
use axum::routing::get;
use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::routing::{Presence, TeamRouting};
use seamline_core::role::Role;
use seamline_core::{MemberId, TeamId};
use seamline_server::inbox::{queue, receive, Customer, Inbound};
use seamline_store::Team;
use uuid::Uuid;

/// A one-pixel PNG.
const DOT_PNG: [u8; 70] = [
    137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0,
    0, 0, 31, 21, 196, 137, 0, 0, 0, 13, 73, 68, 65, 84, 120, 218, 99, 100, 96, 248, 95, 15, 0, 2,
    135, 1, 128, 235, 71, 186, 146, 0, 0, 0, 0, 73, 69, 78, 68, 174, 66, 96, 130,
];

/// A member of `role` in the workspace's one team; returns their e-mail and id.
async fn operator(app: &TestApp, team: TeamId, role: Role) -> (String, MemberId) {
    let email = app.add_member(role).await;
    let member = app
        .store
        .member_by_email(&email)
        .await
        .expect("member")
        .expect("added")
        .id;
    let ws = app.workspace.workspace.id;
    app.store
        .add_team_member(ws, team, member)
        .await
        .expect("join team");
    (email, member)
}

async fn team(app: &TestApp) -> TeamId {
    let id = TeamId(Uuid::now_v7());
    let team = Team {
        id,
        workspace_id: app.workspace.workspace.id,
        name: "Support".into(),
        routing: TeamRouting::default(),
        hours: None,
        channels: Channel::ALL
            .into_iter()
            .filter(|c| c.is_customer_facing())
            .collect(),
        bots: Default::default(),
        created_at: Utc::now(),
    };
    app.store.create_team(&team).await.expect("team");
    id
}

async fn presence(app: &TestApp, member: MemberId, presence: Presence) {
    let ws = app.workspace.workspace.id;
    queue::set_presence(app.store.as_ref(), app.bus.as_ref(), ws, member, presence)
        .await
        .expect("presence");
}

/// The customer's own site, on another origin, with the widget's one tag.
async fn customer_site(app: &TestApp) -> String {
    let page = format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Кофейня</title></head>\
         <body><h1>Кофейня «Утро»</h1><p>Свежая выпечка каждый день.</p>\
         <script src=\"{}\" data-key=\"{}\" async></script></body></html>",
        app.url("/widget.js"),
        app.workspace.write_key
    );
    let site = axum::Router::new().route("/", get(move || async move { Html(page) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the site");
    let address = listener.local_addr().expect("site address");
    tokio::spawn(async move { axum::serve(listener, site).await });
    format!("http://{address}/")
}

/// The texts of the elements matching `css`, read in one step (the live
/// page swaps its parts, so elements found earlier may be gone).
async fn texts_now(browser: &Browser, css: &str) -> Vec<String> {
    let script =
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent);";
    let found = browser
        .client
        .execute(script, vec![serde_json::json!(css)])
        .await
        .expect("read the page");
    serde_json::from_value(found).expect("texts")
}

/// Waits until an element matching `css` contains `needle`.
async fn wait_for_containing(browser: &Browser, css: &str, needle: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        browser.assert_no_alert().await;
        let texts = texts_now(browser, css).await;
        if texts.iter().any(|t| t.contains(needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {css} containing {needle:?}; there are {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The visitor opens the chat and sends `body`.
async fn visitor_says(visitor: &Browser, body: &str) {
    visitor.fill("#sl-input", body).await;
    visitor.click("#sl-send").await;
}

/// Opens the launcher and picks the chat from its menu.
async fn open_chat(visitor: &Browser) {
    visitor.wait_for("#sl-launch").await;
    visitor.click("#sl-launch").await;
    visitor.wait_for("#sl-menu .sl-item").await;
    let chat = visitor.row("#sl-menu .sl-item", "Chat").await;
    chat.click().await.expect("pick the chat");
    let input = visitor.wait_for("#sl-input").await;
    let deadline = Instant::now() + PATIENCE;
    while !input.is_displayed().await.unwrap_or(false) {
        assert!(Instant::now() < deadline, "the chat never opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_visitor_chats_and_an_operator_answers_live() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (email, member) = operator(&app, team, Role::Operator).await;
    presence(&app, member, Presence::Online).await;
    let site = customer_site(&app).await;
    let Some(desk) = Browser::start().await else {
        return;
    };
    let Some(visitor) = Browser::start().await else {
        return;
    };
    desk.sign_in(&app, &email, PASSWORD).await;
    desk.open(&app, "/inbox?who=mine").await;
    desk.wait_until_live().await;
    assert_eq!(desk.count("#conversations li").await, 0, "nothing yet");

    visitor.client.goto(&site).await.expect("the site");
    open_chat(&visitor).await;
    visitor_says(&visitor, "Здравствуйте! Доставляете в Химки? <b>срочно</b>").await;

    // The conversation appears in the operator's list without a reload.
    desk.wait_for("#conversations li a").await;
    desk.click("#conversations li a").await;
    wait_for_containing(&desk, "#messages .msg.inbound .body", "Доставляете в Химки").await;
    let shown = texts_now(&desk, "#messages .msg.inbound .body").await;
    assert!(
        shown.iter().any(|t| t.contains("<b>срочно</b>")),
        "markup shows as text: {shown:?}"
    );
    desk.fill("#reply-body", "Да, привозим за час.").await;
    desk.click("#reply button[value=\"reply\"]").await;

    // The answer reaches the visitor's open widget, pushed over its socket.
    wait_for_containing(&visitor, "#sl-log .sl-outbound", "привозим за час").await;
    // And the visitor's next line reaches the open conversation live.
    visitor_says(&visitor, "Отлично, оформляю заказ").await;
    wait_for_containing(&desk, "#messages .msg.inbound .body", "оформляю заказ").await;
    desk.screenshot("inbox-live-operator").await;
    visitor.screenshot("inbox-live-visitor").await;
    desk.assert_no_alert().await;
    visitor.close().await;
    desk.close().await;
}

/// A customer's message on `channel`; the sender's phone is `sender`'s
/// last seven digits, so one sender on two channels is one customer.
async fn customer_writes(app: &TestApp, channel: Channel, sender: &str, body: &str) {
    let digits: String = sender.chars().filter(char::is_ascii_digit).collect();
    let tail = &digits[digits.len().saturating_sub(7)..];
    receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel,
            customer: Customer {
                channel_id: Some((channel.as_str().to_owned(), sender.to_owned())),
                phone: Some(format!("+7916{tail:0>7}")),
                name: Some("Ольга".into()),
                ..Customer::default()
            },
            body: body.to_owned(),
            external_id: Some(format!("{}-{}", channel.as_str(), Uuid::now_v7())),
            at: Utc::now(),
        },
    )
    .await
    .expect("received");
}

#[tokio::test]
async fn a_returning_customer_goes_to_the_operator_who_served_them() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (anna, anna_id) = operator(&app, team, Role::Operator).await;
    let (_, boris_id) = operator(&app, team, Role::Operator).await;
    presence(&app, anna_id, Presence::Online).await;
    customer_writes(
        &app,
        Channel::Telegram,
        "1234567",
        "Можно столик на субботу?",
    )
    .await;
    let ws = app.workspace.workspace.id;
    let query = seamline_store::ConversationQuery {
        limit: 10,
        ..Default::default()
    };
    let first = app
        .store
        .list_conversations(ws, &query)
        .await
        .expect("conversations");
    assert_eq!(first.len(), 1);
    let conversation = first[0].conversation.id;
    assert_eq!(first[0].conversation.assignee, Some(anna_id));
    let Some(desk) = Browser::start().await else {
        return;
    };
    desk.sign_in(&app, &anna, PASSWORD).await;
    desk.open(&app, &format!("/inbox?who=mine&c={conversation}"))
        .await;
    desk.fill("#reply-body", "Конечно, на сколько человек?")
        .await;
    desk.click("#reply button[value=\"reply\"]").await;
    wait_for_containing(&desk, "#messages .msg.outbound .body", "на сколько человек").await;
    desk.click("#thread-head button.primary").await; // Resolve
    wait_for_containing(&desk, "#thread-head .status", "resolved").await;

    // Boris is online too, and next in the round robin; the customer comes
    // back days later on WhatsApp and still reaches Anna.
    presence(&app, boris_id, Presence::Online).await;
    desk.open(&app, "/inbox?who=mine&status=open").await;
    desk.wait_until_live().await;
    customer_writes(&app, Channel::WhatsApp, "+79161234567", "Нас будет четверо").await;
    wait_for_containing(&desk, "#conversations li", "whatsapp").await;
    let now = app
        .store
        .conversation(ws, conversation)
        .await
        .expect("read")
        .expect("one conversation");
    assert_eq!(now.conversation.assignee, Some(anna_id), "sticky to Anna");
    desk.click("#conversations li a").await;
    wait_for_containing(&desk, "#messages .msg.inbound .body", "Нас будет четверо").await;
    wait_for_containing(&desk, "#messages .msg.inbound .body", "столик на субботу").await;
    // A file sent through the API shows in the open thread as an image.
    let response = app
        .http
        .post(app.url(&format!(
            "/api/v1/conversations/{conversation}/attachments?name=hall.png"
        )))
        .bearer_auth(&app.workspace.api_key)
        .body(DOT_PNG.to_vec())
        .send()
        .await
        .expect("upload");
    let file: serde_json::Value = response.json().await.expect("JSON");
    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            &serde_json::json!({"body": "Зал на четверых", "attachments": [file["key"]],
                                "author_id": anna_id.to_string()}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    let loaded = "const i = document.querySelector('#messages ul.files img'); return !!i && i.complete && i.naturalWidth > 0;";
    let deadline = Instant::now() + PATIENCE;
    while desk.client.execute(loaded, vec![]).await.expect("script") != serde_json::json!(true) {
        assert!(Instant::now() < deadline, "the image never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    desk.screenshot("inbox-returning-customer").await;
    desk.close().await;
}

#[tokio::test]
async fn the_supervisor_sees_the_queue_move() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (_, member) = operator(&app, team, Role::Operator).await;
    let (boss, _) = operator(&app, team, Role::Supervisor).await;
    // Nobody is online: both customers wait.
    customer_writes(&app, Channel::Telegram, "7001", "Где мой заказ?").await;
    customer_writes(&app, Channel::Vk, "7002", "Есть безлактозное молоко?").await;
    let Some(desk) = Browser::start().await else {
        return;
    };
    desk.sign_in(&app, &boss, PASSWORD).await;
    desk.open(&app, "/supervisor").await;
    desk.wait_until_live().await;
    assert_eq!(texts_now(&desk, "#waiting-count").await, ["2"]);
    assert_eq!(desk.count("#queue tbody tr").await, 2);
    desk.screenshot("supervisor-queue").await;

    // An operator comes online: the queue drains to them, live.
    presence(&app, member, Presence::Online).await;
    let deadline = Instant::now() + PATIENCE;
    while texts_now(&desk, "#waiting-count").await != ["0"] {
        assert!(Instant::now() < deadline, "the queue never moved");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(desk.exists("#queue-empty").await);
    wait_for_containing(&desk, "#operators tbody tr", "2 / 5").await;
    desk.screenshot("supervisor-drained").await;
    desk.close().await;
}
