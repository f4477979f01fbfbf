//! Channel accounts and the Telegram connector, end to end: a real server
//! on an ephemeral port and the fake Bot API from `seamline-fakes`, which
//! signs its webhooks, re-sends them on a non-2xx answer, fails on request
//! and logs what it delivered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use seamline_bus::{Bus, InProcessBus};
use seamline_core::ConversationMessageId;
use seamline_fakes::telegram::{Failure, FakeTelegram, SECRET_HEADER};
use seamline_server::channels::ChannelsConfig;
use seamline_server::widget::tracking::code_for;
use seamline_server::ServerConfig;
use seamline_store::{ConversationQuery, OutboundState};
use serde_json::{json, Value};

use super::channel_common::impatient_app;
use crate::support::postgres::FreshDatabase;
use crate::support::{another_instance, spawn_app, spawn_app_configured, spawn_with, TestApp};

const TOKEN: &str = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";

async fn fake() -> FakeTelegram {
    let fake = FakeTelegram::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake Telegram");
    fake.add_bot(TOKEN);
    fake
}

/// Retries in a fraction of a second, so a test sees several.
async fn quick_app() -> TestApp {
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

/// Connects a Telegram account pointed at `fake` and presses "test";
/// returns the account's view.
async fn connect(app: &TestApp, fake: &FakeTelegram) -> Value {
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "telegram", "name": "Магазин",
                    "settings": {"api_base": fake.base_url()},
                    "secrets": {"bot_token": TOKEN}}),
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

async fn conversations(app: &TestApp) -> usize {
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

/// The conversation's messages (oldest first) of the profile holding
/// Telegram user `user`.
async fn messages_of(app: &TestApp, user: &str) -> (String, Vec<Value>) {
    let profile = app.lookup("telegram", user).await;
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
    let data = page["data"].as_array().cloned().unwrap_or_default();
    (cid, data)
}

#[tokio::test]
async fn telegram_accounts_keep_the_token_sealed_and_masked() {
    let app = spawn_app().await;
    let fake = fake().await;
    let account = connect(&app, &fake).await;
    assert_eq!(account["secrets"]["bot_token"], "••••m9T0");
    assert_eq!(account["settings"]["bot_username"], "seamline_fake_bot");
    assert!(!account.to_string().contains("AAHfiqks"), "{account}");
    let (hook_url, secret) = fake.webhook(TOKEN).expect("the webhook was set");
    assert_eq!(json!(hook_url), account["webhook_url"]);
    assert!(secret.is_some_and(|s| s.len() >= 32), "a secret token");
    let (_, listed) = app.api_get("/api/v1/channels").await;
    assert!(!listed.to_string().contains("AAHfiqks"), "{listed}");
    let stored = app
        .store
        .list_channel_accounts(app.workspace.workspace.id)
        .await
        .expect("accounts");
    assert!(!stored[0].secrets.0.contains("AAHfiqks"), "sealed at rest");

    let (status, bad) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "telegram", "secrets": {"bot_token": "nope"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["field"], "secrets.bot_token", "{bad}");
    let (status, bad) = app
        .api_post("/api/v1/channels", &json!({"kind": "fax"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(bad["error"]["field"], "kind", "{bad}");

    // A revoked token: the check says so and the account shows it.
    let id = account["id"].as_str().expect("id");
    let response = app
        .http
        .patch(app.url(&format!("/api/v1/channels/{id}")))
        .bearer_auth(&app.workspace.api_key)
        .json(&json!({"secrets": {"bot_token": "42:revoked-token-value"}}))
        .send()
        .await
        .expect("patch");
    assert_eq!(response.status(), StatusCode::OK);
    let (_, tested) = app
        .api_post(&format!("/api/v1/channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(tested["status"], "error");
    assert_eq!(tested["status_detail"], "Unauthorized");
}

#[tokio::test]
async fn forged_and_malformed_webhooks_store_nothing() {
    let app = spawn_app().await;
    let fake = fake().await;
    let account = connect(&app, &fake).await;
    let url = account["webhook_url"].as_str().expect("url").to_owned();
    let update = fake.text_update(555, "Анна", "Привет");
    let events = app.count().await;

    let unsigned = app
        .http
        .post(&url)
        .json(&update)
        .send()
        .await
        .expect("post");
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let forged = app
        .http
        .post(&url)
        .header(SECRET_HEADER, "guessed-secret")
        .json(&update)
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events, "no event either");

    let (_, secret) = fake.webhook(TOKEN).expect("webhook");
    let secret = secret.expect("secret token");
    let no_id = json!({"message": update["message"]});
    let bad = app
        .http
        .post(&url)
        .header(SECRET_HEADER, &secret)
        .json(&no_id)
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["field"], "update_id", "{body}");
    let garbage = app
        .http
        .post(&url)
        .header(SECRET_HEADER, &secret)
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events);
    let unknown = app
        .http
        .post(app.url("/channels/telegram/not-a-token"))
        .header(SECRET_HEADER, &secret)
        .json(&update)
        .send()
        .await
        .expect("post");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_telegram_message_lands_once_in_the_customers_conversation() {
    let app = spawn_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    let update = fake.text_update(555, "Анна", "Привет <b>из</b> Telegram");
    assert_eq!(fake.deliver(TOKEN, &update).await.expect("delivered"), 200);
    // Telegram re-sends an update it thinks was lost: stored once.
    assert_eq!(fake.deliver(TOKEN, &update).await.expect("delivered"), 200);
    let (_, said) = messages_of(&app, "555").await;
    let bodies: Vec<&str> = said.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["Привет <b>из</b> Telegram"]);
    assert_eq!(said[0]["channel"], "telegram");
    assert_eq!(said[0]["sender"], "Анна");

    // Sharing the contact gives the profile its phone.
    let mut contact = fake.text_update(555, "Анна", "");
    contact["message"]
        .as_object_mut()
        .expect("message")
        .remove("text");
    contact["message"]["contact"] =
        json!({"phone_number": "79161234567", "first_name": "Анна", "user_id": 555});
    fake.deliver(TOKEN, &contact).await.expect("delivered");
    let by_phone = app.lookup("phone", "+79161234567").await;
    assert_eq!(by_phone["id"], app.lookup("telegram", "555").await["id"]);
    let mut document = fake.text_update(555, "Анна", "");
    document["message"]
        .as_object_mut()
        .expect("message")
        .remove("text");
    document["message"]["document"] = json!({"file_id": "f1", "file_unique_id": "u1", "file_name": "счёт.pdf",
               "mime_type": "application/pdf", "file_size": 1000});
    fake.deliver(TOKEN, &document).await.expect("delivered");
    let (_, said) = messages_of(&app, "555").await;
    let bodies: Vec<&str> = said.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(
        bodies,
        [
            "Привет <b>из</b> Telegram",
            "[contact: 79161234567]",
            "[document: счёт.pdf (application/pdf)]"
        ]
    );
}

#[tokio::test]
async fn a_start_code_ties_the_telegram_sender_to_the_site_visitor() {
    let app = spawn_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    let code = code_for("any key", "visitor-tg");
    app.track(
        "identify",
        &json!({"anonymousId": "visitor-tg",
                "context": {"externalIds": [{"type": "tracking_code", "id": code}]}}),
    )
    .await;
    let visitor = app.lookup("anonymous_id", "visitor-tg").await;
    assert_eq!(
        app.lookup("tracking_code", &code).await["id"],
        visitor["id"]
    );

    let start = fake.text_update(777, "Олег", &format!("/start {code}"));
    fake.deliver(TOKEN, &start).await.expect("delivered");
    let sender = app.lookup("telegram", "777").await;
    assert_eq!(sender["id"], visitor["id"], "the chat joined the visitor");

    // The same link forwarded to a friend does not glue them to the visitor.
    let forwarded = fake.text_update(778, "Друг", &format!("/start {code}"));
    fake.deliver(TOKEN, &forwarded).await.expect("delivered");
    let friend = app.lookup("telegram", "778").await;
    assert_ne!(friend["id"], visitor["id"]);
}

/// The customer writes; the operator answers through the API. Returns the
/// reply's id.
async fn reply(app: &TestApp, fake: &FakeTelegram, user: i64, text: &str) -> String {
    let update = fake.text_update(user, "Анна", "Где мой заказ?");
    fake.deliver(TOKEN, &update).await.expect("delivered");
    let (cid, _) = messages_of(app, &user.to_string()).await;
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

/// Waits (bounded) until the reply's delivery is no longer pending.
async fn settled_delivery(app: &TestApp, user: &str, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, said) = messages_of(app, user).await;
        let mine = said.into_iter().find(|m| m["id"] == id).expect("the reply");
        if mine["delivery"] != "pending" {
            return mine;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_reply_goes_out_once_through_a_500_and_a_429() {
    let app = quick_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    fake.fail_next([
        Failure::ServerError,
        Failure::TooManyRequests { retry_after: 1 },
    ]);
    let id = reply(&app, &fake, 555, "Заказ уже в пути").await;
    let sent = settled_delivery(&app, "555", &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    let delivered = fake.delivered();
    assert_eq!(
        delivered.len(),
        1,
        "exactly one delivered send: {delivered:?}"
    );
    assert_eq!(delivered[0].chat_id, 555);
    assert_eq!(delivered[0].text, "Заказ уже в пути");
    let sends = fake
        .calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.status)
        .collect::<Vec<_>>();
    assert_eq!(sends, [500, 429, 200]);
    let entry = app
        .store
        .outbound(
            app.workspace.workspace.id,
            ConversationMessageId(id.parse().expect("uuid")),
        )
        .await
        .expect("read")
        .expect("queued");
    assert_eq!(entry.state, OutboundState::Sent);
    assert_eq!(entry.attempts, 3);
    // Nothing more goes out later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(fake.delivered().len(), 1);
}

#[tokio::test]
async fn a_blocked_bot_fails_the_reply_with_the_reason() {
    let app = quick_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    fake.fail_next([Failure::Blocked]);
    let id = reply(&app, &fake, 556, "Вы тут?").await;
    let failed = settled_delivery(&app, "556", &id).await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert_eq!(
        failed["delivery_reason"],
        "Forbidden: bot was blocked by the user"
    );
    assert!(fake.delivered().is_empty());
    let sends = fake
        .calls()
        .iter()
        .filter(|c| c.method == "sendMessage")
        .count();
    assert_eq!(sends, 1, "a permanent error is not retried");
}

fn send_statuses(fake: &FakeTelegram) -> Vec<u16> {
    fake.calls()
        .into_iter()
        .filter(|c| c.method == "sendMessage")
        .map(|c| c.status)
        .collect()
}

#[tokio::test]
async fn a_timed_out_send_is_tried_once_more_then_marked_unknown() {
    let app = impatient_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    // Telegram sends both tries but answers neither in time.
    let slow = Failure::AnswerAfter(Duration::from_secs(1));
    fake.fail_next([slow.clone(), slow]);
    let id = reply(&app, &fake, 560, "Дошло?").await;
    let unsure = settled_delivery(&app, "560", &id).await;
    assert_eq!(unsure["delivery"], "unknown", "{unsure}");
    let reason = unsure["delivery_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("may have been sent"), "{reason}");
    // Long enough for any retry the quick backoff would make: none comes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        send_statuses(&fake).len(),
        2,
        "one retry after a timeout, no more"
    );
    assert_eq!(fake.delivered().len(), 2, "Telegram did send both");
    let (_, said) = messages_of(&app, "560").await;
    let mine = said.iter().find(|m| m["id"] == id.as_str()).expect("reply");
    assert_eq!(mine["delivery"], "unknown", "never tried again");

    // A single timeout: the second try answers, the reply is sent.
    fake.fail_next([Failure::AnswerAfter(Duration::from_secs(1))]);
    let id = reply(&app, &fake, 561, "А это?").await;
    let sent = settled_delivery(&app, "561", &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    assert_eq!(send_statuses(&fake).len(), 4);
}

#[tokio::test]
async fn the_outbox_survives_a_restart() {
    let mut first = quick_app().await;
    let fake = fake().await;
    connect(&first, &fake).await;
    // The first answer holds the bot for 3 s; the instance stops meanwhile.
    fake.fail_next([Failure::TooManyRequests { retry_after: 3 }]);
    let id = reply(&first, &fake, 557, "После перезапуска").await;
    let message = ConversationMessageId(id.parse().expect("uuid"));
    let ws = first.workspace.workspace.id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let entry = first.store.outbound(ws, message).await.expect("read");
        if entry.is_some_and(|e| e.attempts == 1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.stop_server();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fake.delivered().is_empty());

    let second = another_instance(&first, first.bus.clone()).await;
    let sent = settled_delivery(&second, "557", &id).await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    assert_eq!(fake.delivered().len(), 1, "sent once, by the new instance");
}

#[tokio::test]
async fn the_same_update_arriving_at_once_is_stored_once() {
    let app = spawn_app().await;
    let fake = fake().await;
    let account = connect(&app, &fake).await;
    let url = account["webhook_url"].as_str().expect("url").to_owned();
    let (_, secret) = fake.webhook(TOKEN).expect("webhook");
    let secret = secret.expect("secret token");
    let update = fake.text_update(559, "Анна", "Дважды");
    let posts = (0..5).map(|_| {
        app.http
            .post(&url)
            .header(SECRET_HEADER, &secret)
            .json(&update)
            .send()
    });
    for answer in futures::future::join_all(posts).await {
        assert_eq!(answer.expect("post").status(), StatusCode::OK);
    }
    let (_, said) = messages_of(&app, "559").await;
    let bodies: Vec<&str> = said.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies, ["Дважды"], "concurrent retries are stored once");
}

/// Two instances on one PostgreSQL database share the outbox: every reply
/// is sent once, whichever instance wrote it or leased it.
#[tokio::test]
async fn two_instances_on_postgres_send_each_reply_once() {
    let Some((database, store)) = FreshDatabase::create().await else {
        return;
    };
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Default::default()));
    let mut first = spawn_with(store, bus.clone(), 1).await;
    first._database = Some(database);
    let second = another_instance(&first, bus).await;
    let fake = fake().await;
    connect(&first, &fake).await;
    let mut written = Vec::new();
    for (i, app) in [&first, &second].repeat(3).into_iter().enumerate() {
        let user = 600 + i64::try_from(i).expect("small");
        let id = reply(app, &fake, user, &format!("Ответ {i}")).await;
        written.push((user, id));
    }
    for (user, id) in &written {
        let sent = settled_delivery(&first, &user.to_string(), id).await;
        assert_eq!(sent["delivery"], "sent", "{sent}");
    }
    let mut texts: Vec<String> = fake.delivered().into_iter().map(|d| d.text).collect();
    texts.sort();
    let expected: Vec<String> = (0..6).map(|i| format!("Ответ {i}")).collect();
    assert_eq!(texts, expected, "each reply delivered exactly once");
}

#[tokio::test]
async fn the_fake_bot_api_re_sends_an_update_until_it_is_accepted() {
    let app = spawn_app().await;
    let fake = fake().await;
    let account = connect(&app, &fake).await;
    let id = account["id"].as_str().expect("id");
    let switch = |active: bool| {
        app.http
            .patch(app.url(&format!("/api/v1/channels/{id}")))
            .bearer_auth(&app.workspace.api_key)
            .json(&json!({"active": active}))
            .send()
    };
    assert_eq!(switch(false).await.expect("patch").status(), StatusCode::OK);
    let update = fake.text_update(560, "Анна", "Вы тут?");
    let refused = fake.deliver(TOKEN, &update).await;
    assert!(refused.is_err(), "a disabled account answers 404");
    let tries = fake.webhook_attempts();
    assert_eq!(tries.len(), 5, "re-sent like Telegram: {tries:?}");
    assert!(tries.iter().all(|t| t.status == Some(404)));
    assert_eq!(conversations(&app).await, 0);

    assert_eq!(switch(true).await.expect("patch").status(), StatusCode::OK);
    assert_eq!(fake.deliver(TOKEN, &update).await.expect("accepted"), 200);
    let (_, said) = messages_of(&app, "560").await;
    assert_eq!(said.len(), 1);
}

/// The team's greeting (an automatic bot message) reaches a Telegram
/// customer through the same outbox as an operator's reply.
#[tokio::test]
async fn a_bot_greeting_goes_out_on_telegram() {
    let app = quick_app().await;
    let fake = fake().await;
    connect(&app, &fake).await;
    let ws = app.workspace.workspace.id;
    let team = seamline_store::Team {
        id: seamline_core::TeamId(uuid::Uuid::now_v7()),
        workspace_id: ws,
        name: "Support".into(),
        routing: Default::default(),
        hours: None,
        channels: [seamline_core::inbox::Channel::Telegram]
            .into_iter()
            .collect(),
        bots: seamline_core::inbox::bot::BotSetup {
            greeting: Some("Здравствуйте! Оператор ответит через минуту.".into()),
            ..Default::default()
        },
        created_at: chrono::Utc::now(),
    };
    app.store.create_team(&team).await.expect("team");
    let update = fake.text_update(777, "Анна", "Добрый день");
    assert_eq!(fake.deliver(TOKEN, &update).await.expect("delivered"), 200);
    // The sender's sweep queues automatic messages within seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let sent = fake.delivered();
        if let Some(greeting) = sent.iter().find(|d| d.chat_id == 777) {
            assert!(greeting.text.contains("Оператор ответит"), "{greeting:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the greeting never went out"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, said) = messages_of(&app, "777").await;
    let bot = said
        .iter()
        .find(|m| m["kind"] == "bot")
        .expect("the bot's message");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut status = bot["delivery"].clone();
    while status != "sent" {
        assert!(tokio::time::Instant::now() < deadline, "status {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, said) = messages_of(&app, "777").await;
        status = said
            .iter()
            .find(|m| m["kind"] == "bot")
            .map(|m| m["delivery"].clone())
            .unwrap_or_default();
    }
    assert_eq!(
        fake.delivered().iter().filter(|d| d.chat_id == 777).count(),
        1
    );
}
