//! Outbound webhooks end to end: a real server on an ephemeral port, and a
//! real receiving HTTP server on another that records what it gets and can
//! be told to fail. Retries are made fast through the server's config.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use reqwest::{Client, Method, StatusCode};
use seamline_bus::{Bus, InProcessBus};
use seamline_server::provision::{self, Provisioned};
use seamline_server::webhooks::WebhookConfig;
use seamline_server::{Application, ServerConfig};
use seamline_store::{Backend, Store};
use seamline_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::postgres::{nats_bus, nats_options, FreshDatabase};
use crate::support::{read, urlencode, PASSWORD};

/// What the receiver got: one POST.
#[derive(Debug, Clone)]
struct Request {
    headers: HeaderMap,
    body: String,
}

impl Request {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// An HTTP server standing in for a customer's endpoint.
#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Request>>>,
    /// Answers 500 while this is above zero, counting down.
    fail_next: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(fail_first: usize) -> Self {
        let receiver = Receiver {
            url: String::new(),
            got: Arc::default(),
            fail_next: Arc::new(AtomicUsize::new(fail_first)),
        };
        let state = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let state = state.clone();
                async move {
                    state
                        .got
                        .lock()
                        .expect("lock")
                        .push(Request { headers, body });
                    let failing = state
                        .fail_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if failing {
                        (AxumStatus::INTERNAL_SERVER_ERROR, "busy, try later")
                    } else {
                        (AxumStatus::OK, "thanks")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            ..receiver
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.got.lock().expect("lock").clone()
    }

    fn types(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits (bounded) until it got `n` requests.
    async fn wait_for(&self, n: usize) -> Vec<Request> {
        eventually(|| async {
            let got = self.requests();
            (got.len() >= n).then_some(got)
        })
        .await
    }
}

/// Polls `check` until it gives a value (10 s at most).
async fn eventually<T, F, Fut>(check: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the condition never held"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running server; it stops (and its workers with it) on [`Server::stop`].
struct Server {
    base: String,
    stop: oneshot::Sender<()>,
    done: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(store: Arc<dyn Backend>, retry_delays: Vec<Duration>) -> Self {
        let bus = Arc::new(InProcessBus::new(Default::default()));
        Self::start_on(store, bus, retry_delays).await
    }

    async fn start_on(
        store: Arc<dyn Backend>,
        bus: Arc<dyn Bus>,
        retry_delays: Vec<Duration>,
    ) -> Self {
        let config = ServerConfig {
            webhooks: WebhookConfig {
                retry_delays,
                timeout: Duration::from_secs(5),
                poll: Duration::from_millis(50),
            },
            ..ServerConfig::default()
        };
        let app = Application::build(config, store, bus)
            .await
            .expect("build app");
        let base = format!("http://{}", app.local_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Server { base, stop, done }
    }

    /// Stops serving and waits until every worker has ended.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.done
            .await
            .expect("server task")
            .expect("server stopped cleanly");
    }
}

/// A workspace on a fresh SQLite file (or a given store), driven with its
/// secret key.
struct Setup {
    store: Arc<dyn Backend>,
    ws: Provisioned,
    http: Client,
    /// The SQLite file and its folder, when the store is one.
    file: Option<(PathBuf, tempfile::TempDir)>,
}

impl Setup {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("seamline.db");
        let mut setup = Setup::on(open(&db).await).await;
        setup.file = Some((db, dir));
        setup
    }

    async fn on(store: Arc<dyn Backend>) -> Self {
        let ws = workspace(store.as_ref()).await;
        Setup {
            store,
            ws,
            http: Client::new(),
            file: None,
        }
    }

    fn db(&self) -> &Path {
        &self.file.as_ref().expect("a SQLite file").0
    }

    async fn call(
        &self,
        server: &Server,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.http, server, &self.ws.api_key, method, path, body).await
    }

    /// A new endpoint at `url` for `events`; its id and secret.
    async fn endpoint(&self, server: &Server, url: &str, events: Value) -> (String, String) {
        let (status, body) = self
            .call(
                server,
                Method::POST,
                "/api/v1/webhooks",
                Some(json!({"url": url, "events": events, "description": "CRM"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let text = |k: &str| body[k].as_str().expect(k).to_owned();
        (text("id"), text("secret"))
    }

    /// An operator's reply to a new customer's conversation, through the
    /// REST API; the conversation id and the reply's body.
    async fn reply(&self, server: &Server, text: &str) -> (String, String) {
        let user = format!("olga-{}", uuid::Uuid::now_v7().simple());
        let identify = self
            .http
            .post(format!("{}/v1/identify", server.base))
            .basic_auth(&self.ws.write_key, Some(""))
            .json(&json!({"userId": user, "traits": {"name": "Olga"}}))
            .send()
            .await
            .expect("identify");
        assert_eq!(identify.status(), StatusCode::OK);
        let lookup = format!(
            "/api/v1/profiles/lookup?type=user_id&value={}",
            urlencode(&user)
        );
        let profile = eventually(|| async {
            let (status, body) = self.call(server, Method::GET, &lookup, None).await;
            (status == StatusCode::OK).then(|| body["id"].as_str().map(str::to_owned))?
        })
        .await;
        let (_, conversation) = self
            .call(
                server,
                Method::GET,
                &format!("/api/v1/profiles/{profile}/conversation"),
                None,
            )
            .await;
        let id = conversation["id"]
            .as_str()
            .expect("conversation")
            .to_owned();
        let (status, sent) = self
            .call(
                server,
                Method::POST,
                &format!("/api/v1/conversations/{id}/messages"),
                Some(json!({"body": text, "channel": "email", "author_id": self.ws.owner.id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{sent}");
        (id, sent["id"].as_str().expect("message id").to_owned())
    }

    async fn log(&self, server: &Server, endpoint: &str) -> Vec<Value> {
        let path = format!("/api/v1/webhooks/{endpoint}/deliveries");
        let (status, body) = self.call(server, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }
}

async fn open(db: &Path) -> Arc<dyn Backend> {
    let store = SqliteStore::open(db, SqliteOptions::default())
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate");
    Arc::new(store)
}

async fn workspace(store: &dyn Backend) -> Provisioned {
    let email = format!("owner-{}@example.test", uuid::Uuid::now_v7());
    provision::create_workspace(store, "Хуки", &email, PASSWORD)
        .await
        .expect("create workspace")
}

async fn call(
    http: &Client,
    server: &Server,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = http
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("send")).await
}

/// Checks the signature the way a receiver would: recompute the HMAC of
/// `"<t>.<raw body>"` under the secret and compare.
fn assert_signed(request: &Request, secret: &str) {
    let header = request.header("x-seamline-signature");
    let (t, v1) = header
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature header {header:?}"));
    let sent_at: i64 = t.parse().expect("unix seconds");
    assert!(
        (chrono::Utc::now().timestamp() - sent_at).abs() < 60,
        "fresh"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{}", request.body).as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    assert_eq!(v1, expected, "the signature verifies");
}

/// Waits until the endpoint's log has `n` deliveries, none still pending.
async fn settled_log(setup: &Setup, server: &Server, endpoint: &str, n: usize) -> Vec<Value> {
    eventually(|| async {
        let log = setup.log(server, endpoint).await;
        let done = log.len() == n && log.iter().all(|d| d["status"] != "pending");
        done.then_some(log)
    })
    .await
}

#[tokio::test]
async fn a_reply_reaches_the_endpoint_signed() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![Duration::from_millis(100)]).await;
    let receiver = Receiver::start(0).await;
    let (endpoint, secret) = setup.endpoint(&server, &receiver.url, json!([])).await;

    let text = "Ваш заказ едет <b>завтра</b>";
    let (conversation, message) = setup.reply(&server, text).await;

    let got = receiver.wait_for(3).await;
    let mut types = receiver.types();
    types.sort();
    assert_eq!(
        types,
        [
            "conversation.created",
            "conversation.updated",
            "message.created"
        ]
    );
    for request in &got {
        assert_signed(request, &secret);
        let body = request.json();
        assert_eq!(request.header("x-seamline-event"), body["type"]);
        assert_eq!(request.header("x-seamline-delivery"), body["id"]);
        assert_eq!(request.header("content-type"), "application/json");
        assert_eq!(body["workspace_id"], setup.ws.workspace.id.to_string());
        assert!(body["created_at"].is_string());
    }
    let created = got
        .iter()
        .map(Request::json)
        .find(|b| b["type"] == "message.created")
        .expect("message.created");
    assert_eq!(created["data"]["message"]["id"], message);
    assert_eq!(created["data"]["message"]["body"], text);
    assert_eq!(created["data"]["conversation_id"], conversation);

    // A forged secret does not verify.
    let forged = std::panic::catch_unwind(|| assert_signed(&got[0], "whsec_forged"));
    assert!(forged.is_err());

    let log = settled_log(&setup, &server, &endpoint, 3).await;
    for delivery in &log {
        assert_eq!(delivery["status"], "succeeded", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["attempt_log"][0]["status_code"], 200);
        assert_eq!(delivery["attempt_log"][0]["response_excerpt"], "thanks");
    }
    // The secret is shown on create only.
    let (_, shown) = setup
        .call(
            &server,
            Method::GET,
            &format!("/api/v1/webhooks/{endpoint}"),
            None,
        )
        .await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&secret));
    server.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_event_on_the_third_attempt() {
    let setup = Setup::new().await;
    let delays = vec![Duration::from_millis(100), Duration::from_millis(200)];
    let server = Server::start(setup.store.clone(), delays).await;
    let receiver = Receiver::start(2).await;
    let (endpoint, secret) = setup
        .endpoint(&server, &receiver.url, json!(["message.created"]))
        .await;

    setup.reply(&server, "third time lucky").await;

    let got = receiver.wait_for(3).await;
    let log = settled_log(&setup, &server, &endpoint, 1).await;
    let delivery = &log[0];
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attempts"], 3);
    let attempts = delivery["attempt_log"].as_array().expect("attempts");
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(500), &json!(500), &json!(200)]);
    assert_eq!(attempts[0]["response_excerpt"], "busy, try later");
    // The same delivery each time, each signed afresh.
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("x-seamline-delivery"))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for request in &got {
        assert_signed(request, &secret);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 3, "nothing more after success");
    server.stop().await;
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_given_up_and_can_be_redelivered() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![Duration::from_millis(50)]).await;
    let receiver = Receiver::start(2).await;
    let (endpoint, _) = setup
        .endpoint(&server, &receiver.url, json!(["message.created"]))
        .await;
    setup.reply(&server, "hello").await;

    let log = eventually(|| async {
        let log = setup.log(&server, &endpoint).await;
        (log.len() == 1 && log[0]["status"] == "given_up").then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempts"], 2, "one try and one retry");
    assert_eq!(log[0]["next_attempt_at"], Value::Null);

    let delivery = log[0]["id"].as_str().expect("id");
    let (status, body) = setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/webhooks/deliveries/{delivery}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    receiver.wait_for(3).await;
    let log = eventually(|| async {
        let log = setup.log(&server, &endpoint).await;
        (log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempts"], 3);
    assert_eq!(receiver.requests()[2].json()["id"], delivery);
    server.stop().await;
}

#[tokio::test]
async fn filtered_and_disabled_endpoints_get_only_what_they_asked_for() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![]).await;
    let (all, messages, disabled) = (
        Receiver::start(0).await,
        Receiver::start(0).await,
        Receiver::start(0).await,
    );
    let (all_id, _) = setup.endpoint(&server, &all.url, json!([])).await;
    let (messages_id, _) = setup
        .endpoint(&server, &messages.url, json!(["message.created"]))
        .await;
    let (off_id, _) = setup.endpoint(&server, &disabled.url, json!([])).await;
    let (status, body) = setup
        .call(
            &server,
            Method::PATCH,
            &format!("/api/v1/webhooks/{off_id}"),
            Some(json!({"active": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["active"], false);

    setup.reply(&server, "first").await;
    setup.reply(&server, "second").await;

    // Everything reached the endpoint that wants all: the others had their turn.
    all.wait_for(6).await;
    settled_log(&setup, &server, &all_id, 6).await;
    settled_log(&setup, &server, &messages_id, 2).await;
    assert_eq!(messages.types(), ["message.created", "message.created"]);
    assert!(disabled.requests().is_empty());
    assert!(setup.log(&server, &off_id).await.is_empty());

    // Typing is not an event.
    let (conversation, _) = setup.reply(&server, "third").await;
    setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/conversations/{conversation}/typing"),
            Some(json!({})),
        )
        .await;
    all.wait_for(9).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(all.requests().len(), 9);
    server.stop().await;
}

#[tokio::test]
async fn bad_input_names_the_field_and_other_workspaces_see_nothing() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![]).await;
    for (body, field) in [
        (json!({"url": "ftp://files.example.test/x"}), "url"),
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "https://"}), "url"),
        (
            json!({"url": "http://169.254.169.254/latest/meta-data"}),
            "url",
        ),
        (json!({"url": "http://[fe80::1]/hook"}), "url"),
        (
            json!({"url": "https://ok.example.test", "events": ["message.created", "order.paid"]}),
            "events[1]",
        ),
        (
            json!({"url": "https://ok.example.test", "events": ["ping"]}),
            "events[0]",
        ),
        (
            json!({"url": "https://ok.example.test", "description": "x".repeat(201)}),
            "description",
        ),
    ] {
        let (status, answer) = setup
            .call(
                &server,
                Method::POST,
                "/api/v1/webhooks",
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
    }

    let receiver = Receiver::start(0).await;
    let (endpoint, _) = setup.endpoint(&server, &receiver.url, json!([])).await;
    let (status, ping) = setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/webhooks/{endpoint}/ping"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{ping}");
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["type"], "ping");
    let delivery = ping["id"].as_str().expect("delivery id");

    let (status, answer) = setup
        .call(
            &server,
            Method::PATCH,
            &format!("/api/v1/webhooks/{endpoint}"),
            Some(json!({"url": "javascript:alert(1)"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["field"], "url");

    let other = workspace(setup.store.as_ref()).await;
    for (method, path) in [
        (Method::GET, format!("/api/v1/webhooks/{endpoint}")),
        (Method::PATCH, format!("/api/v1/webhooks/{endpoint}")),
        (Method::DELETE, format!("/api/v1/webhooks/{endpoint}")),
        (
            Method::POST,
            format!("/api/v1/webhooks/{endpoint}/rotate-secret"),
        ),
        (Method::POST, format!("/api/v1/webhooks/{endpoint}/ping")),
        (
            Method::GET,
            format!("/api/v1/webhooks/{endpoint}/deliveries"),
        ),
        (
            Method::POST,
            format!("/api/v1/webhooks/deliveries/{delivery}/redeliver"),
        ),
    ] {
        let body = (method == Method::PATCH).then(|| json!({"active": false}));
        let (status, answer) = call(
            &setup.http,
            &server,
            &other.api_key,
            method.clone(),
            &path,
            body,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
    }
    let (_, theirs) = call(
        &setup.http,
        &server,
        &other.api_key,
        Method::GET,
        "/api/v1/webhooks",
        None,
    )
    .await;
    assert_eq!(theirs["data"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn rotating_the_secret_signs_with_the_new_one() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![]).await;
    let receiver = Receiver::start(0).await;
    let (endpoint, old) = setup.endpoint(&server, &receiver.url, json!([])).await;
    let (status, rotated) = setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/webhooks/{endpoint}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret");
    assert_ne!(new, old);
    assert!(new.starts_with("whsec_"));
    setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/webhooks/{endpoint}/ping"),
            None,
        )
        .await;
    let got = receiver.wait_for(1).await;
    assert_signed(&got[0], new);

    let (status, _) = setup
        .call(
            &server,
            Method::DELETE,
            &format!("/api/v1/webhooks/{endpoint}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = setup
        .call(
            &server,
            Method::GET,
            &format!("/api/v1/webhooks/{endpoint}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_delivery_waiting_for_its_retry_is_sent_by_the_next_server() {
    let setup = Setup::new().await;
    let retry = vec![Duration::from_millis(1500)];
    let first = Server::start(setup.store.clone(), retry.clone()).await;
    let receiver = Receiver::start(1).await;
    let (endpoint, secret) = setup
        .endpoint(&first, &receiver.url, json!(["message.created"]))
        .await;
    setup.reply(&first, "sent across a restart").await;
    receiver.wait_for(1).await;
    let log = settled_log(&setup, &first, &endpoint, 1).await;
    assert_eq!(log[0]["status"], "failed", "{}", log[0]);
    first.stop().await;

    // A new process on the same database file.
    let store = open(setup.db()).await;
    let second = Server::start(store, retry).await;
    let got = receiver.wait_for(2).await;
    assert_signed(&got[1], &secret);
    assert_eq!(
        got[1].json()["data"]["message"]["body"],
        "sent across a restart"
    );
    let log = eventually(|| async {
        let log = setup.log(&second, &endpoint).await;
        (log[0]["status"] == "succeeded").then_some(log)
    })
    .await;
    assert_eq!(log[0]["attempts"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.requests().len(), 2, "sent once more, not twice");
    second.stop().await;
}

#[tokio::test]
async fn erasing_the_customer_removes_their_deliveries() {
    let setup = Setup::new().await;
    let server = Server::start(setup.store.clone(), vec![]).await;
    let receiver = Receiver::start(0).await;
    let (endpoint, _) = setup.endpoint(&server, &receiver.url, json!([])).await;
    let secret_text = format!("паспорт {}", uuid::Uuid::now_v7().simple());
    let (conversation, _) = setup.reply(&server, &secret_text).await;
    receiver.wait_for(3).await;
    settled_log(&setup, &server, &endpoint, 3).await;
    let (_, found) = setup
        .call(
            &server,
            Method::GET,
            &format!("/api/v1/conversations/{conversation}"),
            None,
        )
        .await;
    let profile = found["profile_id"].as_str().expect("profile").to_owned();
    assert!(
        !crate::profiles::scan_database_at(setup.db(), &[&secret_text])
            .await
            .is_empty()
    );

    let (status, body) = setup
        .call(
            &server,
            Method::POST,
            &format!("/api/v1/profiles/{profile}/erase"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let left = crate::profiles::scan_database_at(setup.db(), &[&secret_text]).await;
    assert!(left.is_empty(), "left after erase: {left:?}");
    assert!(setup.log(&server, &endpoint).await.is_empty());
    server.stop().await;
}

/// Several instances share the bus group and the queue: each event is
/// turned into deliveries once and sent once, whichever instance saw it.
#[tokio::test]
async fn two_instances_on_postgres_and_nats_send_each_event_once() {
    let Some((_database, store)) = FreshDatabase::create().await else {
        return;
    };
    let Some(options) = nats_options("hooks") else {
        return;
    };
    let setup = Setup::on(store).await;
    let mut servers = Vec::new();
    for _ in 0..2 {
        let bus = nats_bus(&options).await;
        servers.push(Server::start_on(setup.store.clone(), bus, vec![]).await);
    }
    let receiver = Receiver::start(0).await;
    let (endpoint, secret) = setup.endpoint(&servers[0], &receiver.url, json!([])).await;
    for (i, server) in servers.iter().enumerate() {
        setup.reply(server, &format!("from instance {i}")).await;
    }

    let got = receiver.wait_for(6).await;
    settled_log(&setup, &servers[1], &endpoint, 6).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.requests().len(), 6, "{:?}", receiver.types());
    let mut types = receiver.types();
    types.sort();
    assert_eq!(
        types,
        [
            "conversation.created",
            "conversation.created",
            "conversation.updated",
            "conversation.updated",
            "message.created",
            "message.created"
        ]
    );
    for request in &got {
        assert_signed(request, &secret);
    }
    for server in servers {
        server.stop().await;
    }
}
