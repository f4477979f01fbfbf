//! One customer profile: resolution through the API, its guards, unmerge,
//! consent, export and erasure.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{spawn_app, urlencode, TestApp};

fn identifiers(profile: &Value) -> Vec<String> {
    let mut ids: Vec<String> = profile["identifiers"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .map(|i| {
                    format!(
                        "{}:{}",
                        i["type"].as_str().unwrap_or(""),
                        i["value"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

async fn profile_count(app: &TestApp) -> usize {
    app.api_get("/api/v1/profiles?limit=200").await.1["data"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn browsing_on_the_phone_and_buying_on_the_desktop_is_one_profile() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "page", "anonymousId": "phone-cookie", "name": "Меню", "timestamp": "2024-05-01T08:00:00Z"}),
        json!({"type": "identify", "anonymousId": "phone-cookie", "traits": {"email": "Olga@Example.ru", "name": "Оля"}, "timestamp": "2024-05-01T08:01:00Z"}),
        json!({"type": "page", "anonymousId": "desktop-cookie", "name": "Корзина", "timestamp": "2024-05-02T09:59:00Z"}),
        json!({"type": "identify", "anonymousId": "desktop-cookie", "userId": "olga-1987",
               "traits": {"email": "olga@example.ru ", "name": "Ольга Смирнова"}, "timestamp": "2024-05-02T10:00:00Z"}),
        json!({"type": "track", "anonymousId": "desktop-cookie", "userId": "olga-1987", "event": "Order Completed",
               "properties": {"order_id": "w1", "revenue": 340.5, "currency": "RUB"}, "timestamp": "2024-05-02T10:05:00Z"}),
    ])
    .await;
    app.settled(5).await;
    let profile = app.lookup("user_id", "olga-1987").await;
    assert_eq!(
        identifiers(&profile),
        [
            "anonymous_id:desktop-cookie",
            "anonymous_id:phone-cookie",
            "email:olga@example.ru",
            "user_id:olga-1987"
        ]
    );
    assert_eq!(
        profile["traits"]["name"], "Ольга Смирнова",
        "the latest value wins"
    );
    assert_eq!(profile["order_count"], 1);
    assert_eq!(
        profile["lifetime_revenue"],
        json!([{"currency": "RUB", "amount_minor": 34050}])
    );
    assert_eq!(profile["first_seen"], "2024-05-01T08:00:00Z");
    assert_eq!(profile_count(&app).await, 1);

    let id = profile["id"].as_str().unwrap_or_default();
    let timeline = app
        .api_get(&format!("/api/v1/profiles/{id}/timeline?limit=3"))
        .await
        .1;
    let types: Vec<_> = timeline["data"]
        .as_array()
        .map(|d| d.iter().map(|e| e["type"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        types,
        [json!("track"), json!("identify"), json!("page")],
        "newest first"
    );
    let cursor = timeline["next_cursor"].as_str().expect("a second page");
    let rest = app
        .api_get(&format!(
            "/api/v1/profiles/{id}/timeline?limit=3&cursor={cursor}"
        ))
        .await
        .1;
    let rest_types: Vec<_> = rest["data"]
        .as_array()
        .map(|d| d.iter().map(|e| e["type"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(rest_types, [json!("identify"), json!("page")]);
    let merges = app
        .api_get(&format!("/api/v1/profiles/{id}/merges"))
        .await
        .1;
    // The desktop's own profile was absorbed: the login event carried its
    // cookie and the e-mail the phone profile already held.
    assert_eq!(
        merges["data"][0]["via"],
        json!({"type": "anonymous_id", "value": "desktop-cookie"}),
        "{merges}"
    );
    assert!(
        merges["data"][0]["event_id"].is_string(),
        "the evidence is recorded"
    );
}

#[tokio::test]
async fn a_phone_typed_any_way_finds_the_profile() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "userId": "ivan", "traits": {"phone": "8 916 123-45-67"}}),
    ])
    .await;
    let profile = app.lookup("phone", "+7 (916) 123 45 67").await;
    assert!(identifiers(&profile).contains(&"phone:+79161234567".to_owned()));
    for q in ["8(916)1234567", "79161234567", "ivan"] {
        let found = app
            .api_get(&format!("/api/v1/profiles?q={}", urlencode(q)))
            .await
            .1;
        assert_eq!(found["data"][0]["id"], profile["id"], "search {q}");
    }
    let (status, body) = app
        .api_get("/api/v1/profiles/lookup?type=phone&value=12")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "value");
    let (status, _) = app
        .api_get("/api/v1/profiles/lookup?type=phone&value=%2B79990001122")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn shop_purchases_with_a_loyalty_card_join_the_online_profile() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "userId": "olga", "traits": {"phone": "+79161234567"}}),
        json!({"type": "track", "anonymousId": "pos-terminal-7", "event": "Order Completed",
               "properties": {"order_id": "pos-1", "revenue": 420, "currency": "RUB", "channel": "pos"},
               "context": {"traits": {"phone": "89161234567"}, "externalIds": [{"id": "2000 0001", "type": "loyalty_card"}]}}),
    ])
    .await;
    app.settled(2).await;
    let profile = app.lookup("loyalty_card", "2000-0001").await;
    assert!(identifiers(&profile).contains(&"user_id:olga".to_owned()));
    assert_eq!(profile["channels"], json!(["web", "pos"]));
    assert_eq!(profile["order_count"], 1);
}

#[tokio::test]
async fn a_shared_family_tablet_does_not_glue_two_people() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "anonymousId": "family-tablet", "userId": "ivan"}),
        json!({"type": "identify", "anonymousId": "family-tablet", "userId": "maria"}),
        json!({"type": "page", "anonymousId": "family-tablet", "name": "Детское меню"}),
    ])
    .await;
    app.settled(3).await;
    assert_eq!(profile_count(&app).await, 2);
    let ivan = app.lookup("user_id", "ivan").await;
    let maria = app.lookup("user_id", "maria").await;
    assert_ne!(ivan["id"], maria["id"]);
    let tablet = ivan["identifiers"]
        .as_array()
        .and_then(|ids| ids.iter().find(|i| i["type"] == "anonymous_id"))
        .cloned();
    assert_eq!(tablet.map(|t| t["shared"].clone()), Some(json!(true)));
    assert_eq!(
        maria["event_count"], 2,
        "the later anonymous page view went to the person active on the tablet"
    );
}

#[tokio::test]
async fn two_known_people_are_kept_apart_and_the_conflict_is_listed() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "userId": "u1", "traits": {"email": "one@example.ru"}}),
        json!({"type": "identify", "userId": "u2", "traits": {"phone": "+79160000001"}}),
        json!({"type": "identify", "anonymousId": "form", "traits": {"email": "one@example.ru", "phone": "+79160000001"}}),
    ])
    .await;
    let conflicts = app
        .eventually("/api/v1/conflicts", |b| {
            b["data"].as_array().is_some_and(|d| !d.is_empty())
        })
        .await;
    assert_eq!(conflicts["data"][0]["reason"], "strong_identifiers:user_id");
    assert_eq!(profile_count(&app).await, 2);
    let id = conflicts["data"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, _) = app
        .api_post(&format!("/api/v1/conflicts/{id}/dismiss"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(app.api_get("/api/v1/conflicts").await.1["data"], json!([]));
}

#[tokio::test]
async fn unmerge_restores_both_profiles_exactly() {
    let before_link = vec![
        json!({"type": "identify", "anonymousId": "c1", "traits": {"email": "anna@example.ru", "name": "Анна"}, "timestamp": "2024-05-01T08:00:00Z"}),
        json!({"type": "identify", "anonymousId": "c2", "traits": {"phone": "+79160000002", "name": "Борис"}, "timestamp": "2024-05-01T09:00:00Z"}),
    ];
    let link = json!({"type": "identify", "anonymousId": "c1", "traits": {"phone": "+79160000002"}, "timestamp": "2024-05-01T10:00:00Z"});
    let after_link = vec![
        json!({"type": "track", "anonymousId": "c2", "event": "Order Completed",
        "properties": {"revenue": 100, "currency": "RUB"}, "timestamp": "2024-05-01T11:00:00Z"}),
    ];

    // The truth: the same events without the wrong link.
    let truth = spawn_app().await;
    truth
        .send([before_link.clone(), after_link.clone()].concat())
        .await;
    truth.settled(3).await;
    let anna_truth = truth.lookup("email", "anna@example.ru").await;
    let boris_truth = truth.lookup("phone", "+79160000002").await;

    let app = spawn_app().await;
    app.send([before_link, vec![link], after_link].concat())
        .await;
    app.settled(4).await;
    assert_eq!(profile_count(&app).await, 1, "the wrong link merged them");
    let merged = app.lookup("email", "anna@example.ru").await;
    let id = merged["id"].as_str().unwrap_or_default().to_owned();
    let merges = app
        .api_get(&format!("/api/v1/profiles/{id}/merges"))
        .await
        .1;
    let merge_id = merges["data"][0]["id"].clone();
    let (status, body) = app
        .api_post(
            &format!("/api/v1/profiles/{id}/unmerge"),
            &json!({"merge_id": merge_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let anna = app.lookup("email", "anna@example.ru").await;
    let boris = app.lookup("phone", "+79160000002").await;
    assert_ne!(anna["id"], boris["id"]);
    for (got, want) in [(&anna, &anna_truth), (&boris, &boris_truth)] {
        assert_eq!(identifiers(got), identifiers(want));
        assert_eq!(got["traits"], want["traits"]);
        assert_eq!(got["order_count"], want["order_count"]);
        assert_eq!(got["lifetime_revenue"], want["lifetime_revenue"]);
        assert_eq!(got["first_seen"], want["first_seen"]);
    }
    assert_eq!(
        anna["event_count"].as_u64().unwrap_or(0) + boris["event_count"].as_u64().unwrap_or(0),
        4,
        "every event re-assigned"
    );
    let again = app
        .api_post(
            &format!("/api/v1/profiles/{id}/unmerge"),
            &json!({"merge_id": merge_id}),
        )
        .await;
    assert_eq!(
        again.0,
        StatusCode::BAD_REQUEST,
        "an undone merge cannot be undone twice"
    );
    // The separation holds: the same link again does not glue them.
    app.send(vec![
        json!({"type": "identify", "anonymousId": "c1", "traits": {"phone": "+79160000002"}}),
    ])
    .await;
    app.settled(5).await;
    assert_eq!(profile_count(&app).await, 2);
}

#[tokio::test]
async fn operators_merge_by_hand_but_never_two_known_people() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "anonymousId": "a1", "traits": {"email": "x@example.ru"}}),
        json!({"type": "identify", "anonymousId": "a2", "traits": {"phone": "+79160000009"}}),
        json!({"type": "identify", "userId": "k1"}),
        json!({"type": "identify", "userId": "k2"}),
    ])
    .await;
    app.settled(4).await;
    let a = app.lookup("email", "x@example.ru").await["id"].clone();
    let b = app.lookup("phone", "+79160000009").await["id"].clone();
    let (status, record) = app
        .api_post(
            &format!("/api/v1/profiles/{}/merge", a.as_str().unwrap_or("")),
            &json!({"other_profile_id": b}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{record}");
    assert_eq!(record["actor"], "api key");
    assert_eq!(
        app.lookup("phone", "+79160000009").await["id"],
        app.lookup("email", "x@example.ru").await["id"]
    );

    let k1 = app.lookup("user_id", "k1").await["id"].clone();
    let k2 = app.lookup("user_id", "k2").await["id"].clone();
    let (status, body) = app
        .api_post(
            &format!("/api/v1/profiles/{}/merge", k1.as_str().unwrap_or("")),
            &json!({"other_profile_id": k2}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "strong_identifier_conflict");
}

#[tokio::test]
async fn consent_is_recorded_per_purpose_and_channel_with_history() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "userId": "c", "traits": {"email": "c@example.ru"}}),
    ])
    .await;
    let id = app.lookup("user_id", "c").await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/profiles/{id}/consent");
    let grant = json!({"purpose": "marketing", "channel": "sms", "granted": true, "source": "web_form", "wording": "Согласен на SMS"});
    assert_eq!(app.api_post(&path, &grant).await.0, StatusCode::CREATED);
    let withdraw = json!({"purpose": "marketing", "channel": "sms", "granted": false, "source": "sms_stop", "wording": "STOP"});
    assert_eq!(app.api_post(&path, &withdraw).await.0, StatusCode::CREATED);
    let consent = app.api_get(&path).await.1;
    assert_eq!(consent["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(consent["current"][0]["granted"], false);
    assert_eq!(consent["current"][0]["source"], "sms_stop");
    let bad = json!({"purpose": "spam", "channel": "sms", "granted": true, "source": "x", "wording": "y"});
    let (status, body) = app.api_post(&path, &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "purpose");
}

#[tokio::test]
async fn export_holds_everything_and_erase_leaves_nothing_behind() {
    let app = spawn_app().await;
    let secret_values = [
        "erase-me-user",
        "erase-me-cookie",
        "erase.me@example.ru",
        "+79165554433",
        "Секретная Фамилия",
        "203.0.113.77",
    ];
    app.send(vec![
        json!({"type": "identify", "userId": "erase-me-user", "anonymousId": "erase-me-cookie",
               "traits": {"email": "Erase.Me@example.ru", "phone": "8 916 555-44-33", "lastName": "Секретная Фамилия"},
               "context": {"ip": "203.0.113.77"}}),
        json!({"type": "track", "userId": "erase-me-user", "event": "Order Completed", "properties": {"revenue": 10, "currency": "RUB"},
               "context": {"ip": "203.0.113.77"}}),
        json!({"type": "identify", "userId": "someone-else", "traits": {"email": "keep@example.ru"}}),
    ])
    .await;
    app.settled(3).await;
    let id = app.lookup("user_id", "erase-me-user").await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let grant = json!({"purpose": "marketing", "channel": "email", "granted": true, "source": "web_form", "wording": "Да"});
    app.api_post(&format!("/api/v1/profiles/{id}/consent"), &grant)
        .await;

    let export = app
        .api_get(&format!("/api/v1/profiles/{id}/export"))
        .await
        .1;
    assert_eq!(export["events"].as_array().map(Vec::len), Some(2));
    assert_eq!(export["consent"].as_array().map(Vec::len), Some(1));
    assert!(identifiers(&export["profile"]).contains(&"email:erase.me@example.ru".to_owned()));

    let (status, body) = app
        .api_post(&format!("/api/v1/profiles/{id}/erase"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = scan_database(&app, &secret_values).await;
    assert!(
        found.is_empty(),
        "personal data left after erase: {found:?}"
    );
    assert_eq!(
        app.count().await,
        3,
        "anonymised events stay for aggregates"
    );
    assert!(
        app.lookup("user_id", "someone-else").await["id"].is_string(),
        "others are untouched"
    );

    // The erased identifiers never re-create the person by accident.
    app.send(vec![json!({"type": "identify", "anonymousId": "new-cookie", "traits": {"email": "erase.me@example.ru"}})]).await;
    app.settled(2).await;
    let (status, _) = app
        .api_get("/api/v1/profiles/lookup?type=email&value=erase.me%40example.ru")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nor does undoing a merge, whose replay reads that e-mail again in
    // another person's event.
    app.send(vec![
        json!({"type": "identify", "anonymousId": "c3", "traits": {"email": "erase.me@example.ru", "phone": "+79160000003"}}),
        json!({"type": "identify", "anonymousId": "c4", "traits": {"name": "Вера"}}),
        json!({"type": "identify", "anonymousId": "c4", "traits": {"phone": "+79160000003"}}),
    ])
    .await;
    app.settled(5).await;
    let merged = app.lookup("phone", "+79160000003").await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let merges = app
        .api_get(&format!("/api/v1/profiles/{merged}/merges"))
        .await
        .1;
    let (status, body) = app
        .api_post(
            &format!("/api/v1/profiles/{merged}/unmerge"),
            &json!({"merge_id": merges["data"][0]["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app
        .api_get("/api/v1/profiles/lookup?type=email&value=erase.me%40example.ru")
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the replay links no erased identifier"
    );
}

/// Every text value of every row of every table that contains any needle.
async fn scan_database(app: &TestApp, needles: &[&str]) -> Vec<String> {
    let path = app.db_path.as_ref().expect("a SQLite-backed app");
    scan_database_at(path, needles).await
}

/// The same scan of the SQLite file at `path`.
pub(crate) async fn scan_database_at(path: &std::path::Path, needles: &[&str]) -> Vec<String> {
    use sqlx::{Column, Row};
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", path.display()))
        .await
        .expect("open db");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .expect("tables");
    let mut found = Vec::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{table}\""))
            .fetch_all(&pool)
            .await
            .expect("rows");
        for row in &rows {
            for (index, column) in row.columns().iter().enumerate() {
                let text: Option<String> = row.try_get::<Option<String>, _>(index).ok().flatten();
                let Some(text) = text else { continue };
                for needle in needles {
                    if text.to_lowercase().contains(&needle.to_lowercase()) {
                        found.push(format!("{table}.{}: {needle}", column.name()));
                    }
                }
            }
        }
    }
    found
}

#[tokio::test]
async fn two_instances_racing_on_postgres_and_nats_end_in_one_consistent_graph() {
    let Some((a, b)) = crate::support::postgres::two_instances("race", 4).await else {
        return;
    };
    let unique = uuid::Uuid::now_v7().simple().to_string();

    const PEOPLE: usize = 15;
    let person = |i: usize| {
        (
            format!("a-{unique}-{i}"),
            format!("b-{unique}-{i}"),
            format!("p{i}-{unique}@example.ru"),
            format!("+7916{:07}", 1_000_000 + i),
        )
    };
    let mut sends = Vec::new();
    for i in 0..PEOPLE {
        let (cookie_a, cookie_b, email, phone) = person(i);
        // Each instance links a different pair at the same time; together they make one person.
        sends.push((
            true,
            json!({"type": "identify", "anonymousId": cookie_a, "traits": {"email": email}}),
        ));
        sends.push((
            false,
            json!({"type": "identify", "anonymousId": cookie_b, "traits": {"email": email}}),
        ));
        sends.push((
            true,
            json!({"type": "identify", "anonymousId": cookie_b, "traits": {"phone": phone}}),
        ));
        sends.push((
            false,
            json!({"type": "identify", "anonymousId": cookie_a, "traits": {"phone": phone}}),
        ));
    }
    let requests = sends.iter().map(|(to_a, body)| {
        let app = if *to_a { &a } else { &b };
        app.track("identify", body)
    });
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for i in 0..PEOPLE {
        let (cookie_a, cookie_b, email, phone) = person(i);
        let by_email = a.lookup("email", &email).await;
        let expected = [
            format!("anonymous_id:{cookie_a}"),
            format!("anonymous_id:{cookie_b}"),
            format!("email:{email}"),
            format!("phone:{phone}"),
        ];
        let complete = a
            .eventually(
                &format!(
                    "/api/v1/profiles/{}",
                    by_email["id"].as_str().unwrap_or_default()
                ),
                |p| identifiers(p).len() == 4,
            )
            .await;
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(identifiers(&complete), want, "person {i} is one profile");
        assert_eq!(
            b.lookup("phone", &phone).await["id"],
            complete["id"],
            "both instances agree"
        );
    }
    // No identifier is held by two live profiles.
    let all = a.api_get("/api/v1/profiles?limit=200").await.1;
    let mut seen = std::collections::HashSet::new();
    for profile in all["data"].as_array().cloned().unwrap_or_default() {
        for id in identifiers(&profile) {
            assert!(seen.insert(id.clone()), "{id} is in two profiles");
        }
    }
    assert_eq!(seen.len(), PEOPLE * 4);
}

/// A customer message written into `profile`'s conversation, as a channel
/// would store it.
async fn write_in(app: &TestApp, profile: &Value, body: &str) {
    use seamline_core::inbox::conversation::{Channel, Message, MessageKind};
    use seamline_store::NewMessage;
    let ws = app.workspace.workspace.id;
    let profile: seamline_core::ProfileId = profile["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .map(seamline_core::ProfileId)
        .expect("profile id");
    let now = chrono::Utc::now();
    let (conversation, _) = app
        .store
        .conversation_for_profile(ws, profile, now)
        .await
        .expect("conversation");
    let message = Message::new(
        seamline_core::ConversationMessageId(uuid::Uuid::now_v7()),
        conversation.conversation.id,
        MessageKind::Inbound,
        Channel::Telegram,
        body.to_owned(),
        now,
    )
    .expect("a message");
    app.store
        .append_message(
            ws,
            &NewMessage {
                message,
                sender: None,
                attachments: Vec::new(),
                external_id: None,
                delivery: None,
            },
        )
        .await
        .expect("append");
}

async fn bodies(app: &TestApp, profile: &Value) -> Vec<String> {
    let ws = app.workspace.workspace.id;
    let profile = seamline_core::ProfileId(
        profile["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("profile id"),
    );
    let (conversation, _) = app
        .store
        .conversation_for_profile(ws, profile, chrono::Utc::now())
        .await
        .expect("conversation");
    let query = seamline_store::MessageQuery {
        limit: 50,
        ..Default::default()
    };
    let mut bodies: Vec<String> = app
        .store
        .list_messages(ws, conversation.conversation.id, &query)
        .await
        .expect("messages")
        .into_iter()
        .map(|m| m.message.body)
        .collect();
    bodies.sort();
    bodies
}

#[tokio::test]
async fn conversations_merge_and_split_with_their_profiles() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "anonymousId": "tg-visitor", "traits": {"email": "olga@example.ru"}}),
        json!({"type": "identify", "anonymousId": "wa-visitor", "traits": {"phone": "+7 916 123-45-67"}}),
    ])
    .await;
    app.settled(2).await;
    let by_email = app.lookup("email", "olga@example.ru").await;
    let by_phone = app.lookup("phone", "+79161234567").await;
    write_in(&app, &by_email, "Здравствуйте, где мой заказ?").await;
    write_in(&app, &by_phone, "Это снова я, с WhatsApp").await;

    // One event ties the e-mail and the phone: one person, one conversation.
    app.send(vec![json!({"type": "identify", "userId": "olga",
        "traits": {"email": "olga@example.ru", "phone": "89161234567"}})])
        .await;
    let merged = app
        .eventually(
            "/api/v1/profiles/lookup?type=email&value=olga%40example.ru",
            |p| identifiers(p).iter().any(|i| i.starts_with("phone:")),
        )
        .await;
    let expected = vec![
        "Здравствуйте, где мой заказ?".to_owned(),
        "Это снова я, с WhatsApp".to_owned(),
    ];
    assert_eq!(bodies(&app, &merged).await, expected);

    // Undoing the merge gives each side its own messages back.
    let (_, merges) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/merges",
            merged["id"].as_str().unwrap_or("")
        ))
        .await;
    let merge = merges["data"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["via"]["type"] == "email" || m["via"]["type"] == "phone")
        })
        .cloned()
        .expect("the merge is explained");
    let (status, _) = app
        .api_post(
            &format!(
                "/api/v1/profiles/{}/unmerge",
                merged["id"].as_str().unwrap_or("")
            ),
            &json!({"merge_id": merge["id"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let email_side = app.lookup("email", "olga@example.ru").await;
    let phone_side = app.lookup("phone", "+79161234567").await;
    assert_ne!(email_side["id"], phone_side["id"]);
    let mut both = bodies(&app, &email_side).await;
    both.extend(bodies(&app, &phone_side).await);
    both.sort();
    assert_eq!(both, expected, "nothing lost or doubled by the split");
    assert_eq!(bodies(&app, &email_side).await.len(), 1);
}
