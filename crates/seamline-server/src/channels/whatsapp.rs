//! WhatsApp Cloud API (channels.md §2): the `hub.challenge` handshake,
//! webhooks signed with `X-Hub-Signature-256`, messages and delivery
//! statuses, `POST /<phone_number_id>/messages` with Graph error codes, and
//! the 24-hour customer-service window.
//!
//! Account settings: `phone_number_id` (required), `api_base` (default
//! `https://graph.facebook.com/v21.0`; tests point it at the fake),
//! `display_phone_number` (learnt on connect). Secrets, all entered:
//! `access_token`, `app_secret` (signs webhooks), `verify_token` (made up by
//! the operator and typed into Meta's dashboard too).
//!
//! Templates: outside the window only an approved template may go out. A
//! reply whose first line is `/template <name> <language>` is sent as that
//! template, each further line one body parameter:
//! `/template order_update ru\n12345` sends `order_update` in `ru` with
//! `{{1}} = 12345`. Such a reply is not held to the window.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use seamline_store::{DeliveryStatus, StoredMessage};
use serde_json::{json, Value};

use super::sender::last_inbound_in;
use super::{
    same_secret, signed_sha256_hex, Account, Connected, Connector, Forged, Pacing, Parsed, Secrets,
    SendError,
};
use crate::inbox::{AdClick, Customer, Inbound};
use crate::widget::tracking::find_code;

pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
const DEFAULT_API: &str = "https://graph.facebook.com/v21.0";
/// Free-form messages only this long after the customer last wrote.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);
const MAX_TEXT: usize = 4096;

pub struct WhatsApp {
    http: reqwest::Client,
}

impl WhatsApp {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    async fn call(
        &self,
        account: &Account,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, SendError> {
        let token = account.secrets.get("access_token").unwrap_or_default();
        let response = request
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| super::unanswered("WhatsApp", &e, false))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) && answer.get("error").is_none() {
            return Ok(answer);
        }
        Err(classify(status, retry_after, &answer))
    }

    fn url(account: &Account, path: &str) -> String {
        let base = account.setting("api_base").unwrap_or(DEFAULT_API);
        let number = account.setting("phone_number_id").unwrap_or_default();
        format!("{}/{number}{path}", base.trim_end_matches('/'))
    }
}

fn transient(retry_after: Option<Duration>, reason: String) -> SendError {
    SendError::Transient {
        retry_after,
        whole_account: false,
        reason,
    }
}

/// A Graph error, told apart by its `code` (never its title): throughput,
/// pair rate, unknown and unavailable retry; the rest is permanent
/// (re-engagement 131047, undeliverable, bad parameters, auth).
fn classify(status: u16, retry_after: Option<Duration>, answer: &Value) -> SendError {
    let error = &answer["error"];
    let code = error["code"].as_u64();
    let mut reason = error["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status}"));
    if let Some(details) = error["error_data"]["details"].as_str() {
        reason = format!("{reason}: {details}");
    }
    match code {
        Some(130_429) => SendError::Transient {
            retry_after,
            whole_account: true,
            reason,
        },
        Some(131_056) => transient(retry_after.or(Some(Duration::from_secs(6))), reason),
        Some(131_000 | 2 | 1) => transient(retry_after, reason),
        _ if status == 429 || status >= 500 => transient(retry_after, reason),
        _ => SendError::Permanent { reason },
    }
}

/// A template reply: `/template <name> <language>` then one parameter a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub name: String,
    pub language: String,
    pub parameters: Vec<String>,
}

pub fn template(body: &str) -> Option<Template> {
    let mut lines = body.lines();
    let mut head = lines.next()?.strip_prefix("/template ")?.split_whitespace();
    let (name, language) = (head.next()?, head.next()?);
    if head.next().is_some() {
        return None;
    }
    Some(Template {
        name: name.to_owned(),
        language: language.to_owned(),
        parameters: lines
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

fn request_body(to: &str, text: &str) -> Value {
    let envelope =
        json!({"messaging_product": "whatsapp", "recipient_type": "individual", "to": to});
    let mut body = envelope;
    match template(text) {
        Some(t) => {
            let parameters: Vec<Value> = t
                .parameters
                .iter()
                .map(|p| json!({"type": "text", "text": p}))
                .collect();
            let mut spec = json!({"name": t.name, "language": {"code": t.language}});
            if !parameters.is_empty() {
                spec["components"] = json!([{"type": "body", "parameters": parameters}]);
            }
            body["type"] = json!("template");
            body["template"] = spec;
        }
        None => {
            body["type"] = json!("text");
            body["text"] = json!({"body": text, "preview_url": false});
        }
    }
    body
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new("invalid_webhook", field, message)
}

fn time_of(item: &Value) -> DateTime<Utc> {
    item["timestamp"]
        .as_str()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or_else(Utc::now)
}

/// What the operator sees: text, or a file recorded by type and name
/// (its bytes are a follow-up), a place, a shared card, a button pressed.
fn body_of(message: &Value) -> String {
    let kind = message["type"].as_str().unwrap_or_default();
    let part = &message[kind];
    let with_caption = |label: String| match part["caption"].as_str() {
        Some(caption) if !caption.is_empty() => format!("{label}\n{caption}"),
        _ => label,
    };
    match kind {
        "text" => part["body"].as_str().unwrap_or_default().to_owned(),
        "document" => {
            let name = part["filename"].as_str().unwrap_or("file");
            let mime = part["mime_type"]
                .as_str()
                .unwrap_or("application/octet-stream");
            with_caption(format!("[document: {name} ({mime})]"))
        }
        "image" | "video" | "audio" | "sticker" => {
            let mime = part["mime_type"].as_str().unwrap_or("unknown type");
            let kind = if part["voice"] == json!(true) {
                "voice"
            } else {
                kind
            };
            with_caption(format!("[{kind}: {mime}]"))
        }
        "location" => format!("[location: {}, {}]", part["latitude"], part["longitude"]),
        "contacts" => {
            let cards: Vec<String> = part
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = c["name"]["formatted_name"].as_str().unwrap_or_default();
                    let phones: Vec<&str> = c["phones"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|p| p["phone"].as_str())
                        .collect();
                    format!("{name} {}", phones.join(", ")).trim().to_owned()
                })
                .collect();
            format!("[contact: {}]", cards.join("; "))
        }
        "interactive" => ["button_reply", "list_reply"]
            .iter()
            .find_map(|k| part[*k]["title"].as_str())
            .unwrap_or_default()
            .to_owned(),
        "button" => part["text"].as_str().unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

/// The message text with the prefilled link's `[CODE]` taken out (the
/// code itself goes to the profile, not the thread).
fn without_code(text: &str, code: &str) -> String {
    let stripped = text.replacen(&format!("[{code}]"), "", 1);
    let stripped = stripped.trim();
    if stripped.is_empty() {
        text.to_owned()
    } else {
        stripped.to_owned()
    }
}

fn inbound(
    account: &Account,
    names: &HashMap<&str, &str>,
    message: &Value,
) -> Result<Parsed, FieldError> {
    let from = message["from"]
        .as_str()
        .filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| {
            bad(
                "entry.changes.value.messages.from",
                "the sender's number as digits",
            )
        })?;
    let id = message["id"]
        .as_str()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| {
            bad(
                "entry.changes.value.messages.id",
                "a message needs its wamid",
            )
        })?;
    let mut body = body_of(message);
    if body.is_empty() {
        // Reactions, unsupported kinds: not shown in the inbox yet.
        return Ok(Parsed::Ignored);
    }
    let tracking_code = (message["type"] == "text")
        .then(|| find_code(&body))
        .flatten();
    if let Some(code) = &tracking_code {
        body = without_code(&body, code);
    }
    let customer = Customer {
        phone: Some(format!("+{from}")),
        channel_id: Some(("whatsapp".into(), from.to_owned())),
        tracking_code,
        name: names.get(from).map(|n| (*n).to_owned()),
        ad: ad_of(&message["referral"]),
        ..Customer::default()
    };
    Ok(Parsed::Message(Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::WhatsApp,
        customer,
        body,
        external_id: Some(id.to_owned()),
        at: time_of(message),
    }))
}

/// A Click-to-WhatsApp ad's `referral` as the campaign that brought the
/// chat; the network is read off the ad's link.
fn ad_of(referral: &Value) -> Option<AdClick> {
    let text = |key: &str| {
        referral[key]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let url = text("source_url");
    let (id, click_id) = (text("source_id"), text("ctwa_clid"));
    if url.is_none() && id.is_none() && click_id.is_none() {
        return None;
    }
    let on_instagram = url.as_deref().is_some_and(|u| u.contains("instagram.com"));
    let medium = match referral["source_type"].as_str() {
        Some("post") => "social",
        _ => "paid_social",
    };
    Some(AdClick {
        source: if on_instagram {
            "instagram"
        } else {
            "facebook"
        }
        .into(),
        medium: medium.into(),
        name: text("headline"),
        content: id,
        url,
        click_id,
    })
}

fn status(item: &Value) -> Result<Parsed, FieldError> {
    let id = item["id"].as_str().ok_or_else(|| {
        bad(
            "entry.changes.value.statuses.id",
            "a status names its wamid",
        )
    })?;
    let status = match item["status"].as_str() {
        Some("sent") => DeliveryStatus::Sent,
        Some("delivered") => DeliveryStatus::Delivered,
        Some("read") => DeliveryStatus::Read,
        Some("failed") => DeliveryStatus::Failed,
        _ => return Ok(Parsed::Ignored),
    };
    let reason = item["errors"].get(0).map(|e| {
        let title = e["message"]
            .as_str()
            .or(e["title"].as_str())
            .unwrap_or("failed");
        format!("(#{}) {title}", e["code"])
    });
    Ok(Parsed::Status {
        external_id: id.to_owned(),
        status,
        reason,
    })
}

/// One `changes[].value` for this account's number.
fn change(account: &Account, value: &Value, out: &mut Vec<Parsed>) -> Result<(), FieldError> {
    let ours = account.setting("phone_number_id");
    if value["metadata"]["phone_number_id"].as_str() != ours {
        // Another number of the same app: its own account takes it.
        out.push(Parsed::Ignored);
        return Ok(());
    }
    let names: HashMap<&str, &str> = value["contacts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["wa_id"].as_str()?, c["profile"]["name"].as_str()?)))
        .collect();
    for message in value["messages"].as_array().into_iter().flatten() {
        out.push(inbound(account, &names, message)?);
    }
    for item in value["statuses"].as_array().into_iter().flatten() {
        out.push(status(item)?);
    }
    for error in value["errors"].as_array().into_iter().flatten() {
        tracing::warn!(code = %error["code"], title = %error["title"], "WhatsApp reported an error");
    }
    Ok(())
}

#[async_trait]
impl Connector for WhatsApp {
    fn channel(&self) -> Channel {
        Channel::WhatsApp
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::WhatsApp
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["access_token", "app_secret", "verify_token"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        let number = settings["phone_number_id"].as_str().unwrap_or_default();
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FieldError::new(
                "invalid_setting",
                "settings.phone_number_id",
                "the phone number id from the WhatsApp app's API setup (digits)",
            ));
        }
        for field in self.secret_fields() {
            if secrets.get(field).unwrap_or_default().trim().is_empty() {
                return Err(FieldError::new(
                    "required",
                    format!("secrets.{field}"),
                    "required to connect WhatsApp",
                ));
            }
        }
        super::check_api_base(settings)
    }

    fn verify(&self, account: &Account, headers: &HeaderMap, body: &[u8]) -> Result<(), Forged> {
        let secret = account.secrets.get("app_secret").ok_or(Forged)?;
        let given = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("sha256="))
            .ok_or(Forged)?;
        signed_sha256_hex(secret, body, given)
            .then_some(())
            .ok_or(Forged)
    }

    fn challenge(
        &self,
        account: &Account,
        query: &BTreeMap<String, String>,
    ) -> Option<Result<String, Forged>> {
        let expected = account.secrets.get("verify_token").unwrap_or_default();
        let given = query.get("hub.verify_token").map(String::as_bytes);
        let ok = query.get("hub.mode").map(String::as_str) == Some("subscribe")
            && !expected.is_empty()
            && given.is_some_and(|g| same_secret(g, expected.as_bytes()));
        Some(match (ok, query.get("hub.challenge")) {
            (true, Some(challenge)) => Ok(challenge.clone()),
            _ => Err(Forged),
        })
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let hook: Value =
            serde_json::from_slice(body).map_err(|_| bad("body", "a webhook as JSON"))?;
        if hook["object"] != "whatsapp_business_account" {
            return Err(bad("object", "expected \"whatsapp_business_account\""));
        }
        let entries = hook["entry"]
            .as_array()
            .ok_or_else(|| bad("entry", "an array of entries"))?;
        let mut out = Vec::new();
        for entry in entries {
            for item in entry["changes"].as_array().into_iter().flatten() {
                if item["field"] == "messages" {
                    change(account, &item["value"], &mut out)?;
                }
            }
        }
        Ok(out)
    }

    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        if text.chars().count() > MAX_TEXT {
            return Err(SendError::Permanent {
                reason: format!("the message is longer than WhatsApp's {MAX_TEXT} characters"),
            });
        }
        let request = self
            .http
            .post(Self::url(account, "/messages"))
            .json(&request_body(to.trim_start_matches('+'), text));
        let answer = self.call(account, request).await?;
        answer["messages"][0]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| transient(None, "WhatsApp: the answer has no message id".into()))
    }

    async fn connect(&self, account: &Account, _webhook_url: &str) -> Result<Connected, SendError> {
        // The callback URL is set in Meta's dashboard (its GET handshake
        // checks the verify token); here the number and token are checked.
        let request = self.http.get(Self::url(
            account,
            "?fields=display_phone_number,verified_name",
        ));
        let number = self.call(account, request).await?;
        let display = number["display_phone_number"].as_str().unwrap_or_default();
        let name = number["verified_name"].as_str().unwrap_or_default();
        let mut settings = serde_json::Map::new();
        settings.insert("display_phone_number".into(), json!(display));
        Ok(Connected {
            detail: format!("+{display} {name}").trim().to_owned(),
            settings,
        })
    }

    fn pacing(&self) -> Pacing {
        // 80 messages/s per number; the pair rate ≈ 1 message per 6 s to one user.
        Pacing {
            per_account: Duration::from_millis(13),
            per_chat: Duration::from_secs(6),
        }
    }

    fn reply_window(&self, body: &str) -> Option<Duration> {
        template(body).is_none().then_some(WINDOW)
    }
}

/// What the inbox says next to the reply box when a free-form WhatsApp
/// reply would be refused (`messages`: the latest of the conversation).
pub fn window_note(
    reply_channel: Option<Channel>,
    messages: &[StoredMessage],
    now: DateTime<Utc>,
) -> Option<String> {
    if reply_channel != Some(Channel::WhatsApp) {
        return None;
    }
    let last = last_inbound_in(messages, Channel::WhatsApp);
    let since = last.map(|at| now - at);
    if since.is_some_and(|s| s.to_std().map_or(true, |s| s < WINDOW)) {
        return None;
    }
    let when = match since {
        Some(since) => format!("last wrote on WhatsApp {} h ago", since.num_hours()),
        None => "has not written on WhatsApp lately".to_owned(),
    };
    Some(format!(
        "WhatsApp's 24-hour window is closed: the customer {when}. Only an approved template \
         can be sent: /template <name> <language>, then one parameter a line."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_errors_are_told_apart_by_code() {
        let closed =
            json!({"error": {"message": "(#131047) Re-engagement message", "code": 131047}});
        assert!(matches!(
            classify(400, None, &closed),
            SendError::Permanent { .. }
        ));
        let busy = json!({"error": {"message": "throughput", "code": 130429}});
        assert!(matches!(
            classify(400, None, &busy),
            SendError::Transient {
                whole_account: true,
                ..
            }
        ));
        assert!(matches!(
            classify(503, None, &Value::Null),
            SendError::Transient { .. }
        ));
        let bad = json!({"error": {"message": "(#100) Invalid parameter", "code": 100}});
        assert!(matches!(
            classify(400, None, &bad),
            SendError::Permanent { .. }
        ));
    }

    #[test]
    fn templates_are_a_first_line_and_one_parameter_a_line() {
        assert_eq!(
            template("/template order_update ru\n12345\n\nзавтра"),
            Some(Template {
                name: "order_update".into(),
                language: "ru".into(),
                parameters: vec!["12345".into(), "завтра".into()],
            })
        );
        assert_eq!(template("/template order_update"), None);
        assert_eq!(template("Hello /template x ru"), None);
        let body = request_body("79161234567", "/template hello en");
        assert_eq!(body["type"], "template");
        assert!(body["template"].get("components").is_none());
    }

    #[test]
    fn a_prefilled_code_is_taken_out_of_the_text() {
        assert_eq!(
            without_code("Здравствуйте! [K7Q2MABC]", "K7Q2MABC"),
            "Здравствуйте!"
        );
        assert_eq!(without_code("[K7Q2MABC]", "K7Q2MABC"), "[K7Q2MABC]");
    }
}
