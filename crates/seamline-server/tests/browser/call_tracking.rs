//! Browser test of call tracking, in real headless Chromium: a customer's
//! site (served from another origin, as a real site would be) embeds the
//! widget script; a visitor landing from a Yandex ad sees a tracking
//! number in place of the site's phone, in the marked element, in plain
//! text and in the `tel:` link; when they call it the settings page counts
//! the call under their source; and an open page keeps its number by
//! heartbeat past the tail. Screenshot: `call-tracking-full`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use reqwest::StatusCode;
use seamline_fakes::pbx::{FakePbx, Script};
use serde_json::json;

use crate::support::browser::{Browser, PATIENCE};
use crate::support::{spawn_app, TestApp, PASSWORD};

/// A shop's page with its phone three ways, and the widget embedded.
fn site(app: &TestApp) -> String {
    format!(
        r#"<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Кофейня «Утро»</title></head>
<body>
  <header>Звоните: <a class="phone" id="header-phone" href="tel:+74950001122">+7 (495) 000-11-22</a></header>
  <p id="footer">Бронь столиков по телефону 8 495 000 11 22, ежедневно.</p>
  <p id="other">Доставка: +7 (495) 999-88-77</p>
  <a id="footer-link" href="tel:84950001122">Позвонить</a>
  <script src="{}/widget.js" data-key="{}" async></script>
</body></html>"#,
        app.base, app.workspace.write_key
    )
}

async fn serve_site(page: String) -> String {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let app = Router::new().route("/", get(move || async move { Html(page.clone()) }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// Waits for the widget to put a tracking number on the page; returns it.
async fn number_on_page(browser: &Browser) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(number) = browser.attr("html", "data-seamline-number").await {
            return number;
        }
        assert!(Instant::now() < deadline, "no tracking number on the page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_visitor_sees_a_tracking_number_and_their_call_is_counted_under_their_ad() {
    let app = spawn_app().await;
    for number in ["+74951112201", "+74951112202"] {
        let (status, body) = app
            .api_post("/api/v1/call-tracking/numbers", &json!({"number": number}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = app
        .api_post(
            "/api/v1/call-tracking/numbers",
            &json!({"number": "+74951112250", "kind": "static",
                    "source": {"label": "Билборд на Тверской"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .api_put(
            "/api/v1/call-tracking/settings",
            &json!({"selector": ".phone", "site_phone": "+7 495 000-11-22",
                    "default_number": "+7 495 111-22-99"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let site = serve_site(site(&app)).await;

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .client
        .goto(&format!(
            "{site}/?utm_source=yandex&utm_medium=cpc&utm_campaign=spring"
        ))
        .await
        .expect("open the site");
    let number = number_on_page(&browser).await;
    assert!(
        ["+74951112201", "+74951112202"].contains(&number.as_str()),
        "{number}"
    );
    let shown = format!("+7 (495) 111-22-{}", &number[10..]);
    assert_eq!(browser.text("#header-phone").await, shown);
    assert_eq!(
        browser.attr("#header-phone", "href").await.as_deref(),
        Some(format!("tel:{number}").as_str())
    );
    assert_eq!(
        browser.text("#footer").await,
        format!("Бронь столиков по телефону {shown}, ежедневно.")
    );
    assert_eq!(
        browser.attr("#footer-link", "href").await.as_deref(),
        Some(format!("tel:{number}").as_str()),
        "a tel: link with the site's phone in another format"
    );
    assert_eq!(
        browser.text("#other").await,
        "Доставка: +7 (495) 999-88-77",
        "other numbers stay"
    );
    browser.assert_no_alert().await;

    // Another visitor holds the other number; a third finds the pool full.
    for (visitor, kind) in [("visitor-boris", "pool"), ("visitor-vera", "default")] {
        let answer: serde_json::Value = app
            .http
            .post(app.url("/widget/v1/number"))
            .json(
                &json!({"key": app.workspace.write_key, "anonymousId": visitor,
                          "source": {"utm_source": "google", "utm_medium": "cpc"}}),
            )
            .send()
            .await
            .expect("ask")
            .json()
            .await
            .expect("json");
        assert_eq!(answer["kind"], kind, "{answer}");
    }

    // The visitor calls the number they saw.
    let pbx = FakePbx::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "key-0123456789",
        "salt-0123456789",
    )
    .await
    .expect("fake PBX");
    let (status, created) = app
        .api_post(
            "/api/v1/channels",
            &json!({"kind": "phone", "settings": {"api_base": pbx.base_url()},
                    "secrets": {"api_key": "key-0123456789", "api_salt": "salt-0123456789"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let url = created["webhook_url"].as_str().expect("url").to_owned();
    let script = Script {
        answered_by: Some("101".into()),
        talk_s: 0,
        ivr: vec![],
    };
    for event in pbx.inbound_call("+79161234567", &number, &script) {
        assert_eq!(pbx.post(&url, &event).await.expect("posted"), 200);
    }

    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, "/settings").await;
    browser.click("a[href='/settings/call-tracking']").await;
    browser.wait_for_path("/settings/call-tracking").await;
    assert_eq!(browser.text("#calls-total").await, "1");
    assert_eq!(browser.text("#pool-misses").await, "1");
    let chart = browser.text("#calls-by-source").await;
    assert!(chart.contains("yandex / cpc · spring"), "{chart}");
    let rows = browser.texts("#numbers tbody tr").await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("static → Билборд на Тверской")),
        "{rows:?}"
    );
    assert_eq!(
        rows.iter().filter(|r| r.contains("held")).count(),
        2,
        "{rows:?}"
    );
    browser.screenshot_full("call-tracking").await;
    browser.close().await;
}

#[tokio::test]
async fn an_open_page_keeps_its_number_by_heartbeat_past_the_tail() {
    let app = spawn_app().await;
    let (status, body) = app
        .api_post(
            "/api/v1/call-tracking/numbers",
            &json!({"number": "+74951112201"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .api_put(
            "/api/v1/call-tracking/settings",
            &json!({"tail_s": 5, "site_phone": "+7 495 000-11-22"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let site = serve_site(site(&app)).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .client
        .goto(&format!("{site}/?utm_source=vk"))
        .await
        .expect("open the site");
    assert_eq!(number_on_page(&browser).await, "+74951112201");
    let (_, first) = app.api_get("/api/v1/call-tracking/numbers").await;
    let holder = first["data"][0]["held_by"].clone();
    assert_eq!(first["data"][0]["state"], "held", "{first}");
    // Twice the tail later the page is still open, so the number is still its.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (_, later) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(later["data"][0]["state"], "held", "{later}");
    assert_eq!(
        later["data"][0]["held_by"]["anonymous_id"],
        holder["anonymous_id"]
    );
    assert!(
        later["data"][0]["held_by"]["until"].as_str() > holder["until"].as_str(),
        "the heartbeat moved the tail on: {holder} then {later}"
    );
    // Closed, it lapses after the tail.
    browser.close().await;
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (_, closed) = app.api_get("/api/v1/call-tracking/numbers").await;
    assert_eq!(closed["data"][0]["state"], "free", "{closed}");
}
