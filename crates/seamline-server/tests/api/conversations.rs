//! The inbox over REST: one conversation per profile, replies and notes,
//! status, assignment, labels and priority, filters, canned responses,
//! roles and workspaces.

use std::sync::Arc;

use chrono::{Duration, Utc};
use reqwest::{Client, StatusCode};
use seamline_bus::InProcessBus;
use seamline_core::inbox::{Channel, Message, MessageKind};
use seamline_core::{ConversationId, ConversationMessageId, MemberId, Role};
use seamline_store::NewMessage;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{read, spawn_app, spawn_with, TestApp};

/// A tracked customer with a name and e-mail; returns their profile id.
async fn customer(app: &TestApp, user: &str, name: &str) -> String {
    let (status, body) = app
        .track(
            "identify",
            &json!({"userId": user, "traits": {"name": name, "email": format!("{user}@shop.test")}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let profile = app.lookup("user_id", user).await;
    profile["id"].as_str().expect("profile id").to_owned()
}

/// The customer's conversation id.
async fn conversation_of(app: &TestApp, profile: &str) -> String {
    let (status, body) = app
        .api_get(&format!("/api/v1/profiles/{profile}/conversation"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["id"].as_str().expect("conversation id").to_owned()
}

/// What a channel connector will do: a customer's message, appended to
/// the store.
async fn inbound(app: &TestApp, conversation: &str, channel: Channel, body: &str) {
    let id: ConversationId = conversation.parse().expect("conversation id");
    let message = Message::new(
        ConversationMessageId(Uuid::now_v7()),
        id,
        MessageKind::Inbound,
        channel,
        body.into(),
        Utc::now(),
    )
    .expect("inbound message");
    app.store
        .append_message(
            app.workspace.workspace.id,
            &NewMessage {
                message,
                sender: Some("Olga".into()),
                attachments: vec![],
                external_id: None,
                delivery: None,
            },
        )
        .await
        .expect("append inbound");
}

async fn member_id(app: &TestApp, email: &str) -> MemberId {
    app.store
        .member_by_email(email)
        .await
        .expect("member")
        .expect("exists")
        .id
}

fn owner(app: &TestApp) -> String {
    app.workspace.owner.id.to_string()
}

async fn messages(app: &TestApp, conversation: &str) -> Vec<Value> {
    let (status, body) = app
        .api_get(&format!(
            "/api/v1/conversations/{conversation}/messages?limit=500"
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn session_post(
    client: &Client,
    app: &TestApp,
    csrf: &str,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let response = client
        .post(app.url(path))
        .header("x-csrf-token", csrf)
        .json(body)
        .send()
        .await
        .expect("send");
    read(response).await
}

async fn session_get(client: &Client, app: &TestApp, path: &str) -> (StatusCode, Value) {
    read(client.get(app.url(path)).send().await.expect("send")).await
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_profile_has_one_conversation_created_once() {
    let app = spawn_app().await;
    let profile = customer(&app, "olga", "Olga Smirnova").await;
    let first = conversation_of(&app, &profile).await;
    assert_eq!(conversation_of(&app, &profile).await, first, "the same one");

    let (status, body) = app.api_get(&format!("/api/v1/conversations/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["profile_id"], profile.as_str());
    assert_eq!(body["status"], "open");
    assert_eq!(body["unread"], 0);
    assert!(body["reply_channel"].is_null());

    let (status, list) = app.api_get("/api/v1/conversations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(list["next_cursor"].is_null());

    let nobody = Uuid::now_v7();
    let (status, _) = app
        .api_get(&format!("/api/v1/profiles/{nobody}/conversation"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .api_get(&format!("/api/v1/conversations/{nobody}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn replies_and_notes_are_listed_in_order() {
    let app = spawn_app().await;
    let operator_email = app.add_member(Role::Operator).await;
    let operator = member_id(&app, &operator_email).await;
    let handle = operator_email.split('@').next().unwrap_or_default();
    let profile = customer(&app, "olga", "Olga Smirnova").await;
    let id = conversation_of(&app, &profile).await;
    let path = format!("/api/v1/conversations/{id}/messages");

    // Before the customer wrote, a reply needs a channel.
    let (status, body) = app
        .api_post(&path, &json!({"body": "Hello", "author_id": owner(&app)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "channel");

    inbound(&app, &id, Channel::Telegram, "Where is my order?").await;
    let (_, conversation) = app.api_get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(conversation["reply_channel"], "telegram");
    assert_eq!(conversation["unread"], 1);

    // An API key writes on behalf of a member.
    let (status, body) = app.api_post(&path, &json!({"body": "Hello"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "author_id");

    let reply = "It ships today <script>alert(1)</script> & arrives tomorrow";
    let (status, sent) = app
        .api_post(&path, &json!({"body": reply, "author_id": owner(&app)}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["kind"], "outbound");
    assert_eq!(sent["channel"], "telegram", "the customer's channel");
    assert_eq!(sent["body"], reply, "stored and returned as plain text");
    assert_eq!(sent["author_id"], owner(&app).as_str());
    assert_eq!(sent["delivery"], "pending");

    let (status, by_email) = app
        .api_post(
            &path,
            &json!({"body": "Also by e-mail", "channel": "email", "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{by_email}");
    assert_eq!(by_email["channel"], "email", "the operator's pick");

    let note = format!(
        "@{} please check the warehouse; olga@shop.test is not a mention",
        handle.to_uppercase()
    );
    let (status, noted) = app
        .api_post(
            &path,
            &json!({"kind": "note", "body": note, "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{noted}");
    assert_eq!(noted["kind"], "note");
    assert_eq!(noted["channel"], "internal");
    assert_eq!(noted["mentions"], json!([operator]));

    let (status, body) = app
        .api_post(
            &path,
            &json!({"kind": "note", "body": "x", "channel": "sms", "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "channel");
    let (status, body) = app
        .api_post(&path, &json!({"kind": "shout", "body": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "kind");
    let (status, body) = app
        .api_post(
            &path,
            &json!({"body": "x", "channel": "fax", "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "channel");

    let all = messages(&app, &id).await;
    let kinds: Vec<&str> = all.iter().filter_map(|m| m["kind"].as_str()).collect();
    assert_eq!(kinds, ["inbound", "outbound", "outbound", "note"]);
    let (_, conversation) = app.api_get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(conversation["unread"], 0, "answered");
    assert!(conversation["waiting_since"].is_null());

    // Pages follow each other in time order.
    let (_, first) = app.api_get(&format!("{path}?limit=3")).await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(3));
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let (_, second) = app
        .api_get(&format!("{path}?limit=3&cursor={cursor}"))
        .await;
    assert_eq!(second["data"][0]["kind"], "note");
    assert_eq!(second["data"].as_array().map(Vec::len), Some(1));
    let (_, newest) = app.api_get(&format!("{path}?order=newest&limit=1")).await;
    assert_eq!(newest["data"][0]["kind"], "note");
    let (status, body) = app.api_get(&format!("{path}?cursor=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(field(&body), "cursor");
}

#[tokio::test]
async fn a_retried_message_with_an_idempotency_key_is_stored_once() {
    let app = spawn_app().await;
    let profile = customer(&app, "olga", "Olga Smirnova").await;
    let id = conversation_of(&app, &profile).await;
    inbound(&app, &id, Channel::WebChat, "hi").await;
    let post = |key: &'static str| {
        app.http
            .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
            .bearer_auth(&app.workspace.api_key)
            .header("Idempotency-Key", key)
            .json(&json!({"body": "Hello!", "author_id": owner(&app)}))
            .send()
    };
    let (status, first) = read(post("reply-1").await.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = read(post("reply-1").await.expect("send")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    let (status, other) = read(post("reply-2").await.expect("send")).await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    assert_ne!(other["id"], first["id"]);
    assert_eq!(messages(&app, &id).await.len(), 3);

    let (status, body) = read(post("   ").await.expect("send")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "Idempotency-Key");
}

#[tokio::test]
async fn status_follows_the_cores_transitions() {
    let app = spawn_app().await;
    let profile = customer(&app, "olga", "Olga Smirnova").await;
    let id = conversation_of(&app, &profile).await;
    let path = format!("/api/v1/conversations/{id}/status");

    let (status, body) = app.api_post(&path, &json!({"status": "pending"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "pending");

    let (status, body) = app.api_post(&path, &json!({"status": "snoozed"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "until");
    let past = (Utc::now() - Duration::hours(1)).to_rfc3339();
    let (status, body) = app
        .api_post(&path, &json!({"status": "snoozed", "until": past}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "until");
    let (status, body) = app
        .api_post(&path, &json!({"status": "snoozed", "until": "tomorrow"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "until");
    let later = Utc::now() + Duration::hours(2);
    let (status, body) = app
        .api_post(
            &path,
            &json!({"status": "snoozed", "until": later.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "snoozed");
    assert!(body["snoozed_until"].is_string());

    let (status, body) = app.api_post(&path, &json!({"status": "resolved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "resolved");

    // A resolved conversation is reopened before it waits on anyone.
    let (status, body) = app.api_post(&path, &json!({"status": "pending"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(field(&body), "status");
    assert_eq!(body["error"]["code"], "invalid_transition");

    // Asking again for the status it has changes nothing.
    let (status, body) = app.api_post(&path, &json!({"status": "resolved"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = app.api_post(&path, &json!({"status": "closed"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "status");

    // A customer's message reopens it.
    inbound(&app, &id, Channel::Vk, "one more thing").await;
    let (_, body) = app.api_get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(body["status"], "open");

    let changes: Vec<(String, String)> = messages(&app, &id)
        .await
        .iter()
        .filter(|m| m["event"]["event"] == "status_changed")
        .map(|m| {
            (
                m["event"]["from"].as_str().unwrap_or_default().to_owned(),
                m["event"]["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("open", "pending"),
        ("pending", "snoozed"),
        ("snoozed", "resolved"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(changes, expected, "each change is on the timeline once");
}

#[tokio::test]
async fn assignment_labels_priority_and_filters() {
    let app = spawn_app().await;
    let operator_email = app.add_member(Role::Operator).await;
    let operator = member_id(&app, &operator_email).await;
    let olga = conversation_of(&app, &customer(&app, "olga", "Olga Smirnova").await).await;
    let ivan = conversation_of(&app, &customer(&app, "ivan", "Ivan Petrov").await).await;
    inbound(&app, &ivan, Channel::WhatsApp, "hello").await;

    let assign = format!("/api/v1/conversations/{olga}/assignment");
    let (status, body) = app
        .api_post(&assign, &json!({"operator_id": operator}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["assignee_id"], json!(operator));
    let (status, body) = app
        .api_post(&assign, &json!({"operator_id": Uuid::now_v7()}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "operator_id");
    let (status, body) = app
        .api_post(&assign, &json!({"operator_id": "someone"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "operator_id");
    let (status, body) = app
        .api_post(&assign, &json!({"team_id": Uuid::now_v7()}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "team_id");
    let (status, body) = app.api_post(&assign, &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "operator_id");
    // The same assignment again records nothing.
    let (status, _) = app
        .api_post(&assign, &json!({"operator_id": operator}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let assigned: Vec<Value> = messages(&app, &olga)
        .await
        .into_iter()
        .filter(|m| m["event"]["event"] == "assigned")
        .collect();
    assert_eq!(assigned.len(), 1);
    assert_eq!(assigned[0]["event"]["operator"], json!(operator));
    assert_eq!(assigned[0]["event"]["reason"], "manual");
    let history = app
        .store
        .assignment_history(
            app.workspace.workspace.id,
            olga.parse().expect("conversation id"),
        )
        .await
        .expect("audit");
    assert_eq!(history.len(), 1, "the audit has the change");

    let labels = format!("/api/v1/conversations/{olga}/labels");
    let (status, body) = app
        .api_post(&labels, &json!({"add": [" VIP ", "refund"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["labels"], json!(["refund", "vip"]));
    let (status, body) = app.api_post(&labels, &json!({"remove": ["refund"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["labels"], json!(["vip"]));
    let (status, body) = app.api_post(&labels, &json!({"add": ["ok", "no!"]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "add[1]");

    let priority = format!("/api/v1/conversations/{olga}/priority");
    let (status, body) = app.api_post(&priority, &json!({"priority": "high"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["priority"], "high");
    let (status, body) = app.api_post(&priority, &json!({"priority": "asap"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "priority");

    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let shared = &app;
    let list = |query: &'static str| {
        let path = format!("/api/v1/conversations?{query}");
        async move { shared.api_get(&path).await }
    };
    assert_eq!(
        ids(&app
            .api_get(&format!("/api/v1/conversations?assignee={operator}"))
            .await
            .1),
        [olga.as_str()]
    );
    assert_eq!(ids(&list("assignee=unassigned").await.1), [ivan.as_str()]);
    assert_eq!(ids(&list("label=VIP").await.1), [olga.as_str()]);
    assert_eq!(ids(&list("channel=whatsapp").await.1), [ivan.as_str()]);
    assert_eq!(ids(&list("status=resolved").await.1), Vec::<String>::new());
    assert_eq!(ids(&list("status=open,pending").await.1).len(), 2);
    // Newest activity first, one page at a time.
    let (_, page) = list("limit=1").await;
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, rest) = app
        .api_get(&format!("/api/v1/conversations?limit=1&cursor={cursor}"))
        .await;
    let mut both = ids(&page);
    both.extend(ids(&rest));
    both.sort();
    let mut all = vec![olga.clone(), ivan.clone()];
    all.sort();
    assert_eq!(both, all);

    for (query, bad) in [
        ("status=closed", "status"),
        ("channel=fax", "channel"),
        ("assignee=me", "assignee"),
        ("assignee=nobody", "assignee"),
        ("team=x", "team"),
        ("label=!", "label"),
        ("limit=0", "limit"),
        ("cursor=zzz", "cursor"),
    ] {
        let (status, body) = list(query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(field(&body), bad, "{query}");
    }

    // "Mine" for a signed-in operator; reading clears the unread count.
    let client = Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let csrf = crate::support::login(
        &client,
        &app.base,
        &operator_email,
        crate::support::PASSWORD,
    )
    .await;
    let (status, mine) = session_get(&client, &app, "/api/v1/conversations?assignee=me").await;
    assert_eq!(status, StatusCode::OK, "{mine}");
    assert_eq!(ids(&mine), [olga.as_str()]);
    let (status, body) = session_post(
        &client,
        &app,
        &csrf,
        &format!("/api/v1/conversations/{ivan}/read"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["unread"], 0);
    // A signed-in operator notes as themselves.
    let (status, note) = session_post(
        &client,
        &app,
        &csrf,
        &format!("/api/v1/conversations/{ivan}/messages"),
        &json!({"kind": "note", "body": "on it"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{note}");
    assert_eq!(note["author_id"], json!(operator));
    let (status, body) = session_post(
        &client,
        &app,
        &csrf,
        &format!("/api/v1/conversations/{ivan}/messages"),
        &json!({"kind": "note", "body": "as the owner", "author_id": owner(&app)}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "author_id");
}

#[tokio::test]
async fn an_analyst_reads_but_cannot_write() {
    let app = spawn_app().await;
    let id = conversation_of(&app, &customer(&app, "olga", "Olga Smirnova").await).await;
    let (client, csrf) = app.sign_in_as(Role::Analyst).await;
    let (status, body) = session_get(&client, &app, &format!("/api/v1/conversations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = session_get(
        &client,
        &app,
        &format!("/api/v1/conversations/{id}/messages"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for (path, body) in [
        ("messages", json!({"kind": "note", "body": "hi"})),
        ("status", json!({"status": "resolved"})),
        ("assignment", json!({"operator_id": null})),
        ("labels", json!({"add": ["vip"]})),
        ("priority", json!({"priority": "high"})),
        ("read", json!({})),
    ] {
        let (status, answer) = session_post(
            &client,
            &app,
            &csrf,
            &format!("/api/v1/conversations/{id}/{path}"),
            &body,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
    }
    let (status, _) = session_post(
        &client,
        &app,
        &csrf,
        "/api/v1/canned-responses",
        &json!({"shortcut": "hi", "body": "Hello"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(messages(&app, &id).await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn workspaces_never_see_each_others_conversations() {
    let a = spawn_app().await;
    let b = spawn_with(
        a.store.clone(),
        Arc::new(InProcessBus::new(Default::default())),
        1,
    )
    .await;
    let profile = customer(&a, "olga", "Olga Smirnova").await;
    let id = conversation_of(&a, &profile).await;
    inbound(&a, &id, Channel::WebChat, "secret question").await;

    for path in [
        format!("/api/v1/conversations/{id}"),
        format!("/api/v1/conversations/{id}/messages"),
        format!("/api/v1/profiles/{profile}/conversation"),
    ] {
        let (status, body) = b.api_get(&path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let b_owner = b.workspace.owner.id;
    for (path, body) in [
        ("messages", json!({"body": "hi", "author_id": b_owner})),
        ("status", json!({"status": "resolved"})),
        ("assignment", json!({"operator_id": b_owner})),
        ("labels", json!({"add": ["vip"]})),
        ("priority", json!({"priority": "high"})),
        ("read", json!({})),
    ] {
        let (status, answer) = b
            .api_post(&format!("/api/v1/conversations/{id}/{path}"), &body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
    }
    // A's member can't be assigned or write in B.
    let b_profile = customer(&b, "ivan", "Ivan Petrov").await;
    let b_id = conversation_of(&b, &b_profile).await;
    let (status, body) = b
        .api_post(
            &format!("/api/v1/conversations/{b_id}/assignment"),
            &json!({"operator_id": a.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "operator_id");

    let (_, listed) = b.api_get("/api/v1/conversations").await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["data"][0]["id"], b_id.as_str());
    // A's conversation is untouched.
    let (_, mine) = a.api_get(&format!("/api/v1/conversations/{id}")).await;
    assert_eq!(mine["status"], "open");
    assert_eq!(mine["labels"], json!([]));
    assert_eq!(messages(&a, &id).await.len(), 1);
}

#[tokio::test]
async fn canned_responses_render_for_the_customer() {
    let app = spawn_app().await;
    let id = conversation_of(&app, &customer(&app, "olga", "Olga Smirnova").await).await;
    let (status, saved) = app
        .api_post(
            "/api/v1/canned-responses",
            &json!({"shortcut": "/Delivery", "body": "Hi {{first_name|there}}, {{operator|we}} will call {{phone|you}}."}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{saved}");
    assert_eq!(saved["shortcut"], "delivery");
    assert_eq!(
        saved["variables"],
        json!(["first_name", "operator", "phone"])
    );

    let (status, body) = app
        .api_post(
            "/api/v1/canned-responses",
            &json!({"shortcut": "delivery", "body": "again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = app
        .api_post(
            "/api/v1/canned-responses",
            &json!({"shortcut": "typo", "body": "Hi {{nmae}}"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "body");
    let (status, body) = app
        .api_post(
            "/api/v1/canned-responses",
            &json!({"shortcut": "two words", "body": "Hi"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "shortcut");

    let (status, list) = app.api_get("/api/v1/canned-responses").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
    assert!(list["data"][0].get("rendered").is_none());

    let (client, _) = app.sign_in_as(Role::Operator).await;
    let (status, list) = session_get(
        &client,
        &app,
        &format!("/api/v1/canned-responses?conversation_id={id}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let rendered = list["data"][0]["rendered"].as_str().unwrap_or_default();
    assert!(rendered.starts_with("Hi Olga, operator-"), "{rendered}");
    assert!(rendered.ends_with(" will call you."), "{rendered}");

    let (status, body) = app
        .api_get("/api/v1/canned-responses?conversation_id=nope")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "conversation_id");
}

#[tokio::test]
async fn malformed_requests_name_the_field() {
    let app = spawn_app().await;
    let id = conversation_of(&app, &customer(&app, "olga", "Olga Smirnova").await).await;
    let (status, body) = app.api_get("/api/v1/conversations/not-an-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "id");
    let (status, body) = app
        .api_post(&format!("/api/v1/conversations/{id}/status"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "body");
    let long = "x".repeat(20_001);
    let (status, body) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"kind": "note", "body": long, "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "body");
    let (status, body) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"kind": "note", "body": "  ", "author_id": owner(&app)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(field(&body), "body");
}
