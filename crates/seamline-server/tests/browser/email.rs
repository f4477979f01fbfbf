//! The channels settings page adds an e-mail mailbox in headless Chromium
//! against a real Dovecot and the SMTP sink: the form's fields, the
//! connection check logging into both, passwords never shown. Screenshot:
//! `target/screenshots/settings-channel-email.png`.

use crate::support::browser::{text, Browser};
use crate::support::{spawn_app, PASSWORD};

#[path = "../api/email/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;
#[path = "../api/email/sink.rs"]
#[allow(dead_code)]
mod sink;

#[tokio::test]
async fn an_owner_adds_a_mailbox_from_the_settings_page() {
    let Some(imap) = dovecot::Dovecot::start() else {
        return;
    };
    let smtp = sink::Sink::start().await;
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings/channels").await;
    let (imap_port, smtp_port) = (imap.port.to_string(), smtp.addr.port().to_string());
    let fields = [
        ("name", "Support mail"),
        ("from_address", "support@shop.example"),
        ("from_name", "Shop"),
        ("reply_domain", "reply.shop.example"),
        ("imap_host", "127.0.0.1"),
        ("imap_port", &imap_port),
        ("imap_tls", "none"),
        ("imap_user", dovecot::USER),
        ("imap_password", dovecot::PASSWORD),
        ("smtp_host", "127.0.0.1"),
        ("smtp_port", &smtp_port),
        ("smtp_tls", "none"),
        ("smtp_password", "unused-smtp-secret"),
    ];
    for (name, value) in fields {
        browser
            .fill(&format!("#add-email input[name={name}]"), value)
            .await;
    }
    browser.click("#add-email button[type=submit]").await;
    browser.wait_for("tr[data-channel]").await;
    browser
        .click("tr[data-channel] form[action$='/test'] button")
        .await;
    assert!(
        browser
            .wait_for_text("tr[data-channel] .status", "connected")
            .await
            .is_some(),
        "the mailbox connected: {}",
        imap.log()
    );
    let table = text(&browser.find("table.channels").await).await;
    for hidden in [dovecot::PASSWORD, "unused-smtp-secret"] {
        assert!(!table.contains(hidden), "{hidden} is never shown: {table}");
    }
    assert!(table.contains("Support mail"), "{table}");
    browser.assert_no_alert().await;
    browser.screenshot("settings-channel-email").await;
}
