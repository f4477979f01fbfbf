//! The SMS connector end to end: a real server and the fake Twilio-style
//! provider from `seamline-fakes`, which signs its form posts with
//! `X-Twilio-Signature`, re-sends on a non-2xx answer and logs what it sent.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use seamline_core::{ProfileId, Role};
use seamline_fakes::sms::{signature, Failure, FakeSms, SIGNATURE_HEADER};
use seamline_server::channels::ChannelsConfig;
use seamline_server::identity::consent;
use seamline_server::ServerConfig;
use seamline_store::ConversationQuery;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app_configured, TestApp};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH: &str = "f00dfeedf00dfeedf00dfeedf00dfeed";
const OUR_NUMBER: &str = "+74951112233";
const CUSTOMER: &str = "+79161234567";

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

async fn fake() -> FakeSms {
    let fake = FakeSms::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake SMS provider");
    fake.add_account(SID, AUTH);
    fake
}

/// Connects an SMS account at `fake`; returns its webhook URL.
async fn connect(app: &TestApp, fake: &FakeSms) -> String {
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "sms", "name": "SMS",
                    "settings": {"api_base": fake.base_url(), "account_sid": SID, "from": OUR_NUMBER},
                    "secrets": {"auth_token": AUTH}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["secrets"]["auth_token"], "••••feed", "{created}");
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

/// The conversation id and messages (oldest first) of `phone`'s profile.
async fn messages_of(app: &TestApp, phone: &str) -> (String, Vec<Value>) {
    let profile = app.lookup("phone", phone).await;
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
    (cid, page["data"].as_array().cloned().unwrap_or_default())
}

async fn post_raw(
    app: &TestApp,
    url: &str,
    sign: Option<&str>,
    params: &[(String, String)],
) -> reqwest::Response {
    let mut request = app.http.post(url).form(params);
    if let Some(sign) = sign {
        request = request.header(SIGNATURE_HEADER, sign);
    }
    request.send().await.expect("post")
}

#[tokio::test]
async fn forged_and_malformed_sms_webhooks_store_nothing() {
    let app = quick_app().await;
    let fake = fake().await;
    let url = connect(&app, &fake).await;
    let params = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "Привет");
    let events = app.count().await;

    let unsigned = post_raw(&app, &url, None, &params).await;
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let wrong_key = signature("0000000000000000", &url, &params);
    let forged = post_raw(&app, &url, Some(&wrong_key), &params).await;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    // Signed, then a parameter changed on the way: the signature covers all.
    let signed = signature(AUTH, &url, &params);
    let mut tampered = params.clone();
    tampered.push(("Body".into(), "another".into()));
    tampered.retain(|(k, v)| k != "Body" || v == "another");
    let changed = post_raw(&app, &url, Some(&signed), &tampered).await;
    assert_eq!(changed.status(), StatusCode::UNAUTHORIZED);
    // Signed over another URL (a proxy's internal one).
    let elsewhere = signature(AUTH, &url.replace("http://", "https://"), &params);
    let proxied = post_raw(&app, &url, Some(&elsewhere), &params).await;
    assert_eq!(proxied.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events, "no event either");

    for (drop, field) in [("From", "From"), ("MessageSid", "MessageSid")] {
        let mut bad: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| {
                k != drop && !(drop == "MessageSid" && (k == "SmsSid" || k == "SmsMessageSid"))
            })
            .cloned()
            .collect();
        if drop == "From" {
            bad.push(("From".into(), "8 916 not a number".into()));
        }
        let sign = signature(AUTH, &url, &bad);
        let answer = post_raw(&app, &url, Some(&sign), &bad).await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    assert_eq!(conversations(&app).await, 0, "nothing stored");
    assert_eq!(app.count().await, events);
}

#[tokio::test]
async fn an_sms_lands_once_in_the_phones_conversation() {
    let app = quick_app().await;
    let fake = fake().await;
    let url = connect(&app, &fake).await;
    let params = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "Где мой заказ?");
    assert_eq!(fake.post(&url, AUTH, &params).await.expect("posted"), 200);
    // The provider re-sends the same MessageSid: stored once.
    assert_eq!(fake.post(&url, AUTH, &params).await.expect("posted"), 200);
    let (_, said) = messages_of(&app, CUSTOMER).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["body"], "Где мой заказ?");
    assert_eq!(said[0]["channel"], "sms");
}

/// The customer texts; the operator answers through the API.
async fn reply(app: &TestApp, fake: &FakeSms, url: &str, text: &str) -> String {
    let params = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "Здравствуйте");
    fake.post(url, AUTH, &params).await.expect("posted");
    let (cid, _) = messages_of(app, CUSTOMER).await;
    let (status, written) = app
        .api_post(
            &format!("/api/v1/conversations/{cid}/messages"),
            &json!({"body": text, "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    written["id"].as_str().expect("id").to_owned()
}

async fn settled(app: &TestApp, id: &str, not: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, said) = messages_of(app, CUSTOMER).await;
        let mine = said.into_iter().find(|m| m["id"] == id).expect("the reply");
        if mine["delivery"] != not {
            return mine;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {not}: {mine}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_reply_goes_out_once_through_a_500_and_a_429_and_reports_delivery() {
    let app = quick_app().await;
    let fake = fake().await;
    let url = connect(&app, &fake).await;
    fake.fail_next([
        Failure::ServerError,
        Failure::TooManyRequests { retry_after: 1 },
    ]);
    let id = reply(&app, &fake, &url, "Заказ уже в пути").await;
    let sent = settled(&app, &id, "pending").await;
    assert_eq!(sent["delivery"], "sent", "{sent}");
    assert_eq!(fake.calls(), vec![500, 429, 201]);
    let log = fake.sent();
    assert_eq!(log.len(), 1, "sent exactly once: {log:?}");
    assert_eq!(log[0].to, CUSTOMER);
    assert_eq!(log[0].from, OUR_NUMBER);
    assert_eq!(log[0].body, "Заказ уже в пути");
    assert_eq!(log[0].status_callback.as_deref(), Some(url.as_str()));

    // Callbacks out of order: delivered, then a late "sent" never goes back.
    fake.report(&log[0].sid, "delivered", None)
        .await
        .expect("callback");
    fake.report(&log[0].sid, "sent", None)
        .await
        .expect("callback");
    let now = settled(&app, &id, "sent").await;
    assert_eq!(now["delivery"], "delivered", "{now}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, said) = messages_of(&app, CUSTOMER).await;
    let mine = said.iter().find(|m| m["id"] == id).expect("reply");
    assert_eq!(mine["delivery"], "delivered");

    // The thread shows what the text costs: Cyrillic is UCS-2.
    let (cid, _) = messages_of(&app, CUSTOMER).await;
    let (client, _) = app.sign_in_as(Role::Admin).await;
    let page = client
        .get(app.url(&format!("/inbox?c={cid}")))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("1 segment, UCS-2"), "segments shown");
}

#[tokio::test]
async fn an_opted_out_recipient_fails_the_reply_with_the_reason() {
    let app = quick_app().await;
    let fake = fake().await;
    let url = connect(&app, &fake).await;
    fake.fail_next([Failure::OptedOut]);
    let id = reply(&app, &fake, &url, "Ваш заказ готов").await;
    let failed = settled(&app, &id, "pending").await;
    assert_eq!(failed["delivery"], "failed", "{failed}");
    assert!(fake.sent().is_empty());
    assert_eq!(fake.calls(), vec![400], "a permanent error is not retried");
}

async fn consents(app: &TestApp, phone: &str) -> Vec<seamline_store::ConsentRecord> {
    let profile = app.lookup("phone", phone).await;
    let id: Uuid = profile["id"].as_str().expect("id").parse().expect("uuid");
    app.store
        .consents(app.workspace.workspace.id, ProfileId(id))
        .await
        .expect("consents")
}

#[tokio::test]
async fn stop_withdraws_sms_marketing_consent_and_start_grants_it_again() {
    let app = quick_app().await;
    let fake = fake().await;
    let url = connect(&app, &fake).await;
    let stop = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "СТОП");
    fake.post(&url, AUTH, &stop).await.expect("posted");
    fake.post(&url, AUTH, &stop).await.expect("re-sent");
    let history = consents(&app, CUSTOMER).await;
    assert_eq!(history.len(), 1, "recorded once: {history:?}");
    assert_eq!(
        (
            history[0].purpose.as_str(),
            history[0].channel.as_str(),
            history[0].granted
        ),
        ("marketing", "sms", false)
    );
    assert_eq!(history[0].wording, "СТОП");
    assert!(!consent::allows(&history, "marketing", "sms"));
    let (_, said) = messages_of(&app, CUSTOMER).await;
    assert_eq!(said.len(), 1, "the STOP itself is in the conversation");

    // A sentence with the word in it is not a keyword.
    let chat = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "please stop the order");
    fake.post(&url, AUTH, &chat).await.expect("posted");
    assert_eq!(consents(&app, CUSTOMER).await.len(), 1);

    let start = fake.inbound(SID, CUSTOMER, OUR_NUMBER, "start");
    fake.post(&url, AUTH, &start).await.expect("posted");
    let history = consents(&app, CUSTOMER).await;
    assert!(consent::allows(&history, "marketing", "sms"), "{history:?}");
}
