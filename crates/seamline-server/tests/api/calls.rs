//! Telephony end to end: a real server and the fake PBX from
//! `seamline-fakes`, which signs its events (`sign = sha256(key + json +
//! salt)`), re-sends on a non-2xx answer and serves recordings.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use seamline_fakes::pbx::{FakePbx, Script};
use seamline_fakes::telegram::FakeTelegram;
use seamline_server::channels::ChannelsConfig;
use seamline_server::ServerConfig;
use seamline_store::ConversationQuery;
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_configured, TestApp};

const KEY: &str = "pbx-key-0123456789";
const SALT: &str = "pbx-salt-9876543210";
pub(crate) const OUR_LINE: &str = "74951112233";
const CUSTOMER: &str = "+79161234567";
const BOT: &str = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";

pub(crate) async fn fake() -> FakePbx {
    FakePbx::start(SocketAddr::from(([127, 0, 0, 1], 0)), KEY, SALT)
        .await
        .expect("fake PBX")
}

/// Connects a PBX account at `fake`; returns its webhook URL.
pub async fn connect(app: &TestApp, fake: &FakePbx) -> String {
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "phone", "name": "Офис",
                    "settings": {"api_base": fake.base_url()},
                    "secrets": {"api_key": KEY, "api_salt": SALT}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    let (status, tested) = app
        .api_post(&format!("/api/v1/channels/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{tested}");
    assert_eq!(tested["status"], "connected", "{tested}");
    tested["webhook_url"].as_str().expect("url").to_owned()
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

/// The conversation (as the API shows it) and its messages, oldest first.
pub async fn conversation_of(app: &TestApp, kind: &str, id: &str) -> (Value, Vec<Value>) {
    let profile = app.lookup(kind, id).await;
    let pid = profile["id"].as_str().expect("profile id");
    let (_, conversation) = app
        .api_get(&format!("/api/v1/profiles/{pid}/conversation"))
        .await;
    let cid = conversation["id"].as_str().expect("conversation");
    let (_, page) = app
        .api_get(&format!(
            "/api/v1/conversations/{cid}/messages?limit=100&order=oldest"
        ))
        .await;
    (
        conversation,
        page["data"].as_array().cloned().unwrap_or_default(),
    )
}

/// Posts every event of a call; all must be accepted.
pub async fn play(fake: &FakePbx, url: &str, events: &[Value]) {
    for event in events {
        assert_eq!(
            fake.post(url, event).await.expect("accepted"),
            200,
            "{event}"
        );
    }
}

#[tokio::test]
async fn forged_and_malformed_call_events_store_nothing() {
    let app = spawn_app().await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 65,
        ivr: vec![],
    };
    let events = pbx.inbound_call(OUR_LINE, CUSTOMER, &script);
    let ended = events
        .iter()
        .find(|e| e["event"] == "call.ended")
        .expect("ended");
    let before = app.count().await;
    for form in [
        FakePbx::signed(KEY, "guessed-salt", ended),
        FakePbx::signed("another-key-000", SALT, ended),
        vec![("json".into(), ended.to_string())],
    ] {
        let answer = app.http.post(&url).form(&form).send().await.expect("post");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    // Signed, then the json changed on the way.
    let mut tampered = FakePbx::signed(KEY, SALT, ended);
    tampered[2].1 = tampered[2].1.replace("65", "5");
    let answer = app
        .http
        .post(&url)
        .form(&tampered)
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);

    let mut extension = ended.clone();
    extension["from"] = json!("101");
    let mut no_id = ended.clone();
    no_id.as_object_mut().expect("object").remove("call_id");
    let mut no_url = events.last().expect("recording").clone();
    no_url["url"] = json!("file:///etc/passwd");
    let mut foreign = events.last().expect("recording").clone();
    foreign["url"] = json!("http://127.0.0.1:9/elsewhere.wav");
    for (event, field) in [
        (extension, "json.from"),
        (no_id, "json.call_id"),
        (no_url, "json.url"),
        (foreign, "json.url"),
        (json!("not an object"), "json"),
    ] {
        let form = FakePbx::signed(KEY, SALT, &event);
        let answer = app.http.post(&url).form(&form).send().await.expect("post");
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{event}");
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, before, "no event either");
}

#[tokio::test]
async fn a_call_and_its_recording_join_the_telegram_conversation_of_the_same_phone() {
    let app = spawn_app().await;
    let telegram = FakeTelegram::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake Telegram");
    telegram.add_bot(BOT);
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "telegram", "settings": {"api_base": telegram.base_url()},
                    "secrets": {"bot_token": BOT}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().expect("id");
    app.api_post(&format!("/api/v1/channels/{id}/test"), &json!({}))
        .await;
    let mut contact = telegram.text_update(555, "Анна", "");
    contact["message"]["contact"] = json!({"phone_number": "79161234567", "first_name": "Анна"});
    contact["message"]
        .as_object_mut()
        .expect("message")
        .remove("text");
    telegram.deliver(BOT, &contact).await.expect("delivered");

    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 65,
        ivr: vec![("main".into(), "2".into())],
    };
    let events = pbx.inbound_call("79161234567", OUR_LINE, &script);
    play(&pbx, &url, &events).await;
    // The PBX re-sends everything: stored once, fetched once.
    play(&pbx, &url, &events).await;

    let (conversation, said) = conversation_of(&app, "telegram", "555").await;
    let (by_phone, _) = conversation_of(&app, "phone", CUSTOMER).await;
    assert_eq!(by_phone["id"], conversation["id"], "one conversation");
    let phone: Vec<&Value> = said.iter().filter(|m| m["channel"] == "phone").collect();
    assert_eq!(phone.len(), 2, "the call and its recording: {said:?}");
    assert_eq!(
        phone[0]["body"],
        "Incoming call from +79161234567 to +74951112233, answered by 101, talk 1:05 of 1:20. IVR: main → 2"
    );
    assert_eq!(phone[1]["body"], "Call recording (1:05)");
    let file = &phone[1]["attachments"][0];
    assert_eq!(file["content_type"], "audio/x-wav", "{file}");
    assert_eq!(pbx.recordings_served(), 1);
    let key = file["key"].as_str().expect("key");
    let audio = app
        .http
        .get(app.url(&format!("/api/v1/attachments/{key}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("download");
    assert_eq!(audio.status(), StatusCode::OK);
    let bytes = audio.bytes().await.expect("bytes");
    assert_eq!(bytes.as_ref(), seamline_fakes::pbx::wav().as_slice());
    assert_ne!(conversation["labels"], json!(["missed-call"]));
}

#[tokio::test]
async fn a_missed_call_makes_the_conversation_a_high_priority_task() {
    let app = spawn_app().await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    let events = pbx.inbound_call("89161234567", OUR_LINE, &Script::default());
    play(&pbx, &url, &events).await;
    play(&pbx, &url, &events).await;
    let (conversation, said) = conversation_of(&app, "phone", CUSTOMER).await;
    assert_eq!(
        conversation["labels"],
        json!(["missed-call"]),
        "{conversation}"
    );
    assert_eq!(conversation["priority"], "high");
    assert_eq!(conversation["status"], "open");
    let calls: Vec<&Value> = said.iter().filter(|m| m["channel"] == "phone").collect();
    assert_eq!(calls.len(), 1, "{said:?}");
    assert!(
        calls[0]["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("Missed call from +79161234567")),
        "{said:?}"
    );
    assert_eq!(pbx.recordings_served(), 0);

    // Resolved, then missed again: reopened as a task.
    let cid = conversation["id"].as_str().expect("id");
    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/status"),
            &json!({"status": "resolved"}),
        )
        .await;
    assert!(status.is_success(), "{status}");
    let again = pbx.inbound_call("+79161234567", OUR_LINE, &Script::default());
    play(&pbx, &url, &again).await;
    let (conversation, _) = conversation_of(&app, "phone", CUSTOMER).await;
    assert_eq!(conversation["status"], "open", "{conversation}");
    assert_eq!(conversation["priority"], "high");
}

#[tokio::test]
async fn a_callback_request_dials_through_the_pbx_once_and_the_call_joins_the_conversation() {
    let app = spawn_app_configured(ServerConfig {
        channels: ChannelsConfig {
            poll: Duration::from_millis(50),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(400),
            ..ChannelsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    let request = json!({"key": app.workspace.write_key, "anonymousId": "visitor-call",
        "requestId": "r-1", "phone": "8 916 123-45-67", "name": "Ольга", "preferredTime": "asap"});
    let answer = app
        .http
        .post(app.url("/widget/v1/callback"))
        .json(&request)
        .send()
        .await
        .expect("callback");
    assert_eq!(answer.status(), StatusCode::CREATED);
    // Nobody is online: the request waits as a task; the operator who
    // takes it sends on the phone channel, which dials (the PBX is down
    // at first: the outbox retries, and the call is placed once).
    let (conversation, _) = conversation_of(&app, "anonymous_id", "visitor-call").await;
    let cid = conversation["id"].as_str().expect("id");
    pbx.fail_callbacks(1);
    let (status, written) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/messages"),
            &json!({"body": "Перезваниваю", "channel": "phone", "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, said) = conversation_of(&app, "phone", CUSTOMER).await;
        let mine = said
            .iter()
            .find(|m| m["id"] == written["id"])
            .expect("the send");
        if mine["delivery"] == "sent" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not dialled: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(pbx.callback_statuses(), vec![500, 200]);
    let placed = pbx.originated();
    assert_eq!(placed.len(), 1, "dialled once: {placed:?}");
    assert_eq!(placed[0].command["to_number"], "79161234567");
    assert_eq!(placed[0].command["from"]["extension"], "101");

    // The PBX reports the answered callback: it lands on the conversation.
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 30,
        ivr: vec![],
    };
    play(
        &pbx,
        &url,
        &pbx.outbound_call(OUR_LINE, "79161234567", &script),
    )
    .await;
    let (same, said) = conversation_of(&app, "phone", CUSTOMER).await;
    assert_eq!(same["id"], conversation["id"]);
    assert!(
        said.iter().any(|m| {
            m["body"]
            == "Outgoing call from +74951112233 to +79161234567, answered by 101, talk 0:30 of 0:45"
        }),
        "{said:?}"
    );
}
