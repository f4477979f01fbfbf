//! A fake Telegram Bot API: `POST /bot<token>/<method>` for `getMe`,
//! `setWebhook`, `getWebhookInfo`, `deleteWebhook` and `sendMessage`, with
//! the real answer shapes (`{"ok": true, "result": …}` or
//! `{"ok": false, "error_code", "description", "parameters"}`).
//!
//! Tests script failures (`fail_next`: a 5xx, a 429 with `retry_after`, a
//! 403 for a blocked bot, a slow answer after the message went out) and read the log: every call received, and the
//! messages actually delivered. Updates go to the webhook set for a bot,
//! with its `X-Telegram-Bot-Api-Secret-Token`, re-sent on a non-2xx answer
//! like Telegram does.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// The header Telegram signs webhook requests with.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// A scripted answer to the next `sendMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 (the Bot API is down for a moment).
    ServerError,
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after`.
    TooManyRequests { retry_after: u32 },
    /// 403 `Forbidden: bot was blocked by the user`.
    Blocked,
    /// The message is sent at once but answered only after this long: a
    /// client that gives up sooner never learns it went out.
    AnswerAfter(Duration),
}

/// One call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub token: String,
    pub method: String,
    pub body: Value,
    /// The HTTP status it answered.
    pub status: u16,
}

/// A message the fake accepted (a successful `sendMessage`).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub token: String,
    pub chat_id: i64,
    pub text: String,
    pub message_id: i64,
}

/// One webhook request the fake made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAttempt {
    pub update_id: i64,
    /// The receiver's status; none when it did not answer.
    pub status: Option<u16>,
}

#[derive(Debug, Clone)]
struct Webhook {
    url: String,
    secret_token: Option<String>,
}

#[derive(Debug, Default)]
struct Bot {
    webhook: Option<Webhook>,
    next_message_id: i64,
}

#[derive(Debug, Default)]
struct Inner {
    bots: HashMap<String, Bot>,
    failures: VecDeque<Failure>,
    calls: Vec<Call>,
    delivered: Vec<Delivered>,
    webhook_attempts: Vec<WebhookAttempt>,
    next_update_id: i64,
}

/// Why an update could not be handed to the webhook.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("no bot with this token")]
    UnknownBot,
    #[error("the bot has no webhook set")]
    NoWebhook,
    #[error("the webhook kept failing: last status {0:?}")]
    GaveUp(Option<u16>),
}

/// The fake server; clones share it.
#[derive(Clone)]
pub struct FakeTelegram {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    /// Tries per update (Telegram re-sends "a reasonable number of times").
    webhook_tries: u32,
    retry_pause: Duration,
}

impl FakeTelegram {
    /// Serves on `listen` (port 0 for any) until the runtime ends.
    pub async fn start(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let fake = Self {
            base_url,
            inner: Arc::default(),
            http: reqwest::Client::new(),
            webhook_tries: 5,
            retry_pause: Duration::from_millis(200),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(call))
            .route("/_fake/telegram/{token}/messages", post(customer_writes))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake Telegram stopped");
            }
        });
        Ok(fake)
    }

    /// What a connector uses instead of `https://api.telegram.org`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock has failed already.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `token` a valid bot token (others get 401).
    pub fn add_bot(&self, token: &str) {
        self.lock().bots.entry(token.to_owned()).or_default();
    }

    /// The next `sendMessage` calls answer these, in order.
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
        self.lock().webhook_attempts.clone()
    }

    /// The webhook URL and secret set for `token`.
    pub fn webhook(&self, token: &str) -> Option<(String, Option<String>)> {
        let inner = self.lock();
        let hook = inner.bots.get(token)?.webhook.clone()?;
        Some((hook.url, hook.secret_token))
    }

    /// A new `update_id` (they only grow, like Telegram's).
    pub fn next_update_id(&self) -> i64 {
        let mut inner = self.lock();
        inner.next_update_id += 1;
        100_000_000 + inner.next_update_id
    }

    /// An update with a private text message from user `from`.
    pub fn text_update(&self, from: i64, first_name: &str, text: &str) -> Value {
        let user = json!({"id": from, "is_bot": false, "first_name": first_name});
        json!({
            "update_id": self.next_update_id(),
            "message": {
                "message_id": self.next_update_id(),
                "date": chrono::Utc::now().timestamp(),
                "from": user,
                "chat": {"id": from, "type": "private", "first_name": first_name},
                "text": text,
            }
        })
    }

    /// Posts `update` to the bot's webhook with its secret token, re-sending
    /// on a non-2xx answer or no answer. Returns the final status.
    pub async fn deliver(&self, token: &str, update: &Value) -> Result<u16, DeliverError> {
        let hook = {
            let inner = self.lock();
            let bot = inner.bots.get(token).ok_or(DeliverError::UnknownBot)?;
            bot.webhook.clone().ok_or(DeliverError::NoWebhook)?
        };
        let update_id = update["update_id"].as_i64().unwrap_or_default();
        let mut last = None;
        for attempt in 0..self.webhook_tries {
            if attempt > 0 {
                tokio::time::sleep(self.retry_pause).await;
            }
            let mut request = self.http.post(&hook.url).json(update);
            if let Some(secret) = &hook.secret_token {
                request = request.header(SECRET_HEADER, secret);
            }
            last = request.send().await.ok().map(|r| r.status().as_u16());
            self.lock().webhook_attempts.push(WebhookAttempt {
                update_id,
                status: last,
            });
            if last.is_some_and(|s| (200..300).contains(&s)) {
                return Ok(last.unwrap_or(200));
            }
        }
        Err(DeliverError::GaveUp(last))
    }
}

/// The demo's way to play a customer: `{"from": 123, "name": "Анна",
/// "text": "Привет"}` becomes an update sent to the bot's webhook.
async fn customer_writes(
    State(fake): State<FakeTelegram>,
    Path(token): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let from = body["from"].as_i64().unwrap_or(100_200_300);
    let name = body["name"].as_str().unwrap_or("Customer");
    let text = body["text"].as_str().unwrap_or_default();
    let update = fake.text_update(from, name, text);
    match fake.deliver(&token, &update).await {
        Ok(status) => {
            Json(json!({"update_id": update["update_id"], "status": status})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn error(code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

fn failure(f: &Failure) -> Response {
    match f {
        Failure::ServerError => error(500, "Internal Server Error", None),
        Failure::TooManyRequests { retry_after } => error(
            429,
            &format!("Too Many Requests: retry after {retry_after}"),
            Some(json!({"retry_after": retry_after})),
        ),
        Failure::Blocked => error(403, "Forbidden: bot was blocked by the user", None),
        // Taken off the script before the answer (`take_slow_answer`).
        Failure::AnswerAfter(_) => error(500, "Internal Server Error", None),
    }
}

async fn call(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    body: Option<Json<Value>>,
) -> Response {
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let token = bot.strip_prefix("bot").unwrap_or_default().to_owned();
    let slow = (method == "sendMessage")
        .then(|| fake.take_slow_answer())
        .flatten();
    let response = answer(&fake, &token, &method, &body, slow.is_some());
    fake.lock().calls.push(Call {
        token,
        method,
        body,
        status: response.status().as_u16(),
    });
    if let Some(wait) = slow {
        tokio::time::sleep(wait).await;
    }
    response
}

impl FakeTelegram {
    /// The next scripted failure when it is a slow answer (taken off the
    /// script: the message itself goes out as usual).
    fn take_slow_answer(&self) -> Option<Duration> {
        let mut inner = self.lock();
        match inner.failures.front() {
            Some(Failure::AnswerAfter(wait)) => {
                let wait = *wait;
                inner.failures.pop_front();
                Some(wait)
            }
            _ => None,
        }
    }
}

/// `scripted`: this call's scripted failure was taken already (a slow
/// answer), so the next one is left for the next call.
fn answer(
    fake: &FakeTelegram,
    token: &str,
    method: &str,
    body: &Value,
    scripted: bool,
) -> Response {
    let mut inner = fake.lock();
    let Inner {
        bots,
        failures,
        delivered,
        ..
    } = &mut *inner;
    let Some(bot) = bots.get_mut(token) else {
        return error(401, "Unauthorized", None);
    };
    match method {
        "getMe" => ok(json!({
            "id": 7_000_000_001_i64, "is_bot": true,
            "first_name": "Seamline fake bot", "username": "seamline_fake_bot"
        })),
        "setWebhook" => set_webhook(bot, body),
        "deleteWebhook" => {
            bot.webhook = None;
            ok(json!(true))
        }
        "getWebhookInfo" => ok(json!({
            "url": bot.webhook.as_ref().map(|h| h.url.clone()).unwrap_or_default(),
            "pending_update_count": 0
        })),
        "sendMessage" => {
            let next = if scripted { None } else { failures.pop_front() };
            if let Some(f) = next {
                return failure(&f);
            }
            send_message(token, bot, body, delivered)
        }
        _ => error(404, "Not Found", None),
    }
}

fn set_webhook(bot: &mut Bot, body: &Value) -> Response {
    let Some(url) = body["url"].as_str().filter(|u| !u.is_empty()) else {
        return error(400, "Bad Request: bad webhook: URL must be provided", None);
    };
    let secret_token = body["secret_token"].as_str().map(str::to_owned);
    let valid = |s: &str| {
        (1..=256).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if secret_token.as_deref().is_some_and(|s| !valid(s)) {
        return error(
            400,
            "Bad Request: secret token contains unallowed characters",
            None,
        );
    }
    bot.webhook = Some(Webhook {
        url: url.to_owned(),
        secret_token,
    });
    ok(json!(true))
}

fn send_message(token: &str, bot: &mut Bot, body: &Value, log: &mut Vec<Delivered>) -> Response {
    let chat_id = match &body["chat_id"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let Some(chat_id) = chat_id else {
        return error(400, "Bad Request: chat not found", None);
    };
    let text = body["text"].as_str().unwrap_or_default();
    if text.is_empty() {
        return error(400, "Bad Request: message text is empty", None);
    }
    if text.chars().count() > 4096 {
        return error(400, "Bad Request: message is too long", None);
    }
    bot.next_message_id += 1;
    log.push(Delivered {
        token: token.to_owned(),
        chat_id,
        text: text.to_owned(),
        message_id: bot.next_message_id,
    });
    ok(json!({
        "message_id": bot.next_message_id,
        "date": chrono::Utc::now().timestamp(),
        "chat": {"id": chat_id, "type": "private"},
        "text": text,
    }))
}
