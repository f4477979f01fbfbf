//! A fake Twilio-style SMS provider: `POST
//! /2010-04-01/Accounts/{AccountSid}/Messages.json` (HTTP Basic
//! `AccountSid:AuthToken`, form `To`, `From`/`MessagingServiceSid`, `Body`,
//! `StatusCallback`) answering 201 `{"sid": "SM…", "status": "queued",
//! "num_segments": …}` and `GET /2010-04-01/Accounts/{AccountSid}.json`.
//! Errors have Twilio's shape `{"code", "message", "status"}`; a 429 carries
//! `Retry-After`.
//!
//! Inbound texts and status callbacks are form posts signed with
//! `X-Twilio-Signature` (base64 HMAC-SHA1 of the URL plus the sorted
//! parameters), re-sent on a non-2xx answer, and logged.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::json;
use tokio::net::TcpListener;

pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// A scripted answer to the next `Messages.json` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 500 `{"code": 20500}`.
    ServerError,
    /// HTTP 429 `{"code": 20429}` with `Retry-After: N`.
    TooManyRequests { retry_after: u32 },
    /// HTTP 400 `{"code": 21610}`: the recipient replied STOP.
    OptedOut,
}

/// A message the fake accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub sid: String,
    pub to: String,
    pub from: String,
    pub body: String,
    pub status_callback: Option<String>,
}

/// One webhook post the fake made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAttempt {
    pub sid: String,
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: HashMap<String, String>,
    failures: VecDeque<Failure>,
    /// Every `Messages.json` call with the status it answered.
    calls: Vec<u16>,
    sent: Vec<Sent>,
    webhook_attempts: Vec<WebhookAttempt>,
    next_sid: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("no message with this sid asked for status callbacks")]
    NoCallback,
    #[error("the webhook kept failing: last status {0:?}")]
    GaveUp(Option<u16>),
}

/// The fake server; clones share it.
#[derive(Clone)]
pub struct FakeSms {
    base_url: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    webhook_tries: u32,
    retry_pause: Duration,
}

/// `base64(HMAC-SHA1(token, url + sorted name/value pairs))`.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let data: String = std::iter::once(url.to_owned())
        .chain(sorted.iter().map(|(k, v)| format!("{k}{v}")))
        .collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, data.as_bytes()))
}

fn pairs(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl FakeSms {
    pub async fn start(listen: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let fake = Self {
            base_url: format!("http://{}", listener.local_addr()?),
            inner: Arc::default(),
            http: reqwest::Client::new(),
            webhook_tries: 5,
            retry_pause: Duration::from_millis(200),
        };
        let app = Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(send))
            .route("/2010-04-01/Accounts/{file}", get(account))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake SMS provider stopped");
            }
        });
        Ok(fake)
    }

    /// What a connector uses instead of `https://api.twilio.com`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `sid` with `token` a valid account.
    pub fn add_account(&self, sid: &str, token: &str) {
        self.lock()
            .accounts
            .insert(sid.to_owned(), token.to_owned());
    }

    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.lock().failures.extend(failures);
    }

    /// Statuses answered to `Messages.json`, in order.
    pub fn calls(&self) -> Vec<u16> {
        self.lock().calls.clone()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.lock().webhook_attempts.clone()
    }

    /// A new 34-character SID with `prefix` (`SM`, `MM`).
    pub fn next_sid(&self, prefix: &str) -> String {
        let mut inner = self.lock();
        inner.next_sid += 1;
        format!("{prefix}{:032x}", 0x5ea0_0000_u64 + inner.next_sid)
    }

    /// The parameters of an inbound text from `from` to our number `to`.
    pub fn inbound(
        &self,
        account_sid: &str,
        from: &str,
        to: &str,
        body: &str,
    ) -> Vec<(String, String)> {
        let sid = self.next_sid("SM");
        pairs(&[
            ("MessageSid", &sid),
            ("SmsSid", &sid),
            ("SmsMessageSid", &sid),
            ("AccountSid", account_sid),
            ("From", from),
            ("To", to),
            ("Body", body),
            ("NumMedia", "0"),
            ("NumSegments", "1"),
            ("SmsStatus", "received"),
            ("FromCountry", "RU"),
            ("ApiVersion", "2010-04-01"),
        ])
    }

    /// Posts `params` to `url` signed with `token`, re-sending on a non-2xx
    /// answer like the provider. Returns the final status.
    pub async fn post(
        &self,
        url: &str,
        token: &str,
        params: &[(String, String)],
    ) -> Result<u16, DeliverError> {
        let sid = params
            .iter()
            .find(|(k, _)| k == "MessageSid")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let signed = signature(token, url, params);
        let mut last = None;
        for attempt in 0..self.webhook_tries {
            if attempt > 0 {
                tokio::time::sleep(self.retry_pause).await;
            }
            let request = self
                .http
                .post(url)
                .header(SIGNATURE_HEADER, &signed)
                .form(params);
            last = request.send().await.ok().map(|r| r.status().as_u16());
            self.lock().webhook_attempts.push(WebhookAttempt {
                sid: sid.clone(),
                status: last,
            });
            if let Some(status) = last.filter(|s| (200..300).contains(s)) {
                return Ok(status);
            }
        }
        Err(DeliverError::GaveUp(last))
    }

    /// Reports `status` (`delivered`, `failed` with `error_code`…) of a
    /// sent message to its `StatusCallback`.
    pub async fn report(
        &self,
        sid: &str,
        status: &str,
        error_code: Option<&str>,
    ) -> Result<u16, DeliverError> {
        let (sent, token) = {
            let inner = self.lock();
            let sent = inner.sent.iter().find(|s| s.sid == sid).cloned();
            let token = inner.accounts.values().next().cloned().unwrap_or_default();
            (sent, token)
        };
        let sent = sent.ok_or(DeliverError::NoCallback)?;
        let url = sent
            .status_callback
            .clone()
            .ok_or(DeliverError::NoCallback)?;
        let mut params = pairs(&[
            ("MessageSid", sid),
            ("SmsSid", sid),
            ("MessageStatus", status),
            ("SmsStatus", status),
            ("From", &sent.from),
            ("To", &sent.to),
            ("ApiVersion", "2010-04-01"),
        ]);
        if let Some(code) = error_code {
            params.extend(pairs(&[("ErrorCode", code)]));
        }
        self.post(&url, &token, &params).await
    }
}

fn error(status: u16, code: u32, message: &str) -> Response {
    let http = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"code": code, "message": message, "status": status,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}")});
    (http, Json(body)).into_response()
}

/// Whether the Basic credentials name a known account with its token.
fn authorised(fake: &FakeSms, headers: &HeaderMap, sid: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
    else {
        return false;
    };
    let inner = fake.lock();
    inner
        .accounts
        .get(sid)
        .is_some_and(|token| given == format!("{sid}:{token}").as_bytes())
}

async fn account(
    State(fake): State<FakeSms>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let sid = file.strip_suffix(".json").unwrap_or_default();
    if !authorised(&fake, &headers, sid) {
        return error(401, 20003, "Authenticate");
    }
    Json(json!({"sid": sid, "friendly_name": "Seamline fake SMS", "status": "active"}))
        .into_response()
}

fn failure(f: &Failure) -> Response {
    match f {
        Failure::ServerError => error(500, 20500, "Internal Server Error"),
        Failure::TooManyRequests { retry_after } => {
            let mut response = error(429, 20429, "Too Many Requests");
            if let Ok(value) = retry_after.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        Failure::OptedOut => error(400, 21610, "Attempt to send to unsubscribed recipient"),
    }
}

async fn send(
    State(fake): State<FakeSms>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let response = if authorised(&fake, &headers, &sid) {
        accept(&fake, &form)
    } else {
        error(401, 20003, "Authenticate")
    };
    fake.lock().calls.push(response.status().as_u16());
    response
}

fn accept(fake: &FakeSms, form: &HashMap<String, String>) -> Response {
    if let Some(f) = fake.lock().failures.pop_front() {
        return failure(&f);
    }
    let text = |k: &str| form.get(k).cloned().unwrap_or_default();
    let to = text("To");
    if !to.starts_with('+') || to.len() < 9 {
        return error(400, 21211, "The 'To' number is not a valid phone number.");
    }
    let body = text("Body");
    if body.is_empty() || body.chars().count() > 1600 {
        return error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        );
    }
    let from = form
        .get("From")
        .or_else(|| form.get("MessagingServiceSid"))
        .cloned()
        .unwrap_or_default();
    let sid = fake.next_sid("SM");
    fake.lock().sent.push(Sent {
        sid: sid.clone(),
        to: to.clone(),
        from: from.clone(),
        body: body.clone(),
        status_callback: form.get("StatusCallback").cloned(),
    });
    let answer = json!({"sid": sid, "status": "queued", "to": to, "from": from, "body": body,
        "num_segments": "1", "direction": "outbound-api", "error_code": null});
    (StatusCode::CREATED, Json(answer)).into_response()
}
