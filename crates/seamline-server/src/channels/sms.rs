//! SMS through a Twilio-style HTTP provider (channels.md §6): form-encoded
//! webhooks signed with `X-Twilio-Signature` (HMAC-SHA1 over the URL as
//! configured plus every parameter sorted by name), `Messages.json` to send,
//! status callbacks to the same webhook, opt-out keywords as consent.
//!
//! Account settings: `account_sid` (`AC…`), `from` (+E.164) or
//! `messaging_service_sid` (`MG…`), `api_base` (default
//! `https://api.twilio.com`; tests point it at the fake), `webhook_url`
//! (learnt on connect: the URL exactly as the provider signs it). Secret:
//! `auth_token`.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::{header, HeaderMap};
use base64::Engine;
use chrono::Utc;
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::sms::{keyword, segments, Keyword};
use seamline_core::FieldError;
use seamline_store::DeliveryStatus;
use serde_json::{json, Value};

use super::{
    accounts, same_secret, Account, Connected, Connector, Forged, Pacing, Parsed, Secrets,
    SendError,
};
use crate::inbox::{Customer, Inbound};

pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
const DEFAULT_API: &str = "https://api.twilio.com";
/// The provider refuses longer bodies.
const MAX_TEXT: usize = 1600;

pub struct Sms {
    http: reqwest::Client,
}

impl Sms {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }

    fn url(account: &Account, path: &str) -> String {
        let base = account.setting("api_base").unwrap_or(DEFAULT_API);
        let sid = account.setting("account_sid").unwrap_or_default();
        format!(
            "{}/2010-04-01/Accounts/{sid}{path}",
            base.trim_end_matches('/')
        )
    }

    async fn answer(
        &self,
        account: &Account,
        request: reqwest::RequestBuilder,
    ) -> Result<Value, SendError> {
        let sid = account.setting("account_sid").unwrap_or_default();
        let token = account.secrets.get("auth_token").unwrap_or_default();
        let response = request
            .basic_auth(sid, Some(token))
            .send()
            .await
            .map_err(|e| super::unanswered("SMS provider", &e, false))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(classify(status, retry_after, &body))
    }
}

fn transient(retry_after: Option<Duration>, reason: String) -> SendError {
    SendError::Transient {
        retry_after,
        whole_account: retry_after.is_some(),
        reason,
    }
}

/// No idempotency key: only 429 and 5xx are retried; every other answer
/// (21610 opted out, 21211 invalid `To`, 20003 bad credentials) is final.
fn classify(status: u16, retry_after: Option<Duration>, body: &Value) -> SendError {
    let message = body["message"].as_str().unwrap_or("no message");
    let reason = match body["code"].as_u64() {
        Some(code) => format!("{code}: {message}"),
        None => format!("HTTP {status}: {message}"),
    };
    match status {
        429 => transient(Some(retry_after.unwrap_or(Duration::from_secs(1))), reason),
        500.. => transient(None, reason),
        _ => SendError::Permanent { reason },
    }
}

/// `base64(HMAC-SHA1(auth token, url + name1 + value1 + …))`, parameters
/// sorted by name then value.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, token.as_bytes());
    let tag = ring::hmac::sign(&key, data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn bad(name: &str, message: &str) -> FieldError {
    FieldError::new("invalid_webhook", name, message)
}

/// The URL the provider signed: the one learnt on connect, else this
/// server's URL as the request reached it (`X-Forwarded-Proto` respected).
fn signed_url(account: &Account, headers: &HeaderMap) -> Option<String> {
    if let Some(url) = account.setting("webhook_url") {
        return Some(url.to_owned());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    Some(accounts::webhook_url(
        &format!("{scheme}://{host}"),
        &account.stored,
    ))
}

fn e164(raw: &str) -> Option<String> {
    let digits = raw.trim().strip_prefix('+')?;
    let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

/// A status callback: monotonic statuses only; the interim ones say nothing new.
fn status(params: &[(String, String)], sid: &str, value: &str) -> Parsed {
    let status = match value {
        "sent" => DeliveryStatus::Sent,
        "delivered" | "partially_delivered" => DeliveryStatus::Delivered,
        "read" => DeliveryStatus::Read,
        "undelivered" | "failed" | "canceled" => DeliveryStatus::Failed,
        _ => return Parsed::Ignored,
    };
    let reason = (status == DeliveryStatus::Failed).then(|| {
        let code = field(params, "ErrorCode").unwrap_or_default();
        failure_reason(code).map_or_else(|| format!("{value} ({code})"), str::to_owned)
    });
    Parsed::Status {
        external_id: sid.to_owned(),
        status,
        reason,
    }
}

fn failure_reason(code: &str) -> Option<&'static str> {
    Some(match code {
        "30003" => "30003: the handset is unreachable",
        "30004" => "30004: the recipient blocked the message",
        "30005" => "30005: unknown number",
        "30006" => "30006: landline or unreachable carrier",
        "30007" => "30007: filtered by the carrier",
        "30008" => "30008: unknown error",
        "21610" => "21610: the recipient replied STOP",
        _ => return None,
    })
}

/// The body with its media listed (the files themselves are not fetched).
fn body_of(params: &[(String, String)]) -> String {
    let mut body = field(params, "Body").unwrap_or_default().to_owned();
    let media: usize = field(params, "NumMedia")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    for i in 0..media.min(10) {
        let kind = field(params, &format!("MediaContentType{i}")).unwrap_or("file");
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&format!("[media: {kind}]"));
    }
    body
}

fn inbound(
    account: &Account,
    params: &[(String, String)],
    sid: &str,
) -> Result<Parsed, FieldError> {
    let from = field(params, "From")
        .and_then(e164)
        .ok_or_else(|| bad("From", "the sender's number in +E.164"))?;
    let body = body_of(params);
    if body.trim().is_empty() {
        return Err(bad("Body", "an inbound SMS needs a text or media"));
    }
    let message = Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Sms,
        customer: Customer {
            phone: Some(from.clone()),
            channel_id: Some(("phone".into(), from)),
            ..Customer::default()
        },
        body: body.clone(),
        external_id: Some(sid.to_owned()),
        at: Utc::now(),
    };
    Ok(match keyword(&body) {
        Some(word) => Parsed::Consent {
            message,
            granted: word == Keyword::OptIn,
        },
        None => Parsed::Message(message),
    })
}

#[async_trait]
impl Connector for Sms {
    fn channel(&self) -> Channel {
        Channel::Sms
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Phone
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["auth_token"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        let text = |name: &str| settings.get(name).and_then(Value::as_str);
        let sid_ok = |s: &str, prefix: &str| {
            s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
        };
        if !text("account_sid").is_some_and(|s| sid_ok(s, "AC")) {
            return Err(FieldError::new(
                "invalid_value",
                "settings.account_sid",
                "the Account SID: AC followed by 32 hex digits",
            ));
        }
        let from_ok = text("from").and_then(e164).is_some();
        let service_ok = text("messaging_service_sid").is_some_and(|s| sid_ok(s, "MG"));
        if !from_ok && !service_ok {
            return Err(FieldError::new(
                "invalid_value",
                "settings.from",
                "the sending number in +E.164 (or a messaging_service_sid MG…)",
            ));
        }
        if secrets.get("auth_token").is_none_or(|t| t.len() < 16) {
            return Err(FieldError::new(
                "invalid_token",
                "secrets.auth_token",
                "the account's auth token",
            ));
        }
        if let Some(base) = settings.get("api_base") {
            let ok = base
                .as_str()
                .and_then(|b| url::Url::parse(b).ok())
                .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(FieldError::new(
                    "invalid_url",
                    "settings.api_base",
                    "an http(s) URL of the provider's API",
                ));
            }
        }
        Ok(())
    }

    fn verify(&self, account: &Account, headers: &HeaderMap, body: &[u8]) -> Result<(), Forged> {
        let token = account.secrets.get("auth_token").ok_or(Forged)?;
        let given = headers.get(SIGNATURE_HEADER).ok_or(Forged)?.as_bytes();
        let url = signed_url(account, headers).ok_or(Forged)?;
        let expected = signature(token, &url, &form(body));
        same_secret(given, expected.as_bytes())
            .then_some(())
            .ok_or(Forged)
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let params = form(body);
        let sid = field(&params, "MessageSid")
            .or_else(|| field(&params, "SmsSid"))
            .filter(|s| s.len() == 34 && (s.starts_with("SM") || s.starts_with("MM")))
            .ok_or_else(|| {
                bad(
                    "MessageSid",
                    "the message's SID (SM… or MM…, 34 characters)",
                )
            })?;
        let item = match (field(&params, "MessageStatus"), field(&params, "Body")) {
            (Some(value), None) => status(&params, sid, value),
            _ => inbound(account, &params, sid)?,
        };
        Ok(vec![item])
    }

    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        if text.chars().count() > MAX_TEXT {
            return Err(SendError::Permanent {
                reason: format!("the text is longer than the provider's {MAX_TEXT} characters"),
            });
        }
        let parts = segments(text);
        let mut params = vec![("To", to), ("Body", text)];
        match account.setting("messaging_service_sid") {
            Some(service) => params.push(("MessagingServiceSid", service)),
            None => params.push(("From", account.setting("from").unwrap_or_default())),
        }
        if let Some(callback) = account.setting("webhook_url") {
            params.push(("StatusCallback", callback));
        }
        let request = self
            .http
            .post(Self::url(account, "/Messages.json"))
            .form(&params);
        let sent = self.answer(account, request).await?;
        let sid = sent["sid"].as_str().unwrap_or_default();
        tracing::debug!(segments = parts.count, encoding = ?parts.encoding, "SMS sent");
        if sid.is_empty() {
            return Err(SendError::Permanent {
                reason: "the provider accepted the message without a sid".into(),
            });
        }
        Ok(sid.to_owned())
    }

    async fn connect(&self, account: &Account, webhook_url: &str) -> Result<Connected, SendError> {
        let request = self.http.get(Self::url(account, ".json"));
        let found = self.answer(account, request).await?;
        let name = found["friendly_name"].as_str().unwrap_or("SMS account");
        let sender = account
            .setting("from")
            .or_else(|| account.setting("messaging_service_sid"))
            .unwrap_or_default();
        let mut settings = serde_json::Map::new();
        settings.insert("webhook_url".into(), json!(webhook_url));
        Ok(Connected {
            detail: format!("{name} ({sender})"),
            settings,
        })
    }

    fn pacing(&self) -> Pacing {
        // A long code sends about one segment per second.
        Pacing {
            per_account: Duration::from_secs(1),
            per_chat: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_twilios_documented_example() {
        // Twilio's "Secure webhooks" example (token, URL, params, signature).
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        assert_eq!(
            signature(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn errors_are_told_apart() {
        let opted_out =
            json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient"});
        assert!(matches!(
            classify(400, None, &opted_out),
            SendError::Permanent { .. }
        ));
        assert!(matches!(
            classify(429, Some(Duration::from_secs(2)), &Value::Null),
            SendError::Transient {
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(503, None, &Value::Null),
            SendError::Transient { .. }
        ));
    }
}
