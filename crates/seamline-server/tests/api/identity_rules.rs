//! Each workspace's identity rules, through the API and the settings form,
//! and the shared-device sessions they bound.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{hidden_value, spawn_app, TestApp};

const RULES: &str = "/api/v1/settings/identity";

async fn event_count(app: &TestApp, user: &str) -> u64 {
    app.lookup("user_id", user).await["event_count"]
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test]
async fn rules_are_validated_field_by_field_and_kept() {
    let app = spawn_app().await;
    let (status, rules) = app.api_get(RULES).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules["default_region"], "RU");
    assert_eq!(rules["limits"]["user_id"], 1);
    assert_eq!(rules["shared_device_session_minutes"], 30);

    for (body, field) in [
        (json!({"default_region": "XX"}), "default_region"),
        (json!({"limits": {"email": 0}}), "limits.email"),
        (json!({"block_list": ["nonsense"]}), "block_list[0]"),
        (
            json!({"shared_device_session_minutes": 0}),
            "shared_device_session_minutes",
        ),
    ] {
        let (status, error) = app.api_put(RULES, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["errors"][0]["field"], field, "{error}");
    }
    let (status, error) = app.api_put(RULES, &json!({"fold_email": true})).await;
    assert!(status.is_client_error(), "a misspelt setting is refused");
    assert!(error.to_string().contains("fold_email"), "{error}");
    assert_eq!(
        app.api_get(RULES).await.1,
        rules,
        "nothing refused was saved"
    );

    let wanted = json!({"default_region": "DE", "fold_emails": true,
        "block_list": ["email:shared@office.example"], "shared_device_session_minutes": 45});
    let (status, saved) = app.api_put(RULES, &wanted).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let (_, now) = app.api_get(RULES).await;
    assert_eq!(now["default_region"], "DE");
    assert_eq!(now["fold_emails"], true);
    assert_eq!(now["block_list"], json!(["email:shared@office.example"]));
    assert_eq!(
        now["limits"]["user_id"], 1,
        "left-out settings take their defaults"
    );
}

#[tokio::test]
async fn the_block_list_and_email_folding_change_who_is_one_person() {
    let app = spawn_app().await;
    let rules = json!({"fold_emails": true, "block_list": ["email:shared@office.example"]});
    assert_eq!(app.api_put(RULES, &rules).await.0, StatusCode::OK);
    app.send(vec![
        json!({"type": "identify", "anonymousId": "desk-1", "traits": {"email": "shared@office.example"}}),
        json!({"type": "identify", "anonymousId": "desk-2", "traits": {"email": "Shared@Office.example"}}),
        json!({"type": "identify", "anonymousId": "phone-3", "traits": {"email": "o.lga+shop@gmail.com"}}),
        json!({"type": "identify", "anonymousId": "laptop-4", "userId": "olga", "traits": {"email": "olga@gmail.com"}}),
    ])
    .await;
    app.settled(4).await;
    let olga = app.lookup("user_id", "olga").await;
    assert_eq!(
        olga["event_count"], 2,
        "the folded e-mail joined the two: {olga}"
    );
    let desk = app.lookup("anonymous_id", "desk-1").await;
    assert_ne!(
        desk["id"],
        app.lookup("anonymous_id", "desk-2").await["id"],
        "a blocked value links nobody"
    );
    let (_, found) = app
        .api_get("/api/v1/profiles/lookup?type=email&value=O.L.G.A%2Bnews%40gmail.com")
        .await;
    assert_eq!(
        found["id"], olga["id"],
        "lookups fold the same way: {found}"
    );
}

#[tokio::test]
async fn a_shared_tablet_forgets_its_person_after_the_session_and_a_login_claims_it() {
    let app = spawn_app().await;
    let start = Utc::now() - Duration::days(1);
    let at = |minutes: i64| (start + Duration::minutes(minutes)).to_rfc3339();
    let on_tablet = |kind: &str, minutes: i64, user: Option<&str>| -> Value {
        let mut event =
            json!({"type": kind, "anonymousId": "family-tablet", "timestamp": at(minutes)});
        if let Some(user) = user {
            event["userId"] = json!(user);
        }
        if kind == "page" {
            event["name"] = json!("Каталог");
        }
        event
    };
    app.send(vec![
        on_tablet("identify", 0, Some("ivan")),
        on_tablet("identify", 1, Some("maria")),
        on_tablet("page", 2, None),
        // Five hours later someone browses without logging in.
        on_tablet("page", 300, None),
        on_tablet("page", 301, None),
        // Ivan's phone, joined to him by his e-mail (a merge to undo later).
        json!({"type": "identify", "anonymousId": "ivan-phone", "traits": {"email": "ivan@example.ru"}, "timestamp": at(10)}),
        json!({"type": "identify", "userId": "ivan", "traits": {"email": "ivan@example.ru"}, "timestamp": at(11)}),
        // Resolved after everything above: when it is, they were too.
        json!({"type": "identify", "userId": "sentinel", "timestamp": at(400)}),
    ])
    .await;
    app.lookup("user_id", "sentinel").await;
    assert_eq!(
        event_count(&app, "maria").await,
        2,
        "the page in her session"
    );
    assert_eq!(
        event_count(&app, "ivan").await,
        3,
        "his login, his phone's, the merge"
    );

    // Ivan logs in two minutes into that session: the two pages are his.
    app.send(vec![on_tablet("identify", 303, Some("ivan"))])
        .await;
    let ivan = app
        .eventually("/api/v1/profiles/lookup?type=user_id&value=ivan", |p| {
            p["event_count"] == 6
        })
        .await;
    assert_eq!(event_count(&app, "maria").await, 2);

    // Later Maria logs in on the tablet: the session is hers now.
    app.send(vec![
        on_tablet("identify", 320, Some("maria")),
        json!({"type": "identify", "userId": "sentinel-2", "timestamp": at(400)}),
    ])
    .await;
    app.lookup("user_id", "sentinel-2").await;
    assert_eq!(event_count(&app, "maria").await, 3);

    // Undoing Ivan's phone merge keeps what his login claimed on the
    // tablet, and leaves the tablet's current session (Maria's) alone.
    let id = ivan["id"].as_str().unwrap_or_default();
    let (_, merges) = app.api_get(&format!("/api/v1/profiles/{id}/merges")).await;
    let merge = merges["data"][0]["id"].clone();
    let (status, body) = app
        .api_post(
            &format!("/api/v1/profiles/{id}/unmerge"),
            &json!({"merge_id": merge}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        event_count(&app, "ivan").await,
        5,
        "all but his phone's event"
    );
    app.send(vec![
        on_tablet("page", 322, None),
        json!({"type": "identify", "userId": "sentinel-3", "timestamp": at(400)}),
    ])
    .await;
    app.lookup("user_id", "sentinel-3").await;
    assert_eq!(
        event_count(&app, "maria").await,
        4,
        "the session went on with Maria"
    );
    assert_eq!(event_count(&app, "ivan").await, 5);
}

#[tokio::test]
async fn admins_change_the_rules_in_the_settings_form() {
    let app = spawn_app().await;
    let (client, _) = app.sign_in_as(seamline_core::Role::Admin).await;
    let page = client
        .get(app.url("/settings/identity"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    let csrf = hidden_value(&page, "csrf_token").expect("the form carries its token");
    let submit = |region: &'static str, minutes: &'static str| {
        client.post(app.url("/settings/identity")).form(&[
            ("csrf_token", csrf.as_str()),
            ("default_region", region),
            ("shared_device_session_minutes", minutes),
            ("limit_user_id", "1"),
            ("limit_loyalty_card", "1"),
            ("limit_email", "3"),
            ("limit_phone", "5"),
            ("block_list", "phone:+79000000000\n\n"),
        ])
    };
    let refused = submit("RU", "many").send().await.expect("post");
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.expect("html");
    assert!(
        html.contains("must be a whole number"),
        "the error is on the form"
    );
    assert!(
        html.contains("phone:+79000000000"),
        "what was typed is kept"
    );

    let saved = submit("kz", "20").send().await.expect("post");
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        saved.headers()["location"],
        "/settings/identity?done=saved",
        "back to the form with a notice"
    );
    let (_, rules) = app.api_get(RULES).await;
    assert_eq!(rules["default_region"], "KZ");
    assert_eq!(rules["shared_device_session_minutes"], 20);
    assert_eq!(rules["limits"]["email"], 3);
    assert_eq!(rules["block_list"], json!(["phone:+79000000000"]));
    assert_eq!(
        rules["fold_emails"], false,
        "an unticked box turns folding off"
    );

    let (analyst, _) = app.sign_in_as(seamline_core::Role::Analyst).await;
    let page = analyst
        .get(app.url("/settings/identity"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Owners and admins change these rules"));
    assert!(!page.contains("Save rules"));
    let token = hidden_value(&page, "csrf_token").expect("token");
    let forbidden = analyst
        .post(app.url("/settings/identity"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("default_region", "DE"),
            ("shared_device_session_minutes", "30"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(
        forbidden.status(),
        StatusCode::FORBIDDEN,
        "a hidden button is not the guard"
    );
    assert_eq!(app.api_get(RULES).await.1["default_region"], "KZ");
}
