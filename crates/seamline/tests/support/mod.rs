//! Shared helpers for the tests that drive the real `seamline` binary as a
//! child process: run a command with a deadline, start `serve` on port 0 and
//! wait for its address, create a workspace, read events over the REST API,
//! sign in through the login form.
//!
//! Every wait is bounded, so a broken build fails in seconds, and every
//! child process is killed when its handle is dropped (also on panic).

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long `serve` may take to start listening (migrations included).
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a short command (`init`, `migrate`, `import`, `export`) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one HTTP request may take.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings the binary reads from the environment: removed so a developer's
/// shell cannot change what a test sees.
const SEAMLINE_ENV: [&str; 9] = [
    "SEAMLINE_CONFIG",
    "SEAMLINE_DATA_DIR",
    "SEAMLINE_DATABASE_URL",
    "SEAMLINE_NATS_URL",
    "SEAMLINE_LOG_FORMAT",
    "SEAMLINE_LISTEN",
    "SEAMLINE_SECURE_COOKIES",
    "SEAMLINE_INIT_PASSWORD",
    "SEAMLINE_LOG",
];

/// `seamline` with a clean environment and quiet logs.
pub fn seamline() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seamline"));
    for var in SEAMLINE_ENV {
        command.env_remove(var);
    }
    command.env("SEAMLINE_LOG", "warn");
    command
}

/// `seamline --data-dir DIR` (the global flag goes before the subcommand).
pub fn seamline_in(data_dir: &Path) -> Command {
    let mut command = seamline();
    command.arg("--data-dir").arg(data_dir);
    command
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with everything the command printed unless it succeeded.
    pub fn success(self, what: &str) -> Self {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Standard output as one JSON value.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.stdout))
    }
}

/// Runs `command` to completion, killing it after `timeout`.
pub fn run(mut command: Command, timeout: Duration) -> Output {
    let description = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {description}: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait().expect("waiting for the child") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{description} did not finish within {timeout:?}; stderr:\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The ids and keys `seamline init` prints.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub workspace_id: String,
    pub write_key: String,
    pub api_key: String,
    pub raw: Value,
}

pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";

/// `seamline --data-dir DIR init …`: a workspace with an owner.
pub fn init(data_dir: &Path) -> Workspace {
    let mut command = seamline_in(data_dir);
    command.args([
        "init",
        "--workspace",
        "Test shop",
        "--email",
        OWNER_EMAIL,
        "--password",
        OWNER_PASSWORD,
    ]);
    let raw = run(command, COMMAND_TIMEOUT).success("init").json();
    let field = |name: &str| {
        raw[name]
            .as_str()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| panic!("init printed no {name}: {raw}"))
            .to_owned()
    };
    Workspace {
        workspace_id: field("workspace_id"),
        write_key: field("write_key"),
        api_key: field("api_key"),
        raw: raw.clone(),
    }
}

/// A running `seamline serve`; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    lines: Receiver<String>,
    /// Everything read from stdout so far.
    stdout: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// `seamline --data-dir DIR serve --listen 127.0.0.1:0 [extra]`.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(seamline_in(data_dir), extra, START_TIMEOUT)
    }

    /// Starts `command serve --listen 127.0.0.1:0 [extra]` and waits up to
    /// `timeout` for `Seamline is running at http://ADDR`.
    pub fn start_with(mut command: Command, extra: &[&str], timeout: Duration) -> Self {
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra);
        let mut server = Self::spawn(command);
        let line = server.wait_for_stdout("Seamline is running at ", timeout);
        let address = line
            .split("Seamline is running at ")
            .nth(1)
            .expect("the marker is on the line")
            .trim();
        assert!(
            address.starts_with("http://127.0.0.1:") && !address.ends_with(":0"),
            "unexpected address {address:?}"
        );
        server.url = address.to_owned();
        server
    }

    /// Starts any long-running `command` (e.g. `dev fake-providers`) with
    /// its output read as `serve`'s is; `url` stays empty.
    pub fn spawn(mut command: Command) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawning seamline");
        let (send, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { return };
                let mut all = sink.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            child,
            url: String::new(),
            lines,
            stdout: Vec::new(),
            stderr,
        }
    }

    /// Reads stdout until a line contains `needle`; returns that line.
    /// Panics (with the server's output) after `timeout` or if stdout closes.
    pub fn wait_for_stdout(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        if let Some(line) = self.stdout.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "seamline printed no {needle:?} within {timeout:?}\n{}",
                        self.output()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "seamline exited ({status:?}) before printing {needle:?}\n{}",
                        self.output()
                    )
                }
            }
        }
    }

    /// Stdout so far and stderr, for failure messages.
    pub fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.join("\n"),
            self.stderr.lock().unwrap_or_else(|e| e.into_inner())
        )
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// SIGKILL (on unix `Child::kill` sends SIGKILL): no graceful shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP client with bounded requests that never follows redirects.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the HTTP client")
}

/// Every event of the workspace through `GET /api/v1/events`, following
/// `next_cursor` page by page.
pub async fn all_events(client: &reqwest::Client, server_url: &str, api_key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let mut request = client
            .get(format!("{server_url}/api/v1/events"))
            .bearer_auth(api_key)
            .query(&[("limit", "1000")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor.as_str())]);
        }
        let response = request.send().await.expect("GET /api/v1/events");
        let status = response.status();
        let text = response.text().await.expect("reading the events page");
        assert_eq!(status, 200, "GET /api/v1/events: {text}");
        let page: Value = serde_json::from_str(&text).expect("the events page is JSON");
        let data = page["data"].as_array().expect("data is an array");
        events.extend(data.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return events,
        }
    }
    panic!("GET /api/v1/events never stopped handing out cursors");
}

/// The `messageId` of every event, asserting that none is stored twice.
pub fn unique_message_ids(events: &[Value]) -> HashSet<String> {
    let mut seen = HashSet::new();
    for event in events {
        let id = event["messageId"]
            .as_str()
            .unwrap_or_else(|| panic!("event without messageId: {event}"));
        assert!(seen.insert(id.to_owned()), "messageId {id} is stored twice");
    }
    seen
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, value)| key.trim() == name && !value.is_empty())
        .map(|(_, value)| value.trim().to_owned())
}

/// The `value` of the hidden `csrf_token` input on an HTML form.
pub fn hidden_csrf_input(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf_token\"")?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let value = tag.split("value=\"").nth(1)?;
    Some(value[..value.find('"')?].to_owned())
}

/// Signs in through the login form: GET /login for the CSRF cookie and the
/// hidden input (which must agree), then POST /login with both; returns the
/// answer to the POST.
pub async fn post_login(
    client: &reqwest::Client,
    server: &Server,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let page = client
        .get(server.at("/login"))
        .send()
        .await
        .expect("GET /login");
    assert_eq!(page.status(), 200, "GET /login");
    let cookie = set_cookie(&page, "seamline_login_csrf")
        .expect("GET /login sets the seamline_login_csrf cookie");
    let html = page.text().await.expect("login page body");
    let hidden = hidden_csrf_input(&html).expect("the login form has a csrf_token input");
    assert_eq!(
        hidden, cookie,
        "the hidden input carries the cookie's token"
    );
    client
        .post(server.at("/login"))
        .header(
            reqwest::header::COOKIE,
            format!("seamline_login_csrf={cookie}"),
        )
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf_token", hidden.as_str()),
        ])
        .send()
        .await
        .expect("POST /login")
}

/// `sign in as EMAIL / PASSWORD` from what `serve` printed.
pub fn printed_login(line: &str) -> (String, String) {
    let rest = line
        .split("sign in as ")
        .nth(1)
        .unwrap_or_else(|| panic!("no login on {line:?}"));
    let (email, password) = rest
        .split_once(" / ")
        .unwrap_or_else(|| panic!("no e-mail / password on {line:?}"));
    (email.trim().to_owned(), password.trim().to_owned())
}

/// The key after `label` (e.g. `API key:`) on a line `serve` printed.
pub fn printed_key(line: &str, label: &str) -> String {
    line.split(label)
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no {label} on {line:?}"))
        .to_owned()
}
