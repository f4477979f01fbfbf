//! A fake VK API and Callback API: `POST /method/<name>` (form or query)
//! for `groups.getById`, `groups.getCallbackConfirmationCode` and
//! `messages.send`, answering HTTP 200 with `{"response": …}` or
//! `{"error": {"error_code", "error_msg", "request_params"}}` as VK does.
//! `messages.send` keeps VK's idempotency: a `random_id` seen before from
//! the same community sends nothing and answers the first message's id.
//!
//! The callback server is confirmed like VK's "Confirm" button (a
//! `confirmation` event answered with the code), then gets events with the
//! `secret` field, re-sent until the body is exactly `ok`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use crate::hook::{DeliverError, WebhookAttempt};
use crate::hook::{Outgoing, Retry};

/// A scripted answer to the next `messages.send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 (VK's front is down for a moment).
    ServerError,
    /// Error 6: too many requests per second.
    TooManyRequests,
    /// Error 901: the user never wrote or denied messages.
    NoPermission,
}

/// One `messages.send` call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub method: String,
    pub params: HashMap<String, String>,
    pub status: u16,
    /// The `error_code` answered, if any.
    pub error: Option<u32>,
}

/// A message the fake actually sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub peer_id: i64,
    pub text: String,
    pub random_id: i64,
    pub message_id: i64,
}

#[derive(Debug, Clone)]
struct Server {
    url: String,
    secret: String,
}

#[derive(Debug, Default)]
struct Inner {
    /// group id → (token, confirmation code).
    groups: HashMap<i64, (String, String)>,
    server: Option<(i64, Server)>,
    failures: VecDeque<Failure>,
    /// Every `messages.send` answers HTTP 503 until brought back up.
    down: bool,
    /// The next `messages.send` is carried out at once but answered only
    /// after this long (a server killed meanwhile never learns it was sent).
    hold_next: Option<std::time::Duration>,
    calls: Vec<Call>,
    delivered: Vec<Delivered>,
    attempts: Vec<WebhookAttempt>,
    /// (group, random_id) → message id: VK's uniqueness check.
    sent_ids: HashMap<(i64, i64), i64>,
    next_id: i64,
}

/// Why the callback server was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("unknown community")]
    UnknownGroup,
    #[error("the server answered {0:?} instead of the confirmation code")]
    Wrong(String),
    #[error(transparent)]
    Deliver(#[from] DeliverError),
}

/// The fake server; clones share it.
#[derive(Clone)]
pub struct FakeVk {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    retry: Retry,
}

impl FakeVk {
    /// Serves on `listen` (port 0 for any) until the runtime ends.
    pub async fn start(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let base_url = format!("http://{}/method", listener.local_addr()?);
        let fake = Self {
            base_url,
            inner: Arc::default(),
            http: reqwest::Client::new(),
            retry: Retry::default(),
        };
        let app = Router::new()
            .route("/method/{name}", post(method))
            .route("/_fake/vk/messages", post(customer_writes))
            .route("/_fake/vk/confirm", post(settings_confirm))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake VK stopped");
            }
        });
        Ok(fake)
    }

    /// What a connector uses instead of `https://api.vk.com/method`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A community with its token and confirmation code.
    pub fn add_group(&self, group_id: i64, token: &str, confirmation: &str) {
        self.lock()
            .groups
            .insert(group_id, (token.to_owned(), confirmation.to_owned()));
    }

    /// The next `messages.send` calls answer these, in order.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.lock().failures.extend(failures);
    }

    /// Takes `messages.send` down (HTTP 503 to every call, nothing sent)
    /// or brings it back up.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Carries out the next `messages.send` at once and answers it only
    /// after `wait`.
    pub fn hold_next_answer(&self, wait: std::time::Duration) {
        self.lock().hold_next = Some(wait);
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

    fn next_id(&self) -> i64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        inner.next_id
    }

    /// "Confirm" in the community's server settings: the `confirmation`
    /// event must be answered with the code; then events go to `url`.
    pub async fn confirm(
        &self,
        group_id: i64,
        url: &str,
        secret: &str,
    ) -> Result<(), ConfirmError> {
        let code = self.lock().groups.get(&group_id).map(|g| g.1.clone());
        let code = code.ok_or(ConfirmError::UnknownGroup)?;
        let out = Outgoing {
            url: url.to_owned(),
            headers: Vec::new(),
            body: serde_json::to_vec(&json!({"type": "confirmation", "group_id": group_id}))
                .unwrap_or_default(),
            event: "confirmation".into(),
        };
        let once = Retry {
            tries: 1,
            ..Retry::default()
        };
        let log = |attempt| self.lock().attempts.push(attempt);
        let answer = crate::hook::post(&self.http, &once, &out, |s, _| s == 200, log).await?;
        if answer != code {
            return Err(ConfirmError::Wrong(answer));
        }
        let server = Server {
            url: url.to_owned(),
            secret: secret.to_owned(),
        };
        self.lock().server = Some((group_id, server));
        Ok(())
    }

    /// A `message_new` event from user `from` (with a link's `ref`).
    pub fn message_new(
        &self,
        group_id: i64,
        from: i64,
        text: &str,
        reference: Option<&str>,
    ) -> Value {
        let id = self.next_id();
        let mut message = json!({"id": id, "date": Utc::now().timestamp(), "peer_id": from,
            "from_id": from, "text": text, "conversation_message_id": id, "out": 0,
            "attachments": [], "fwd_messages": [], "important": false, "is_hidden": false});
        if let Some(reference) = reference {
            message["ref"] = json!(reference);
            message["ref_source"] = json!("site");
        }
        json!({"type": "message_new", "event_id": format!("{:040x}", id * 2_654_435_761),
            "v": "5.199", "group_id": group_id,
            "object": {"message": message, "client_info": {"keyboard": true, "lang_id": 0}}})
    }

    /// A `message_read` event: `from` read up to `message_id`.
    pub fn message_read(&self, group_id: i64, from: i64, message_id: i64) -> Value {
        json!({"type": "message_read", "event_id": format!("{:040x}", self.next_id() * 7),
            "v": "5.199", "group_id": group_id,
            "object": {"from_id": from, "peer_id": from, "read_message_id": message_id,
                       "conversation_message_id": message_id}})
    }

    /// Posts `event` with the server's secret, re-sent until the answer is
    /// exactly `ok`.
    pub async fn deliver(&self, event: &Value) -> Result<(), DeliverError> {
        let server = self.lock().server.clone();
        let (_, server) = server.ok_or(DeliverError::NoWebhook)?;
        let mut event = event.clone();
        event["secret"] = json!(server.secret);
        let out = Outgoing {
            url: server.url.clone(),
            headers: Vec::new(),
            body: serde_json::to_vec(&event).unwrap_or_default(),
            event: event["event_id"].as_str().unwrap_or_default().to_owned(),
        };
        let log = |attempt| self.lock().attempts.push(attempt);
        let ok = |status: u16, body: &str| status == 200 && body == "ok";
        crate::hook::post(&self.http, &self.retry, &out, ok, log)
            .await
            .map(drop)
    }
}

/// The demo's way to play a customer: `{"from": 1234567, "text": "Привет"}`.
async fn customer_writes(State(fake): State<FakeVk>, Json(body): Json<Value>) -> Response {
    let group = fake.lock().server.as_ref().map(|(g, _)| *g);
    let Some(group) = group else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "no callback server confirmed"})),
        )
            .into_response();
    };
    let from = body["from"].as_i64().unwrap_or(1_234_567);
    let text = body["text"].as_str().unwrap_or_default();
    let event = fake.message_new(group, from, text, None);
    match fake.deliver(&event).await {
        Ok(()) => Json(json!({"event_id": event["event_id"]})).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// The demo's community settings: `{"group_id", "url", "secret"}` adds the
/// callback server and confirms it.
async fn settings_confirm(State(fake): State<FakeVk>, Json(body): Json<Value>) -> Response {
    let group = body["group_id"].as_i64().unwrap_or_default();
    let url = body["url"].as_str().unwrap_or_default();
    let secret = body["secret"].as_str().unwrap_or_default();
    match fake.confirm(group, url, secret).await {
        Ok(()) => Json(json!({"confirmed": true})).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn vk_error(code: u32, message: &str) -> Response {
    Json(json!({"error": {"error_code": code, "error_msg": message, "request_params": []}}))
        .into_response()
}

async fn method(
    State(fake): State<FakeVk>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut params = query;
    params.extend(form);
    let (response, error) = answer(&fake, &name, &params);
    let status = response.status().as_u16();
    let mut hold = None;
    if name == "messages.send" {
        let mut inner = fake.lock();
        hold = inner.hold_next.take();
        inner.calls.push(Call {
            method: name,
            params,
            status,
            error,
        });
    }
    if let Some(wait) = hold {
        tokio::time::sleep(wait).await;
    }
    response
}

fn answer(fake: &FakeVk, name: &str, params: &HashMap<String, String>) -> (Response, Option<u32>) {
    let mut inner = fake.lock();
    let token = params.get("access_token").cloned().unwrap_or_default();
    let group = inner
        .groups
        .iter()
        .find(|(_, (t, _))| *t == token)
        .map(|(g, (_, code))| (*g, code.clone()));
    let Some((group, code)) = group else {
        let message = "User authorization failed: invalid access_token (4).";
        return (vk_error(5, message), Some(5));
    };
    match name {
        "groups.getById" => (
            Json(
                json!({"response": {"groups": [{"id": group, "name": "Магазин (fake)",
                "screen_name": format!("club{group}")}]}}),
            )
            .into_response(),
            None,
        ),
        "groups.getCallbackConfirmationCode" => (
            Json(json!({"response": {"code": code}})).into_response(),
            None,
        ),
        "messages.send" if inner.down => (StatusCode::SERVICE_UNAVAILABLE.into_response(), None),
        "messages.send" => match inner.failures.pop_front() {
            Some(Failure::ServerError) => (StatusCode::INTERNAL_SERVER_ERROR.into_response(), None),
            Some(Failure::TooManyRequests) => {
                (vk_error(6, "Too many requests per second"), Some(6))
            }
            Some(Failure::NoPermission) => (
                vk_error(901, "Can't send messages for users without permission"),
                Some(901),
            ),
            None => send(&mut inner, group, params),
        },
        _ => (vk_error(3, "Unknown method passed"), Some(3)),
    }
}

fn send(
    inner: &mut Inner,
    group: i64,
    params: &HashMap<String, String>,
) -> (Response, Option<u32>) {
    let peer = params.get("peer_id").and_then(|p| p.parse::<i64>().ok());
    let random_id = params.get("random_id").and_then(|r| r.parse::<i64>().ok());
    let (Some(peer_id), Some(random_id)) = (peer, random_id) else {
        let message = "One of the parameters specified was missing or invalid: peer_id, random_id";
        return (vk_error(100, message), Some(100));
    };
    let text = params.get("message").cloned().unwrap_or_default();
    if text.is_empty() {
        return (vk_error(100, "message is empty"), Some(100));
    }
    if random_id != 0 {
        if let Some(id) = inner.sent_ids.get(&(group, random_id)) {
            // Already sent with this random_id: nothing goes out again.
            return (Json(json!({"response": id})).into_response(), None);
        }
    }
    inner.next_id += 1;
    let message_id = inner.next_id;
    inner.sent_ids.insert((group, random_id), message_id);
    inner.delivered.push(Delivered {
        peer_id,
        text,
        random_id,
        message_id,
    });
    (Json(json!({"response": message_id})).into_response(), None)
}
