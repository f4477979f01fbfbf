//! Viber REST Bot API (channels.md §3): callbacks signed with
//! `X-Viber-Content-Signature`, `conversation_started` with a deep link's
//! `context`, delivered/seen/failed reports, `send_message` with its
//! `status` codes (HTTP 200 even on failure), `set_webhook` to connect.
//!
//! Account settings: `api_base` (default `https://chatapi.viber.com/pa`),
//! `sender_name` (shown as the sender; default: the account's name, learnt
//! from `get_account_info`). Secret, entered: `auth_token` (also the
//! signature key).

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use seamline_store::DeliveryStatus;
use serde_json::{json, Value};

use super::{
    check_api_base, signed_sha256_hex, Account, Connected, Connector, Forged, Pacing, Parsed,
    Secrets, SendError,
};
use crate::inbox::{Customer, Inbound};

pub const SIGNATURE_HEADER: &str = "x-viber-content-signature";
pub const AUTH_HEADER: &str = "X-Viber-Auth-Token";
const DEFAULT_API: &str = "https://chatapi.viber.com/pa";
const MAX_TEXT: usize = 7000;
const EVENTS: [&str; 6] = [
    "delivered",
    "seen",
    "failed",
    "subscribed",
    "unsubscribed",
    "conversation_started",
];

pub struct Viber {
    http: reqwest::Client,
}

impl Viber {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    async fn call(
        &self,
        account: &Account,
        method: &str,
        body: &Value,
    ) -> Result<Value, SendError> {
        let base = account.setting("api_base").unwrap_or(DEFAULT_API);
        let token = account.secrets.get("auth_token").unwrap_or_default();
        let response = self
            .http
            .post(format!("{}/{method}", base.trim_end_matches('/')))
            .header(AUTH_HEADER, token)
            .json(body)
            .send()
            .await
            .map_err(|e| super::unanswered("Viber", &e, false))?;
        let http = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if http < 300 && answer["status"].as_u64() == Some(0) {
            return Ok(answer);
        }
        Err(classify(http, &answer))
    }
}

fn transient(retry_after: Option<Duration>, whole_account: bool, reason: String) -> SendError {
    SendError::Transient {
        retry_after,
        whole_account,
        reason,
    }
}

/// `status` 12 (tooManyRequests) and HTTP trouble are for later; the user
/// side (5 not registered, 6 not subscribed, 11 no device), the account
/// (2, 7–9, 15) and billing (21–24) are final.
fn classify(http: u16, answer: &Value) -> SendError {
    let status = answer["status"].as_u64();
    let reason = match (status, answer["status_message"].as_str()) {
        (Some(status), Some(message)) => format!("Viber status {status}: {message}"),
        _ => format!("Viber: HTTP {http}"),
    };
    match status {
        Some(12) => transient(Some(Duration::from_secs(1)), true, reason),
        Some(_) => SendError::Permanent { reason },
        None if http == 429 || http >= 500 => transient(None, false, reason),
        None => SendError::Permanent { reason },
    }
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new("invalid_callback", field, message)
}

/// Viber's times are epoch milliseconds.
fn time_of(event: &Value) -> DateTime<Utc> {
    event["timestamp"]
        .as_i64()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(Utc::now)
}

/// A `message_token` (a 64-bit integer) as text.
fn token_of(event: &Value) -> Result<String, FieldError> {
    event["message_token"]
        .as_u64()
        .map(|t| t.to_string())
        .ok_or_else(|| bad("message_token", "the message's token as an integer"))
}

/// A shared phone in E.164 (Viber may leave out the `+`).
fn phone(contact: &Value) -> Option<String> {
    let digits = contact["phone_number"]
        .as_str()?
        .trim()
        .trim_start_matches('+');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| format!("+{digits}"))
}

/// What the operator sees; files are recorded by kind and name.
fn body_of(message: &Value) -> String {
    let text = message["text"].as_str().unwrap_or_default();
    let with_text = |label: String| {
        if text.is_empty() {
            label
        } else {
            format!("{label}\n{text}")
        }
    };
    match message["type"].as_str().unwrap_or_default() {
        "text" => text.to_owned(),
        "url" => message["media"].as_str().unwrap_or(text).to_owned(),
        "file" => with_text(format!(
            "[file: {}]",
            message["file_name"].as_str().unwrap_or("file")
        )),
        kind @ ("picture" | "video" | "sticker") => with_text(format!("[{kind}]")),
        "contact" => {
            let contact = &message["contact"];
            let name = contact["name"].as_str().unwrap_or_default();
            let number = contact["phone_number"].as_str().unwrap_or_default();
            format!("[contact: {name} {number}]")
        }
        "location" => {
            let at = &message["location"];
            format!("[location: {}, {}]", at["lat"], at["lon"])
        }
        _ => String::new(),
    }
}

fn user_of<'a>(event: &'a Value, key: &str) -> Result<(&'a str, Option<String>), FieldError> {
    let user = &event[key];
    let id = user["id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad(&format!("{key}.id"), "the user's Viber id"))?;
    Ok((id, user["name"].as_str().map(str::to_owned)))
}

fn message(account: &Account, event: &Value) -> Result<Parsed, FieldError> {
    let (id, name) = user_of(event, "sender")?;
    let token = token_of(event)?;
    let message = event
        .get("message")
        .ok_or_else(|| bad("message", "a message event carries its message"))?;
    let body = body_of(message);
    if body.is_empty() {
        return Ok(Parsed::Ignored);
    }
    let customer = Customer {
        phone: message.get("contact").and_then(phone),
        channel_id: Some(("viber".into(), id.to_owned())),
        name,
        ..Customer::default()
    };
    Ok(Parsed::Message(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Viber,
        customer,
        body,
        // Tokens are unique per message across Viber.
        external_id: Some(token),
        at: time_of(event),
    }))
}

/// The chat was opened from a link: its `context` (a visitor's code) is
/// tied to the user now, before they write (and even if they never do).
fn started(account: &Account, event: &Value) -> Result<Parsed, FieldError> {
    let (id, name) = user_of(event, "user")?;
    let Some(context) = event["context"].as_str().filter(|c| !c.is_empty()) else {
        return Ok(Parsed::Ignored);
    };
    let customer = Customer {
        channel_id: Some(("viber".into(), id.to_owned())),
        tracking_code: Some(context.to_owned()),
        name,
        ..Customer::default()
    };
    Ok(Parsed::Arrived(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Viber,
        customer,
        body: String::new(),
        external_id: None,
        at: time_of(event),
    }))
}

fn report(event: &Value, status: DeliveryStatus) -> Result<Parsed, FieldError> {
    Ok(Parsed::Status {
        external_id: token_of(event)?,
        status,
        reason: event["desc"].as_str().map(str::to_owned),
    })
}

#[async_trait]
impl Connector for Viber {
    fn channel(&self) -> Channel {
        Channel::Viber
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Viber
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["auth_token"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        let token = secrets.get("auth_token").unwrap_or_default();
        if token.trim().len() < 16 {
            return Err(FieldError::new(
                "invalid_token",
                "secrets.auth_token",
                "the bot's token from the Viber Admin Panel",
            ));
        }
        let name = settings["sender_name"].as_str().unwrap_or_default();
        if name.chars().count() > 28 {
            return Err(FieldError::new(
                "too_long",
                "settings.sender_name",
                "Viber shows at most 28 characters",
            ));
        }
        check_api_base(settings)
    }

    fn verify(&self, account: &Account, headers: &HeaderMap, body: &[u8]) -> Result<(), Forged> {
        let token = account.secrets.get("auth_token").ok_or(Forged)?;
        let given = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or(Forged)?;
        signed_sha256_hex(token, body, given)
            .then_some(())
            .ok_or(Forged)
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let event: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "a callback as JSON"))?;
        let kind = event["event"]
            .as_str()
            .ok_or_else(|| bad("event", "a callback needs its event"))?;
        Ok(vec![match kind {
            "message" => message(account, &event)?,
            "conversation_started" => started(account, &event)?,
            "delivered" => report(&event, DeliveryStatus::Delivered)?,
            "seen" => report(&event, DeliveryStatus::Read)?,
            "failed" => report(&event, DeliveryStatus::Failed)?,
            // `webhook` (set_webhook's check), (un)subscribed: nothing to store.
            _ => Parsed::Ignored,
        }])
    }

    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        if text.chars().count() > MAX_TEXT {
            return Err(SendError::Permanent {
                reason: format!("the message is longer than Viber's {MAX_TEXT} characters"),
            });
        }
        let name = account
            .setting("sender_name")
            .unwrap_or(&account.stored.name);
        let name: String = name.chars().take(28).collect();
        let body = json!({"receiver": to, "min_api_version": 1, "sender": {"name": name},
                          "type": "text", "text": text});
        let sent = self.call(account, "send_message", &body).await?;
        sent["message_token"]
            .as_u64()
            .map(|t| t.to_string())
            .ok_or_else(|| transient(None, false, "Viber: the answer has no message_token".into()))
    }

    async fn connect(&self, account: &Account, webhook_url: &str) -> Result<Connected, SendError> {
        let info = self.call(account, "get_account_info", &json!({})).await?;
        let hook = json!({"url": webhook_url, "event_types": EVENTS,
                          "send_name": true, "send_photo": false});
        self.call(account, "set_webhook", &hook).await?;
        let name = info["name"].as_str().unwrap_or_default().to_owned();
        let mut settings = serde_json::Map::new();
        if account.setting("sender_name").is_none() {
            let short: String = name.chars().take(28).collect();
            settings.insert("sender_name".into(), json!(short));
        }
        Ok(Connected {
            detail: name,
            settings,
        })
    }

    fn pacing(&self) -> Pacing {
        // Viber publishes no per-chat figure; stay gentle.
        Pacing {
            per_account: Duration::from_millis(20),
            per_chat: Duration::from_millis(500),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viber_statuses_are_told_apart() {
        let busy = json!({"status": 12, "status_message": "tooManyRequests"});
        assert!(matches!(
            classify(200, &busy),
            SendError::Transient {
                whole_account: true,
                ..
            }
        ));
        let unsubscribed = json!({"status": 6, "status_message": "receiverNotSubscribed"});
        assert_eq!(
            classify(200, &unsubscribed),
            SendError::Permanent {
                reason: "Viber status 6: receiverNotSubscribed".into()
            }
        );
        assert!(matches!(
            classify(503, &Value::Null),
            SendError::Transient { .. }
        ));
    }

    #[test]
    fn viber_messages_are_recorded_by_kind() {
        let file = json!({"type": "file", "file_name": "счёт.pdf", "media": "http://x"});
        assert_eq!(body_of(&file), "[file: счёт.pdf]");
        let contact = json!({"type": "contact",
            "contact": {"name": "Анна", "phone_number": "79161234567"}});
        assert_eq!(body_of(&contact), "[contact: Анна 79161234567]");
        assert_eq!(phone(&contact["contact"]), Some("+79161234567".into()));
    }
}
