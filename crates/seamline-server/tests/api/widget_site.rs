//! The widget's settings and what the script asks of the server besides
//! the chat: its config, callback requests, contact forms, and messenger
//! links whose tracking code ties a later messenger chat to the visit.

use chrono::Utc;
use reqwest::StatusCode;
use seamline_core::inbox::conversation::Channel;
use seamline_core::Role;
use seamline_server::inbox::{receive, Customer, Inbound};
use seamline_server::widget::tracking::{find_code, vouched};
use serde_json::{json, Value};

use crate::support::{hidden_value, read, spawn_app, urlencode, TestApp};

async fn widget_post(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("send");
    read(response).await
}

async fn config(app: &TestApp, visitor: &str) -> (StatusCode, String) {
    let response = app
        .http
        .get(app.url(&format!(
            "/widget/v1/config?key={}&anonymousId={visitor}",
            urlencode(&app.workspace.write_key)
        )))
        .send()
        .await
        .expect("get");
    (response.status(), response.text().await.expect("text"))
}

fn callback(app: &TestApp, visitor: &str, request: &str, phone: &str) -> Value {
    json!({
        "key": app.workspace.write_key, "anonymousId": visitor, "requestId": request,
        "phone": phone, "name": "Ольга", "preferredTime": "asap",
    })
}

/// The conversation of the profile holding `kind:value`.
async fn conversation_of(app: &TestApp, kind: &str, value: &str) -> Value {
    let profile = app.lookup(kind, value).await;
    let id = profile["id"].as_str().unwrap_or_default();
    let (status, conversation) = app
        .api_get(&format!("/api/v1/profiles/{id}/conversation"))
        .await;
    assert_eq!(status, StatusCode::OK, "{conversation}");
    conversation
}

async fn bodies(app: &TestApp, conversation: &Value) -> Vec<String> {
    let id = conversation["id"].as_str().unwrap_or_default();
    let (_, messages) = app
        .api_get(&format!("/api/v1/conversations/{id}/messages"))
        .await;
    messages["data"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["kind"] == "inbound")
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn settings_are_checked_field_by_field_and_the_secret_shown_to_managers_only() {
    let app = spawn_app().await;
    let path = "/api/v1/settings/widget";
    for (body, field) in [
        (json!({"colour": "#ffffff"}), "colour"),
        (json!({"identity_secret": "mine"}), "identity_secret"),
        (
            json!({"buttons": {"telegram": "not a bot"}}),
            "buttons.telegram",
        ),
        (json!({"buttons": {"whatsapp": "12"}}), "buttons.whatsapp"),
        (json!({"accent_color": "red"}), "accent_color"),
        (json!({"prechat": {"email": "sometimes"}}), "prechat.email"),
    ] {
        let (status, answer) = app.api_put(path, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let wanted = json!({
        "title": "Ask us", "greeting": "Here 9 to 21", "accent_color": "#0B7285",
        "buttons": {"chat": true, "callback": true, "telegram": "@shop_bot", "whatsapp": "+7 916 123-45-67"},
        "prechat": {"name": "required", "email": "optional"},
    });
    let (status, saved) = app.api_put(path, &wanted).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["accent_color"], "#0b7285");
    assert_eq!(saved["buttons"]["telegram"], "shop_bot");
    assert_eq!(saved["buttons"]["whatsapp"], "79161234567");
    assert_eq!(saved["prechat"]["phone"], "off");
    assert_eq!(
        saved["identity_secret"],
        Value::Null,
        "none until generated"
    );

    let (status, rotated) = app
        .api_post("/api/v1/settings/widget/identity-secret", &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let secret = rotated["identity_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    assert!(secret.len() >= 32);
    let (_, again) = app.api_put(path, &wanted).await;
    assert_eq!(again["identity_secret"], secret.as_str(), "a PUT keeps it");

    // An operator reads the settings, not the secret.
    let (operator, _) = app.sign_in_as(Role::Operator).await;
    let (status, seen) = read(operator.get(app.url(path)).send().await.expect("get")).await;
    assert_eq!(status, StatusCode::OK, "{seen}");
    assert_eq!(seen["title"], "Ask us");
    assert!(seen.get("identity_secret").is_none(), "{seen}");

    // Nor does the public config, whatever the visitor.
    let (status, text) = config(&app, "visitor-1").await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(!text.contains(&secret) && !text.contains("secret") && !text.contains("tracking_key"));
    let public: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(public["title"], "Ask us");
    assert_eq!(public["accentColor"], "#0b7285");
    assert_eq!(public["prechat"]["name"], "required");
    assert_eq!(public["online"], false, "no operator is online");
    let channels: Vec<&str> = public["links"]
        .as_array()
        .expect("links")
        .iter()
        .filter_map(|l| l["channel"].as_str())
        .collect();
    assert_eq!(channels, ["whatsapp", "telegram"]);
}

#[tokio::test]
async fn a_callback_request_lands_in_the_inbox_once_with_the_phone_identified() {
    let app = spawn_app().await;
    let (status, first) = widget_post(
        &app,
        "/widget/v1/callback",
        &callback(&app, "visitor-cb", "r-1", "8 916 123-45-67"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    // The widget retries after a timeout: still one request.
    let (status, retry) = widget_post(
        &app,
        "/widget/v1/callback",
        &callback(&app, "visitor-cb", "r-1", "8 916 123-45-67"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{retry}");

    let conversation = conversation_of(&app, "phone", "+79161234567").await;
    let by_cookie = conversation_of(&app, "anonymous_id", "visitor-cb").await;
    assert_eq!(
        conversation["id"], by_cookie["id"],
        "the phone and the visitor's cookie are one customer"
    );
    assert_eq!(conversation["priority"], "high", "{conversation}");
    assert!(
        conversation["labels"]
            .as_array()
            .is_some_and(|l| l.contains(&json!("callback"))),
        "{conversation}"
    );
    let said = bodies(&app, &conversation).await;
    assert_eq!(
        said,
        ["Callback requested: +79161234567 (Ольга), as soon as possible"]
    );

    let (status, refused) = widget_post(
        &app,
        "/widget/v1/callback",
        &callback(&app, "visitor-cb", "r-2", "call me maybe"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["field"], "phone", "{refused}");
    let mut past = callback(&app, "visitor-cb", "r-3", "+79161234567");
    past["preferredTime"] = json!("2020-01-01T10:00:00Z");
    let (status, refused) = widget_post(&app, "/widget/v1/callback", &past).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["field"], "preferredTime", "{refused}");
    let mut bad_key = callback(&app, "visitor-cb", "r-4", "+79161234567");
    bad_key["key"] = json!("wk_nope");
    let (status, _) = widget_post(&app, "/widget/v1/callback", &bad_key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_customers_site_may_call_the_widget_routes_from_its_own_origin() {
    let app = spawn_app().await;
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/widget/v1/callback"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let response = app
        .http
        .get(app.url(&format!(
            "/widget/v1/config?key={}",
            urlencode(&app.workspace.write_key)
        )))
        .header("origin", "https://shop.example")
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["links"], json!([]), "no visitor, no tracked links");
}

#[tokio::test]
async fn callback_requests_are_limited_per_visitor() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for n in 0..7 {
        let body = callback(&app, "visitor-flood", &format!("f-{n}"), "+79161234500");
        statuses.push(widget_post(&app, "/widget/v1/callback", &body).await.0);
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        2,
        "{statuses:?}"
    );
    let other = callback(&app, "visitor-calm", "c-1", "+79161234501");
    let (status, _) = widget_post(&app, "/widget/v1/callback", &other).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another visitor is not limited"
    );
}

#[tokio::test]
async fn contact_forms_fill_in_the_customer_and_say_how_the_answer_comes() {
    let app = spawn_app().await;
    let (status, _) = app
        .api_put(
            "/api/v1/settings/widget",
            &json!({"prechat": {"name": "required", "email": "required"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let form = |form: &str, request: &str, extra: Value| {
        let mut body = json!({
            "key": app.workspace.write_key, "anonymousId": "visitor-form",
            "requestId": request, "form": form, "body": "Есть ли размер 42?",
        });
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        body
    };
    let (status, refused) = widget_post(
        &app,
        "/widget/v1/message",
        &form("prechat", "p-1", json!({"name": "Ольга"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["field"], "email", "{refused}");
    let (status, sent) = widget_post(
        &app,
        "/widget/v1/message",
        &form(
            "prechat",
            "p-1",
            json!({"name": "Ольга", "email": "Olga@Example.com"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    assert_eq!(sent["message"]["body"], "Есть ли размер 42?");
    let conversation = conversation_of(&app, "email", "olga@example.com").await;
    let by_cookie = conversation_of(&app, "anonymous_id", "visitor-form").await;
    assert_eq!(conversation["id"], by_cookie["id"]);

    let (status, refused) = widget_post(
        &app,
        "/widget/v1/message",
        &form("offline", "o-1", json!({"name": "Ольга"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused["error"]["field"], "email",
        "a way to answer: {refused}"
    );
    let (status, left) = widget_post(
        &app,
        "/widget/v1/message",
        &form(
            "offline",
            "o-1",
            json!({"name": "Ольга", "phone": "+7 916 000-11-22"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{left}");
    assert_eq!(
        left["answer"],
        "Thank you! We will answer by text message to +79160001122."
    );
    let conversation = conversation_of(&app, "phone", "+79160001122").await;
    assert_eq!(conversation["id"], by_cookie["id"], "the same visitor");
}

/// What a messenger connector does with an inbound message: find the code,
/// check it, and receive the message with it.
async fn from_telegram(
    app: &TestApp,
    sender: &str,
    text: &str,
) -> seamline_server::inbox::Received {
    let ws = app.workspace.workspace.id;
    let mut tracking_code = None;
    if let Some(code) = find_code(text) {
        if vouched(app.store.as_ref(), ws, &code, ("telegram", sender))
            .await
            .expect("vouched")
        {
            tracking_code = Some(code);
        }
    }
    receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: ws,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), sender.into())),
                tracking_code,
                ..Customer::default()
            },
            body: text.to_owned(),
            external_id: Some(format!("tg-{sender}-{}", uuid::Uuid::now_v7())),
            at: Utc::now(),
        },
    )
    .await
    .expect("received")
}

#[tokio::test]
async fn a_telegram_chat_from_the_widget_link_joins_the_visitors_conversation() {
    let app = spawn_app().await;
    let (status, _) = app
        .api_put(
            "/api/v1/settings/widget",
            &json!({"buttons": {"telegram": "shop_bot"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // The visitor chats on the site, then opens the widget's Telegram link.
    let (status, _) = widget_post(
        &app,
        "/widget/v1/message",
        &json!({"key": app.workspace.write_key, "anonymousId": "visitor-tg",
                "requestId": "m-1", "form": "prechat", "body": "Привет с сайта"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, text) = config(&app, "visitor-tg").await;
    let public: Value = serde_json::from_str(&text).expect("JSON");
    let link = public["links"][0]["url"]
        .as_str()
        .expect("a link")
        .to_owned();
    let code = link
        .strip_prefix("https://t.me/shop_bot?start=")
        .expect("a start link")
        .to_owned();
    let (_, again) = config(&app, "visitor-tg").await;
    assert!(again.contains(&code), "a visitor keeps their code");
    let (_, stranger) = config(&app, "visitor-other").await;
    assert!(!stranger.contains(&code), "codes are per visitor");
    let web = conversation_of(&app, "anonymous_id", "visitor-tg").await;
    // The code is recorded as the visitor's identifier.
    let held = app.lookup("tracking_code", &code).await;
    assert_eq!(
        held["id"],
        app.lookup("anonymous_id", "visitor-tg").await["id"]
    );

    // Pressing Start in Telegram sends `/start CODE`: the same conversation.
    let started = from_telegram(&app, "5550001", &format!("/start {code}")).await;
    assert_eq!(
        json!(started.message.conversation.conversation.id),
        web["id"],
        "the Telegram chat joins the web chat's conversation"
    );
    let said = bodies(&app, &web).await;
    assert_eq!(
        said,
        ["Привет с сайта".to_owned(), format!("/start {code}")]
    );

    // The link forwarded to a friend glues nobody to the visitor.
    let friend = from_telegram(&app, "5550002", &format!("/start {code}")).await;
    assert_ne!(
        json!(friend.message.conversation.conversation.id),
        web["id"]
    );
    // Nor does a made-up code.
    let forged = from_telegram(&app, "5550003", "/start AAAAAAAA").await;
    assert_ne!(json!(forged.profile), json!(started.profile));
}

#[tokio::test]
async fn admins_change_the_widget_in_the_settings_form_and_operators_only_read_it() {
    let app = spawn_app().await;
    let (admin, _) = app.sign_in_as(Role::Admin).await;
    let html = |client: &reqwest::Client, path: &'static str| {
        let request = client.get(app.url(path));
        async move {
            request
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("html")
        }
    };
    let page = html(&admin, "/settings/widget").await;
    assert!(page.contains(&app.workspace.write_key), "the embed snippet");
    let csrf = hidden_value(&page, "csrf_token").expect("the form carries its token");
    let submit = |telegram: &'static str| {
        admin.post(app.url("/settings/widget")).form(&[
            ("csrf_token", csrf.as_str()),
            ("title", "Ask us"),
            ("greeting", "Hi"),
            ("accent_color", "#0b7285"),
            ("chat", "on"),
            ("telegram", telegram),
            ("prechat_name", "required"),
            ("prechat_email", "off"),
            ("prechat_phone", "optional"),
        ])
    };
    let refused = submit("not a bot").send().await.expect("post");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let again = refused.text().await.expect("html");
    assert!(
        again.contains("Buttons.telegram") && again.contains("value=\"not a bot\""),
        "the error, and what was typed kept"
    );
    let saved = submit("@shop_bot").send().await.expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved.headers()["location"], "/settings/widget?done=saved");
    let (_, now) = app.api_get("/api/v1/settings/widget").await;
    assert_eq!(now["buttons"]["telegram"], "shop_bot");
    assert_eq!(now["buttons"]["callback"], false, "unticked");
    assert_eq!(now["prechat"]["phone"], "optional");

    let rotated = admin
        .post(app.url("/settings/widget/identity-secret"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(
        rotated.headers()["location"],
        "/settings/widget?done=rotated"
    );
    let secret = app.api_get("/api/v1/settings/widget").await.1["identity_secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    assert!(html(&admin, "/settings/widget").await.contains(&secret));

    let (operator, operator_csrf) = app.sign_in_as(Role::Operator).await;
    let seen = html(&operator, "/settings/widget").await;
    assert!(
        seen.contains("Ask us") && !seen.contains(&secret),
        "no secret"
    );
    let denied = operator
        .post(app.url("/settings/widget/identity-secret"))
        .form(&[("csrf_token", operator_csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
}
