//! Call tracking end to end: numbers and settings through the API, the
//! site script's `POST /widget/v1/number`, and the fake PBX calling a
//! tracking number (`seamline-fakes`), on a real server and store.

use std::net::SocketAddr;
use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use seamline_core::Role;
use seamline_fakes::pbx::{FakePbx, Script};
use serde_json::{json, Value};

use super::calls::{connect, conversation_of, play};
use crate::support::{hidden_value, spawn_app, TestApp};

const KEY: &str = "pbx-key-0123456789";
const SALT: &str = "pbx-salt-9876543210";
const CALLER: &str = "+79161234567";
const LANDING: &str =
    "https://utro.example/menu?utm_source=yandex&utm_medium=cpc&utm_campaign=spring";

async fn fake() -> FakePbx {
    FakePbx::start(SocketAddr::from(([127, 0, 0, 1], 0)), KEY, SALT)
        .await
        .expect("fake PBX")
}

async fn add(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.api_post("/api/v1/call-tracking/numbers", &body).await
}

async fn add_pool(app: &TestApp, numbers: &[&str]) {
    for number in numbers {
        let (status, body) = add(app, json!({"number": number})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// What the site script gets for `visitor` coming from `source`.
async fn ask(app: &TestApp, visitor: &str, source: Value) -> Value {
    let (status, body) = ask_raw(app, &app.workspace.write_key, visitor, source).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn ask_raw(app: &TestApp, key: &str, visitor: &str, source: Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/widget/v1/number"))
        .json(
            &json!({"key": key, "anonymousId": visitor, "sessionId": format!("s-{visitor}"),
                      "source": source}),
        )
        .send()
        .await
        .expect("send");
    crate::support::read(response).await
}

fn yandex() -> Value {
    json!({"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "spring",
           "yclid": "5512", "page_url": LANDING})
}

async fn stats(app: &TestApp) -> Value {
    let (status, body) = app.api_get("/api/v1/call-tracking/stats").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn a_visitor_from_yandex_calls_the_tracking_number_and_the_call_lands_in_their_profile() {
    let app = spawn_app().await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    add_pool(&app, &["+7 495 111-22-01", "8 (495) 111-22-02"]).await;
    let (status, _) = app
        .api_put(
            "/api/v1/call-tracking/settings",
            &json!({"default_number": "+7 495 111-22-99", "site_phone": "+7 495 000-11-22"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Anna lands from a Yandex ad; the site tracks her page view.
    let (status, _) = app
        .track(
            "page",
            &json!({"anonymousId": "visitor-anna", "context": {"page": {"url": LANDING}}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let anna = ask(&app, "visitor-anna", yandex()).await;
    assert_eq!(anna["kind"], "pool", "{anna}");
    let number = anna["number"].as_str().expect("number").to_owned();
    assert!(["+74951112201", "+74951112202"].contains(&number.as_str()));
    assert_eq!(anna["sitePhone"], "+74950001122");
    assert_eq!(anna["heartbeatS"], 60);
    // Her next page view (or heartbeat) keeps the same number.
    assert_eq!(
        ask(&app, "visitor-anna", json!({})).await["number"],
        number.as_str()
    );

    // Boris gets the other one; Vera finds the pool full: the default
    // number, and a miss counted.
    let boris = ask(&app, "visitor-boris", json!({"utm_source": "google"})).await;
    assert_eq!(boris["kind"], "pool");
    assert_ne!(
        boris["number"],
        number.as_str(),
        "never the same number at once"
    );
    let vera = ask(&app, "visitor-vera", json!({})).await;
    assert_eq!(vera["kind"], "default", "{vera}");
    assert_eq!(vera["number"], "+74951112299");
    assert_eq!(vera["display"], "+7 (495) 111-22-99");
    assert_eq!(stats(&app).await["misses"], 1);

    // Anna calls the number she sees, from her phone, as the PBX writes it.
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 42,
        ivr: vec![],
    };
    let events = pbx.inbound_call("89161234567", number.trim_start_matches('+'), &script);
    play(&pbx, &url, &events).await;
    play(&pbx, &url, &events).await;

    // The call is in her conversation, found by her phone and by her visit.
    let (conversation, said) = conversation_of(&app, "phone", CALLER).await;
    let (by_visit, _) = conversation_of(&app, "anonymous_id", "visitor-anna").await;
    assert_eq!(by_visit["id"], conversation["id"], "one conversation");
    let calls: Vec<&Value> = said.iter().filter(|m| m["channel"] == "phone").collect();
    let body = calls[0]["body"].as_str().expect("body");
    let display = format!(
        "+7 ({}) {}-{}-{}",
        &number[2..5],
        &number[5..8],
        &number[8..10],
        &number[10..]
    );
    assert!(
        body.ends_with(&format!(
            ". Source: yandex / cpc · spring (tracking number {display})"
        )),
        "{body}"
    );
    // Her profile has the visit, the phone and the call's touch with its source.
    let profile = app.lookup("phone", CALLER).await;
    assert_eq!(
        app.lookup("anonymous_id", "visitor-anna").await["id"],
        profile["id"]
    );
    let pid = profile["id"].as_str().expect("id");
    let timeline = app
        .eventually(&format!("/api/v1/profiles/{pid}/timeline?limit=50"), |t| {
            t["data"]
                .as_array()
                .is_some_and(|es| es.iter().any(|e| e["event"] == "Call Tracked"))
        })
        .await;
    let touch = timeline["data"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["event"] == "Call Tracked"))
        .cloned()
        .expect("touch");
    assert_eq!(
        touch["enrichment"]["attribution"]["utm_source"], "yandex",
        "{touch}"
    );
    assert_eq!(touch["enrichment"]["attribution"]["utm_campaign"], "spring");
    assert_eq!(
        touch["payload"]["properties"]["tracking_number"],
        number.as_str()
    );

    // Counted once, whatever the PBX re-sent.
    let figures = stats(&app).await;
    assert_eq!(figures["calls"], 1, "{figures}");
    assert_eq!(
        figures["calls_by_source"][0]["source"],
        "yandex / cpc · spring"
    );
    assert_eq!(figures["pool_size"], 2);
    assert_eq!(figures["pool_held"], 2);
}

#[tokio::test]
async fn a_lapsed_reservation_returns_the_number_to_the_pool_and_calls_follow_the_holder() {
    let app = spawn_app().await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    add_pool(&app, &["+74951112201"]).await;
    let (status, saved) = app
        .api_put("/api/v1/call-tracking/settings", &json!({"tail_s": 5}))
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let anna = ask(&app, "visitor-anna", yandex()).await;
    assert_eq!(anna["number"], "+74951112201");
    assert_eq!(anna["heartbeatS"], 1, "a short tail beats often");
    let boris = ask(&app, "visitor-boris", json!({"utm_source": "vk"})).await;
    assert_eq!(
        boris["kind"], "none",
        "no default number set: the page stays"
    );
    let (_, numbers) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(numbers["data"][0]["state"], "held", "{numbers}");
    assert_eq!(
        numbers["data"][0]["held_by"]["anonymous_id"],
        "visitor-anna"
    );

    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let (_, numbers) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(numbers["data"][0]["state"], "free", "{numbers}");
    let boris = ask(&app, "visitor-boris", json!({"utm_source": "vk"})).await;
    assert_eq!(boris["number"], "+74951112201", "back in the pool: {boris}");

    // A call now is Boris's, not Anna's.
    let events = pbx.inbound_call("79161234567", "74951112201", &Script::default());
    play(&pbx, &url, &events).await;
    let (_, said) = conversation_of(&app, "anonymous_id", "visitor-boris").await;
    let body = said
        .iter()
        .find(|m| m["channel"] == "phone")
        .and_then(|m| m["body"].as_str())
        .expect("the call is in Boris's conversation");
    assert!(body.contains("Source: vk (tracking number"), "{body}");
    let figures = stats(&app).await;
    assert_eq!(
        figures["calls_by_source"],
        json!([{"source": "vk", "calls": 1}])
    );
    assert_eq!(figures["misses"], 1);
}

#[tokio::test]
async fn visitors_asking_at_the_same_moment_never_share_a_number() {
    let app = spawn_app().await;
    add_pool(&app, &["+74951112201", "+74951112202", "+74951112203"]).await;
    let visitors: Vec<String> = (0..12).map(|i| format!("visitor-{i}")).collect();
    let answers = join_all(visitors.iter().map(|v| ask(&app, v, yandex()))).await;
    let mut numbers: Vec<&str> = answers
        .iter()
        .filter(|a| a["kind"] == "pool")
        .filter_map(|a| a["number"].as_str())
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, ["+74951112201", "+74951112202", "+74951112203"]);
    assert_eq!(stats(&app).await["misses"], 9);
}

#[tokio::test]
async fn a_call_to_a_static_number_carries_its_source() {
    let app = spawn_app().await;
    let pbx = fake().await;
    let url = connect(&app, &pbx).await;
    let (status, billboard) = add(
        &app,
        json!({"number": "+74951112250", "kind": "static",
               "source": {"label": "Билборд на Тверской"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{billboard}");
    assert_eq!(billboard["state"], "static");
    let (status, partner) = add(
        &app,
        json!({"number": "+74951112251", "kind": "static",
               "source": {"utm_source": "partner-site"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{partner}");
    // A visitor from the partner site sees the partner's number.
    let seen = ask(&app, "visitor-p", json!({"utm_source": "Partner-Site"})).await;
    assert_eq!(seen["kind"], "static");
    assert_eq!(seen["number"], "+74951112251");
    assert_eq!(ask(&app, "visitor-q", json!({})).await["kind"], "none");

    let events = pbx.inbound_call("79161234567", "74951112250", &Script::default());
    play(&pbx, &url, &events).await;
    let (_, said) = conversation_of(&app, "phone", CALLER).await;
    let body = said[0]["body"].as_str().expect("body");
    assert!(
        body.ends_with(". Source: Билборд на Тверской (static number +7 (495) 111-22-50)"),
        "{body}"
    );
    // An ordinary line stays an ordinary call.
    let events = pbx.inbound_call("79161234568", "74951110000", &Script::default());
    play(&pbx, &url, &events).await;
    let (_, said) = conversation_of(&app, "phone", "+79161234568").await;
    assert!(!said[0]["body"].as_str().unwrap_or("").contains("Source"));
    let figures = stats(&app).await;
    assert_eq!(
        figures["calls_by_source"],
        json!([{"source": "Билборд на Тверской", "calls": 1}])
    );
}

#[tokio::test]
async fn bad_numbers_settings_and_visitors_are_refused_by_field() {
    let app = spawn_app().await;
    for (body, status, field) in [
        (
            json!({"number": "call us"}),
            StatusCode::BAD_REQUEST,
            "number",
        ),
        (
            json!({"number": "+74951112201", "kind": "tv"}),
            StatusCode::BAD_REQUEST,
            "kind",
        ),
        (
            json!({"number": "+74951112201", "kind": "static"}),
            StatusCode::BAD_REQUEST,
            "source.utm_source",
        ),
        (
            json!({"number": "+74951112201", "kind": "static", "source": {"utm_medium": "cpc"}}),
            StatusCode::BAD_REQUEST,
            "source.utm_source",
        ),
        (
            json!({"number": "+74951112201", "source": {"utm_source": "x"}}),
            StatusCode::BAD_REQUEST,
            "source",
        ),
    ] {
        let (got, answer) = add(&app, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    add_pool(&app, &["+74951112201"]).await;
    let (status, duplicate) = add(&app, json!({"number": "8 495 111 22 01"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{duplicate}");
    assert_eq!(duplicate["error"]["field"], "number");
    for (body, field) in [
        (json!({"tail_s": 0}), "tail_s"),
        (json!({"default_number": "nope"}), "default_number"),
        (json!({"selector": "</style>"}), "selector"),
    ] {
        let (status, answer) = app.api_put("/api/v1/call-tracking/settings", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (status, _) = ask_raw(&app, "wrong-key", "visitor", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let key = app.workspace.write_key.clone();
    let (status, answer) = ask_raw(&app, &key, "visitor", json!({"utm_source": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "source.utm_source");
    let (status, answer) = ask_raw(&app, &key, " ", json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "anonymousId");
    // Nothing was reserved by the refused requests.
    let (_, numbers) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(numbers["data"][0]["state"], "free");
    let id = numbers["data"][0]["id"].as_str().expect("id");
    let gone = app
        .http
        .delete(app.url(&format!("/api/v1/call-tracking/numbers/{id}")))
        .bearer_auth(&app.workspace.api_key)
        .send()
        .await
        .expect("delete");
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let (_, numbers) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(numbers["data"], json!([]));
}

#[tokio::test]
async fn admins_manage_numbers_in_the_settings_page_and_analysts_only_read_it() {
    let app = spawn_app().await;
    let (admin, _) = app.sign_in_as(Role::Admin).await;
    let page = |client: &reqwest::Client| {
        let request = client.get(app.url("/settings/call-tracking"));
        async move {
            let answer = request.send().await.expect("page");
            assert_eq!(answer.status(), StatusCode::OK);
            answer.text().await.expect("html")
        }
    };
    let html = page(&admin).await;
    let csrf = hidden_value(&html, "csrf_token").expect("the form carries its token");
    let add = |number: &'static str, kind: &'static str, label: &'static str| {
        admin
            .post(app.url("/settings/call-tracking/numbers"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("number", number),
                ("kind", kind),
                ("label", label),
            ])
    };
    let refused = add("call us", "pool", "").send().await.expect("post");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let again = refused.text().await.expect("html");
    assert!(
        again.contains("role=\"alert\"") && again.contains("value=\"call us\""),
        "the error, and what was typed kept"
    );
    let added = add("+7 495 111-22-50", "static", "<b>Билборд</b>")
        .send()
        .await
        .expect("post");
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    let duplicate = add("84951112250", "pool", "").send().await.expect("post");
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert!(duplicate
        .text()
        .await
        .expect("html")
        .contains("The workspace has this number already."));
    let saved = admin
        .post(app.url("/settings/call-tracking/settings"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("tail_s", "900"),
            ("selector", ".phone"),
            ("site_phone", ""),
            ("default_number", "8 495 111 22 99"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, settings) = app.api_get("/api/v1/call-tracking/settings").await;
    assert_eq!(settings["tail_s"], 900);
    assert_eq!(settings["default_number"], "+74951112299");
    let html = page(&admin).await;
    assert!(
        html.contains("&lt;b&gt;Билборд&lt;/b&gt;"),
        "a source label is text, never markup"
    );

    let (analyst, analyst_csrf) = app.sign_in_as(Role::Analyst).await;
    let html = page(&analyst).await;
    assert!(html.contains("+7 (495) 111-22-50") && html.contains("pool-misses"));
    assert!(
        !html.contains("id=\"add-number\""),
        "no add form for analysts"
    );
    let refused = analyst
        .post(app.url("/settings/call-tracking/numbers"))
        .form(&[
            ("csrf_token", analyst_csrf.as_str()),
            ("number", "+74951112277"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, numbers) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(numbers["data"].as_array().map(Vec::len), Some(1));
}
