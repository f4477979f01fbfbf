//! The channels settings page in headless Chromium: a Telegram bot added
//! through the form against the fake Bot API, tested, shown with its token
//! masked and its webhook URL to copy; then replies in the inbox show
//! whether they went out. Screenshots: `target/screenshots/settings-channels.png`,
//! `inbox-delivery-status.png`.

use std::net::SocketAddr;

use crate::support::browser::{text, Browser};
use crate::support::{spawn_app, PASSWORD};
use seamline_fakes::telegram::{Failure, FakeTelegram};

const TOKEN: &str = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0";

#[tokio::test]
async fn an_owner_connects_a_telegram_bot_from_the_settings_page() {
    let app = spawn_app().await;
    let fake = FakeTelegram::start(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("fake Telegram");
    fake.add_bot(TOKEN);
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings").await;
    browser.click("a[href='/settings/channels']").await;
    browser.wait_for_path("/settings/channels").await;
    assert_eq!(browser.text("h1").await, "Channels");

    // A malformed token is refused by field, nothing added.
    browser
        .fill("#add-telegram input[name=bot_token]", "nope")
        .await;
    browser.click("#add-telegram button[type=submit]").await;
    browser.wait_for("#add-telegram [role=alert]").await;
    assert_eq!(browser.count("tr[data-channel]").await, 0);

    browser
        .fill("#add-telegram input[name=name]", "Магазин <b>бот</b>")
        .await;
    browser
        .fill("#add-telegram input[name=bot_token]", TOKEN)
        .await;
    browser
        .fill("#add-telegram input[name=api_base]", fake.base_url())
        .await;
    browser.click("#add-telegram button[type=submit]").await;
    browser.wait_for("tr[data-channel]").await;
    browser
        .click("tr[data-channel] form[action$='/test'] button")
        .await;
    let status = browser
        .wait_for_text("tr[data-channel] .status", "connected")
        .await;
    assert!(status.is_some(), "the connection check passed");
    let row = text(&browser.find("tr[data-channel]").await).await;
    assert!(row.contains("Магазин <b>бот</b>"), "names are text: {row}");
    assert!(row.contains("@seamline_fake_bot"), "{row}");
    assert!(row.contains("••••m9T0"), "{row}");
    assert!(!row.contains("AAHfiqks"), "the token never shows: {row}");
    let url = browser.text("tr[data-channel] code.secret").await;
    let (hook, _) = fake.webhook(TOKEN).expect("webhook set");
    assert_eq!(url, hook, "the URL shown is the one the bot posts to");
    browser.assert_no_alert().await;
    browser.screenshot("settings-channels").await;

    // A customer writes; the operator's first reply hits a blocked bot, the
    // second goes out: the thread shows both outcomes, live.
    let update = fake.text_update(4242, "Ольга", "Где мой заказ?");
    fake.deliver(TOKEN, &update).await.expect("delivered");
    let profile = app.lookup("telegram", "4242").await;
    let (_, conversation) = app
        .api_get(&format!(
            "/api/v1/profiles/{}/conversation",
            profile["id"].as_str().expect("id")
        ))
        .await;
    let id = conversation["id"].as_str().expect("conversation");
    browser.open(&app, &format!("/inbox?c={id}")).await;
    browser.wait_for("#messages .msg.inbound").await;
    fake.fail_next([Failure::Blocked]);
    browser.fill("#reply-body", "Уже в пути").await;
    browser.click("#reply button[value=\"reply\"]").await;
    let failed = browser
        .wait_for_text(
            "#messages .msg.outbound .delivery.failed",
            "not delivered: Forbidden: bot was blocked by the user",
        )
        .await;
    assert!(failed.is_some(), "the failure shows with its reason");
    browser.fill("#reply-body", "Попробуем ещё раз").await;
    browser.click("#reply button[value=\"reply\"]").await;
    browser
        .wait_for_text("#messages .msg.outbound .delivery.sent", "sent")
        .await
        .expect("the second reply is sent");
    assert_eq!(fake.delivered().len(), 1);
    browser.assert_no_alert().await;
    browser.screenshot("inbox-delivery-status").await;
    browser.close().await;
}
