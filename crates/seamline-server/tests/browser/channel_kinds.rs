//! The channels settings page adds WhatsApp, Viber, VK and phone accounts in
//! headless Chromium against the fake providers: each form's fields, the
//! connection check, secrets masked. Screenshot:
//! `target/screenshots/settings-channel-kinds.png`.

use std::net::SocketAddr;

use crate::support::browser::{text, Browser};
use crate::support::{spawn_app, PASSWORD};
use seamline_fakes::pbx::FakePbx;
use seamline_fakes::viber::FakeViber;
use seamline_fakes::vk::FakeVk;
use seamline_fakes::whatsapp::FakeWhatsApp;

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Fills `form`'s inputs and submits it.
async fn add(browser: &Browser, form: &str, fields: &[(&str, &str)]) {
    for (name, value) in fields {
        browser
            .fill(&format!("#{form} input[name={name}]"), value)
            .await;
    }
    browser.click(&format!("#{form} button[type=submit]")).await;
}

#[tokio::test]
async fn an_owner_adds_whatsapp_viber_vk_and_a_phone_line_from_the_settings_page() {
    let app = spawn_app().await;
    let whatsapp = FakeWhatsApp::start(any_port()).await.expect("fake");
    whatsapp.add_number(
        "106540352242922",
        "EAAGfakeWhatsAppAccessToken01",
        "15550001234",
    );
    let viber = FakeViber::start(any_port()).await.expect("fake");
    viber.add_bot("445da6az1s345z78-dazcczb2542zv51a", "Seamline Shop");
    let vk = FakeVk::start(any_port()).await.expect("fake");
    vk.add_group(218_000_001, "vk1.a.fakeCommunityToken0123", "a1b2c3d4");
    let (pbx_key, pbx_salt) = ("pbx-key-0123456", "pbx-salt-6543210");
    let pbx = FakePbx::start(any_port(), pbx_key, pbx_salt)
        .await
        .expect("fake");
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings/channels").await;

    // A phone number id that is not one is refused by field.
    add(
        &browser,
        "add-whatsapp",
        &[
            ("phone_number_id", "abc"),
            ("access_token", "x"),
            ("app_secret", "y"),
            ("verify_token", "z"),
        ],
    )
    .await;
    browser.wait_for("#add-whatsapp [role=alert]").await;
    assert_eq!(browser.count("tr[data-channel]").await, 0);

    add(
        &browser,
        "add-whatsapp",
        &[
            ("name", "WhatsApp магазина"),
            ("phone_number_id", "106540352242922"),
            ("access_token", "EAAGfakeWhatsAppAccessToken01"),
            ("app_secret", "0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
            ("verify_token", "seamline-verify-4711"),
            ("api_base", whatsapp.base_url()),
        ],
    )
    .await;
    browser.wait_for("tr[data-channel]").await;
    add(
        &browser,
        "add-viber",
        &[
            ("auth_token", "445da6az1s345z78-dazcczb2542zv51a"),
            ("api_base", viber.base_url()),
        ],
    )
    .await;
    browser.wait_for("tr[data-channel]:nth-child(2)").await;
    add(
        &browser,
        "add-vk",
        &[
            ("group_id", "218000001"),
            ("access_token", "vk1.a.fakeCommunityToken0123"),
            ("secret", "s3cr3t-callback-key"),
            ("api_base", vk.base_url()),
        ],
    )
    .await;
    browser.wait_for("tr[data-channel]:nth-child(3)").await;
    add(
        &browser,
        "add-phone",
        &[
            ("name", "Телефон офиса"),
            ("api_key", pbx_key),
            ("api_salt", pbx_salt),
            ("api_base", pbx.base_url()),
        ],
    )
    .await;
    browser.wait_for("tr[data-channel]:nth-child(4)").await;
    assert_eq!(browser.count("tr[data-channel]").await, 4);

    for row in 1..=4 {
        let button = format!("tr[data-channel]:nth-child({row}) form[action$='/test'] button");
        browser.click(&button).await;
        let status = format!("tr[data-channel]:nth-child({row}) .status");
        assert!(
            browser.wait_for_text(&status, "connected").await.is_some(),
            "row {row} connected"
        );
    }
    let table = text(&browser.find("table.channels").await).await;
    for hidden in [
        "EAAGfake",
        "445da6az",
        "vk1.a.fake",
        "s3cr3t",
        "0f1e2d3c",
        pbx_key,
        pbx_salt,
    ] {
        assert!(!table.contains(hidden), "{hidden} is never shown: {table}");
    }
    assert!(table.contains("WhatsApp магазина"), "{table}");
    assert!(table.contains("+15550001234 Seamline fake shop"), "{table}");
    assert!(table.contains("Магазин (fake)"), "{table}");
    assert!(table.contains("Телефон офиса"), "{table}");
    browser.assert_no_alert().await;
    browser.screenshot("settings-channel-kinds").await;
}
