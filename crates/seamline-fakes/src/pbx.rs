//! A fake virtual PBX, Mango-style (channels.md §7): it posts call events
//! of the neutral model as form fields `vpbx_api_key`, `sign`, `json`
//! (`sign = hex(sha256(key + json + salt))`), re-sending on a non-2xx
//! answer; serves recordings at `GET /recordings/{id}` (a short WAV); and
//! takes signed commands: `POST /commands/ping` and `POST
//! /commands/callback` (originate: the operator's extension first, then
//! the customer), logged for tests.
//!
//! For the demo (`seamline dev fake-providers`) it also takes the place of
//! the PBX's settings page and of a caller: `POST /_fake/pbx/webhook
//! {"url"}` is where its events go, and `POST /_fake/pbx/calls {"from",
//! "to"}` plays an answered inbound call to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// A callback the PBX was asked to originate.
#[derive(Debug, Clone, PartialEq)]
pub struct Originated {
    pub command: Value,
}

/// One event post the fake made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAttempt {
    pub event: String,
    pub call_id: String,
    pub status: Option<u16>,
}

#[derive(Debug, Default)]
struct Inner {
    originated: Vec<Originated>,
    webhook_attempts: Vec<WebhookAttempt>,
    recordings_served: u32,
    next_call: u64,
    /// Callback commands still to answer with a 500.
    failing_callbacks: u32,
    /// Statuses answered to `commands/callback`, in order.
    callback_statuses: Vec<u16>,
    /// Where the demo's played calls go (the PBX's event settings).
    webhook: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("the webhook kept failing: last status {0:?}")]
    GaveUp(Option<u16>),
    #[error("no webhook URL is set (POST /_fake/pbx/webhook {{\"url\": …}})")]
    NoWebhook,
}

/// How a scripted inbound call goes.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The extension that picks up; none: missed.
    pub answered_by: Option<String>,
    pub talk_s: u64,
    /// IVR menus and the digits pressed.
    pub ivr: Vec<(String, String)>,
}

/// The fake PBX; clones share it.
#[derive(Clone)]
pub struct FakePbx {
    base_url: String,
    key: String,
    salt: String,
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
}

/// `hex(sha256(key + json + salt))`.
pub fn sign(key: &str, json: &str, salt: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{key}{json}{salt}").as_bytes());
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Half a second of a 440 Hz tone as 8 kHz 8-bit mono PCM WAV.
pub fn wav() -> Vec<u8> {
    let samples: Vec<u8> = (0..4000u32)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            (128.0 + 60.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as u8
        })
        .collect();
    let len = samples.len() as u32;
    let mut out = Vec::with_capacity(44 + samples.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&8000u32.to_le_bytes()); // bytes per second
    out.extend_from_slice(&1u16.to_le_bytes()); // block align
    out.extend_from_slice(&8u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&samples);
    out
}

impl FakePbx {
    pub async fn start(listen: SocketAddr, key: &str, salt: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let fake = Self {
            base_url: format!("http://{}", listener.local_addr()?),
            key: key.to_owned(),
            salt: salt.to_owned(),
            inner: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = Router::new()
            .route("/commands/{command}", post(command))
            .route("/recordings/{id}", get(recording))
            .route("/_fake/pbx/webhook", post(set_webhook))
            .route("/_fake/pbx/calls", post(customer_calls))
            .with_state(fake.clone());
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake PBX stopped");
            }
        });
        Ok(fake)
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn originated(&self) -> Vec<Originated> {
        self.lock().originated.clone()
    }

    pub fn webhook_attempts(&self) -> Vec<WebhookAttempt> {
        self.lock().webhook_attempts.clone()
    }

    /// The next `n` callback commands answer 500 (the PBX is down).
    pub fn fail_callbacks(&self, n: u32) {
        self.lock().failing_callbacks = n;
    }

    pub fn callback_statuses(&self) -> Vec<u16> {
        self.lock().callback_statuses.clone()
    }

    pub fn recordings_served(&self) -> u32 {
        self.lock().recordings_served
    }

    /// The form a PBX posts for `event`, signed with `key` and `salt`.
    pub fn signed(key: &str, salt: &str, event: &Value) -> Vec<(String, String)> {
        let json = event.to_string();
        vec![
            ("vpbx_api_key".into(), key.to_owned()),
            ("sign".into(), sign(key, &json, salt)),
            ("json".into(), json),
        ]
    }

    /// Posts `event` to `url`, re-sending on a non-2xx answer.
    pub async fn post(&self, url: &str, event: &Value) -> Result<u16, DeliverError> {
        let form = Self::signed(&self.key, &self.salt, event);
        let mut last = None;
        for attempt in 0..5 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            last = self
                .http
                .post(url)
                .form(&form)
                .send()
                .await
                .ok()
                .map(|r| r.status().as_u16());
            self.lock().webhook_attempts.push(WebhookAttempt {
                event: event["event"].as_str().unwrap_or_default().to_owned(),
                call_id: event["call_id"].as_str().unwrap_or_default().to_owned(),
                status: last,
            });
            if let Some(status) = last.filter(|s| (200..300).contains(s)) {
                return Ok(status);
            }
        }
        Err(DeliverError::GaveUp(last))
    }

    /// Where [`Self::play_call`] posts: the URL pasted into the PBX's
    /// event settings.
    pub fn set_webhook(&self, url: &str) {
        self.lock().webhook = Some(url.to_owned());
    }

    /// Posts every event of an inbound call to the set webhook, in order,
    /// stopping at the first the webhook never accepts; returns the call id.
    pub async fn play_call(
        &self,
        from: &str,
        to: &str,
        script: &Script,
    ) -> Result<String, DeliverError> {
        let url = self.lock().webhook.clone().ok_or(DeliverError::NoWebhook)?;
        let events = self.inbound_call(from, to, script);
        for event in &events {
            self.post(&url, event).await?;
        }
        Ok(events
            .first()
            .and_then(|e| e["call_id"].as_str())
            .unwrap_or_default()
            .to_owned())
    }

    /// A new call id (`100:500:N`, Mango's shape).
    pub fn next_call_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_call += 1;
        format!("100:500:{}", inner.next_call)
    }

    /// The events of an inbound call from `from` to `to` as `script` says,
    /// in order: started, IVR inputs, answered, ended, recording (when
    /// answered). Each has `call_id`, `seq`, `direction`, `from`, `to`.
    pub fn inbound_call(&self, from: &str, to: &str, script: &Script) -> Vec<Value> {
        self.call("in", from, to, script)
    }

    /// The events of a call the PBX placed (a callback): `from` is our
    /// line, `to` the customer.
    pub fn outbound_call(&self, from: &str, to: &str, script: &Script) -> Vec<Value> {
        self.call("out", from, to, script)
    }

    fn call(&self, direction: &str, from: &str, to: &str, script: &Script) -> Vec<Value> {
        let call_id = self.next_call_id();
        let at = chrono::Utc::now().timestamp();
        let base =
            json!({"call_id": call_id, "direction": direction, "from": from, "to": to, "at": at});
        let mut events = vec![json!({"event": "call.started"})];
        for (menu, digits) in &script.ivr {
            events.push(json!({"event": "call.ivr_input", "menu": menu, "digits": digits}));
        }
        let ivr: Vec<Value> = script
            .ivr
            .iter()
            .map(|(m, d)| json!({"menu": m, "digits": d}))
            .collect();
        let talk = if script.answered_by.is_some() {
            script.talk_s
        } else {
            0
        };
        if let Some(agent) = &script.answered_by {
            events.push(json!({"event": "call.answered", "leg_id": "1", "extension": agent}));
        }
        events.push(
            json!({"event": "call.ended", "duration_s": talk + 15, "talk_s": talk,
            "result": if talk > 0 { "answered" } else { "no_answer" },
            "answered_by": script.answered_by, "ivr": ivr}),
        );
        if talk > 0 {
            events.push(
                json!({"event": "call.recording_ready", "recording_id": format!("rec-{call_id}"),
                "url": format!("{}/recordings/rec-{}", self.base_url, call_id.replace(':', "-")),
                "duration_s": talk, "format": "wav"}),
            );
        }
        events
            .into_iter()
            .enumerate()
            .map(|(seq, mut event)| {
                for (k, v) in base.as_object().into_iter().flatten() {
                    event[k] = v.clone();
                }
                event["seq"] = json!(seq + 1);
                event
            })
            .collect()
    }

    fn verified(&self, form: &HashMap<String, String>) -> bool {
        let json = form.get("json").map(String::as_str).unwrap_or_default();
        form.get("vpbx_api_key") == Some(&self.key)
            && form.get("sign").map(String::as_str) == Some(&sign(&self.key, json, &self.salt))
    }
}

async fn command(
    State(fake): State<FakePbx>,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !fake.verified(&form) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"result": 3102}))).into_response();
    }
    let body: Value = form
        .get("json")
        .and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or(Value::Null);
    match name.as_str() {
        "ping" => Json(json!({"result": 1000})).into_response(),
        "callback" => {
            let mut inner = fake.lock();
            if inner.failing_callbacks > 0 {
                inner.failing_callbacks -= 1;
                inner.callback_statuses.push(500);
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"result": 5000})),
                )
                    .into_response();
            }
            inner.callback_statuses.push(200);
            inner.originated.push(Originated { command: body });
            Json(json!({"result": 1000})).into_response()
        }
        _ => (StatusCode::NOT_FOUND, Json(json!({"result": 3100}))).into_response(),
    }
}

/// The demo's PBX settings page: `{"url": "<webhook URL>"}`.
async fn set_webhook(State(fake): State<FakePbx>, Json(body): Json<Value>) -> Response {
    match body["url"].as_str().filter(|u| u.starts_with("http")) {
        Some(url) => {
            fake.set_webhook(url);
            Json(json!({"success": true})).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "url: the webhook URL from Settings → Channels"})),
        )
            .into_response(),
    }
}

/// The demo's way to play a caller: `{"from": "79161234567", "to":
/// "74951234567"}` rings, is answered by `extension` (default 101) and
/// talks `talk_s` seconds (default 42), then the recording is ready.
async fn customer_calls(State(fake): State<FakePbx>, Json(body): Json<Value>) -> Response {
    let (Some(from), Some(to)) = (body["from"].as_str(), body["to"].as_str()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "from, to: the caller's and the called number"})),
        )
            .into_response();
    };
    let script = Script {
        answered_by: Some(body["extension"].as_str().unwrap_or("101").to_owned()),
        talk_s: body["talk_s"].as_u64().unwrap_or(42).max(1),
        ivr: Vec::new(),
    };
    match fake.play_call(from, to, &script).await {
        Ok(call_id) => Json(json!({"call_id": call_id})).into_response(),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn recording(State(fake): State<FakePbx>, Path(_id): Path<String>) -> Response {
    fake.lock().recordings_served += 1;
    ([(header::CONTENT_TYPE, "audio/wav")], wav()).into_response()
}
