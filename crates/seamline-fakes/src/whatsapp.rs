//! A fake WhatsApp Cloud API (Graph `v21.0`): `GET /v21.0/<phone_number_id>`
//! and `POST /v21.0/<phone_number_id>/messages` with bearer tokens and the
//! Graph error shape `{"error": {"message", "type", "code", "error_data",
//! "fbtrace_id"}}`. It keeps the 24-hour window as Meta does: free-form text
//! to a user who has not written in 24 h is refused with 131047; templates
//! go through.
//!
//! Webhooks go to the subscribed callback after Meta's `GET` handshake
//! (`hub.mode`, `hub.verify_token`, `hub.challenge`), signed with
//! `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>` and
//! re-sent on a non-2xx answer. Tests script failures (`fail_next`) and read
//! the logs: calls received, messages delivered, webhook attempts.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::hook::{hmac_sha256_hex, Outgoing, Retry};
pub use crate::hook::{DeliverError, WebhookAttempt};

pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
pub const VERSION: &str = "v21.0";

/// A scripted answer to the next `messages` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500, code 2 (service temporarily unavailable).
    ServerError,
    /// HTTP 429 with `Retry-After`, code 130429 (throughput reached).
    TooManyRequests { retry_after: u32 },
    /// HTTP 400, code 131026 (not a WhatsApp number / cannot be delivered).
    Undeliverable,
    /// The message is sent at once but answered only after this long
    /// (statuses about it can reach the webhook before the answer does).
    AnswerAfter(std::time::Duration),
}

/// One call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub path: String,
    pub body: Value,
    pub status: u16,
}

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub to: String,
    /// `text` or `template`.
    pub kind: String,
    /// The text, or the template's name.
    pub text: String,
    pub wamid: String,
}

#[derive(Debug, Clone)]
struct Subscription {
    url: String,
    app_secret: String,
}

#[derive(Debug, Default)]
struct Inner {
    /// phone_number_id → (access token, display number).
    numbers: HashMap<String, (String, String)>,
    subscription: Option<Subscription>,
    /// wa_id → when the user last wrote (from the webhooks sent).
    last_inbound: HashMap<String, DateTime<Utc>>,
    failures: VecDeque<Failure>,
    calls: Vec<Call>,
    delivered: Vec<Delivered>,
    attempts: Vec<WebhookAttempt>,
    next_id: u64,
}

/// Why Meta's handshake did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("the callback did not answer: {0}")]
    Unreachable(String),
    #[error("the callback refused the verify token (HTTP {0})")]
    Refused(u16),
    #[error("the callback answered {0:?} instead of the challenge")]
    WrongChallenge(String),
}

/// The fake server; clones share it.
#[derive(Clone)]
pub struct FakeWhatsApp {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    retry: Retry,
}

impl FakeWhatsApp {
    /// Serves on `listen` (port 0 for any) until the runtime ends.
    pub async fn start(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let base_url = format!("http://{}/{VERSION}", listener.local_addr()?);
        let fake = Self {
            base_url,
            inner: Arc::default(),
            http: reqwest::Client::new(),
            retry: Retry::default(),
        };
        let app = Router::new()
            .route("/{version}/{number}", get(number_info))
            .route("/{version}/{number}/messages", post(messages))
            .route("/_fake/whatsapp/messages", post(customer_writes))
            .route("/_fake/whatsapp/subscribe", post(dashboard_subscribe))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake WhatsApp stopped");
            }
        });
        Ok(fake)
    }

    /// What a connector uses instead of `https://graph.facebook.com/v21.0`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A business number reachable with `access_token`.
    pub fn add_number(&self, phone_number_id: &str, access_token: &str, display: &str) {
        self.lock().numbers.insert(
            phone_number_id.to_owned(),
            (access_token.to_owned(), display.to_owned()),
        );
    }

    /// The next `messages` calls answer these, in order.
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

    /// Meta's dashboard "Verify and save": the `GET` handshake, then
    /// webhooks go to `url` signed with `app_secret`.
    pub async fn subscribe(
        &self,
        url: &str,
        verify_token: &str,
        app_secret: &str,
    ) -> Result<(), SubscribeError> {
        let challenge = format!("{}", self.next_id() * 7919);
        let response = self
            .http
            .get(url)
            .query(&[
                ("hub.mode", "subscribe"),
                ("hub.verify_token", verify_token),
                ("hub.challenge", &challenge),
            ])
            .send()
            .await
            .map_err(|e| SubscribeError::Unreachable(e.to_string()))?;
        let status = response.status().as_u16();
        let answer = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(SubscribeError::Refused(status));
        }
        if answer != challenge {
            return Err(SubscribeError::WrongChallenge(answer));
        }
        self.lock().subscription = Some(Subscription {
            url: url.to_owned(),
            app_secret: app_secret.to_owned(),
        });
        Ok(())
    }

    fn next_id(&self) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id
    }

    /// A new `wamid.…`.
    pub fn wamid(&self) -> String {
        format!("wamid.HBgLFAKE{:016}", self.next_id())
    }

    /// The envelope Meta posts around one `value`.
    pub fn envelope(phone_number_id: &str, value: Value) -> Value {
        let mut value = value;
        value["messaging_product"] = json!("whatsapp");
        value["metadata"] =
            json!({"display_phone_number": "15550001234", "phone_number_id": phone_number_id});
        json!({"object": "whatsapp_business_account",
               "entry": [{"id": "102290129340398",
                          "changes": [{"field": "messages", "value": value}]}]})
    }

    /// A text message from `wa_id` written at `at`.
    pub fn text_message(
        &self,
        phone_number_id: &str,
        wa_id: &str,
        name: &str,
        text: &str,
        at: DateTime<Utc>,
    ) -> Value {
        let message = json!({"from": wa_id, "id": self.wamid(),
            "timestamp": at.timestamp().to_string(), "type": "text", "text": {"body": text}});
        Self::envelope(
            phone_number_id,
            json!({"contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                   "messages": [message]}),
        )
    }

    /// A delivery status of a message the business sent.
    pub fn status(phone_number_id: &str, wamid: &str, status: &str, recipient: &str) -> Value {
        let mut item = json!({"id": wamid, "status": status,
            "timestamp": Utc::now().timestamp().to_string(), "recipient_id": recipient});
        if status == "failed" {
            item["errors"] = json!([{"code": 131026, "title": "Message undeliverable",
                "message": "Message undeliverable",
                "error_data": {"details": "Message Undeliverable."}}]);
        }
        Self::envelope(phone_number_id, json!({"statuses": [item]}))
    }

    /// Posts `payload` signed to the subscribed callback, re-sending on a
    /// non-2xx answer. The users who wrote in it open their 24-hour window.
    pub async fn deliver(&self, payload: &Value) -> Result<u16, DeliverError> {
        let hook = self.lock().subscription.clone();
        let hook = hook.ok_or(DeliverError::NoWebhook)?;
        let body = serde_json::to_vec(payload).unwrap_or_default();
        let signature = format!("sha256={}", hmac_sha256_hex(&hook.app_secret, &body));
        let messages = messages_in(payload);
        let event = messages
            .first()
            .map(|m| m["id"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|| "statuses".into());
        let out = Outgoing {
            url: hook.url.clone(),
            headers: vec![(SIGNATURE_HEADER, signature)],
            body,
            event,
        };
        let log = |attempt| self.lock().attempts.push(attempt);
        crate::hook::post(
            &self.http,
            &self.retry,
            &out,
            |s, _| (200..300).contains(&s),
            log,
        )
        .await?;
        let mut inner = self.lock();
        for message in messages {
            let at = message["timestamp"]
                .as_str()
                .and_then(|t| t.parse::<i64>().ok())
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or_else(Utc::now);
            if let Some(from) = message["from"].as_str() {
                let last = inner.last_inbound.entry(from.to_owned()).or_insert(at);
                *last = (*last).max(at);
            }
        }
        Ok(200)
    }
}

fn messages_in(payload: &Value) -> Vec<Value> {
    payload["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
        .flat_map(|c| {
            c["value"]["messages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// The demo's way to play a customer: `{"phone_number_id": "…", "from":
/// "79161234567", "name": "Анна", "text": "Привет"}` becomes a webhook.
async fn customer_writes(State(fake): State<FakeWhatsApp>, Json(body): Json<Value>) -> Response {
    let number = body["phone_number_id"].as_str().unwrap_or_default();
    let from = body["from"].as_str().unwrap_or("79161234567");
    let name = body["name"].as_str().unwrap_or("Customer");
    let text = body["text"].as_str().unwrap_or_default();
    let payload = fake.text_message(number, from, name, text, Utc::now());
    match fake.deliver(&payload).await {
        Ok(status) => Json(json!({"status": status})).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// The demo's Meta dashboard: `{"url", "verify_token", "app_secret"}`
/// runs the handshake and subscribes the callback.
async fn dashboard_subscribe(
    State(fake): State<FakeWhatsApp>,
    Json(body): Json<Value>,
) -> Response {
    let field = |k: &str| body[k].as_str().unwrap_or_default().to_owned();
    match fake
        .subscribe(&field("url"), &field("verify_token"), &field("app_secret"))
        .await
    {
        Ok(()) => Json(json!({"success": true})).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn graph_error(status: u16, code: u32, message: &str, retry_after: Option<u32>) -> Response {
    let body = json!({"error": {"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": details(code)},
        "fbtrace_id": "AFakeTraceId"}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, Json(body)).into_response();
    if let Some(after) = retry_after {
        if let Ok(value) = after.to_string().parse() {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    response
}

/// Meta's longer explanation of an error code.
fn details(code: u32) -> &'static str {
    match code {
        131_047 => "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        131_026 => "Message Undeliverable.",
        130_429 => "Cloud API message throughput has been reached.",
        190 => "Error validating access token.",
        _ => "Please retry your request later.",
    }
}

fn failure(f: &Failure) -> Response {
    match f {
        Failure::ServerError => graph_error(500, 2, "Service temporarily unavailable", None),
        Failure::TooManyRequests { retry_after } => {
            graph_error(429, 130_429, "(#130429) Rate limit hit", Some(*retry_after))
        }
        Failure::Undeliverable => {
            graph_error(400, 131_026, "(#131026) Message undeliverable", None)
        }
        // Taken off the script before the answer (`messages`).
        Failure::AnswerAfter(_) => graph_error(500, 2, "Service temporarily unavailable", None),
    }
}

/// A Graph error: HTTP status, code, message.
type GraphError = (u16, u32, &'static str);

/// The number's display number, or the Graph error for a bad token.
fn authorised(inner: &Inner, number: &str, headers: &HeaderMap) -> Result<String, GraphError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match inner.numbers.get(number) {
        Some((token, display)) if given == Some(token.as_str()) => Ok(display.clone()),
        Some(_) => Err((401, 190, "Invalid OAuth access token")),
        None => Err((400, 100, "Unsupported get request")),
    }
}

async fn number_info(
    State(fake): State<FakeWhatsApp>,
    Path((_version, number)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let inner = fake.lock();
    match authorised(&inner, &number, &headers) {
        Ok(display) => Json(json!({"display_phone_number": display,
            "verified_name": "Seamline fake shop", "id": number}))
        .into_response(),
        Err((status, code, message)) => graph_error(status, code, message, None),
    }
}

async fn messages(
    State(fake): State<FakeWhatsApp>,
    Path((_version, number)): Path<(String, String)>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let id = fake.wamid();
    let (response, slow) = {
        let mut inner = fake.lock();
        let (response, slow) = match authorised(&inner, &number, &headers) {
            Err((status, code, message)) => (graph_error(status, code, message, None), None),
            Ok(_) => match inner.failures.pop_front() {
                Some(Failure::AnswerAfter(wait)) => (send(&mut inner, &body, id), Some(wait)),
                Some(f) => (failure(&f), None),
                None => (send(&mut inner, &body, id), None),
            },
        };
        inner.calls.push(Call {
            path: format!("/{number}/messages"),
            body,
            status: response.status().as_u16(),
        });
        (response, slow)
    };
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    response
}

fn send(inner: &mut Inner, body: &Value, wamid: String) -> Response {
    // Meta takes the number with or without its `+`.
    let to = body["to"].as_str().map(|t| t.trim_start_matches('+'));
    let Some(to) = to.filter(|t| !t.is_empty()) else {
        return graph_error(400, 100, "(#100) The parameter to is required.", None);
    };
    let kind = body["type"].as_str().unwrap_or_default();
    let text = match kind {
        "text" => body["text"]["body"].as_str(),
        "template" => body["template"]["name"].as_str(),
        _ => None,
    };
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return graph_error(400, 100, "(#100) Invalid parameter", None);
    };
    let window_open = inner
        .last_inbound
        .get(to)
        .is_some_and(|at| Utc::now() - *at < chrono::TimeDelta::hours(24));
    if kind == "text" && !window_open {
        return graph_error(400, 131_047, "(#131047) Re-engagement message", None);
    }
    inner.delivered.push(Delivered {
        to: to.to_owned(),
        kind: kind.to_owned(),
        text: text.to_owned(),
        wamid: wamid.clone(),
    });
    Json(json!({"messaging_product": "whatsapp",
        "contacts": [{"input": to, "wa_id": to}],
        "messages": [{"id": wamid, "message_status": "accepted"}]}))
    .into_response()
}
