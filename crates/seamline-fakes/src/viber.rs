//! A fake Viber REST Bot API: `POST /pa/<method>` for `get_account_info`,
//! `set_webhook` and `send_message`, token in `X-Viber-Auth-Token` (or
//! `auth_token` in the body, as the Python library sends it), answering
//! HTTP 200 with `{"status": 0, "status_message": "ok", …}` or a failure
//! status. Like Viber it lets a bot message only subscribed users (those
//! who wrote to it), else status 6.
//!
//! `set_webhook` checks the URL at once with a signed `webhook` event.
//! Callbacks carry `X-Viber-Content-Signature` (hex HMAC-SHA256 of the
//! body with the bot's token) and are re-sent on a non-2xx answer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::hook::{hmac_sha256_hex, Outgoing, Retry};
pub use crate::hook::{DeliverError, WebhookAttempt};

pub const SIGNATURE_HEADER: &str = "X-Viber-Content-Signature";
pub const AUTH_HEADER: &str = "X-Viber-Auth-Token";

/// A scripted answer to the next `send_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500.
    ServerError,
    /// Status 12, tooManyRequests.
    TooManyRequests,
    /// Status 5, receiverNotRegistered.
    NotRegistered,
}

/// One `send_message` call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub body: Value,
    pub http: u16,
    /// The Viber `status` answered (none for an HTTP error).
    pub status: Option<u64>,
}

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub receiver: String,
    pub text: String,
    pub message_token: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// token → (bot name, webhook URL).
    bots: HashMap<String, (String, Option<String>)>,
    subscribed: HashSet<String>,
    failures: VecDeque<Failure>,
    calls: Vec<Call>,
    delivered: Vec<Delivered>,
    attempts: Vec<WebhookAttempt>,
    next_token: u64,
}

/// The fake server; clones share it.
#[derive(Clone)]
pub struct FakeViber {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    retry: Retry,
}

impl FakeViber {
    /// Serves on `listen` (port 0 for any) until the runtime ends.
    pub async fn start(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let base_url = format!("http://{}/pa", listener.local_addr()?);
        let fake = Self {
            base_url,
            inner: Arc::default(),
            http: reqwest::Client::new(),
            retry: Retry::default(),
        };
        let app = Router::new()
            .route("/pa/{method}", post(method))
            .route("/_fake/viber/{token}/messages", post(customer_writes))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake Viber stopped");
            }
        });
        Ok(fake)
    }

    /// What a connector uses instead of `https://chatapi.viber.com/pa`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_bot(&self, token: &str, name: &str) {
        self.lock()
            .bots
            .insert(token.to_owned(), (name.to_owned(), None));
    }

    /// The next `send_message` calls answer these, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.lock().failures.extend(failures);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.lock().delivered.clone()
    }

    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.lock().attempts.clone()
    }

    /// A new `message_token`.
    pub fn next_token(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_token += 1;
        4_912_661_846_655_238_000 + inner.next_token
    }

    /// A `message` callback: `user` writes `text`.
    pub fn message(&self, user: &str, name: &str, text: &str) -> Value {
        json!({"event": "message", "timestamp": Utc::now().timestamp_millis(),
            "message_token": self.next_token(),
            "sender": {"id": user, "name": name, "country": "RU", "language": "ru",
                       "api_version": 10},
            "message": {"type": "text", "text": text}})
    }

    /// The user opened the chat from a link carrying `context`.
    pub fn conversation_started(&self, user: &str, name: &str, context: &str) -> Value {
        json!({"event": "conversation_started", "timestamp": Utc::now().timestamp_millis(),
            "message_token": self.next_token(), "type": "open", "context": context,
            "user": {"id": user, "name": name, "country": "RU", "language": "ru",
                     "api_version": 10},
            "subscribed": false})
    }

    /// A `delivered` / `seen` / `failed` report of a message we sent.
    pub fn report(event: &str, message_token: u64, user: &str) -> Value {
        let mut report = json!({"event": event, "timestamp": Utc::now().timestamp_millis(),
            "message_token": message_token, "user_id": user});
        if event == "failed" {
            report["desc"] = json!("failure description");
        }
        report
    }

    /// Posts `event` signed to the bot's webhook, re-sent on a non-2xx
    /// answer. A user who writes becomes subscribed.
    pub async fn deliver(&self, token: &str, event: &Value) -> Result<(), DeliverError> {
        let url = self.lock().bots.get(token).and_then(|b| b.1.clone());
        let url = url.ok_or(DeliverError::NoWebhook)?;
        let body = serde_json::to_vec(event).unwrap_or_default();
        let out = Outgoing {
            url,
            headers: vec![(SIGNATURE_HEADER, hmac_sha256_hex(token, &body))],
            body,
            event: event["message_token"].to_string(),
        };
        let log = |attempt| self.lock().attempts.push(attempt);
        let accepted = |status: u16, _: &str| (200..300).contains(&status);
        crate::hook::post(&self.http, &self.retry, &out, accepted, log).await?;
        if event["event"] == "message" {
            if let Some(user) = event["sender"]["id"].as_str() {
                self.lock().subscribed.insert(user.to_owned());
            }
        }
        Ok(())
    }
}

/// The demo's way to play a customer: `{"from": "01234567890A=", "name":
/// "Анна", "text": "Привет"}`.
async fn customer_writes(
    State(fake): State<FakeViber>,
    Path(token): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let from = body["from"].as_str().unwrap_or("01234567890A=");
    let name = body["name"].as_str().unwrap_or("Customer");
    let text = body["text"].as_str().unwrap_or_default();
    let event = fake.message(from, name, text);
    match fake.deliver(&token, &event).await {
        Ok(()) => Json(json!({"message_token": event["message_token"]})).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn status(code: u64, message: &str) -> Value {
    json!({"status": code, "status_message": message})
}

async fn method(
    State(fake): State<FakeViber>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let token = headers
        .get(AUTH_HEADER)
        .and_then(|v| v.to_str().ok())
        .or(body["auth_token"].as_str())
        .unwrap_or_default()
        .to_owned();
    let name = fake.lock().bots.get(&token).map(|b| b.0.clone());
    let Some(name) = name else {
        return Json(status(2, "invalidAuthToken")).into_response();
    };
    match method.as_str() {
        "get_account_info" => {
            let mut info = status(0, "ok");
            info["name"] = json!(name);
            info["uri"] = json!("seamlinefake");
            Json(info).into_response()
        }
        "set_webhook" => set_webhook(&fake, &token, &body).await,
        "send_message" => send_message(&fake, body),
        _ => Json(status(3, "badData")).into_response(),
    }
}

/// Viber calls the URL with a signed `webhook` event; only a 200 sets it.
async fn set_webhook(fake: &FakeViber, token: &str, body: &Value) -> Response {
    let Some(url) = body["url"].as_str() else {
        return Json(status(4, "missingData")).into_response();
    };
    let check = json!({"event": "webhook", "timestamp": Utc::now().timestamp_millis(),
                       "chat_hostname": "SN-CHAT-05_", "message_token": fake.next_token()});
    let raw = serde_json::to_vec(&check).unwrap_or_default();
    let answer = fake
        .http
        .post(url)
        .header(SIGNATURE_HEADER, hmac_sha256_hex(token, &raw))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await;
    if !answer.is_ok_and(|a| a.status() == StatusCode::OK) {
        return Json(status(1, "invalidUrl")).into_response();
    }
    if let Some(bot) = fake.lock().bots.get_mut(token) {
        bot.1 = Some(url.to_owned());
    }
    let mut ok = status(0, "ok");
    ok["event_types"] = body["event_types"].clone();
    Json(ok).into_response()
}

fn send_message(fake: &FakeViber, body: Value) -> Response {
    let token = fake.next_token();
    let mut inner = fake.lock();
    let receiver = body["receiver"].as_str().unwrap_or_default().to_owned();
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    let (http, answer) = match inner.failures.pop_front() {
        Some(Failure::ServerError) => (500, None),
        Some(Failure::TooManyRequests) => (200, Some(status(12, "tooManyRequests"))),
        Some(Failure::NotRegistered) => (200, Some(status(5, "receiverNotRegistered"))),
        None if receiver.is_empty() || text.is_empty() || body["sender"]["name"].is_null() => {
            (200, Some(status(3, "badData")))
        }
        None if !inner.subscribed.contains(&receiver) => {
            (200, Some(status(6, "receiverNotSubscribed")))
        }
        None => {
            inner.delivered.push(Delivered {
                receiver,
                text,
                message_token: token,
            });
            let mut ok = status(0, "ok");
            ok["message_token"] = json!(token);
            ok["chat_hostname"] = json!("SN-CHAT-05_");
            (200, Some(ok))
        }
    };
    inner.calls.push(Call {
        body,
        http,
        status: answer.as_ref().and_then(|a| a["status"].as_u64()),
    });
    match answer {
        Some(answer) => Json(answer).into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
