//! The chatbot in real headless Chromium (see `browser.rs` for what it
//! needs): an owner sets up a team and its bot flow on /settings/teams (a
//! broken flow is refused next to the field), the bot collects a phone
//! from a Telegram customer and hands off, and the operator sees on /inbox
//! what it collected.

use crate::support::browser::Browser;
use crate::support::{spawn_app, TestApp, PASSWORD};
use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_core::inbox::routing::Presence;
use seamline_server::inbox::{receive, Customer, Inbound, Received};
use serde_json::json;

fn flow(next: &str) -> String {
    json!({
        "start": "menu",
        "steps": {
            "menu": {"type": "buttons", "text": "How can we help?",
                     "buttons": [{"label": "Delivery", "next": "faq"},
                                 {"label": "A person", "next": next}]},
            "faq": {"type": "faq", "answers": [{"keywords": ["when"], "text": "In 2 days."}],
                    "otherwise": "phone"},
            "phone": {"type": "ask", "field": "phone", "prompt": "Your phone?", "next": "human"},
            "human": {"type": "hand_off", "text": "Connecting you to a person."}
        }
    })
    .to_string()
}

async fn write(app: &TestApp, body: &str, external: &str) -> Received {
    receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), "777".into())),
                name: Some("Ольга".into()),
                ..Customer::default()
            },
            body: body.into(),
            external_id: Some(external.into()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received")
}

#[tokio::test]
async fn the_bot_collects_a_phone_hands_off_and_the_operator_sees_what_it_collected() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings").await;
    browser.click("a[href='/settings/teams']").await;
    browser.wait_for_path("/settings/teams").await;

    browser.fill("#new-team input[name=name]", "Support").await;
    browser.click("#new-team button[type=submit]").await;
    browser.wait_for(".team-form").await;
    browser.click("form.add-member button").await;
    browser.wait_for("table.team-members").await;

    browser
        .click(".team-form input[name='channel.telegram']")
        .await;
    browser
        .fill(
            ".team-form textarea[name=greeting]",
            "Hello! This is Seamline.",
        )
        .await;
    browser
        .fill(".team-form textarea[name=flow]", &flow("nowhere"))
        .await;
    browser.click(".team-form button[type=submit]").await;
    let refused = browser
        .wait_for(".team-form .field.flow .field-error")
        .await;
    let said = crate::support::browser::text(&refused).await;
    assert!(
        said.contains("bots.flow.steps.menu.buttons[1].next") && said.contains("nowhere"),
        "the error names the field: {said}"
    );
    assert_eq!(
        browser
            .attr(".team-form textarea[name=flow]", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    assert!(
        browser
            .value(".team-form textarea[name=greeting]")
            .await
            .contains("Seamline"),
        "what was typed is kept"
    );
    browser.screenshot_full("teams-error").await;

    browser
        .fill(".team-form textarea[name=flow]", &flow("phone"))
        .await;
    browser.click(".team-form button[type=submit]").await;
    browser.wait_for(".flash").await;
    assert!(!browser.exists(".field-error").await);
    browser.screenshot_full("teams").await;

    let ws = app.workspace.workspace.id;
    app.store
        .set_presence(ws, app.workspace.owner.id, Presence::Online, Utc::now())
        .await
        .expect("online");
    let first = write(&app, "hi", "tg-1").await;
    assert_eq!(first.assigned, None, "the bot has the conversation");
    write(&app, "2", "tg-2").await;
    let handed = write(&app, "8 916 123-45-67", "tg-3").await;
    assert_eq!(handed.assigned, Some(app.workspace.owner.id));

    let id = handed.message.conversation.conversation.id;
    browser.open(&app, &format!("/inbox?c={id}")).await;
    browser.wait_for("#messages").await;
    let events = browser.texts(".msg.event").await;
    assert!(
        events
            .iter()
            .any(|e| e.contains("Bot handed off: phone +79161234567")),
        "the operator sees what the bot collected: {events:?}"
    );
    let bot = browser.texts(".msg.bot .body").await;
    assert_eq!(
        bot.first().map(String::as_str),
        Some("Hello! This is Seamline.")
    );
    assert!(bot.iter().any(|b| b.contains("Your phone?")), "{bot:?}");
    browser.screenshot("inbox-bot").await;
    browser.assert_no_alert().await;
    browser.close().await;
}
