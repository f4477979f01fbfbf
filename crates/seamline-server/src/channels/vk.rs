//! VK community messages (channels.md §4): Callback API events with the
//! `secret` field (answered `ok`), the `confirmation` handshake, `ref`
//! from `vk.me` links, `messages.send` with a `random_id` derived from our
//! message id so a retry never sends twice, and VK's error codes.
//!
//! Account settings: `group_id` (required), `api_base` (default
//! `https://api.vk.com/method`), `confirmation` (the string VK expects from
//! the server; learnt on connect through `groups.getCallbackConfirmationCode`
//! or entered). Secrets, both entered: `access_token` (the community
//! token), `secret` (the Callback API secret key).

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use seamline_store::{Backend, DeliveryStatus, OutboundEntry};
use serde_json::{json, Value};

use super::{
    check_api_base, same_secret, Account, Connected, Connector, Forged, Pacing, Parsed, Secrets,
    SendError,
};
use crate::inbox::{Customer, Inbound};

const DEFAULT_API: &str = "https://api.vk.com/method";
pub const API_VERSION: &str = "5.199";
const MAX_TEXT: usize = 9000;

pub struct Vk {
    http: reqwest::Client,
}

impl Vk {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    async fn call(
        &self,
        account: &Account,
        method: &str,
        params: &[(&str, String)],
    ) -> Result<Value, SendError> {
        let base = account.setting("api_base").unwrap_or(DEFAULT_API);
        let token = account.secrets.get("access_token").unwrap_or_default();
        let mut form: Vec<(&str, String)> = vec![
            ("access_token", token.to_owned()),
            ("v", API_VERSION.into()),
        ];
        form.extend(params.iter().cloned());
        let response = self
            .http
            .post(format!("{}/{method}", base.trim_end_matches('/')))
            .form(&form)
            .send()
            .await
            .map_err(|e| super::unanswered("VK", &e, true))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if let Some(result) = answer.get("response") {
            return Ok(result.clone());
        }
        Err(classify(status, &answer))
    }
}

fn transient(retry_after: Option<Duration>, whole_account: bool, reason: String) -> SendError {
    SendError::Transient {
        retry_after,
        whole_account,
        reason,
    }
}

/// VK answers HTTP 200 with `{"error": {"error_code", "error_msg"}}`:
/// 6, 9, 29 are the community's rate limits, 1 and 10 VK's own trouble;
/// everything else (900 blacklisted, 901 no permission, 5 revoked token…)
/// will not get better by retrying.
fn classify(status: u16, answer: &Value) -> SendError {
    let code = answer["error"]["error_code"].as_u64();
    let reason = match (code, answer["error"]["error_msg"].as_str()) {
        (Some(code), Some(message)) => format!("VK error {code}: {message}"),
        _ => format!("VK: HTTP {status}"),
    };
    match code {
        Some(6 | 9) => transient(Some(Duration::from_secs(1)), true, reason),
        Some(29) => transient(Some(Duration::from_secs(60)), true, reason),
        Some(1 | 10) => transient(None, false, reason),
        Some(_) => SendError::Permanent { reason },
        // 5xx, 429, or a 200 without an answer: random_id makes a retry safe.
        None if status == 429 || !(300..500).contains(&status) => transient(None, false, reason),
        None => SendError::Permanent { reason },
    }
}

/// The `random_id` of a reply: 62 random bits of its UUID v7, the same on
/// every retry, so VK sends it once.
pub fn random_id(message_id: uuid::Uuid) -> i64 {
    let low = message_id.as_u128() as u64 & 0x3FFF_FFFF_FFFF_FFFF;
    i64::try_from(low).unwrap_or_default()
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new("invalid_event", field, message)
}

fn time_of(message: &Value) -> DateTime<Utc> {
    message["date"]
        .as_i64()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or_else(Utc::now)
}

/// Text, then each attachment by type (files by title; their bytes are a
/// follow-up), then a place.
fn body_of(message: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(text) = message["text"].as_str().filter(|t| !t.is_empty()) {
        parts.push(text.to_owned());
    }
    for attachment in message["attachments"].as_array().into_iter().flatten() {
        let kind = attachment["type"].as_str().unwrap_or("attachment");
        let part = &attachment[kind];
        parts.push(match kind {
            "doc" => format!(
                "[doc: {} ({})]",
                part["title"].as_str().unwrap_or("file"),
                part["ext"].as_str().unwrap_or("?")
            ),
            "link" => format!("[link: {}]", part["url"].as_str().unwrap_or_default()),
            _ => format!("[{kind}]"),
        });
    }
    let point = &message["geo"]["coordinates"];
    if point.is_object() {
        parts.push(format!(
            "[location: {}, {}]",
            point["latitude"], point["longitude"]
        ));
    }
    parts.join("\n")
}

fn group_of(account: &Account) -> Option<i64> {
    account.setting("group_id")?.parse().ok()
}

fn message_new(account: &Account, event_id: &str, object: &Value) -> Result<Parsed, FieldError> {
    let message = object
        .get("message")
        .ok_or_else(|| bad("object.message", "message_new carries the message"))?;
    let from = message["from_id"]
        .as_i64()
        .ok_or_else(|| bad("object.message.from_id", "the sender's VK id as an integer"))?;
    if from <= 0 || message["peer_id"].as_i64() != Some(from) || message["out"] == json!(1) {
        // Group chats, communities and our own messages are not a
        // customer's conversation.
        return Ok(Parsed::Ignored);
    }
    let body = body_of(message);
    if body.is_empty() {
        return Ok(Parsed::Ignored);
    }
    let customer = Customer {
        channel_id: Some(("vk".into(), from.to_string())),
        // `ref` of a vk.me link: kept only when it is a visitor's code.
        tracking_code: message["ref"].as_str().map(str::to_owned),
        ..Customer::default()
    };
    Ok(Parsed::Message(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Vk,
        customer,
        body,
        external_id: Some(event_id.to_owned()),
        at: time_of(message),
    }))
}

#[async_trait]
impl Connector for Vk {
    fn channel(&self) -> Channel {
        Channel::Vk
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Vk
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["access_token", "secret"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        let group = settings["group_id"].as_str().unwrap_or_default();
        if group.parse::<u64>().map_or(true, |g| g == 0) {
            return Err(FieldError::new(
                "invalid_setting",
                "settings.group_id",
                "the community's numeric id",
            ));
        }
        for field in self.secret_fields() {
            if secrets.get(field).unwrap_or_default().trim().is_empty() {
                return Err(FieldError::new(
                    "required",
                    format!("secrets.{field}"),
                    "required to connect VK",
                ));
            }
        }
        check_api_base(settings)
    }

    /// The `secret` field of the body. A `confirmation` needs none: it
    /// stores nothing and is only answered for this account's community.
    fn verify(&self, account: &Account, _headers: &HeaderMap, body: &[u8]) -> Result<(), Forged> {
        let event: Value = serde_json::from_slice(body).map_err(|_| Forged)?;
        if event["type"] == "confirmation" && event["group_id"].as_i64() == group_of(account) {
            return Ok(());
        }
        let expected = account.secrets.get("secret").ok_or(Forged)?;
        let given = event["secret"].as_str().ok_or(Forged)?;
        same_secret(given.as_bytes(), expected.as_bytes())
            .then_some(())
            .ok_or(Forged)
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let event: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "an event as JSON"))?;
        let kind = event["type"]
            .as_str()
            .ok_or_else(|| bad("type", "an event needs its type"))?;
        if event["group_id"].as_i64() != group_of(account) {
            return Err(bad("group_id", "not this account's community"));
        }
        if kind == "confirmation" {
            let code = account.setting("confirmation").unwrap_or_default();
            return Ok(vec![Parsed::Answer(code.to_owned())]);
        }
        let event_id = event["event_id"]
            .as_str()
            .filter(|e| !e.is_empty())
            .ok_or_else(|| bad("event_id", "an event needs its event_id"))?;
        let object = &event["object"];
        Ok(vec![match kind {
            "message_new" => message_new(account, event_id, object)?,
            "message_read" => match object["read_message_id"].as_i64() {
                Some(id) => Parsed::Status {
                    external_id: id.to_string(),
                    status: DeliveryStatus::Read,
                    reason: None,
                },
                None => return Err(bad("object.read_message_id", "the message read")),
            },
            // Edits, our own replies, allow/deny, typing: not shown yet.
            _ => Parsed::Ignored,
        }])
    }

    /// Without an entry there is no stable `random_id`: 0 asks VK not to
    /// check (the outbox always goes through `send_entry`).
    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        self.send_with(account, to, text, 0).await
    }

    async fn send_entry(
        &self,
        _store: &dyn Backend,
        account: &Account,
        to: &str,
        entry: &OutboundEntry,
    ) -> Result<String, SendError> {
        let id = random_id(entry.message_id.0);
        self.send_with(account, to, &entry.body, id).await
    }

    async fn connect(&self, account: &Account, _webhook_url: &str) -> Result<Connected, SendError> {
        let group = account.setting("group_id").unwrap_or_default().to_owned();
        let groups = self
            .call(account, "groups.getById", &[("group_id", group.clone())])
            .await?;
        let first = groups["groups"].get(0).or_else(|| groups.get(0));
        let name = first
            .and_then(|g| g["name"].as_str())
            .unwrap_or_default()
            .to_owned();
        let code = self
            .call(
                account,
                "groups.getCallbackConfirmationCode",
                &[("group_id", group)],
            )
            .await?;
        let mut settings = serde_json::Map::new();
        if let Some(code) = code["code"].as_str() {
            settings.insert("confirmation".into(), json!(code));
        }
        Ok(Connected {
            detail: name,
            settings,
        })
    }

    fn pacing(&self) -> Pacing {
        // A community token: at most 20 requests/s.
        Pacing {
            per_account: Duration::from_millis(50),
            per_chat: Duration::from_millis(500),
        }
    }

    fn acknowledgement(&self) -> &'static str {
        "ok"
    }
}

impl Vk {
    async fn send_with(
        &self,
        account: &Account,
        to: &str,
        text: &str,
        random_id: i64,
    ) -> Result<String, SendError> {
        if text.chars().count() > MAX_TEXT {
            return Err(SendError::Permanent {
                reason: format!("the message is longer than VK's {MAX_TEXT} characters"),
            });
        }
        let params = [
            ("peer_id", to.to_owned()),
            ("message", text.to_owned()),
            ("random_id", random_id.to_string()),
        ];
        let sent = self.call(account, "messages.send", &params).await?;
        sent.as_i64()
            .map(|id| id.to_string())
            .ok_or_else(|| transient(None, false, "VK: the answer has no message id".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vk_errors_are_told_apart_by_code() {
        let flood = json!({"error": {"error_code": 9, "error_msg": "Flood control"}});
        assert!(matches!(
            classify(200, &flood),
            SendError::Transient {
                whole_account: true,
                ..
            }
        ));
        let denied = json!({"error": {"error_code": 901,
            "error_msg": "Can't send messages for users without permission"}});
        assert_eq!(
            classify(200, &denied),
            SendError::Permanent {
                reason: "VK error 901: Can't send messages for users without permission".into()
            }
        );
        assert!(matches!(
            classify(502, &Value::Null),
            SendError::Transient { .. }
        ));
    }

    #[test]
    fn random_ids_are_stable_and_positive() {
        let id = uuid::Uuid::now_v7();
        assert_eq!(random_id(id), random_id(id));
        assert!(random_id(id) >= 0);
        assert_ne!(random_id(id), random_id(uuid::Uuid::now_v7()));
    }

    #[test]
    fn attachments_are_recorded_by_kind() {
        let message = json!({"text": "вот", "attachments": [
            {"type": "photo", "photo": {}},
            {"type": "doc", "doc": {"title": "счёт.pdf", "ext": "pdf"}}]});
        assert_eq!(body_of(&message), "вот\n[photo]\n[doc: счёт.pdf (pdf)]");
    }
}
