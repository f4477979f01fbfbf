//! Browser test of `/settings/webhooks` in real headless Chromium (see
//! `browser.rs` for what it needs): an owner adds an endpoint and sees its
//! secret once, a reply reaches it, the delivery log shows it and sends it
//! again; screenshots `target/screenshots/webhooks.png` and `webhook-log.png`.

use crate::support::browser::Browser;
use crate::support::{spawn_app, TestApp, PASSWORD};
use axum::routing::post;
use axum::Router;
use reqwest::StatusCode;
use seamline_core::Role;
use serde_json::json;

/// A receiver that answers every POST with 200.
async fn receiver() -> String {
    let app = Router::new().route("/hook", post(|| async { "received" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

/// An operator's reply to a new customer, through the REST API.
async fn reply(app: &TestApp, body: &str) {
    app.track(
        "identify",
        &json!({"userId": "olga", "traits": {"name": "Ольга"}}),
    )
    .await;
    let profile = app.lookup("user_id", "olga").await;
    let path = format!(
        "/api/v1/profiles/{}/conversation",
        profile["id"].as_str().unwrap_or_default()
    );
    let (_, conversation) = app.api_get(&path).await;
    let id = conversation["id"].as_str().expect("conversation id");
    let (status, sent) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": body, "channel": "email", "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
}

#[tokio::test]
async fn an_owner_adds_an_endpoint_and_reads_its_delivery_log() {
    let app = spawn_app().await;
    let url = receiver().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings").await;
    browser.click("a[href='/settings/webhooks']").await;
    browser.wait_for_path("/settings/webhooks").await;

    browser
        .fill("#add-webhook input[name=url]", "ftp://nope.example")
        .await;
    browser.submit_direct("#add-webhook").await;
    let error = browser.text("#add-webhook .form-error").await;
    assert!(error.contains("http or https"), "{error}");

    browser.fill("#add-webhook input[name=url]", &url).await;
    browser
        .fill("#add-webhook input[name=description]", "CRM <sync>")
        .await;
    browser.click("#add-webhook button[type=submit]").await;
    browser.wait_for("#webhook-secret").await;
    let secret = browser.text("#new-webhook-secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(browser.text("table.webhooks").await.contains("CRM <sync>"));
    // A second endpoint nobody answers, to show a failure in the list.
    app.api_post(
        "/api/v1/webhooks",
        &json!({"url": "http://127.0.0.1:9/down", "events": ["message.created"], "description": "Old ERP"}),
    )
    .await;
    browser.open(&app, "/settings/webhooks").await;
    browser.wait_for("table.webhooks").await;
    assert!(
        !browser.exists("#webhook-secret").await,
        "the secret is shown once"
    );
    assert!(!browser.text("main").await.contains(&secret));

    reply(&app, "Ваш заказ едет <b>завтра</b>").await;
    let row = browser.row("table.webhooks tbody tr", "CRM <sync>").await;
    row.find(fantoccini::Locator::Css("a"))
        .await
        .expect("log link")
        .click()
        .await
        .expect("open the log");
    browser.wait_for("table.deliveries").await;
    for _ in 0..100 {
        if browser.count("table.deliveries tbody tr").await == 3
            && browser
                .texts("table.deliveries .status")
                .await
                .iter()
                .all(|s| s == "succeeded")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        browser.open(&app, &browser.path().await).await;
    }
    let statuses = browser.texts("table.deliveries .status").await;
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded"]);
    assert!(browser.text("table.deliveries").await.contains("HTTP 200"));
    browser.screenshot("webhook-log").await;

    browser
        .click("table.deliveries tbody tr:first-child button[type=submit]")
        .await;
    browser.wait_for_text(".flash", "Sending it again").await;
    browser.open(&app, "/settings/webhooks").await;
    browser.wait_for("table.webhooks").await;
    browser.screenshot("webhooks").await;
    let down = browser.row("table.webhooks tbody tr", "Old ERP").await;
    down.find(fantoccini::Locator::Css("a"))
        .await
        .expect("log link")
        .click()
        .await
        .expect("open the log");
    browser
        .wait_for_text("table.deliveries .status", "failed")
        .await;
    assert!(browser
        .text("table.deliveries")
        .await
        .contains("could not connect"));
    browser.screenshot("webhook-log-failed").await;
    browser.assert_no_alert().await;

    // A supervisor looks without the buttons.
    let supervisor = app.add_member(Role::Supervisor).await;
    browser.post_form("/logout", &[]).await;
    browser.sign_in(&app, &supervisor, PASSWORD).await;
    browser.open(&app, "/settings/webhooks").await;
    browser.wait_for("table.webhooks").await;
    assert!(!browser.exists("#add-webhook").await);
    assert!(!browser.exists("table.webhooks form").await);
    browser.close().await;
}
