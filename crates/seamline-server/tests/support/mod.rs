//! A real server on an ephemeral port with a fresh store, driven over HTTP.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod browser;
pub mod postgres;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};
use seamline_bus::{Bus, InProcessBus};
use seamline_core::{Role, WorkspaceId};
use seamline_server::identity::profiles::all_events;
use seamline_server::provision::{self, Provisioned};
use seamline_server::{Application, ServerConfig};
use seamline_store::{Backend, ProfileQuery, Store};
use seamline_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub base: String,
    pub store: Arc<dyn Backend>,
    pub bus: Arc<dyn Bus>,
    pub workspace: Provisioned,
    pub http: Client,
    /// The SQLite file, when the app runs on one.
    pub db_path: Option<std::path::PathBuf>,
    _stop: oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL database of this test, dropped with its last app.
    pub(crate) _database: Option<Arc<postgres::FreshDatabase>>,
}

/// A server on a fresh SQLite file with the in-process bus, and one workspace.
pub async fn spawn_app() -> TestApp {
    spawn_app_configured(ServerConfig::default()).await
}

/// [`spawn_app`] with `config` (its listen address is ignored: port 0).
pub async fn spawn_app_configured(config: ServerConfig) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("seamline.db"), SqliteOptions::default())
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate");
    let mut app = spawn_configured(
        Arc::new(store),
        Arc::new(InProcessBus::new(Default::default())),
        config,
    )
    .await;
    app.db_path = Some(dir.path().join("seamline.db"));
    app._dir = Some(dir);
    app
}

/// A server on the given store and bus, with a new workspace in it.
pub async fn spawn_with(store: Arc<dyn Backend>, bus: Arc<dyn Bus>, writers: usize) -> TestApp {
    let config = ServerConfig {
        ingest_writers: writers,
        ..ServerConfig::default()
    };
    spawn_configured(store, bus, config).await
}

/// A server with `config` on the given store and bus, with a new workspace.
pub async fn spawn_configured(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    config: ServerConfig,
) -> TestApp {
    let email = format!("owner-{}@example.test", uuid::Uuid::now_v7());
    let workspace = provision::create_workspace(store.as_ref(), "Тест", &email, PASSWORD)
        .await
        .expect("create workspace");
    let (base, stop) = serve(store.clone(), bus.clone(), config).await;
    TestApp {
        base,
        store,
        bus,
        workspace,
        http: client(),
        db_path: None,
        _database: None,
        _stop: stop,
        _dir: None,
    }
}

/// Another server instance on the same store and bus (no new workspace).
pub async fn another_instance(of: &TestApp, bus: Arc<dyn Bus>) -> TestApp {
    let config = ServerConfig {
        ingest_writers: 2,
        ..ServerConfig::default()
    };
    let (base, stop) = serve(of.store.clone(), bus.clone(), config).await;
    TestApp {
        base,
        store: of.store.clone(),
        bus,
        workspace: of.workspace.clone(),
        http: client(),
        db_path: of.db_path.clone(),
        _database: of._database.clone(),
        _stop: stop,
        _dir: None,
    }
}

/// Starts a server; it stops when the returned sender is dropped.
async fn serve(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    config: ServerConfig,
) -> (String, oneshot::Sender<()>) {
    let app = Application::build(config, store, bus)
        .await
        .expect("build app");
    let base = format!("http://{}", app.local_addr());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    (base, stop)
}

fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

impl TestApp {
    /// Stops this instance's server and workers; its database stays (for
    /// another instance on it).
    pub fn stop_server(&mut self) {
        let (running, _) = oneshot::channel();
        drop(std::mem::replace(&mut self._stop, running));
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A tracking call with the workspace's write key.
    pub async fn track(&self, call: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(&format!("/v1/{call}")))
            .basic_auth(&self.workspace.write_key, Some(""))
            .json(body)
            .send()
            .await
            .expect("send");
        read(response).await
    }

    /// A REST call with the workspace's secret API key.
    pub async fn api_get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.workspace.api_key)
            .send()
            .await
            .expect("send");
        read(response).await
    }

    /// Waits (bounded) until `check` holds for the answer of GET `path`.
    pub async fn eventually(&self, path: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = self.api_get(path).await;
            if check(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET {path} never satisfied the check; last: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn api_put(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .put(self.url(path))
            .bearer_auth(&self.workspace.api_key)
            .json(body)
            .send()
            .await
            .expect("send");
        read(response).await
    }

    pub async fn api_post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.workspace.api_key)
            .json(body)
            .send()
            .await
            .expect("send");
        read(response).await
    }

    /// Sends tracking messages in one batch call.
    pub async fn send(&self, messages: Vec<Value>) {
        let (status, body) = self.track("batch", &json!({ "batch": messages })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Waits (bounded) until at least `events` events of the workspace are
    /// resolved into profiles.
    pub async fn settled(&self, events: usize) {
        self.eventually("/api/v1/profiles?limit=200", |body| {
            let counted: u64 = body["data"].as_array().map_or(0, |ps| {
                ps.iter()
                    .map(|p| p["event_count"].as_u64().unwrap_or(0))
                    .sum()
            });
            counted as usize >= events
        })
        .await;
    }

    /// The profile holding an identifier, once it exists.
    pub async fn lookup(&self, kind: &str, value: &str) -> Value {
        let path = format!(
            "/api/v1/profiles/lookup?type={kind}&value={}",
            urlencode(value)
        );
        self.eventually(&path, |p| p["id"].is_string()).await
    }

    pub async fn events(&self, query: &str) -> Vec<Value> {
        let (status, body) = self.api_get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["data"].as_array().cloned().unwrap_or_default()
    }

    pub async fn count(&self) -> u64 {
        self.store
            .count_events(self.workspace.workspace.id)
            .await
            .expect("count")
    }

    pub fn owner_email(&self) -> String {
        self.workspace.owner.email.clone()
    }

    /// Adds a member with `role` and the test password; returns the e-mail.
    pub async fn add_member(&self, role: Role) -> String {
        let email = format!("{}-{}@example.test", role.as_str(), uuid::Uuid::now_v7());
        let member = provision::new_member(self.workspace.workspace.id, &email, "", role, PASSWORD)
            .expect("member");
        self.store
            .create_member(member)
            .await
            .expect("create member");
        email
    }

    /// Adds a member with `role` and returns a client signed in as them,
    /// with the CSRF token their pages carry.
    pub async fn sign_in_as(&self, role: Role) -> (Client, String) {
        let email = self.add_member(role).await;
        let client = client();
        let csrf = login(&client, &self.base, &email, PASSWORD).await;
        (client, csrf)
    }
}

/// Signs in through the login form; returns the session's CSRF token.
pub async fn login(client: &Client, base: &str, email: &str, password: &str) -> String {
    let page = client
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("html");
    let login_csrf = hidden_value(&page, "csrf_token").expect("login form has a csrf field");
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", &login_csrf),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let page = client
        .get(format!("{base}/events"))
        .send()
        .await
        .expect("events")
        .text()
        .await
        .expect("html");
    meta_csrf(&page).expect("pages carry the session's csrf token")
}

/// Waits (bounded) until every event of `workspace` belongs to a profile,
/// for data written to the store directly (the demo).
pub async fn resolved(store: &dyn Backend, workspace: WorkspaceId) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let events = store.count_events(workspace).await.expect("count") as usize;
    loop {
        let mut query = ProfileQuery {
            limit: 500,
            ..ProfileQuery::default()
        };
        let mut assigned = 0;
        loop {
            let page = store
                .list_profiles(workspace, &query)
                .await
                .expect("profiles");
            for profile in &page {
                assigned += all_events(store, workspace, profile.id)
                    .await
                    .expect("events")
                    .len();
            }
            match page.last() {
                Some(last) if page.len() == query.limit as usize => {
                    query.after = Some((last.last_seen, last.id))
                }
                _ => break,
            }
        }
        if assigned >= events {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {assigned} of {events} events were resolved"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `text` for a URL query.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let after = &html[at..];
    let value = after.split("value=\"").nth(1)?;
    Some(value.split('"').next()?.to_owned())
}

fn meta_csrf(html: &str) -> Option<String> {
    let after = html.split("name=\"csrf-token\" content=\"").nth(1)?;
    Some(after.split('"').next()?.to_owned())
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text }));
    (status, body)
}

pub fn headers(response: &reqwest::Response) -> HeaderMap {
    response.headers().clone()
}
