//! Browser test of the site widget, in real headless Chromium (see
//! `support/browser.rs` for what it needs): on the preview page a visitor
//! opens the launcher menu, requests a callback and chats; the operator
//! finds the callback in the inbox. Screenshots: `widget-settings`,
//! `widget-menu`, `widget-callback`, `widget-chat`.

use crate::support::browser::Browser;
use crate::support::{spawn_app, PASSWORD};
use chrono::Utc;
use futures::StreamExt;
use seamline_bus::SubscriptionKind;
use seamline_core::inbox::routing::Presence;
use serde_json::{json, Value};

#[tokio::test]
async fn a_visitor_requests_a_callback_and_it_lands_in_the_inbox() {
    let app = spawn_app().await;
    let (status, saved) = app
        .api_put(
            "/api/v1/settings/widget",
            &json!({
                "title": "Ask Tea Shop", "greeting": "We answer within minutes, 9:00–21:00",
                "accent_color": "#0b7285",
                "buttons": {"chat": true, "callback": true, "whatsapp": "+7 916 123-45-67", "telegram": "teashop_bot"},
            }),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{saved}");
    let ws = app.workspace.workspace.id;
    app.store
        .set_presence(ws, app.workspace.owner.id, Presence::Online, Utc::now())
        .await
        .expect("online");

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings/widget").await;
    browser.wait_for("#widget-settings").await;
    let snippet = browser.text("#widget-snippet").await;
    assert!(snippet.contains(&app.workspace.write_key), "{snippet}");
    browser.screenshot_full("widget-settings").await;

    // The visitor opens the launcher: chat, call me back, messengers.
    browser.open(&app, "/settings/widget/preview").await;
    assert!(
        browser
            .wait_for_text("#sl-launch", "Ask Tea Shop")
            .await
            .is_some(),
        "the launcher shows the configured title"
    );
    browser.click("#sl-launch").await;
    browser.wait_for("#sl-menu:not([hidden])").await;
    let items = browser.texts("#sl-menu .sl-item").await;
    assert_eq!(items, ["Chat", "Call me back", "WhatsApp", "Telegram"]);
    let telegram = browser
        .attr("#sl-menu a.sl-item[href*='t.me']", "href")
        .await
        .unwrap_or_default();
    assert!(
        telegram.starts_with("https://t.me/teashop_bot?start="),
        "{telegram}"
    );
    browser.screenshot("widget-menu").await;

    // A callback request.
    browser
        .row("#sl-menu .sl-item", "Call me back")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for("#sl-callback:not([hidden])").await;
    browser
        .fill("#sl-callback input[name=phone]", "8 916 555-12-34")
        .await;
    browser.fill("#sl-callback input[name=name]", "Ольга").await;
    browser.click("#sl-callback button[type=submit]").await;
    assert!(
        browser
            .wait_for_text("#sl-callback .sl-done", "Thank you! We will call you back.")
            .await
            .is_some(),
        "the visitor is told the request went through"
    );
    browser.screenshot("widget-callback").await;

    // And a chat, answered by the operator.
    browser.click("#sl-close").await;
    browser.click("#sl-launch").await;
    browser
        .row("#sl-menu .sl-item", "Chat")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for("#sl-chat:not([hidden])").await;
    let mut bus = app
        .bus
        .subscribe("inbox.>", SubscriptionKind::Broadcast)
        .await
        .expect("subscribe");
    browser
        .fill("#sl-input", "Do you have oolong in stock?")
        .await;
    browser.click("#sl-send").await;
    browser
        .wait_for("#sl-log .sl-inbound:not(.sl-pending)")
        .await;
    let profile = app.lookup("phone", "+79165551234").await;
    let (_, conversation) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/conversation",
            profile["id"].as_str().unwrap_or_default()
        ))
        .await;
    let id = conversation["id"]
        .as_str()
        .expect("a conversation")
        .to_owned();
    let (status, _) = app
        .api_post(
            &format!("/api/v1/conversations/{id}/messages"),
            &json!({"body": "Yes! Tie Guan Yin and Da Hong Pao.", "author_id": app.workspace.owner.id}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED);
    assert!(
        browser
            .wait_for_text("#sl-log .sl-outbound", "Yes! Tie Guan Yin and Da Hong Pao.")
            .await
            .is_some(),
        "the answer shows live"
    );
    // The operator types, then reads: the visitor sees both.
    let (status, _) = app
        .api_post(&format!("/api/v1/conversations/{id}/typing"), &json!({}))
        .await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    assert!(
        browser
            .wait_for_text("#sl-typing", "Operator is typing…")
            .await
            .is_some(),
        "the typing indicator shows"
    );
    let (status, _) = app
        .api_post(&format!("/api/v1/conversations/{id}/read"), &json!({}))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(
        browser
            .wait_for_text(".sl-read-mark", "Read")
            .await
            .is_some(),
        "the visitor's message is marked read"
    );
    browser.screenshot("widget-chat").await;

    // What the visitor's widget told the operators meanwhile: typing once
    // for a whole sentence typed within 3 s, and that the answer was read.
    let mut said = Vec::new();
    while let Ok(Some(delivery)) =
        tokio::time::timeout(std::time::Duration::from_millis(300), bus.next()).await
    {
        let frame: Value = serde_json::from_slice(&delivery.message.payload).expect("JSON");
        if frame["party"] == "visitor" {
            said.push(frame["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(said, ["typing", "read"], "the visitor's signals");

    // The operator's inbox has the callback, labelled, high priority.
    browser.open(&app, "/inbox").await;
    browser
        .wait_for(&format!("#conversations li[data-conversation='{id}']"))
        .await;
    browser.open(&app, &format!("/inbox?c={id}")).await;
    browser.wait_for("#messages").await;
    let said = browser.texts(".msg.inbound .body").await;
    assert!(
        said.iter()
            .any(|m| m == "Callback requested: +79165551234 (Ольга), as soon as possible"),
        "{said:?}"
    );
    assert_eq!(conversation["priority"], "high");
    browser.screenshot("widget-inbox").await;
    browser.assert_no_alert().await;
    browser.close().await;
}

#[tokio::test]
async fn with_nobody_online_the_visitor_leaves_a_message_and_is_told_how_the_answer_comes() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings/widget/preview").await;
    browser.wait_for("#sl-root[data-ready]").await;
    browser.click("#sl-launch").await;
    browser.wait_for("#sl-menu:not([hidden])").await;
    browser
        .row("#sl-menu .sl-item", "Leave a message")
        .await
        .click()
        .await
        .expect("click");
    browser.wait_for("#sl-contact:not([hidden])").await;
    browser.fill("#sl-contact input[name=name]", "Ольга").await;
    browser
        .fill(
            "#sl-contact textarea[name=body]",
            "Is the shop open on Sunday?",
        )
        .await;
    browser.click("#sl-contact button[type=submit]").await;
    assert!(
        browser
            .wait_for_text(
                "#sl-contact .sl-error",
                "an e-mail or a phone number, so that we can answer"
            )
            .await
            .is_some(),
        "the form says what is missing"
    );
    browser
        .fill("#sl-contact input[name=email]", "olga@example.com")
        .await;
    browser.click("#sl-contact button[type=submit]").await;
    assert!(
        browser
            .wait_for_text(
                "#sl-contact .sl-done",
                "Thank you! We will answer by e-mail to olga@example.com."
            )
            .await
            .is_some(),
        "the visitor is told how the answer comes"
    );
    browser.screenshot("widget-offline").await;
    let profile = app.lookup("email", "olga@example.com").await;
    let (_, conversation) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/conversation",
            profile["id"].as_str().unwrap_or_default()
        ))
        .await;
    assert_eq!(conversation["reply_channel"], "email", "{conversation}");
    browser.close().await;
}

#[tokio::test]
async fn the_pre_chat_form_comes_before_the_first_message_and_the_chat_follows() {
    let app = spawn_app().await;
    let (status, _) = app
        .api_put(
            "/api/v1/settings/widget",
            &json!({"buttons": {"callback": false}, "prechat": {"name": "required", "phone": "optional"}}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let ws = app.workspace.workspace.id;
    app.store
        .set_presence(ws, app.workspace.owner.id, Presence::Online, Utc::now())
        .await
        .expect("online");
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings/widget/preview").await;
    // Only the chat is on: the launcher opens it straight away, the form
    // first.
    browser.wait_for("#sl-root[data-ready]").await;
    browser.click("#sl-launch").await;
    browser.wait_for("#sl-contact:not([hidden])").await;
    browser.fill("#sl-contact input[name=name]", "Ольга").await;
    browser
        .fill("#sl-contact input[name=phone]", "+7 916 700-00-01")
        .await;
    browser
        .fill(
            "#sl-contact textarea[name=body]",
            "Hello! Do you ship to Kazan?",
        )
        .await;
    browser.screenshot("widget-prechat").await;
    browser.click("#sl-contact button[type=submit]").await;
    browser.wait_for("#sl-chat:not([hidden])").await;
    assert!(
        browser
            .wait_for_text("#sl-log .sl-inbound", "Hello! Do you ship to Kazan?")
            .await
            .is_some(),
        "the first message opens the chat"
    );
    let profile = app.lookup("phone", "+79167000001").await;
    assert_eq!(
        profile["id"],
        app.lookup("anonymous_id", &visitor(&browser).await).await["id"]
    );
    // A reload: the chat again, no second form.
    browser.open(&app, "/settings/widget/preview").await;
    browser.wait_for("#sl-root[data-ready]").await;
    browser.click("#sl-launch").await;
    browser.wait_for("#sl-chat:not([hidden])").await;
    assert!(browser
        .wait_for_text("#sl-log .sl-inbound", "Hello! Do you ship to Kazan?")
        .await
        .is_some());
    browser.close().await;
}

/// The visitor's anonymous id, as the widget keeps it.
async fn visitor(browser: &Browser) -> String {
    let id = browser
        .client
        .execute(
            "return JSON.parse(localStorage.getItem('ajs_anonymous_id'));",
            vec![],
        )
        .await
        .expect("the visitor id");
    id.as_str().expect("a string").to_owned()
}
