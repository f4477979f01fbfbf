//! Telegram Bot API (channels.md §1): webhook updates signed with
//! `X-Telegram-Bot-Api-Secret-Token`, `sendMessage` with its error
//! semantics, `getMe` + `setWebhook` to connect.
//!
//! Account settings: `api_base` (default `https://api.telegram.org`; tests
//! point it at the fake), `bot_username` (learnt on connect). Secrets:
//! `bot_token` (entered), `webhook_secret` (made up by the server).

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use serde_json::{json, Value};

use super::{
    check_api_base, same_secret, unanswered, Account, Connected, Connector, Forged, Pacing, Parsed,
    Secrets, SendError,
};
use crate::inbox::{Customer, Inbound};

pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";
const DEFAULT_API: &str = "https://api.telegram.org";
const MAX_TEXT: usize = 4096;

pub struct Telegram {
    http: reqwest::Client,
}

impl Telegram {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    async fn call(
        &self,
        account: &Account,
        method: &str,
        body: &Value,
    ) -> Result<Value, SendError> {
        let token = account.secrets.get("bot_token").unwrap_or_default();
        let base = account.setting("api_base").unwrap_or(DEFAULT_API);
        let url = format!("{}/bot{token}/{method}", base.trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| unanswered("Telegram", &e, false))?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if answer["ok"].as_bool() == Some(true) {
            return Ok(answer["result"].clone());
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

/// A failed Bot API answer: 429 and 5xx are for later (429 throttles the
/// whole bot); 400 chat not found, 401 revoked token, 403 blocked are final.
fn classify(status: u16, answer: &Value) -> SendError {
    let code = answer["error_code"]
        .as_u64()
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(status);
    let description = answer["description"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"));
    match code {
        429 => {
            let after = answer["parameters"]["retry_after"].as_u64().unwrap_or(1);
            transient(Some(Duration::from_secs(after)), true, description)
        }
        500.. => transient(None, false, description),
        _ => SendError::Permanent {
            reason: description,
        },
    }
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new("invalid_update", field, message)
}

fn time_of(message: &Value) -> DateTime<Utc> {
    message["date"]
        .as_i64()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or_else(Utc::now)
}

/// A shared contact's phone in E.164 (Telegram may leave out the `+`).
fn phone(contact: &Value) -> Option<String> {
    let raw = contact["phone_number"].as_str()?.trim();
    let digits = raw.trim_start_matches('+');
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| format!("+{digits}"))
}

/// What the operator sees for a message without text: files are recorded
/// by name and type (their bytes are a follow-up).
fn body_of(message: &Value) -> String {
    let caption = message["caption"].as_str().unwrap_or_default();
    let with_caption = |label: String| {
        if caption.is_empty() {
            label
        } else {
            format!("{label}\n{caption}")
        }
    };
    if let Some(text) = message["text"].as_str() {
        return text.to_owned();
    }
    if let Some(contact) = message.get("contact") {
        let number = contact["phone_number"].as_str().unwrap_or_default();
        return format!("[contact: {number}]");
    }
    if let Some(document) = message.get("document") {
        let name = document["file_name"].as_str().unwrap_or("file");
        let kind = document["mime_type"]
            .as_str()
            .unwrap_or("application/octet-stream");
        return with_caption(format!("[document: {name} ({kind})]"));
    }
    if message.get("photo").is_some() {
        return with_caption("[photo]".into());
    }
    if let Some(location) = message.get("location") {
        return format!(
            "[location: {}, {}]",
            location["latitude"], location["longitude"]
        );
    }
    [
        "voice",
        "audio",
        "video",
        "sticker",
        "video_note",
        "animation",
    ]
    .into_iter()
    .find(|kind| message.get(*kind).is_some())
    .map(|kind| with_caption(format!("[{kind}]")))
    .unwrap_or_default()
}

/// `/start <payload>` (a deep link's Start button): the payload.
fn start_payload(text: &str) -> Option<String> {
    let payload = text.strip_prefix("/start ")?;
    let valid = (1..=64).contains(&payload.len())
        && payload
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    valid.then(|| payload.to_owned())
}

fn name_of(from: &Value) -> Option<String> {
    let parts: Vec<&str> = ["first_name", "last_name"]
        .iter()
        .filter_map(|k| from[*k].as_str())
        .filter(|s| !s.trim().is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn inbound(account: &Account, update_id: i64, message: &Value) -> Result<Parsed, FieldError> {
    let from = message
        .get("from")
        .ok_or_else(|| bad("message.from", "a message needs its sender"))?;
    let user = from["id"]
        .as_i64()
        .ok_or_else(|| bad("message.from.id", "the sender's id must be an integer"))?;
    if message["chat"]["type"].as_str() != Some("private") || from["is_bot"] == json!(true) {
        // Groups and other bots are not customers' conversations.
        return Ok(Parsed::Ignored);
    }
    let body = body_of(message);
    if body.is_empty() {
        return Ok(Parsed::Ignored);
    }
    let customer = Customer {
        phone: message.get("contact").and_then(phone),
        channel_id: Some(("telegram".into(), user.to_string())),
        tracking_code: message["text"].as_str().and_then(start_payload),
        name: name_of(from),
        ..Customer::default()
    };
    Ok(Parsed::Message(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Telegram,
        customer,
        body,
        // Update ids are per bot: the account keeps two bots apart.
        external_id: Some(format!("{}:{update_id}", account.stored.id)),
        at: time_of(message),
    }))
}

#[async_trait]
impl Connector for Telegram {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Telegram
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["bot_token"]
    }

    fn generated_secrets(&self) -> &'static [&'static str] {
        &["webhook_secret"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        let token = secrets.get("bot_token").unwrap_or_default();
        let well_formed = token.split_once(':').is_some_and(|(id, rest)| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
        });
        if !well_formed {
            return Err(FieldError::new(
                "invalid_token",
                "secrets.bot_token",
                "a bot token from @BotFather looks like 123456789:AA…",
            ));
        }
        check_api_base(settings)
    }

    fn verify(&self, account: &Account, headers: &HeaderMap, _body: &[u8]) -> Result<(), Forged> {
        let expected = account.secrets.get("webhook_secret").ok_or(Forged)?;
        let given = headers.get(SECRET_HEADER).ok_or(Forged)?.as_bytes();
        same_secret(given, expected.as_bytes())
            .then_some(())
            .ok_or(Forged)
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let update: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "an Update as JSON"))?;
        let update_id = update["update_id"]
            .as_i64()
            .ok_or_else(|| bad("update_id", "an update needs its integer update_id"))?;
        match update.get("message") {
            Some(message) => Ok(vec![inbound(account, update_id, message)?]),
            // Edits, button presses, (un)blocking: not shown in the inbox yet.
            None => Ok(vec![Parsed::Ignored]),
        }
    }

    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        if text.chars().count() > MAX_TEXT {
            return Err(SendError::Permanent {
                reason: format!("the message is longer than Telegram's {MAX_TEXT} characters"),
            });
        }
        let chat: Value = to
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| json!(to));
        let sent = self
            .call(
                account,
                "sendMessage",
                &json!({"chat_id": chat, "text": text}),
            )
            .await?;
        Ok(format!("{to}:{}", sent["message_id"]))
    }

    async fn connect(&self, account: &Account, webhook_url: &str) -> Result<Connected, SendError> {
        let me = self.call(account, "getMe", &json!({})).await?;
        let secret = account.secrets.get("webhook_secret").unwrap_or_default();
        let hook = json!({
            "url": webhook_url,
            "secret_token": secret,
            "allowed_updates": ["message", "edited_message", "callback_query", "my_chat_member"],
        });
        self.call(account, "setWebhook", &hook).await?;
        let username = me["username"].as_str().unwrap_or_default().to_owned();
        let mut settings = serde_json::Map::new();
        settings.insert("bot_username".into(), json!(username));
        Ok(Connected {
            detail: format!("@{username}"),
            settings,
        })
    }

    fn pacing(&self) -> Pacing {
        // Bot FAQ: about 30 messages/s overall, 1 message/s per chat.
        Pacing {
            per_account: Duration::from_millis(34),
            per_chat: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_told_apart_as_the_bot_api_means_them() {
        let throttled = json!({"ok": false, "error_code": 429,
            "description": "Too Many Requests: retry after 7", "parameters": {"retry_after": 7}});
        assert_eq!(
            classify(429, &throttled),
            transient(
                Some(Duration::from_secs(7)),
                true,
                "Too Many Requests: retry after 7".into()
            )
        );
        let blocked = json!({"ok": false, "error_code": 403,
            "description": "Forbidden: bot was blocked by the user"});
        assert!(matches!(
            classify(403, &blocked),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(502, &Value::Null),
            SendError::Transient { .. }
        ));
        assert!(matches!(
            classify(400, &Value::Null),
            SendError::Permanent { .. }
        ));
    }

    #[test]
    fn start_payloads_follow_the_deep_link_rules() {
        assert_eq!(start_payload("/start K7Q2MABC"), Some("K7Q2MABC".into()));
        assert_eq!(start_payload("/start"), None);
        assert_eq!(start_payload("/start a b"), None);
        assert_eq!(start_payload(&format!("/start {}", "a".repeat(65))), None);
    }

    #[test]
    fn messages_without_text_are_recorded_by_kind() {
        let doc = json!({"document": {"file_name": "счёт.pdf", "mime_type": "application/pdf"},
            "caption": "вот"});
        assert_eq!(body_of(&doc), "[document: счёт.pdf (application/pdf)]\nвот");
        assert_eq!(body_of(&json!({"photo": [{"file_id": "x"}]})), "[photo]");
        assert_eq!(
            phone(&json!({"phone_number": "79161234567"})),
            Some("+79161234567".into())
        );
    }
}
