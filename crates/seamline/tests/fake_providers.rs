//! `seamline dev fake-providers` as a new user meets it: the real `serve`
//! and the fakes as two processes; a WhatsApp number and a PBX are
//! connected with what the fakes print, then a customer is played writing
//! and calling, and both land in the inbox.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{http, printed_key, seamline, Server, START_TIMEOUT};

/// What `serve` and the fakes print right after they listen.
const PRINTED_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a played message or call may take to reach the inbox.
const LANDING_TIMEOUT: Duration = Duration::from_secs(15);

/// `seamline dev fake-providers` with every fake on a free port.
fn fakes() -> Server {
    let mut command = seamline();
    command.args(["dev", "fake-providers"]);
    for fake in ["telegram", "whatsapp", "viber", "vk", "pbx"] {
        command.args([format!("--{fake}-listen"), "127.0.0.1:0".into()]);
    }
    let mut fakes = Server::spawn(command);
    fakes.wait_for_stdout("Fake PBX at", START_TIMEOUT);
    fakes
}

/// The value after `label` on the first line the fakes printed with it.
fn printed(fakes: &mut Server, label: &str) -> String {
    printed_key(&fakes.wait_for_stdout(label, PRINTED_TIMEOUT), label)
}

/// The fake's own address (where its `/_fake/…` routes are) from a URL
/// it printed.
fn root(url: &str) -> String {
    let after_scheme = url.trim_start_matches("http://");
    let host = after_scheme.split('/').next().unwrap_or(after_scheme);
    format!("http://{host}")
}

async fn post(client: &reqwest::Client, url: &str, key: Option<&str>, body: &Value) -> Value {
    let mut request = client.post(url).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("reading the answer");
    assert!(status.is_success(), "POST {url}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {url}: {e}: {text}"))
}

async fn get(client: &reqwest::Client, url: &str, key: &str) -> Value {
    let response = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let text = response.text().await.expect("reading the answer");
    assert_eq!(status, 200, "GET {url}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: {e}: {text}"))
}

/// Creates a channel account and tests it; returns its webhook URL.
async fn connect(client: &reqwest::Client, server: &Server, key: &str, account: Value) -> String {
    let created = post(client, &server.at("/api/v1/channels"), Some(key), &account).await;
    let id = created["id"].as_str().expect("a channel id");
    let tested = post(
        client,
        &server.at(&format!("/api/v1/channels/{id}/test")),
        Some(key),
        &json!({}),
    )
    .await;
    assert_eq!(tested["status"], "connected", "{tested}");
    tested["webhook_url"]
        .as_str()
        .expect("a webhook URL")
        .to_owned()
}

/// Every message body in the inbox, through the conversations API.
async fn inbox_bodies(client: &reqwest::Client, server: &Server, key: &str) -> Vec<String> {
    let page = get(client, &server.at("/api/v1/conversations?limit=100"), key).await;
    let mut bodies = Vec::new();
    for conversation in page["data"].as_array().into_iter().flatten() {
        let id = conversation["id"].as_str().expect("a conversation id");
        let url = server.at(&format!(
            "/api/v1/conversations/{id}/messages?limit=100&order=oldest"
        ));
        let messages = get(client, &url, key).await;
        bodies.extend(
            messages["data"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m["body"].as_str().map(str::to_owned)),
        );
    }
    bodies
}

/// Waits until a message body in the inbox contains `needle`.
async fn lands(client: &reqwest::Client, server: &Server, key: &str, needle: &str) {
    let deadline = Instant::now() + LANDING_TIMEOUT;
    loop {
        let bodies = inbox_bodies(client, server, key).await;
        if bodies.iter().any(|b| b.contains(needle)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never reached the inbox: {bodies:?}\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_played_whatsapp_customer_and_caller_land_in_the_inbox() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start(data.path(), &[]);
    let key = printed_key(
        &server.wait_for_stdout("API key:", PRINTED_TIMEOUT),
        "API key:",
    );
    let mut fakes = fakes();
    let client = http();

    let graph = printed(&mut fakes, "Graph API URL:");
    let verify = printed(&mut fakes, "verify token:");
    let app_secret = printed(&mut fakes, "app secret:");
    let number = printed(&mut fakes, "phone number id:");
    let account = json!({"kind": "whatsapp", "name": "Shop WhatsApp",
        "settings": {"api_base": graph, "phone_number_id": number},
        "secrets": {"access_token": printed(&mut fakes, "access token:"),
                    "app_secret": app_secret, "verify_token": verify}});
    let webhook = connect(&client, &server, &key, account).await;
    let whatsapp = root(&graph);
    post(
        &client,
        &format!("{whatsapp}/_fake/whatsapp/subscribe"),
        None,
        &json!({"url": webhook, "verify_token": verify, "app_secret": app_secret}),
    )
    .await;
    let written = post(
        &client,
        &format!("{whatsapp}/_fake/whatsapp/messages"),
        None,
        &json!({"phone_number_id": number, "from": "79161234567",
                "name": "Анна", "text": "Здравствуйте, где мой заказ?"}),
    )
    .await;
    assert_eq!(written["status"], 200, "{written}");
    lands(&client, &server, &key, "Здравствуйте, где мой заказ?").await;

    let pbx = printed(&mut fakes, "PBX API URL:");
    let account = json!({"kind": "phone", "name": "Office",
        "settings": {"api_base": pbx},
        "secrets": {"api_key": printed(&mut fakes, "API key:"),
                    "api_salt": printed(&mut fakes, "API salt:")}});
    let webhook = connect(&client, &server, &key, account).await;
    post(
        &client,
        &format!("{pbx}/_fake/pbx/webhook"),
        None,
        &json!({"url": webhook}),
    )
    .await;
    let called = post(
        &client,
        &format!("{pbx}/_fake/pbx/calls"),
        None,
        &json!({"from": "79031112233", "to": "74951234567"}),
    )
    .await;
    assert!(called["call_id"].is_string(), "{called}");
    lands(
        &client,
        &server,
        &key,
        "Incoming call from +79031112233 to +74951234567, answered by 101",
    )
    .await;
    lands(&client, &server, &key, "Call recording (0:42)").await;
}
