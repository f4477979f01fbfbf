//! Automation on a running server: the team's bot collects a phone and
//! hands off with it, greetings and out-of-hours replies, the satisfaction
//! survey after a resolve, and the team settings API that sets them up.

use chrono::Utc;
use reqwest::StatusCode;
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::routing::Presence;
use seamline_core::{MemberId, Role};
use seamline_server::inbox::{receive, Customer, Inbound, Received};
use serde_json::{json, Value};

use crate::support::{read, spawn_app, TestApp};

/// Asks for a name and a phone, then passes the customer on.
pub fn phone_flow() -> Value {
    json!({
        "start": "menu",
        "steps": {
            "menu": {"type": "buttons", "text": "How can we help?",
                     "buttons": [{"label": "Delivery", "next": "faq"},
                                 {"label": "A person", "next": "name"}]},
            "faq": {"type": "faq", "answers": [{"keywords": ["when"], "text": "We deliver in 2 days."}],
                    "otherwise": "name"},
            "name": {"type": "ask", "field": "name", "prompt": "Your name?", "next": "phone"},
            "phone": {"type": "ask", "field": "phone", "prompt": "Your phone?", "next": "human"},
            "human": {"type": "hand_off", "text": "Connecting you to a person.",
                      "closed_text": "We open at 9."}
        }
    })
}

fn telegram(id: &str) -> Customer {
    Customer {
        channel_id: Some(("telegram".into(), id.into())),
        name: Some("olga_tg".into()),
        ..Customer::default()
    }
}

/// The customer writes on Telegram; `external` is the provider's id.
async fn write(app: &TestApp, customer: &Customer, body: &str, external: &str) -> Received {
    receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel: Channel::Telegram,
            customer: customer.clone(),
            body: body.into(),
            external_id: Some(external.into()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received")
}

/// Creates a team over the API (on Telegram unless `team` says otherwise).
pub async fn create_team(app: &TestApp, team: Value) -> Value {
    let mut body = json!({"name": "Support", "channels": ["telegram"]});
    if let (Some(fields), Some(extra)) = (body.as_object_mut(), team.as_object()) {
        fields.extend(extra.clone());
    }
    let (status, created) = app.api_post("/api/v1/teams", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created
}

/// An online operator in `team`, added over the API.
pub async fn online_operator(app: &TestApp, team: &Value) -> MemberId {
    let ws = app.workspace.workspace.id;
    let email = app.add_member(Role::Operator).await;
    let member = app
        .store
        .member_by_email(&email)
        .await
        .expect("read")
        .expect("member");
    let path = format!(
        "/api/v1/teams/{}/members/{}",
        team["id"].as_str().unwrap_or_default(),
        member.id
    );
    let (status, body) = app.api_put(&path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.store
        .set_presence(ws, member.id, Presence::Online, Utc::now())
        .await
        .expect("online");
    member.id
}

async fn messages(app: &TestApp, received: &Received) -> Vec<Value> {
    let id = received.message.conversation.conversation.id;
    let (status, body) = app
        .api_get(&format!("/api/v1/conversations/{id}/messages?limit=200"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

fn bodies_of(messages: &[Value], kind: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["kind"] == kind)
        .map(|m| m["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn conversation(app: &TestApp, received: &Received) -> Value {
    let id = received.message.conversation.conversation.id;
    app.api_get(&format!("/api/v1/conversations/{id}")).await.1
}

#[tokio::test]
async fn the_bot_collects_a_phone_hands_off_and_the_operator_sees_what_it_collected() {
    let app = spawn_app().await;
    let team = create_team(
        &app,
        json!({"bots": {"greeting": "Hello! This is Seamline.", "flow": phone_flow()}}),
    )
    .await;
    let olga_operator = online_operator(&app, &team).await;
    let customer = telegram("5001");

    let first = write(&app, &customer, "hi", "tg-1").await;
    assert_eq!(first.assigned, None, "the bot has the conversation");
    let said = bodies_of(&messages(&app, &first).await, "bot");
    assert_eq!(
        said,
        [
            "Hello! This is Seamline.",
            "How can we help?\n1. Delivery\n2. A person"
        ]
    );
    assert_eq!(conversation(&app, &first).await["assignee_id"], Value::Null);

    write(&app, &customer, "2", "tg-2").await;
    write(&app, &customer, "Olga", "tg-3").await;
    let not_a_phone = write(&app, &customer, "no idea", "tg-4").await;
    assert_eq!(not_a_phone.assigned, None);
    let handed = write(&app, &customer, "8 916 123-45-67", "tg-5").await;
    assert_eq!(
        handed.assigned,
        Some(olga_operator),
        "routed after the hand-off"
    );

    let all = messages(&app, &handed).await;
    let said = bodies_of(&all, "bot");
    assert_eq!(
        said[2..],
        [
            "Your name?",
            "Your phone?",
            "Your phone?",
            "Connecting you to a person."
        ]
    );
    let handoff = all
        .iter()
        .find(|m| m["event"]["event"] == "handed_off")
        .expect("a hand-off on the timeline");
    assert_eq!(
        handoff["body"],
        "Bot handed off: name Olga, phone +79161234567"
    );
    assert_eq!(handoff["channel"], "internal");
    let collected = &handoff["event"]["collected"];
    assert_eq!(
        collected[1],
        json!({"field": "phone", "value": "+79161234567"})
    );

    // The phone is the customer's now.
    let profile = app.lookup("phone", "+79161234567").await;
    assert_eq!(profile["id"], handed.profile.to_string());

    // A provider's retry of the last message does not run the bot again.
    let before = all.len();
    let retry = write(&app, &customer, "8 916 123-45-67", "tg-5").await;
    assert!(!retry.message.new);
    assert_eq!(messages(&app, &handed).await.len(), before);
}

#[tokio::test]
async fn a_collected_phone_joins_the_customer_known_by_it() {
    let app = spawn_app().await;
    app.track(
        "identify",
        &json!({"userId": "olga-42", "traits": {"phone": "+79161234567"}}),
    )
    .await;
    let known = app.lookup("user_id", "olga-42").await;
    create_team(&app, json!({"bots": {"flow": phone_flow()}})).await;
    let customer = telegram("5002");
    for (body, id) in [
        ("hi", "a"),
        ("2", "b"),
        ("Olga", "c"),
        ("+7 916 123 45 67", "d"),
    ] {
        write(&app, &customer, body, id).await;
    }
    let path = format!(
        "/api/v1/profiles/{}/conversation",
        known["id"].as_str().unwrap_or_default()
    );
    let joined = app.eventually(&path, |c| c["id"].is_string()).await;
    let id = joined["id"].as_str().unwrap_or_default();
    let (_, page) = app
        .api_get(&format!("/api/v1/conversations/{id}/messages?limit=200"))
        .await;
    let all = page["data"].as_array().cloned().unwrap_or_default();
    assert!(
        bodies_of(&all, "inbound").contains(&"Olga".to_owned()),
        "the Telegram chat is in the known customer's conversation: {all:?}"
    );
}

#[tokio::test]
async fn out_of_hours_the_reply_is_sent_once_and_nobody_is_assigned() {
    let app = spawn_app().await;
    let today = Utc::now().date_naive().to_string();
    let team = create_team(
        &app,
        json!({
            "hours": {"time_zone": "Europe/Moscow", "weekly": [], "holidays": [today]},
            "bots": {"greeting": "Hello!", "out_of_hours": {"type": "message", "text": "We open at 9."}}
        }),
    )
    .await;
    online_operator(&app, &team).await;
    let customer = telegram("5003");
    let first = write(&app, &customer, "anyone there?", "n-1").await;
    let second = write(&app, &customer, "hello?", "n-2").await;
    assert_eq!((first.assigned, second.assigned), (None, None));
    let all = messages(&app, &second).await;
    assert_eq!(bodies_of(&all, "bot"), ["We open at 9."]);
    // The queue does not give it out either while the team is closed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        conversation(&app, &second).await["assignee_id"],
        Value::Null
    );
}

#[tokio::test]
async fn the_greeting_is_sent_once_per_conversation_and_again_after_a_reopen() {
    let app = spawn_app().await;
    let team = create_team(
        &app,
        json!({"bots": {"greeting": "Hello! We answer in minutes."}}),
    )
    .await;
    let operator = online_operator(&app, &team).await;
    let customer = telegram("5004");
    let first = write(&app, &customer, "hi", "g-1").await;
    assert_eq!(
        first.assigned,
        Some(operator),
        "a greeting alone does not hold it"
    );
    write(&app, &customer, "are you there?", "g-2").await;
    let id = first.message.conversation.conversation.id;
    let greetings = |all: &[Value]| bodies_of(all, "bot");
    assert_eq!(
        greetings(&messages(&app, &first).await),
        ["Hello! We answer in minutes."]
    );

    let (status, body) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    write(&app, &customer, "one more thing", "g-3").await;
    assert_eq!(
        greetings(&messages(&app, &first).await),
        [
            "Hello! We answer in minutes.",
            "Hello! We answer in minutes."
        ]
    );
}

#[tokio::test]
async fn a_survey_follows_a_resolve_and_a_score_is_recorded_without_reopening() {
    let app = spawn_app().await;
    let team = create_team(&app, json!({})).await;
    let operator = online_operator(&app, &team).await;
    let (status, body) = app
        .api_put("/api/v1/settings/csat", &json!({"survey": true}))
        .await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({"survey": true})));
    let customer = telegram("5005");
    let first = write(&app, &customer, "where is my order?", "s-1").await;
    assert_eq!(first.assigned, Some(operator));
    let id = first.message.conversation.conversation.id;
    let resolve = || async {
        let (status, body) = app
            .api_post(
                &format!("/api/v1/conversations/{id}/status"),
                &json!({"status": "resolved"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    };
    resolve().await;
    resolve().await;
    let all = messages(&app, &first).await;
    let question: Vec<&Value> = all.iter().filter(|m| m["kind"] == "bot").collect();
    assert_eq!(question.len(), 1, "asked once: {all:?}");
    assert!(question[0]["body"]
        .as_str()
        .unwrap_or_default()
        .starts_with("How would you rate our help? Reply 1 to 5"));
    assert_eq!(question[0]["channel"], "telegram");

    let answer = write(&app, &customer, "5", "s-2").await;
    assert_eq!(answer.assigned, None);
    assert_eq!(conversation(&app, &first).await["status"], "resolved");
    let said = bodies_of(&messages(&app, &first).await, "bot");
    assert_eq!(
        said.last().map(String::as_str),
        Some("Thank you for your rating!")
    );

    let (status, report) = app.api_get("/api/v1/reports/csat").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        report["total"],
        json!({"count": 1, "average": 5.0, "satisfied_share": 1.0})
    );
    assert_eq!(report["operators"][0]["member_id"], operator.to_string());
    assert_eq!(report["operators"][0]["count"], 1);
    assert_eq!(report["teams"][0]["team_id"], team["id"]);
    assert_eq!(report["teams"][0]["name"], "Support");

    // Answered once: a second "4" is an ordinary message that reopens.
    write(&app, &customer, "4", "s-3").await;
    assert_eq!(conversation(&app, &first).await["status"], "open");
    let (_, report) = app.api_get("/api/v1/reports/csat").await;
    assert_eq!(report["total"]["count"], 1);

    // Anything but a score is an ordinary message and drops the survey.
    resolve().await;
    write(&app, &customer, "actually, one more question", "s-4").await;
    write(&app, &customer, "3", "s-5").await;
    let (_, report) = app.api_get("/api/v1/reports/csat").await;
    assert_eq!(report["total"]["count"], 1);
    assert_eq!(conversation(&app, &first).await["status"], "open");

    let (status, body) = app.api_get("/api/v1/reports/csat?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "from");
}

#[tokio::test]
async fn without_the_switch_no_survey_is_sent() {
    let app = spawn_app().await;
    create_team(&app, json!({})).await;
    let first = write(&app, &telegram("5006"), "hi", "x-1").await;
    let id = first.message.conversation.conversation.id;
    app.api_post(
        &format!("/api/v1/conversations/{id}/status"),
        &json!({"status": "resolved"}),
    )
    .await;
    assert!(bodies_of(&messages(&app, &first).await, "bot").is_empty());
}

#[tokio::test]
async fn team_settings_are_checked_and_errors_name_the_field() {
    let app = spawn_app().await;
    let team = create_team(
        &app,
        json!({"name": "Sales", "routing": {"rule": "least_loaded"}}),
    )
    .await;
    assert_eq!(
        team["routing"],
        json!({"rule": "least_loaded", "sticky": true})
    );
    let mut broken = phone_flow();
    broken["steps"]["menu"]["buttons"][1]["next"] = json!("nowhere");
    for (body, field) in [
        (json!({"channels": ["whatsapp"]}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "sales"}), "name"),
        (
            json!({"name": "B", "routing": {"rule": "random"}}),
            "routing.rule",
        ),
        (json!({"name": "B", "channels": ["fax"]}), "channels[0]"),
        (
            json!({"name": "B", "channels": ["telegram"]}),
            "channels[0]",
        ),
        (
            json!({"name": "B", "hours": {"time_zone": "Mars/Base", "weekly": []}}),
            "hours.time_zone",
        ),
        (
            json!({"name": "B", "hours": {"time_zone": "UTC",
                "weekly": [{"day": "Mon", "from": "25:00", "to": "18:00"}]}}),
            "hours.weekly[0].from",
        ),
        (
            json!({"name": "B", "bots": {"flow": broken}}),
            "bots.flow.steps.menu.buttons[1].next",
        ),
        (
            json!({"name": "B", "bots": {"flow": "{not json"}}),
            "bots.flow",
        ),
        (
            json!({"name": "B", "bots": {"out_of_hours": {"type": "message", "text": ""}}}),
            "bots.out_of_hours.text",
        ),
        (json!({"name": "B", "colour": "red"}), "colour"),
    ] {
        let (status, error) = app.api_post("/api/v1/teams", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {error}");
        assert_eq!(error["error"]["field"], field, "{body} → {error}");
    }

    let id = team["id"].as_str().unwrap_or_default();
    let response = app
        .http
        .patch(app.url(&format!("/api/v1/teams/{id}")))
        .bearer_auth(&app.workspace.api_key)
        .json(&json!({"hours": {"time_zone": "Europe/Berlin",
            "weekly": [{"day": "Mon", "from": "09:00", "to": "18:00"}], "holidays": ["2026-12-25"]}}))
        .send()
        .await
        .expect("send");
    let (status, patched) = read(response).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["hours"]["holidays"], json!(["2026-12-25"]));
    assert_eq!(patched["name"], "Sales", "fields left out are kept");

    let operator = online_operator(&app, &team).await;
    let capacity = format!("/api/v1/operators/{operator}/capacity");
    let (status, error) = app.api_put(&capacity, &json!({"capacity": 1000})).await;
    assert_eq!(
        (status, &error["error"]["field"]),
        (StatusCode::BAD_REQUEST, &json!("capacity"))
    );
    let (status, _) = app.api_put(&capacity, &json!({"capacity": 2})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = app.api_get("/api/v1/teams").await;
    assert_eq!(listed[0]["members"][0]["capacity"], 2);

    let response = app
        .http
        .delete(app.url(&format!("/api/v1/teams/{id}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let (status, _) = app.api_get(&format!("/api/v1/teams/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_teams_page_is_read_by_everyone_and_changed_by_team_managers() {
    let app = spawn_app().await;
    let team = create_team(&app, json!({})).await;
    let path = format!(
        "/settings/teams/{}",
        team["id"].as_str().unwrap_or_default()
    );
    let form = |csrf: &str, name: &str| {
        vec![
            ("csrf_token".to_owned(), csrf.to_owned()),
            ("name".to_owned(), name.to_owned()),
            ("rule".to_owned(), "least_loaded".to_owned()),
            ("channel.telegram".to_owned(), "on".to_owned()),
            ("greeting".to_owned(), "Hi <b>there</b>".to_owned()),
        ]
    };

    let (operator, csrf) = app.sign_in_as(Role::Operator).await;
    let page = operator
        .get(app.url("/settings/teams"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Support") && html.contains("<fieldset disabled"));
    let refused = operator
        .post(app.url(&path))
        .form(&form(&csrf, "Care"))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let (supervisor, csrf) = app.sign_in_as(Role::Supervisor).await;
    let saved = supervisor
        .post(app.url(&path))
        .form(&form(&csrf, "Care"))
        .send()
        .await
        .expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let location = saved
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        location.starts_with("/settings/teams?done=saved#team-"),
        "{location}"
    );
    let html = supervisor
        .get(app.url(&location))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(html.contains("Saved."));
    assert!(html.contains("Hi &lt;b&gt;there&lt;/b&gt;"), "escaped");
    let (_, stored) = app.api_get(&path.replace("/settings/", "/api/v1/")).await;
    assert_eq!(stored["name"], "Care");
    assert_eq!(stored["routing"]["rule"], "least_loaded");
    assert_eq!(stored["bots"]["greeting"], "Hi <b>there</b>");

    let bad = supervisor
        .post(app.url(&path))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("name", "Care"),
            ("rule", "round_robin"),
            ("time_zone", "UTC"),
            ("weekly", "Someday 9-5"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let html = bad.text().await.expect("html");
    assert!(html.contains("Mon 09:00-18:00") && html.contains("Someday 9-5"));
}

#[tokio::test]
async fn a_hand_off_step_can_pass_the_customer_to_another_team() {
    let app = spawn_app().await;
    let (status, sales) = app
        .api_post("/api/v1/teams", &json!({"name": "Sales"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sales}");
    let seller = online_operator(&app, &sales).await;
    let mut flow = phone_flow();
    flow["steps"]["human"]["team"] = sales["id"].clone();
    create_team(&app, json!({"bots": {"flow": flow}})).await;
    let customer = telegram("5007");
    for (body, id) in [("hi", "t-1"), ("2", "t-2"), ("Olga", "t-3")] {
        write(&app, &customer, body, id).await;
    }
    let handed = write(&app, &customer, "+79161234567", "t-4").await;
    assert_eq!(handed.assigned, Some(seller));
    assert_eq!(conversation(&app, &handed).await["team_id"], sales["id"]);
}

#[tokio::test]
async fn a_resolve_undone_by_an_operator_asks_again_on_the_next_resolve() {
    let app = spawn_app().await;
    create_team(&app, json!({})).await;
    app.api_put("/api/v1/settings/csat", &json!({"survey": true}))
        .await;
    let customer = telegram("5008");
    let first = write(&app, &customer, "hi", "r-1").await;
    let id = first.message.conversation.conversation.id;
    for status in ["resolved", "open", "resolved"] {
        let (code, body) = app
            .api_post(
                &format!("/api/v1/conversations/{id}/status"),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(code, StatusCode::OK, "{body}");
    }
    assert_eq!(bodies_of(&messages(&app, &first).await, "bot").len(), 2);
    write(&app, &customer, "4", "r-2").await;
    let (_, report) = app.api_get("/api/v1/reports/csat").await;
    assert_eq!(report["total"]["count"], 1);
    assert_eq!(report["total"]["average"], 4.0);
}

#[tokio::test]
async fn out_of_hours_a_bot_flow_keeps_the_customer_company_and_the_hand_off_waits() {
    let app = spawn_app().await;
    let team = create_team(
        &app,
        json!({
            "hours": {"time_zone": "UTC", "weekly": []},
            "bots": {"out_of_hours": {"type": "flow", "flow": phone_flow()}}
        }),
    )
    .await;
    online_operator(&app, &team).await;
    let customer = telegram("5009");
    for (body, id) in [("hi", "o-1"), ("2", "o-2"), ("Olga", "o-3")] {
        assert_eq!(write(&app, &customer, body, id).await.assigned, None);
    }
    let handed = write(&app, &customer, "+7 916 123 45 67", "o-4").await;
    assert_eq!(handed.assigned, None, "it waits for the morning");
    let all = messages(&app, &handed).await;
    assert_eq!(
        bodies_of(&all, "bot").last().map(String::as_str),
        Some("We open at 9.")
    );
    assert!(all.iter().any(|m| m["event"]["event"] == "handed_off"));
    assert_eq!(
        conversation(&app, &handed).await["assignee_id"],
        Value::Null
    );
}
