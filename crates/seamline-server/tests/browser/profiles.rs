//! Browser tests of the profiles UI: search, one person's page, undoing a
//! merge, consent, shared devices, conflicts, roles and erasure, in real
//! headless Chromium (see `browser.rs` for what it needs).
//!
//! Events go in through the tracking API; profiles are resolved a moment
//! later by the identity worker, so every test first waits (bounded) until
//! they are.

use crate::support::browser::{text, Browser};
use crate::support::{resolved, spawn_app, urlencode, TestApp, PASSWORD};
use seamline_core::Role;
use seamline_server::demo;
use serde_json::{json, Value};

/// Olga browses the menu on her phone, leaves her e-mail and phone, then
/// logs in on the desktop with the same e-mail and buys.
fn phone_then_desktop() -> Vec<Value> {
    vec![
        json!({"type": "page", "anonymousId": "phone-cookie", "name": "Меню",
               "properties": {"url": "https://utro.example/menu?utm_source=yandex&utm_medium=cpc"},
               "timestamp": "2024-05-01T08:00:00Z"}),
        json!({"type": "identify", "anonymousId": "phone-cookie",
               "traits": {"email": "Olga@Example.ru", "phone": "8 916 123-45-67", "name": "Ольга Смирнова"},
               "timestamp": "2024-05-01T08:01:00Z"}),
        json!({"type": "page", "anonymousId": "desktop-cookie", "name": "Корзина", "timestamp": "2024-05-02T09:59:00Z"}),
        json!({"type": "identify", "anonymousId": "desktop-cookie", "userId": "olga-1987",
               "traits": {"email": "olga@example.ru "}, "timestamp": "2024-05-02T10:00:00Z"}),
        json!({"type": "track", "anonymousId": "desktop-cookie", "userId": "olga-1987", "event": "Order Completed",
               "properties": {"order_id": "w1", "revenue": 340.5, "currency": "RUB"}, "timestamp": "2024-05-02T10:05:00Z"}),
    ]
}

/// A server with Olga's story resolved, and her profile's id.
async fn olga() -> (TestApp, String) {
    let app = spawn_app().await;
    app.send(phone_then_desktop()).await;
    app.settled(5).await;
    let id = app.lookup("user_id", "olga-1987").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    (app, id)
}

fn profile_path(id: &str) -> String {
    format!("/profiles/{id}")
}

/// Olga's profile open in a browser signed in as a member with `role`;
/// none when there is no browser (the test is skipped).
async fn on_olgas_profile(role: Role) -> Option<(TestApp, String, Browser)> {
    let (app, id) = olga().await;
    let email = match role {
        Role::Owner => app.owner_email(),
        other => app.add_member(other).await,
    };
    let browser = Browser::start().await?;
    browser.sign_in(&app, &email, PASSWORD).await;
    browser.open(&app, &profile_path(&id)).await;
    Some((app, id, browser))
}

#[tokio::test]
async fn a_phone_typed_any_way_finds_the_person_and_undo_splits_the_merge() {
    let (app, id) = olga().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.click("nav a[href='/profiles']").await;
    browser.wait_for_path("/profiles").await;
    assert_eq!(browser.count("#profiles tbody tr").await, 1);

    // The phone as people type it finds the profile stored as +7…
    browser.fill("#q", "8 (916) 123 45 67").await;
    browser.click("form.search button[type=submit]").await;
    browser
        .wait_for_path("/profiles?q=8+%28916%29+123+45+67")
        .await;
    let rows = browser.texts("#profiles tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    for shown in [
        "Ольга Смирнова",
        "olga@example.ru",
        "+7 916 123-45-67",
        "olga-1987",
        "340.50 ₽",
    ] {
        assert!(rows[0].contains(shown), "{shown} in {:?}", rows[0]);
    }
    browser.screenshot("profiles-search").await;

    // The profile page: every identifier of both devices, and the merge.
    browser.click("#profiles tbody td.person a").await;
    browser.wait_for_path(&profile_path(&id)).await;
    assert_eq!(browser.text("#profile-name").await, "Ольга Смирнова");
    let identifiers = browser.texts("#identifiers tbody tr").await;
    assert_eq!(identifiers.len(), 5, "{identifiers:?}");
    for value in [
        "phone-cookie",
        "desktop-cookie",
        "olga@example.ru",
        "+7 916 123-45-67",
        "olga-1987",
    ] {
        assert!(
            identifiers.iter().any(|row| row.contains(value)),
            "{value} in {identifiers:?}"
        );
    }
    assert_eq!(browser.text("#order-count").await, "1");
    assert_eq!(browser.text("#revenue").await, "340.50 ₽");
    let merges = browser.texts("#merges li.merge").await;
    assert_eq!(merges.len(), 1, "{merges:?}");
    assert!(
        merges[0].contains("Merged via Anonymous id desktop-cookie"),
        "{merges:?}"
    );
    assert!(merges[0].contains("automatically"), "{merges:?}");
    let timeline = browser.texts("#timeline-rows tr").await;
    assert_eq!(timeline.len(), 5);
    assert!(
        timeline[0].contains("Order Completed") && timeline[0].contains("340.50 ₽"),
        "newest first: {timeline:?}"
    );
    assert!(
        timeline[4].contains("yandex / cpc"),
        "the source: {timeline:?}"
    );
    browser.screenshot("profile-merged").await;

    // A link to the absorbed profile shows the one it is part of now.
    let merges = app
        .api_get(&format!("/api/v1/profiles/{id}/merges"))
        .await
        .1;
    let absorbed = merges["data"][0]["absorbed"].as_str().expect("absorbed");
    browser.open(&app, &profile_path(absorbed)).await;
    browser
        .wait_for_path(&format!("{}?from={absorbed}", profile_path(&id)))
        .await;
    assert_eq!(
        browser.text(".flash").await,
        format!("Profile {absorbed} was merged into this one.")
    );

    // Undo asks first, then splits the profile in two.
    browser.click("#merges form.undo button").await;
    browser.accept_confirm().await;
    browser
        .wait_for_text(
            ".flash",
            "Merge undone: the profile was split in two. Open the other profile",
        )
        .await
        .expect("a notice");
    let after = browser.texts("#identifiers tbody tr").await;
    assert!(after.len() < identifiers.len(), "{after:?}");
    assert_eq!(
        browser.count("#merges li.merge.undone").await,
        1,
        "the merge is marked undone"
    );
    assert!(!browser.exists("#merges form.undo").await);
    let moved = ["phone-cookie", "desktop-cookie", "olga-1987"]
        .into_iter()
        .find(|value| !after.iter().any(|row| row.contains(value)))
        .expect("an identifier went to the other profile");

    // The other person is found on their own.
    let other = browser
        .attr("#other-profile", "href")
        .await
        .expect("a link to the other profile");
    assert_ne!(other, profile_path(&id));
    browser
        .open(&app, &format!("/profiles?q={}", urlencode(moved)))
        .await;
    let link = browser.find("#profiles tbody td.person a").await;
    assert_eq!(browser.count("#profiles tbody tr").await, 1);
    assert_eq!(link.attr("href").await.expect("href"), Some(other));
    browser.close().await;
}

#[tokio::test]
async fn consent_is_recorded_with_its_wording_and_errors_show_inline() {
    let Some((app, id, browser)) = on_olgas_profile(Role::Owner).await else {
        return;
    };
    assert_eq!(
        browser.text("#consent .empty-inline").await,
        "Nothing recorded. Without a recorded yes, no marketing is sent."
    );

    // A server-side refusal is shown next to the form, with what was typed.
    browser.select("#consent-form [name=channel]", "sms").await;
    browser
        .click("#consent-form [name=answer][value=withdrawn]")
        .await;
    browser.fill("#consent-form [name=wording]", " ").await;
    browser.submit_direct("#consent-form").await;
    let error = browser.wait_for("#consent-form .form-error").await;
    assert_eq!(
        text(&error).await,
        "Wording: say where it was given and the words shown."
    );
    assert_eq!(browser.value("#consent-form [name=channel]").await, "sms");
    assert_eq!(
        browser
            .attr("#consent-form [name=wording]", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );

    let wording = "<b>STOP</b> — просит не присылать SMS";
    browser.fill("#consent-form [name=wording]", wording).await;
    browser
        .click("#consent-form [name=answer][value=withdrawn]")
        .await;
    browser.click("#consent-form button[type=submit]").await;
    browser
        .wait_for_text(".flash", "Consent recorded.")
        .await
        .expect("a notice");
    let answer = browser
        .text("#consent li.consent[data-purpose=marketing][data-channel=sms]")
        .await;
    assert!(answer.contains("withdrawn"), "{answer}");
    assert!(answer.contains("operator"), "the source: {answer}");
    assert!(answer.contains(wording), "the wording, as text: {answer}");
    assert!(!browser.exists("#consent b").await, "no markup from it");
    let consent = app
        .api_get(&format!("/api/v1/profiles/{id}/consent"))
        .await
        .1;
    assert_eq!(consent["current"][0]["granted"], false);
    assert_eq!(consent["current"][0]["wording"], wording);
    browser.screenshot("profile-consent").await;
    browser.close().await;
}

#[tokio::test]
async fn a_shared_tablet_is_marked_and_conflicts_are_reviewed() {
    let app = spawn_app().await;
    app.send(vec![
        json!({"type": "identify", "anonymousId": "family-tablet", "userId": "ivan", "traits": {"name": "Иван"}}),
        json!({"type": "identify", "anonymousId": "family-tablet", "userId": "maria", "traits": {"name": "Мария"}}),
        json!({"type": "page", "anonymousId": "family-tablet", "name": "Детское меню"}),
        json!({"type": "identify", "userId": "u1", "traits": {"email": "one@example.ru"}}),
        json!({"type": "identify", "userId": "u2", "traits": {"phone": "+79160000001"}}),
        json!({"type": "identify", "anonymousId": "form", "traits": {"email": "one@example.ru", "phone": "+79160000001"}}),
    ])
    .await;
    app.settled(6).await;
    app.eventually("/api/v1/conflicts", |b| {
        b["data"].as_array().is_some_and(|d| {
            d.iter().any(|c| {
                c["via"]["value"] == "one@example.ru" || c["via"]["value"] == "+79160000001"
            })
        })
    })
    .await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;

    // Two people, one tablet: it stays with the first, marked as shared.
    browser.open(&app, "/profiles?q=family-tablet").await;
    assert_eq!(browser.count("#profiles tbody tr").await, 1);
    browser.click("#profiles tbody td.person a").await;
    browser.wait_for("#profile-name").await;
    assert_eq!(browser.text("#profile-name").await, "Иван");
    let tablet = browser
        .text("#identifiers tr[data-kind=anonymous_id]")
        .await;
    assert!(tablet.contains("family-tablet"), "{tablet}");
    assert!(tablet.contains("shared device"), "{tablet}");
    browser.screenshot("profile-shared-tablet").await;
    browser.open(&app, "/profiles?q=maria").await;
    let rows = browser.texts("#profiles tbody tr").await;
    assert_eq!(rows.len(), 1, "Мария is a profile of her own: {rows:?}");
    assert!(rows[0].contains("Мария"), "{rows:?}");

    // The list links to the conflicts with their count.
    browser.open(&app, "/profiles").await;
    let open = app.api_get("/api/v1/conflicts").await.1["data"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(browser.text("#review-link .count").await, open.to_string());
    browser.click("#review-link").await;
    browser.wait_for_path("/conflicts").await;
    let row = browser.row("#conflicts tbody tr", "one@example.ru").await;
    let row_text = text(&row).await;
    assert!(row_text.contains("+7 916 000-00-01"), "{row_text}");
    assert!(
        row_text.contains("Each has a different user id"),
        "{row_text}"
    );
    browser.screenshot("conflicts").await;

    // Merging two people with different user ids is refused, in words.
    row.find(fantoccini::Locator::LinkText("one@example.ru"))
        .await
        .expect("a link to the profile")
        .click()
        .await
        .expect("click");
    browser.wait_for("#conflicts li.conflict").await;
    browser.click("#conflicts form.merge-anyway button").await;
    browser.accept_confirm().await;
    let error = browser.wait_for("#conflicts li.conflict .form-error").await;
    assert_eq!(
        text(&error).await,
        "Both profiles have a different user id: they are two people."
    );
    browser.screenshot("profile-merge-refused").await;

    // Dismissing closes the conflict; the list is then empty.
    browser.click("#conflicts form.dismiss button").await;
    browser
        .wait_for_text(".flash", "Conflict dismissed: the profiles stay apart.")
        .await
        .expect("a notice");
    assert!(!browser.exists("#conflicts").await);
    browser.open(&app, "/conflicts").await;
    if open == 1 {
        assert!(browser.exists("#no-conflicts").await);
    } else {
        assert!(!text(&browser.find("main").await)
            .await
            .contains("one@example.ru"));
    }
    browser.close().await;
}

#[tokio::test]
async fn an_analyst_reads_a_profile_but_changes_nothing() {
    let Some((app, id, browser)) = on_olgas_profile(Role::Analyst).await else {
        return;
    };
    assert_eq!(browser.text("#profile-name").await, "Ольга Смирнова");
    assert_eq!(
        browser.count("#merges li.merge").await,
        1,
        "merges are listed"
    );
    for absent in ["#merges form", "#consent-form", "#erase", "#export"] {
        assert!(!browser.exists(absent).await, "{absent} is not shown");
    }
    browser.screenshot("profile-analyst").await;

    // The timeline pages back through older events.
    let views: Vec<Value> = (0..25)
        .map(|i| {
            json!({"type": "track", "userId": "olga-1987", "event": "Product Viewed",
                        "properties": {"product_id": format!("p{i}")}})
        })
        .collect();
    app.send(views).await;
    app.settled(30).await;
    browser.client.refresh().await.expect("reload");
    assert_eq!(browser.count("#timeline-rows tr").await, 25);
    browser.click("#older-events").await;
    browser.wait_for("#timeline").await;
    let older = browser.texts("#timeline-rows tr").await;
    assert_eq!(older.len(), 5, "{older:?}");
    assert!(older[0].contains("Order Completed"), "{older:?}");
    browser.click("#timeline .pager a.quiet").await;
    browser.wait_for_path(&profile_path(&id)).await;
    assert_eq!(browser.count("#timeline-rows tr").await, 25);

    // Hand-made posts with the session's valid CSRF token are refused.
    let merges = app
        .api_get(&format!("/api/v1/profiles/{id}/merges"))
        .await
        .1;
    let merge_id = merges["data"][0]["id"]
        .as_str()
        .expect("a merge")
        .to_owned();
    let posts: [(String, Vec<(&str, &str)>); 3] = [
        (
            format!("/profiles/{id}/unmerge"),
            vec![("merge_id", &merge_id)],
        ),
        (
            format!("/profiles/{id}/consent"),
            vec![
                ("purpose", "marketing"),
                ("channel", "any"),
                ("answer", "granted"),
                ("source", "operator"),
                ("wording", "yes"),
            ],
        ),
        (format!("/profiles/{id}/erase"), vec![]),
    ];
    for (path, fields) in &posts {
        assert_eq!(browser.post_form(path, fields).await, 403, "{path}");
    }
    let merges = app
        .api_get(&format!("/api/v1/profiles/{id}/merges"))
        .await
        .1;
    assert!(merges["data"][0]["undone_at"].is_null(), "not undone");
    let consent = app
        .api_get(&format!("/api/v1/profiles/{id}/consent"))
        .await
        .1;
    assert_eq!(consent["history"], json!([]), "nothing recorded");
    assert_eq!(app.lookup("user_id", "olga-1987").await["id"], id.as_str());
    browser.close().await;
}

#[tokio::test]
async fn an_owner_exports_and_erases_a_person() {
    let Some((app, id, browser)) = on_olgas_profile(Role::Owner).await else {
        return;
    };

    // The export link downloads the API's document with the session.
    assert_eq!(
        browser.attr("#export", "download").await,
        Some(format!("profile-{id}.json"))
    );
    let exported = browser
        .client
        .execute_async(
            r#"const done = arguments[0];
               fetch(document.getElementById("export").href)
                 .then(r => r.json()).then(d => done([d.profile.id, d.events.length]), e => done(String(e)));"#,
            vec![],
        )
        .await
        .expect("fetch the export");
    assert_eq!(exported, json!([id, 5]));

    browser.click("#erase button").await;
    browser.accept_confirm().await;
    browser
        .wait_for_text(".flash", "Personal data erased.")
        .await
        .expect("a notice");
    assert!(browser.exists("#erased").await, "the page says so");
    assert_eq!(browser.text("#profile-name").await, "Erased profile");
    assert!(!browser.exists("#consent-form").await, "nothing to record");
    assert_eq!(browser.count("#identifiers tbody tr").await, 0);
    assert!(!browser.exists("#erase").await && !browser.exists("#export").await);
    let page = browser.client.source().await.expect("source");
    for gone in ["olga@example.ru", "Ольга", "olga-1987", "916"] {
        assert!(!page.contains(gone), "{gone} is still shown");
    }
    browser.screenshot("profile-erased").await;

    browser
        .open(
            &app,
            &format!("/profiles?q={}", urlencode("olga@example.ru")),
        )
        .await;
    assert!(browser.exists("#no-profiles").await, "no longer found");
    browser.close().await;
}

#[tokio::test]
async fn screenshots_of_profiles_with_demo_data() {
    let app = spawn_app().await;
    let demo = demo::seed(app.store.as_ref(), 100)
        .await
        .expect("demo data")
        .expect("a new demo workspace");
    resolved(app.store.as_ref(), demo.workspace.id).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser
        .sign_in(&app, demo::DEMO_EMAIL, demo::DEMO_PASSWORD)
        .await;
    browser.open(&app, "/profiles").await;
    assert_eq!(browser.count("#profiles tbody tr").await, 50, "a full page");
    assert!(browser.exists("#next-page").await);
    browser.screenshot("profiles").await;

    browser.click("#next-page").await;
    browser.wait_for("#profiles").await;
    assert!(browser.path().await.contains("cursor="));
    assert!(browser.count("#profiles tbody tr").await > 0);

    browser.open(&app, "/profiles?q=89161234567").await;
    browser.click("#profiles tbody td.person a").await;
    browser.wait_for("#profile-name").await;
    assert_eq!(browser.text("#profile-name").await, "Ольга Смирнова");
    // Phone and desktop merged; her Telegram chat joins too, by a merge
    // or by attaching, whichever the worker and the inbox did first.
    let merges = browser.count("#merges form.undo").await;
    assert!((1..=2).contains(&merges), "{merges} merges");
    browser.screenshot("profile").await;
    browser.screenshot_full("profile").await;

    browser.open(&app, "/profiles?q=maria-k").await;
    browser.click("#profiles tbody td.person a").await;
    browser.wait_for("#profile-name").await;
    browser.screenshot("profile-tablet").await;
    browser.open(&app, "/conflicts").await;
    let conflict = browser.text("#conflicts tbody tr").await;
    assert!(
        conflict.contains("Сергей Петров") && conflict.contains("Анна Петрова"),
        "{conflict}"
    );
    browser.screenshot("conflicts-demo").await;
    browser.close().await;
}
