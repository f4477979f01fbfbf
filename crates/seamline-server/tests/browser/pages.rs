//! The core pages: signing in, events, profiles lists, settings and the
//! main screenshots.

use crate::support::browser::{text, Browser};
use crate::support::{spawn_app, TestApp, PASSWORD};
use fantoccini::Locator;
use seamline_core::Role;
use seamline_server::demo;
use seamline_store::KeyKind;
use serde_json::json;

// ---------------------------------------------------------------- the tests

#[tokio::test]
async fn signing_in_shows_errors_and_lands_on_events() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };

    browser.open(&app, "/events").await;
    assert_eq!(
        browser.path().await,
        "/login",
        "signed-out pages go to the login"
    );

    browser.fill("#email", &app.owner_email()).await;
    browser.fill("#password", "not the password").await;
    browser.click("form button[type=submit]").await;
    let error = browser.wait_for(".login-card [role=alert]").await;
    assert_eq!(text(&error).await, "Wrong e-mail or password.");
    assert_eq!(browser.path().await, "/login");
    assert_eq!(
        browser.value("#email").await,
        app.owner_email(),
        "the e-mail is kept"
    );
    browser.screenshot("login-error").await;

    browser.fill("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/events").await;
    assert_eq!(browser.text("h1").await, "Events");
    assert_eq!(browser.text(".who .email").await, app.owner_email());
    browser.screenshot("events-empty").await;
    browser.close().await;
}

#[tokio::test]
async fn event_stream_shows_new_events_live_as_text() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    assert!(
        browser.exists("#no-events").await,
        "an empty state at first"
    );
    browser.wait_until_live().await;

    let name = "<img src=x onerror=alert(1)>Борщ 🥟";
    let (status, body) = app
        .track(
            "track",
            &json!({"userId": "guest-7", "event": name, "messageId": "m-live-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let cell = browser
        .wait_for_text("#event-rows td.name", name)
        .await
        .expect("the new event appears without reloading");
    assert_eq!(
        cell.html(true).await.expect("inner html"),
        "&lt;img src=x onerror=alert(1)&gt;Борщ 🥟",
        "customer text is shown as text"
    );
    assert!(
        !browser.exists("#event-rows img").await,
        "no element made from it"
    );
    assert!(
        !browser.exists("#no-events").await,
        "the empty state goes away"
    );
    assert_eq!(browser.text("#event-rows td.user").await, "guest-7");
    assert_eq!(browser.text("#event-count").await, "1", "the count follows");
    browser.assert_no_alert().await;

    // The server-rendered table escapes it the same way.
    browser.client.refresh().await.expect("reload");
    let cell = browser.wait_for("#event-rows td.name").await;
    assert_eq!(text(&cell).await, name);
    assert!(!browser.exists("#event-rows img").await);
    browser.close().await;
}

#[tokio::test]
async fn settings_create_and_revoke_keys_add_members_and_sign_out() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings").await;

    // A secret key is shown once, in full, and then only by its prefix.
    browser
        .fill("#create-key [name=name]", "Reports <script>")
        .await;
    browser.select("#create-key [name=kind]", "secret").await;
    browser.click("#create-key button[type=submit]").await;
    let secret = text(&browser.wait_for("#new-key-secret").await).await;
    assert!(secret.starts_with("sk_") && secret.len() > 20, "{secret:?}");
    browser.screenshot("settings-new-key").await;
    assert_eq!(
        api_status(&app, &secret).await,
        200,
        "the shown secret works"
    );
    browser.open(&app, "/settings").await;
    assert!(!browser.exists("#new-key-secret").await);
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains(&secret), "the secret is not shown again");
    assert!(
        source.contains("Reports &lt;script&gt;"),
        "key names are escaped"
    );

    // Revoking asks first, then marks the key and stops it working.
    let row = browser.row("#keys tbody tr", "Reports <script>").await;
    row.find(Locator::Css("button.danger"))
        .await
        .expect("revoke button")
        .click()
        .await
        .expect("click revoke");
    browser.accept_confirm().await;
    browser.wait_for(".flash").await;
    let row = browser.row("#keys tbody tr", "Reports <script>").await;
    let status_cell = row
        .find(Locator::Css(".status"))
        .await
        .expect("status cell");
    assert_eq!(text(&status_cell).await, "revoked");
    assert!(row.find(Locator::Css("button.danger")).await.is_err());
    assert_eq!(
        api_status(&app, &secret).await,
        401,
        "a revoked key is refused"
    );

    // Adding a member: a server-side validation error is shown inline, with
    // what was typed kept (the browser's own checks are bypassed here).
    browser.fill("#add-member [name=name]", "Ana Lyst").await;
    browser
        .fill("#add-member [name=email]", "ana@example.test")
        .await;
    browser.fill("#add-member [name=password]", "short").await;
    browser.select("#add-member [name=role]", "analyst").await;
    browser.submit_direct("#add-member").await;
    let error = browser.wait_for("#add-member .form-error").await;
    assert!(
        text(&error).await.contains("at least 8 characters"),
        "{}",
        text(&error).await
    );
    assert_eq!(browser.path().await, "/settings/members");
    assert_eq!(
        browser.value("#add-member [name=email]").await,
        "ana@example.test"
    );
    assert_eq!(browser.value("#add-member [name=role]").await, "analyst");
    assert_eq!(
        browser
            .attr("#add-member [name=password]", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    browser.screenshot_full("settings-form-error").await;

    browser
        .fill("#add-member [name=password]", "analyst-pass-1")
        .await;
    browser.click("#add-member button[type=submit]").await;
    browser.wait_for_path("/settings?done=member-added").await;
    let row = browser.row("#members tbody tr", "ana@example.test").await;
    let role = row.find(Locator::Css(".role")).await.expect("role badge");
    assert_eq!(text(&role).await, "analyst");
    let stored = members(&app).await;
    assert!(stored
        .iter()
        .any(|(email, role)| email == "ana@example.test" && *role == Role::Analyst));

    // The same e-mail again is refused with a clear message, not JSON.
    browser
        .fill("#add-member [name=email]", "ANA@example.test")
        .await;
    browser
        .fill("#add-member [name=password]", "another-pass-2")
        .await;
    browser.click("#add-member button[type=submit]").await;
    let error = browser.wait_for("#add-member .form-error").await;
    assert_eq!(
        text(&error).await,
        "A member with this e-mail already exists."
    );

    // Signing out ends the session.
    browser.click(".who button[type=submit]").await;
    browser.wait_for_path("/login").await;
    browser.open(&app, "/settings").await;
    assert_eq!(browser.path().await, "/login");
    browser.close().await;
}

#[tokio::test]
async fn an_analyst_sees_no_keys_and_cannot_add_members() {
    let app = spawn_app().await;
    let email = app.add_member(Role::Analyst).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &email, PASSWORD).await;
    browser.open(&app, "/settings").await;
    assert_eq!(browser.text(".who .role").await, "analyst");
    assert!(browser.exists("#members").await, "members are listed");
    assert!(!browser.exists("#keys").await, "no keys section");
    assert!(!browser.exists("#add-member").await, "no add-member form");
    assert!(
        !browser.exists("#members form").await,
        "no role or remove buttons"
    );
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains("wk_") && !source.contains("sk_"));
    browser.screenshot("settings-analyst").await;

    // A hand-made post with the session's valid CSRF token is refused.
    let before = members(&app).await.len();
    let status = browser
        .post_form(
            "/settings/members",
            &[
                ("email", "sneaky@example.test"),
                ("password", "sneaky-pass-1"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(members(&app).await.len(), before, "no member was added");
    let status = browser
        .post_form("/settings/keys", &[("name", "mine"), ("kind", "secret")])
        .await;
    assert_eq!(status, 403);
    let keys = app.store.list_keys(app.workspace.workspace.id).await;
    let secret_keys = keys
        .expect("keys")
        .into_iter()
        .filter(|k| k.kind == KeyKind::Secret)
        .count();
    assert_eq!(secret_keys, 1, "no key was made");
    browser.close().await;
}

#[tokio::test]
async fn screenshots_of_the_main_pages_with_demo_data() {
    let app = spawn_app().await;
    demo::seed(app.store.as_ref(), 50).await.expect("demo data");
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&app, "/login").await;
    browser.screenshot("login").await;

    browser
        .sign_in(&app, demo::DEMO_EMAIL, demo::DEMO_PASSWORD)
        .await;
    browser.wait_until_live().await;
    let rows = browser
        .client
        .find_all(Locator::Css("#event-rows tr"))
        .await
        .expect("rows");
    assert!(
        rows.len() >= 50,
        "the demo events are listed: {}",
        rows.len()
    );
    browser.screenshot("events").await;

    browser.select("form.filters [name=type]", "page").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_path("/events?type=page&user_id=").await;
    let badges = browser
        .client
        .find_all(Locator::Css("#event-rows .badge"))
        .await
        .expect("badges");
    assert!(!badges.is_empty());
    for badge in badges {
        assert_eq!(text(&badge).await, "page", "the filter applies");
    }

    browser.open(&app, "/settings").await;
    browser.screenshot("settings").await;
    browser.screenshot_full("settings").await;
    browser.close().await;
}

// ---------------------------------------------------------------- the server

async fn members(app: &TestApp) -> Vec<(String, Role)> {
    let members = app.store.list_members(app.workspace.workspace.id).await;
    members
        .expect("members")
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect()
}

/// The status of a REST call made with `secret`.
async fn api_status(app: &TestApp, secret: &str) -> u16 {
    let response = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("api call");
    response.status().as_u16()
}
