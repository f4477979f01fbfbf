//! Browser test of a call in the inbox, in real headless Chromium: the
//! fake PBX reports an answered call with a recording, and the operator's
//! thread shows the call and plays the recording (an `<audio>` whose file
//! loads and decodes).

use std::net::SocketAddr;
use std::time::Duration;

use crate::support::browser::Browser;
use crate::support::{spawn_app, PASSWORD};
use reqwest::StatusCode;
use seamline_fakes::pbx::{FakePbx, Script};
use serde_json::json;

#[tokio::test]
async fn an_operator_plays_a_calls_recording_in_the_thread() {
    let app = spawn_app().await;
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
        talk_s: 42,
        ivr: vec![("main".into(), "1".into())],
    };
    for event in pbx.inbound_call("+79161234567", "+74951112233", &script) {
        assert_eq!(pbx.post(&url, &event).await.expect("posted"), 200);
    }
    let profile = app.lookup("phone", "+79161234567").await;
    let pid = profile["id"].as_str().expect("profile");
    let (_, conversation) = app
        .api_get(&format!("/api/v1/profiles/{pid}/conversation"))
        .await;
    let id = conversation["id"].as_str().expect("conversation");

    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &app.owner_email(), PASSWORD).await;
    browser.open(&app, &format!("/inbox?c={id}")).await;
    browser.wait_for("#messages audio[controls]").await;
    let said = browser.texts(".msg.inbound .body").await.join("\n");
    assert!(
        said.contains("Incoming call from +79161234567 to +74951112233, answered by 101"),
        "{said}"
    );
    assert!(said.contains("Call recording (0:42)"), "{said}");
    let src = browser
        .attr("#messages audio", "src")
        .await
        .expect("the audio has a src");
    assert!(src.starts_with("/api/v1/attachments/"), "{src}");
    // The file loads and decodes: the element learns its duration.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let duration = loop {
        let state = browser
            .client
            .execute(
                "const a = document.querySelector('#messages audio'); return [a.readyState, a.duration, a.error ? a.error.code : null];",
                vec![],
            )
            .await
            .expect("audio state");
        if state[0].as_u64().unwrap_or(0) >= 1 {
            break state[1].as_f64().unwrap_or(0.0);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recording did not load: {state}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        (0.4..0.6).contains(&duration),
        "half a second of audio: {duration}"
    );
    browser.screenshot("inbox-call-recording").await;
    browser.assert_no_alert().await;
    browser.close().await;
}
