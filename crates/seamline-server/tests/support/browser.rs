//! Headless Chromium behind its own chromedriver, with the few moves the
//! browser tests make (open, fill, click, wait, screenshot).

use std::net::TcpListener as StdListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::{CmdError, ErrorStatus};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use super::TestApp;

const CHROMIUM: &str = "/usr/bin/chromium";
/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Headless Chromium behind its own chromedriver, both ended on drop.
pub struct Browser {
    pub client: Client,
    /// chromedriver, leading its own process group with the browser in it.
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser session, or `None` after a loud skip
    /// (a failure under CI) when Chromium or its driver is not installed.
    pub async fn start() -> Option<Browser> {
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
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }

    pub async fn open(&self, app: &TestApp, path: &str) {
        self.client.goto(&app.url(path)).await.expect("navigate");
    }

    pub async fn sign_in(&self, app: &TestApp, email: &str, password: &str) {
        self.open(app, "/login").await;
        self.fill("#email", email).await;
        self.fill("#password", password).await;
        self.click("form button[type=submit]").await;
        self.wait_for_path("/events").await;
    }

    /// The current path, with the query if there is one.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    pub async fn wait_for_path(&self, path: &str) {
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

    pub async fn wait_for(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// The first element matching `css` whose text is `expected`, waiting
    /// a bounded time for it.
    pub async fn wait_for_text(&self, css: &str, expected: &str) -> Option<Element> {
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
    pub async fn assert_no_alert(&self) {
        if let Ok(alert) = self.client.get_alert_text().await {
            panic!("a script ran on the page (an alert says {alert:?})");
        }
    }

    /// Waits until the live indicator says the stream is connected, so that
    /// an event sent now is one the page must show.
    pub async fn wait_until_live(&self) {
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

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .len()
    }

    /// The texts of every element matching `css`, read in one step: the
    /// live pages swap their parts as things change, so an element found a
    /// moment earlier may be gone by the time its text is asked for.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let script =
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim());";
        let found = self
            .client
            .execute(script, vec![json!(css)])
            .await
            .expect("read the page");
        serde_json::from_value(found).expect("texts")
    }

    /// The text of the first element matching `css` (waiting for one).
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await;
        self.texts(css).await.into_iter().next().unwrap_or_default()
    }

    pub async fn value(&self, css: &str) -> String {
        self.find(css)
            .await
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        self.find(css).await.attr(name).await.expect("attribute")
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css)
            .await
            .select_by_value(value)
            .await
            .expect("select");
    }

    /// Clicks the element `css` names, finding it again if the live page
    /// replaced it between finding and clicking.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(CmdError::Standard(e))
                    if e.error == ErrorStatus::StaleElementReference
                        && Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("click {css}: {e}"),
            }
        }
    }

    /// The row among `css` whose text contains `needle`.
    pub async fn row(&self, css: &str, needle: &str) -> Element {
        for row in self.client.find_all(Locator::Css(css)).await.expect("rows") {
            // A row replaced meanwhile is not the one sought.
            if row.text().await.is_ok_and(|t| t.contains(needle)) {
                return row;
            }
        }
        panic!("no row with {needle:?} in {css}");
    }

    /// Submits the form `css` as it is, skipping the browser's own checks,
    /// to see what the server says.
    pub async fn submit_direct(&self, css: &str) {
        self.client
            .form(Locator::Css(css))
            .await
            .expect("form")
            .submit_direct()
            .await
            .expect("submit");
    }

    pub async fn accept_confirm(&self) {
        let deadline = Instant::now() + PATIENCE;
        while self.client.get_alert_text().await.is_err() {
            assert!(Instant::now() < deadline, "no confirmation was asked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.client.accept_alert().await.expect("accept");
    }

    /// Posts a form from the page with the session's cookie and CSRF token,
    /// as a hand-made request would; returns the status.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
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
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        save_screenshot(name, png);
    }

    /// Saves the whole page, however long, as `{name}-full.png`.
    pub async fn screenshot_full(&self, name: &str) {
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

pub async fn text(element: &Element) -> String {
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
