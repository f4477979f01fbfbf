//! Browser tests: the web UI in real headless Chromium, driven through
//! `chromedriver` with fantoccini, against a real server on port 0 with a
//! fresh SQLite store per test.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them a test
//! skips loudly on a developer's machine and fails under `CI=true`.
//! Screenshots of the main pages land in `target/screenshots/`.

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use seamline_core::Role;
use seamline_server::{demo, provision};
use seamline_store::KeyKind;
use serde_json::{json, Value};
use support::{spawn_app, TestApp, PASSWORD};

mod support;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a test waits for.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- the tests

#[tokio::test]
async fn signing_in_shows_errors_and_lands_on_events() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };

    browser.open(&app, "/events").await;
    assert_eq!(
        browser.path().await,
        "/login",
        "signed-out pages go to the login"
    );

    browser.fill("#email", &owner_email(&app)).await;
    browser.fill("#password", "not the password").await;
    browser.click("form button[type=submit]").await;
    let error = browser.wait_for(".login-card [role=alert]").await;
    assert_eq!(text(&error).await, "Wrong e-mail or password.");
    assert_eq!(browser.path().await, "/login");
    assert_eq!(
        browser.value("#email").await,
        owner_email(&app),
        "the e-mail is kept"
    );
    browser.screenshot("login-error").await;

    browser.fill("#password", PASSWORD).await;
    browser.click("form button[type=submit]").await;
    browser.wait_for_path("/events").await;
    assert_eq!(browser.text("h1").await, "Events");
    assert_eq!(browser.text(".who .email").await, owner_email(&app));
    browser.screenshot("events-empty").await;
    browser.close().await;
}

#[tokio::test]
async fn event_stream_shows_new_events_live_as_text() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &owner_email(&app), PASSWORD).await;
    assert!(
        browser.exists("#no-events").await,
        "an empty state at first"
    );
    browser.wait_until_live().await;

    let name = "<img src=x onerror=alert(1)>Борщ 🥟";
    let (status, body) = app
        .track(
            "track",
            &json!({"userId": "guest-7", "event": name, "messageId": "m-live-1"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let cell = browser
        .wait_for_text("#event-rows td.name", name)
        .await
        .expect("the new event appears without reloading");
    assert_eq!(
        cell.html(true).await.expect("inner html"),
        "&lt;img src=x onerror=alert(1)&gt;Борщ 🥟",
        "customer text is shown as text"
    );
    assert!(
        !browser.exists("#event-rows img").await,
        "no element made from it"
    );
    assert!(
        !browser.exists("#no-events").await,
        "the empty state goes away"
    );
    assert_eq!(browser.text("#event-rows td.user").await, "guest-7");
    assert_eq!(browser.text("#event-count").await, "1", "the count follows");
    browser.assert_no_alert().await;

    // The server-rendered table escapes it the same way.
    browser.client.refresh().await.expect("reload");
    let cell = browser.wait_for("#event-rows td.name").await;
    assert_eq!(text(&cell).await, name);
    assert!(!browser.exists("#event-rows img").await);
    browser.close().await;
}

#[tokio::test]
async fn settings_create_and_revoke_keys_add_members_and_sign_out() {
    let app = spawn_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &owner_email(&app), PASSWORD).await;
    browser.open(&app, "/settings").await;

    // A secret key is shown once, in full, and then only by its prefix.
    browser
        .fill("#create-key [name=name]", "Reports <script>")
        .await;
    browser.select("#create-key [name=kind]", "secret").await;
    browser.click("#create-key button[type=submit]").await;
    let secret = text(&browser.wait_for("#new-key-secret").await).await;
    assert!(secret.starts_with("sk_") && secret.len() > 20, "{secret:?}");
    browser.screenshot("settings-new-key").await;
    assert_eq!(
        api_status(&app, &secret).await,
        200,
        "the shown secret works"
    );
    browser.open(&app, "/settings").await;
    assert!(!browser.exists("#new-key-secret").await);
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains(&secret), "the secret is not shown again");
    assert!(
        source.contains("Reports &lt;script&gt;"),
        "key names are escaped"
    );

    // Revoking asks first, then marks the key and stops it working.
    let row = browser.row("#keys tbody tr", "Reports <script>").await;
    row.find(Locator::Css("button.danger"))
        .await
        .expect("revoke button")
        .click()
        .await
        .expect("click revoke");
    browser.accept_confirm().await;
    browser.wait_for(".flash").await;
    let row = browser.row("#keys tbody tr", "Reports <script>").await;
    let status_cell = row
        .find(Locator::Css(".status"))
        .await
        .expect("status cell");
    assert_eq!(text(&status_cell).await, "revoked");
    assert!(row.find(Locator::Css("button.danger")).await.is_err());
    assert_eq!(
        api_status(&app, &secret).await,
        401,
        "a revoked key is refused"
    );

    // Adding a member: a server-side validation error is shown inline, with
    // what was typed kept (the browser's own checks are bypassed here).
    browser.fill("#add-member [name=name]", "Ana Lyst").await;
    browser
        .fill("#add-member [name=email]", "ana@example.test")
        .await;
    browser.fill("#add-member [name=password]", "short").await;
    browser.select("#add-member [name=role]", "analyst").await;
    browser
        .client
        .form(Locator::Css("#add-member"))
        .await
        .expect("form")
        .submit_direct()
        .await
        .expect("submit");
    let error = browser.wait_for("#add-member .form-error").await;
    assert!(
        text(&error).await.contains("at least 8 characters"),
        "{}",
        text(&error).await
    );
    assert_eq!(browser.path().await, "/settings/members");
    assert_eq!(
        browser.value("#add-member [name=email]").await,
        "ana@example.test"
    );
    assert_eq!(browser.value("#add-member [name=role]").await, "analyst");
    assert_eq!(
        browser
            .attr("#add-member [name=password]", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    browser.screenshot_full("settings-form-error").await;

    browser
        .fill("#add-member [name=password]", "analyst-pass-1")
        .await;
    browser.click("#add-member button[type=submit]").await;
    browser.wait_for_path("/settings?done=member-added").await;
    let row = browser.row("#members tbody tr", "ana@example.test").await;
    let role = row.find(Locator::Css(".role")).await.expect("role badge");
    assert_eq!(text(&role).await, "analyst");
    let stored = members(&app).await;
    assert!(stored
        .iter()
        .any(|(email, role)| email == "ana@example.test" && *role == Role::Analyst));

    // The same e-mail again is refused with a clear message, not JSON.
    browser
        .fill("#add-member [name=email]", "ANA@example.test")
        .await;
    browser
        .fill("#add-member [name=password]", "another-pass-2")
        .await;
    browser.click("#add-member button[type=submit]").await;
    let error = browser.wait_for("#add-member .form-error").await;
    assert_eq!(
        text(&error).await,
        "A member with this e-mail already exists."
    );

    // Signing out ends the session.
    browser.click(".who button[type=submit]").await;
    browser.wait_for_path("/login").await;
    browser.open(&app, "/settings").await;
    assert_eq!(browser.path().await, "/login");
    browser.close().await;
}

#[tokio::test]
async fn an_analyst_sees_no_keys_and_cannot_add_members() {
    let app = spawn_app().await;
    let email = add_member(&app, Role::Analyst).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.sign_in(&app, &email, PASSWORD).await;
    browser.open(&app, "/settings").await;
    assert_eq!(browser.text(".who .role").await, "analyst");
    assert!(browser.exists("#members").await, "members are listed");
    assert!(!browser.exists("#keys").await, "no keys section");
    assert!(!browser.exists("#add-member").await, "no add-member form");
    assert!(
        !browser.exists("#members form").await,
        "no role or remove buttons"
    );
    let source = browser.client.source().await.expect("page source");
    assert!(!source.contains("wk_") && !source.contains("sk_"));
    browser.screenshot("settings-analyst").await;

    // A hand-made post with the session's valid CSRF token is refused.
    let before = members(&app).await.len();
    let status = browser
        .post_form(
            "/settings/members",
            &[
                ("email", "sneaky@example.test"),
                ("password", "sneaky-pass-1"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert_eq!(members(&app).await.len(), before, "no member was added");
    let status = browser
        .post_form("/settings/keys", &[("name", "mine"), ("kind", "secret")])
        .await;
    assert_eq!(status, 403);
    let keys = app.store.list_keys(app.workspace.workspace.id).await;
    let secret_keys = keys
        .expect("keys")
        .into_iter()
        .filter(|k| k.kind == KeyKind::Secret)
        .count();
    assert_eq!(secret_keys, 1, "no key was made");
    browser.close().await;
}

#[tokio::test]
async fn screenshots_of_the_main_pages_with_demo_data() {
    let app = spawn_app().await;
    demo::seed(app.store.as_ref(), 50).await.expect("demo data");
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.open(&app, "/login").await;
    browser.screenshot("login").await;

    browser
        .sign_in(&app, demo::DEMO_EMAIL, demo::DEMO_PASSWORD)
        .await;
    browser.wait_until_live().await;
    let rows = browser
        .client
        .find_all(Locator::Css("#event-rows tr"))
        .await
        .expect("rows");
    assert!(
        rows.len() >= 50,
        "the demo events are listed: {}",
        rows.len()
    );
    browser.screenshot("events").await;

    browser.select("form.filters [name=type]", "page").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for_path("/events?type=page&user_id=").await;
    let badges = browser
        .client
        .find_all(Locator::Css("#event-rows .badge"))
        .await
        .expect("badges");
    assert!(!badges.is_empty());
    for badge in badges {
        assert_eq!(text(&badge).await, "page", "the filter applies");
    }

    browser.open(&app, "/settings").await;
    browser.screenshot("settings").await;
    browser.screenshot_full("settings").await;
    browser.close().await;
}

// ---------------------------------------------------------------- the server

fn owner_email(app: &TestApp) -> String {
    app.workspace.owner.email.clone()
}

/// A member with `role` and the test password; returns the e-mail.
async fn add_member(app: &TestApp, role: Role) -> String {
    let email = format!("{}@example.test", role.as_str());
    let member = provision::new_member(app.workspace.workspace.id, &email, "", role, PASSWORD)
        .expect("member");
    app.store
        .create_member(member)
        .await
        .expect("create member");
    email
}

async fn members(app: &TestApp) -> Vec<(String, Role)> {
    let members = app.store.list_members(app.workspace.workspace.id).await;
    members
        .expect("members")
        .into_iter()
        .map(|m| (m.email, m.role))
        .collect()
}

/// The status of a REST call made with `secret`.
async fn api_status(app: &TestApp, secret: &str) -> u16 {
    let response = app
        .http
        .get(app.url("/api/v1/events"))
        .bearer_auth(secret)
        .send()
        .await
        .expect("api call");
    response.status().as_u16()
}

// ---------------------------------------------------------------- the browser

/// Headless Chromium behind its own chromedriver, both ended on drop.
struct Browser {
    client: Client,
    /// chromedriver, leading its own process group with the browser in it.
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session, or `None` after a loud skip
    /// (a failure under CI) when Chromium or its driver is not installed.
    async fn start() -> Option<Browser> {
        let Some(chromedriver) = which("chromedriver") else {
            seamline_testing::skip_or_fail(
                "chromedriver is not installed (apt-get install chromium-driver)",
            );
            return None;
        };
        if !Path::new(CHROMIUM).exists() {
            seamline_testing::skip_or_fail("chromium is not installed (apt-get install chromium)");
            return None;
        }
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let browser = Browser {
            client: connect(port, profile.path()).await,
            driver,
            _profile: profile,
        };
        browser.set_viewport(1366, 800).await;
        Some(browser)
    }

    /// Sizes the window so that the page itself gets `width` × `height`.
    async fn set_viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
        let inner = self
            .client
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await
            .expect("inner size");
        let inner = |i: usize| inner[i].as_u64().expect("a size") as u32;
        let (w, h) = (width + width - inner(0), height + height - inner(1));
        self.client
            .set_window_size(w, h)
            .await
            .expect("window size");
    }

    /// Ends the session politely (the drop ends the processes either way).
    async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    async fn open(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.expect("navigate");
    }

    async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.open(app, "/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
        self.wait_for_path("/events").await;
    }

    /// The current path, with the query if there is one.
    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.path().await;
            if now == path && self.exists("main, body.bare").await {
                return;
            }
            assert!(Instant::now() < deadline, "stuck on {now}, not {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// The first element matching `css` whose text is `expected`, waiting
    /// a bounded time for it.
    async fn wait_for_text(&self, css: &str, expected: &str) -> Option<Element> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            self.assert_no_alert().await;
            let found = self.client.find_all(Locator::Css(css)).await;
            if found.is_err() {
                self.assert_no_alert().await;
            }
            for element in found.expect("find") {
                if element.text().await.is_ok_and(|t| t == expected) {
                    return Some(element);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// Fails if a dialog is open: on these pages only a script made from
    /// customer text would open one.
    async fn assert_no_alert(&self) {
        if let Ok(alert) = self.client.get_alert_text().await {
            panic!("a script ran on the page (an alert says {alert:?})");
        }
    }

    /// Waits until the live indicator says the stream is connected, so that
    /// an event sent now is one the page must show.
    async fn wait_until_live(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let state = self.attr("#live-status", "data-state").await;
            if state.as_deref() == Some("live") {
                assert_eq!(self.text("#live-status").await, "Live");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the stream never connected: {state:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    async fn text(&self, css: &str) -> String {
        text(&self.find(css).await).await
    }

    async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.expect("attribute")
    }

    async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("select");
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.expect("click");
    }

    /// The row among `css` whose text contains `needle`.
    async fn row(&self, css: &str, needle: &str) -> Element {
        for row in self.client.find_all(Locator::Css(css)).await.expect("rows") {
            if text(&row).await.contains(needle) {
                return row;
            }
        }
        panic!("no row with {needle:?} in {css}");
    }

    async fn accept_confirm(&self) {
        let deadline = Instant::now() + PATIENCE;
        while self.client.get_alert_text().await.is_err() {
            assert!(Instant::now() < deadline, "no confirmation was asked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client.accept_alert().await.expect("accept");
    }

    /// Posts a form from the page with the session's cookie and CSRF token,
    /// as a hand-made request would; returns the status.
    async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
        let fields: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect();
        let status = self
            .client
            .execute_async(
                r#"const [path, fields, done] = arguments;
                   const body = new URLSearchParams(fields);
                   body.set("csrf_token", document.querySelector("meta[name=csrf-token]").content);
                   fetch(path, {method: "POST", body, redirect: "manual"})
                     .then(r => done(r.status), e => done(String(e)));"#,
                vec![json!(path), Value::Object(fields)],
            )
            .await
            .expect("post from the page");
        status
            .as_u64()
            .unwrap_or_else(|| panic!("no status: {status}")) as u16
    }

    /// Saves what the window shows as `target/screenshots/{name}.png`.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        save_screenshot(name, png);
    }

    /// Saves the whole page, however long, as `{name}-full.png`.
    async fn screenshot_full(&self, name: &str) {
        let height = self
            .client
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .expect("page height")
            .as_u64()
            .expect("a height") as u32;
        self.set_viewport(1366, height.max(800)).await;
        let png = self.client.screenshot().await.expect("screenshot");
        self.set_viewport(1366, 800).await;
        save_screenshot(&format!("{name}-full"), png);
    }
}

fn save_screenshot(name: &str, png: Vec<u8>) {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

impl Drop for Browser {
    /// Ends chromedriver and every browser process it started (its process
    /// group), also when a test fails before `close`.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn connect(port: u16, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--force-device-scale-factor=1",
        "--lang=en-US",
        "--window-size=1366,800",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect::<Vec<_>>();
    let capabilities = json!({
        "browserName": "chrome",
        // Leave dialogs open, so that a test sees them.
        "unhandledPromptBehavior": "ignore",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(client) => return client,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no browser session from chromedriver on {url}: {e}"),
        }
    }
}

async fn text(element: &Element) -> String {
    element.text().await.expect("text")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `target/screenshots`, beside the directory cargo gives tests for scratch.
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir")
        .join("screenshots")
}
