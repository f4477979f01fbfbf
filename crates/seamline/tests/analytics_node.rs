//! Compatibility with the official Segment client for Node.js: the
//! `@segment/analytics-node` package from npm (pinned in
//! `tests/node/package.json` and `package-lock.json`), unmodified, sends one
//! call of each type to a running Seamline; the REST API must show all six
//! exactly as sent.
//!
//! Needs `node` and `npm`: without them the test skips loudly on a
//! developer's machine and fails under `CI=true`.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::{all_events, http, init, run, Server};

const NPM_CI_TIMEOUT: Duration = Duration::from_secs(300);
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// True when `tool --version` runs.
fn available(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Installs the locked client library unless it is there already.
fn install_client(dir: &Path) {
    if dir.join("node_modules/@segment/analytics-node").is_dir() {
        return;
    }
    let mut npm = Command::new("npm");
    npm.current_dir(dir).args(["ci", "--no-audit", "--no-fund"]);
    run(npm, NPM_CI_TIMEOUT).success("npm ci");
}

#[tokio::test]
async fn the_official_node_client_delivers_every_call_type() {
    if !available("node") || !available("npm") {
        seamline_testing::skip_or_fail(
            "node and npm are needed to run @segment/analytics-node against Seamline",
        );
        return;
    }
    let dir = node_dir();
    install_client(&dir);

    let data = tempfile::tempdir().expect("temp dir");
    let workspace = init(data.path());
    let server = Server::start(data.path(), &[]);

    let mut node = Command::new("node");
    node.current_dir(&dir)
        .arg("send.mjs")
        .env("SEAMLINE_HOST", &server.url)
        .env("SEAMLINE_WRITE_KEY", &workspace.write_key);
    let out = run(node, SEND_TIMEOUT);
    assert!(
        out.status.success(),
        "the client reported errors ({}):\nstdout:\n{}\nstderr:\n{}\nserver:\n{}",
        out.status,
        out.stdout,
        out.stderr,
        server.output()
    );
    let report: Value = serde_json::from_str(out.stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("send.mjs printed no report ({e}):\n{}", out.stdout));
    assert_eq!(report["errors"], json!([]), "{report}");
    let statuses = report["statuses"].as_array().expect("statuses");
    assert!(
        statuses.len() >= 2 && statuses.iter().all(|s| s == 200),
        "six calls with flushAt 5 take at least two requests, all answered 200: {report}"
    );
    let sent: HashMap<String, String> =
        serde_json::from_value(report["sent"].clone()).expect("sent: {type: messageId}");
    assert_eq!(sent.len(), 6, "{report}");

    let events = all_events(&http(), &server.url, &workspace.api_key).await;
    assert_eq!(
        events.len(),
        6,
        "exactly the six calls are stored: {events:#?}"
    );
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["messageId"].as_str().expect("messageId"), e))
        .collect();
    let event = |call: &str| -> &Value {
        let id = &sent[call];
        let event = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("the {call} call ({id}) is not stored: {events:#?}"));
        assert_eq!(event["type"], call, "{event:#}");
        assert_eq!(
            event["payload"]["context"]["library"]["name"], "@segment/analytics-node",
            "the payload is kept as the library sent it: {event:#}"
        );
        assert!(
            event["payload"].get("writeKey").is_none(),
            "the write key is not stored: {event:#}"
        );
        event
    };

    let identify = event("identify");
    assert_eq!(identify["userId"], "user-42");
    assert_eq!(identify["anonymousId"], "anon-7f3a");
    assert_eq!(
        identify["payload"]["traits"],
        json!({
            "name": "Алёна Щербакова",
            "city": "Санкт-Петербург",
            "bio": "Люблю кофе ☕ и котиков 🐈‍⬛",
            "email": "alena@example.com",
        })
    );

    let track = event("track");
    assert_eq!(track["userId"], "user-42");
    assert_eq!(track["anonymousId"], Value::Null);
    assert_eq!(track["event"], "Order Completed");
    assert_eq!(
        track["payload"]["properties"],
        json!({"order_id": "ord-1001", "revenue": 1490.5, "currency": "RUB", "coupon": "ВЕСНА-2024"})
    );
    let attribution = &track["enrichment"]["attribution"];
    assert_eq!(attribution["utm_source"], "yandex", "{track:#}");
    assert_eq!(attribution["utm_medium"], "cpc");
    assert_eq!(attribution["utm_campaign"], "spring_sale");
    assert_eq!(attribution["utm_term"], "кофе в зёрнах");
    assert_eq!(attribution["utm_content"], "banner_a");
    assert_eq!(
        track["payload"]["context"]["campaign"]["term"],
        "кофе в зёрнах"
    );

    let page = event("page");
    assert_eq!(page["anonymousId"], "anon-7f3a");
    assert_eq!(page["userId"], Value::Null);
    assert_eq!(page["name"], "Прайс-лист");
    assert_eq!(page["payload"]["category"], "Docs");
    assert_eq!(
        page["enrichment"]["attribution"]["page_url"],
        "https://shop.example/price"
    );

    let screen = event("screen");
    assert_eq!(screen["userId"], "user-42");
    assert_eq!(screen["name"], "Корзина");
    assert_eq!(screen["payload"]["properties"], json!({"items": 3}));

    let group = event("group");
    assert_eq!(group["userId"], "user-42");
    assert_eq!(group["payload"]["groupId"], "org-9");
    assert_eq!(
        group["payload"]["traits"],
        json!({"name": "ООО «Ромашка» 🌼", "employees": 12})
    );

    let alias = event("alias");
    assert_eq!(alias["userId"], "user-42");
    assert_eq!(alias["payload"]["previousId"], "anon-7f3a");
}
