//! Browser test of the operator inbox, in real headless Chromium (see
//! `browser.rs` for what it needs): a customer's message shows as text.

use crate::support::browser::Browser;
use crate::support::{spawn_app, PASSWORD};
use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_server::inbox::{receive, Customer, Inbound};

#[tokio::test]
async fn an_operator_sees_the_customers_message_as_text() {
    let app = spawn_app().await;
    let body = "Здравствуйте! Где мой заказ? <script>alert(1)</script>";
    let received = receive(
        app.store.as_ref(),
        app.bus.as_ref(),
        Inbound {
            workspace: app.workspace.workspace.id,
            channel: Channel::Telegram,
            customer: Customer {
                channel_id: Some(("telegram".into(), "4242".into())),
                phone: Some("+79161234567".into()),
                name: Some("Ольга".into()),
                ..Customer::default()
            },
            body: body.to_owned(),
            external_id: Some("tg-1".into()),
            at: Utc::now(),
        },
    )
    .await
    .expect("received");
    let id = received.message.conversation.conversation.id;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, &format!("/inbox?c={id}")).await;
    browser.wait_for("#messages").await;
    browser.screenshot("inbox").await;
    let shown = browser.text(".msg.inbound .body").await;
    assert!(shown.contains("Где мой заказ?"), "the message: {shown}");
    assert!(
        shown.contains("<script>"),
        "customer markup shows as text: {shown}"
    );
    browser.assert_no_alert().await;
    browser.close().await;
}
