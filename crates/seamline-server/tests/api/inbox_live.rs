//! The live inbox over HTTP: the operators' stream, typing and read
//! receipts both ways, presence, the waiting queue moving, auto-unassign,
//! take-over and the supervisor's figures.

use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use seamline_core::inbox::conversation::{AssignReason, Channel};
use seamline_core::inbox::routing::{Presence, TeamRouting};
use seamline_core::role::Role;
use seamline_core::{ConversationId, MemberId, TeamId, WorkspaceId};
use seamline_server::inbox::{queue, receive, Customer, Inbound};
use seamline_server::provision::create_workspace;
use seamline_store::{ConversationQuery, Team};
use serde_json::{json, Value};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message as Frame;
use uuid::Uuid;

use crate::support::{login, spawn_app, urlencode, TestApp};

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

/// A member of `role` in `team`: their id, a signed-in client and its CSRF token.
async fn member(app: &TestApp, team: TeamId, role: Role) -> (MemberId, reqwest::Client, String) {
    let email = app.add_member(role).await;
    let id = app
        .store
        .member_by_email(&email)
        .await
        .expect("read")
        .expect("member")
        .id;
    let ws = app.workspace.workspace.id;
    app.store.add_team_member(ws, team, id).await.expect("join");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let csrf = login(&client, &app.base, &email, crate::support::PASSWORD).await;
    (id, client, csrf)
}

/// A customer (by their Telegram id and phone digits) writes.
async fn writes(app: &TestApp, sender: &str, body: &str) -> ConversationId {
    writes_to(app, app.workspace.workspace.id, sender, body).await
}

async fn writes_to(app: &TestApp, ws: WorkspaceId, sender: &str, body: &str) -> ConversationId {
    let received = receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: ws,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), sender.into())),
                phone: Some(format!("+7916{sender:0>7}")),
                ..Customer::default()
            },
            body: body.into(),
            external_id: Some(Uuid::now_v7().to_string()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received");
    received.message.conversation.conversation.id
}

async fn assignee(app: &TestApp, id: ConversationId) -> Option<MemberId> {
    let ws = app.workspace.workspace.id;
    let c = app.store.conversation(ws, id).await.expect("read");
    c.expect("there").conversation.assignee
}

/// Server-sent events as `(event, data)`, read from a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp) -> Self {
        Self::open_with(app, &app.workspace.api_key).await
    }

    async fn open_with(app: &TestApp, key: &str) -> Self {
        let response = app
            .http
            .get(app.url("/api/v1/inbox/stream"))
            .bearer_auth(key)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event named `name` whose data passes `check`.
    async fn next(&mut self, name: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |key: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(str::trim)
                        .map(str::to_owned)
                };
                if field("event:").as_deref() == Some(name) {
                    let data: Value =
                        serde_json::from_str(&field("data:").unwrap_or_default()).expect("JSON");
                    if check(&data) {
                        return data;
                    }
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {name} event in time"))
                .expect("read")
                .expect("stream open");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn operators_see_messages_and_states_as_they_happen() {
    let app = spawn_app().await;
    let mut events = Events::open(&app).await;
    let id = writes(
        &app,
        "1000001",
        "Где мой заказ? <img src=x onerror=alert(1)>",
    )
    .await;
    let message = events
        .next("message", |m| m["message"]["kind"] == "inbound")
        .await;
    assert_eq!(message["conversation_id"], json!(id));
    assert_eq!(
        message["message"]["body"], "Где мой заказ? <img src=x onerror=alert(1)>",
        "the stream carries text; pages insert it as text"
    );
    let state = events
        .next("conversation", |c| c["conversation"]["id"] == json!(id))
        .await;
    assert_eq!(state["conversation"]["status"], "open");
    assert_eq!(state["conversation"]["unread"], 1);

    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let resolved = events
        .next("conversation", |c| {
            c["conversation"]["status"] == "resolved"
        })
        .await;
    assert_eq!(resolved["conversation_id"], json!(id));
}

#[tokio::test]
async fn another_workspace_sees_nothing_on_its_stream() {
    let app = spawn_app().await;
    let other = create_workspace(
        app.store.as_ref(),
        "Другая",
        "other@example.test",
        "long enough pw",
    )
    .await
    .expect("another workspace");
    let mut theirs = Events::open_with(&app, &other.api_key).await;
    let mut ours = Events::open(&app).await;
    writes(&app, "1000002", "Это наше").await;
    ours.next("message", |_| true).await;
    // The other workspace's stream carries only its own changes.
    writes_to(&app, other.workspace.id, "1000003", "А это их").await;
    let seen = theirs.next("message", |_| true).await;
    assert_eq!(seen["message"]["body"], "А это их");
}

#[tokio::test]
async fn typing_and_read_receipts_travel_both_ways() {
    let app = spawn_app().await;
    let mut events = Events::open(&app).await;
    let url = format!(
        "{}/widget/v1/socket?key={}&anonymousId=visitor-typing",
        app.base.replacen("http", "ws", 1),
        urlencode(&app.workspace.write_key)
    );
    let (mut socket, _) = connect_async(url).await.expect("socket");
    let hello = json!({"type": "message", "id": "m1", "body": "Здравствуйте"});
    socket
        .send(Frame::Text(hello.to_string().into()))
        .await
        .expect("send");
    let first = events.next("message", |_| true).await;
    let id = first["conversation_id"].as_str().expect("id").to_owned();

    socket
        .send(Frame::Text(json!({"type": "typing"}).to_string().into()))
        .await
        .expect("send");
    let typing = events.next("typing", |_| true).await;
    assert_eq!(typing["party"], "visitor");
    assert_eq!(typing["conversation_id"], id.as_str());

    for path in ["typing", "read"] {
        let (status, _) = app
            .api_post(&format!("/api/v1/conversations/{id}/{path}"), &json!({}))
            .await;
        assert!(status.is_success(), "{path}: {status}");
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Frame::Text(text) = next {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            if matches!(frame["type"].as_str(), Some("typing" | "read")) {
                seen.push(frame["type"].as_str().unwrap_or_default().to_owned());
            }
        }
    }
    assert_eq!(seen, ["typing", "read"]);
}

#[tokio::test]
async fn coming_online_takes_the_waiting_queue_and_resolving_frees_room() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (me, client, csrf) = member(&app, team, Role::Operator).await;
    let ws = app.workspace.workspace.id;
    app.store
        .set_capacity(ws, me, Some(1))
        .await
        .expect("capacity");
    let first = writes(&app, "2000001", "Первый").await;
    let second = writes(&app, "2000002", "Второй").await;
    assert_eq!(assignee(&app, first).await, None, "nobody online: it waits");

    let (status, body) = app
        .api_post("/api/v1/presence", &json!({"presence": "online"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a key is not an operator");
    assert_eq!(body["error"]["field"], "presence");
    let bad = client
        .post(app.url("/api/v1/presence"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"presence": "sleeping"}))
        .send()
        .await
        .expect("send");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let online = client
        .post(app.url("/api/v1/presence"))
        .header("X-CSRF-Token", &csrf)
        .json(&json!({"presence": "online"}))
        .send()
        .await
        .expect("send");
    assert_eq!(online.status(), StatusCode::OK);
    let view: Value = online.json().await.expect("JSON");
    assert_eq!(view["presence"], "online");
    assert_eq!(view["load"], 1, "took the first in line");
    assert_eq!(assignee(&app, first).await, Some(me));
    assert_eq!(assignee(&app, second).await, None, "at capacity");

    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{first}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(assignee(&app, second).await, Some(me), "the queue moved");
}

#[tokio::test]
async fn an_operator_gone_past_the_grace_period_hands_conversations_back() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (me, _, _) = member(&app, team, Role::Operator).await;
    let ws = app.workspace.workspace.id;
    let (store, bus) = (app.store.as_ref(), app.bus.as_ref());
    queue::set_presence(store, bus, ws, me, Presence::Online)
        .await
        .expect("online");
    let id = writes(&app, "3000001", "Помогите").await;
    assert_eq!(assignee(&app, id).await, Some(me));

    // Offline a minute: still theirs (a reload is not leaving).
    let now = Utc::now();
    store
        .set_presence(
            ws,
            me,
            Presence::Offline,
            now - chrono::Duration::minutes(1),
        )
        .await
        .expect("offline");
    queue::tidy(store, bus, ws, now).await.expect("tidy");
    assert_eq!(assignee(&app, id).await, Some(me));
    // Past the grace period: back to the queue, with the reason recorded.
    queue::tidy(store, bus, ws, now + chrono::Duration::minutes(11))
        .await
        .expect("tidy");
    assert_eq!(assignee(&app, id).await, None);
    let history = store.assignment_history(ws, id).await.expect("history");
    assert_eq!(
        history.last().and_then(|h| h.reason),
        Some(AssignReason::OperatorOffline)
    );
}

#[tokio::test]
async fn only_a_supervisor_takes_over_and_sees_the_dispatcher_figures() {
    let app = spawn_app().await;
    let team = team(&app).await;
    let (anna, _, _) = member(&app, team, Role::Operator).await;
    let (_, boris, boris_csrf) = member(&app, team, Role::Operator).await;
    let (boss, chief, chief_csrf) = member(&app, team, Role::Supervisor).await;
    let ws = app.workspace.workspace.id;
    let (store, bus) = (app.store.as_ref(), app.bus.as_ref());
    store
        .set_capacity(ws, anna, Some(1))
        .await
        .expect("capacity");
    queue::set_presence(store, bus, ws, anna, Presence::Online)
        .await
        .expect("online");
    let id = writes(&app, "4000001", "Верните деньги").await;
    let waits = writes(&app, "4000002", "Я жду").await;
    assert_eq!(assignee(&app, id).await, Some(anna));
    assert_eq!(assignee(&app, waits).await, None, "Anna is full");
    let take_over = json!({"operator_id": boss.to_string(), "take_over": true});
    let path = app.url(&format!("/api/v1/conversations/{id}/assignment"));
    let refused = boris
        .post(&path)
        .header("X-CSRF-Token", &boris_csrf)
        .json(&take_over)
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let taken = chief
        .post(&path)
        .header("X-CSRF-Token", &chief_csrf)
        .json(&take_over)
        .send()
        .await
        .expect("send");
    assert_eq!(taken.status(), StatusCode::OK);
    assert_eq!(assignee(&app, id).await, Some(boss));
    assert_eq!(
        assignee(&app, waits).await,
        Some(anna),
        "Anna had room again"
    );
    let history = store.assignment_history(ws, id).await.expect("history");
    assert_eq!(
        history.last().and_then(|h| h.reason),
        Some(AssignReason::TakeOver)
    );

    let figures = boris
        .get(app.url("/api/v1/supervisor"))
        .send()
        .await
        .expect("send");
    assert_eq!(figures.status(), StatusCode::FORBIDDEN, "operators do not");
    let figures: Value = chief
        .get(app.url("/api/v1/supervisor"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    assert_eq!(figures["by_status"]["open"], 2);
    assert_eq!(figures["by_channel"]["telegram"], 2);
    assert_eq!(figures["waiting"], json!([]), "nobody waits: {figures}");
    let load_of = |member: MemberId| {
        figures["operators"]
            .as_array()
            .and_then(|all| all.iter().find(|o| o["member_id"] == json!(member)))
            .map(|o| o["load"].clone())
    };
    assert_eq!(
        load_of(boss),
        Some(json!(1)),
        "the boss holds the taken one"
    );
    assert_eq!(load_of(anna), Some(json!(1)));
    let query = ConversationQuery {
        limit: 10,
        ..ConversationQuery::default()
    };
    assert_eq!(
        store
            .list_conversations(ws, &query)
            .await
            .expect("list")
            .len(),
        2
    );
}

#[tokio::test]
async fn a_private_teams_conversations_stay_with_the_team() {
    let app = spawn_app().await;
    let vip = team(&app).await;
    let ws = app.workspace.workspace.id;
    let general = TeamId(Uuid::now_v7());
    let mut other = app.store.team(ws, vip).await.expect("read").expect("team");
    other.id = general;
    other.name = "General".into();
    other.channels.clear();
    app.store.create_team(&other).await.expect("second team");
    let (_, insider_client, _) = member(&app, vip, Role::Operator).await;
    let (_, outsider, outsider_csrf) = member(&app, general, Role::Operator).await;
    let (_, chief, _) = member(&app, general, Role::Supervisor).await;
    let id = writes(&app, "5000001", "Личный вопрос").await;
    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/assignment"),
            &json!({"team_id": vip.to_string()}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = app
        .api_put(
            "/api/v1/settings/inbox",
            &json!({"private_teams": [Uuid::now_v7()]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "private_teams");
    let (status, _) = app
        .api_put(
            "/api/v1/settings/inbox",
            &json!({"private_teams": [vip.to_string()]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let get = |client: reqwest::Client, path: String| async move {
        client.get(path).send().await.expect("send")
    };
    let path = app.url(&format!("/api/v1/conversations/{id}"));
    assert_eq!(
        get(outsider.clone(), path.clone()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(insider_client.clone(), path.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(chief.clone(), path.clone()).await.status(),
        StatusCode::OK
    );
    let listed: Value = get(outsider.clone(), app.url("/api/v1/conversations"))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["data"], json!([]), "left out of the outsider's list");
    let reply = outsider
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .header("X-CSRF-Token", &outsider_csrf)
        .json(&json!({"body": "Подглядываю"}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        reply.status(),
        StatusCode::NOT_FOUND,
        "nor can they write in it"
    );
    let page = get(outsider, app.url(&format!("/inbox?c={id}")))
        .await
        .text()
        .await
        .expect("html");
    assert!(!page.contains("Личный вопрос"), "nor see it on the page");
    let page = get(insider_client, app.url(&format!("/inbox?c={id}")))
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("Личный вопрос"), "the team does");
}

/// With PostgreSQL and NATS, an operator on instance B sees live what a
/// visitor typed into the widget on instance A, and the visitor on A gets
/// the answer written on B.
#[tokio::test]
async fn instances_share_the_live_inbox_through_nats() {
    let Some((a, b)) = crate::support::postgres::two_instances("inbox", 4).await else {
        return;
    };
    let unique = Uuid::now_v7().simple().to_string();

    let mut operator_on_b = Events::open_with(&b, &a.workspace.api_key).await;
    let url = format!(
        "{}/widget/v1/socket?key={}&anonymousId=visitor-{unique}",
        a.base.replacen("http", "ws", 1),
        urlencode(&a.workspace.write_key)
    );
    let (mut visitor_on_a, _) = connect_async(url).await.expect("socket on A");
    let hello = json!({"type": "message", "id": "m1", "body": format!("Привет с A {unique}")});
    visitor_on_a
        .send(Frame::Text(hello.to_string().into()))
        .await
        .expect("send");
    let seen = operator_on_b
        .next("message", |m| {
            m["message"]["body"]
                .as_str()
                .is_some_and(|b| b.contains(&unique))
        })
        .await;
    let id = seen["conversation_id"].as_str().expect("id").to_owned();

    let owner = a.workspace.owner.id.to_string();
    let (status, _) = b
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": "Ответ с B", "author_id": owner}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, visitor_on_a.next())
            .await
            .unwrap_or_else(|_| panic!("no answer in time"))
            .expect("open")
            .expect("frame");
        if let Frame::Text(text) = next {
            let frame: Value = serde_json::from_str(&text).expect("JSON");
            // Live, or in the catch-up history when B answered before A's
            // socket listened to this conversation: shown either way.
            let answered = |m: &Value| m["body"] == "Ответ с B";
            let in_history = frame["type"] == "history"
                && frame["messages"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(answered));
            if (frame["type"] == "message" && answered(&frame["message"])) || in_history {
                break;
            }
        }
    }
}
