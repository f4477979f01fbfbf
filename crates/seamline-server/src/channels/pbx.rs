//! Telephony through a virtual PBX (channels.md §7), Mango-style on the
//! wire: form posts with `vpbx_api_key`, `sign` and `json`, where
//! `sign = hex(sha256(api_key + json + salt))` over the `json` string
//! exactly as received. `json` holds one event of the neutral model
//! (`call.started`, `call.ringing`, `call.answered`, `call.ivr_input`,
//! `call.ended`, `call.recording_ready`), each with `call_id`, `seq`,
//! `direction`, `from` and `to` (as Mango's call events carry them).
//!
//! A call is written to the conversation once, from `call.ended`, which
//! summarises it (who answered, durations, IVR choices); the live events
//! before it are acknowledged and not stored, except that an inbound
//! `call.started` is attributed by call tracking (`crate::calltracking`). An inbound call with no talk
//! time is missed: the conversation becomes a task ([`super::calls`]). A
//! recording is its own message with the audio attached, fetched only from
//! the PBX's own API host.
//!
//! Sending on the phone channel calls the customer back through the
//! durable outbox (retried, sent once): the PBX rings the `extension`
//! first, then the customer; the answered call comes back as events.
//!
//! Account settings: `api_base` (the PBX's API; recordings are fetched from
//! it only), `extension` (rung first on a callback; default 101). Secrets:
//! `api_key`, `api_salt`.

use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    same_secret, Account, Connected, Connector, Forged, Pacing, Parsed, Secrets, SendError,
};
use crate::calltracking::CallStart;
use crate::inbox::{Customer, Inbound};

/// A call to write into the customer's conversation.
#[derive(Debug, Clone)]
pub struct Call {
    pub message: Inbound,
    /// Inbound and nobody talked: a callback task.
    pub missed: bool,
    pub recording: Option<Recording>,
    /// An inbound call's start, for call tracking (a `call.started` that
    /// never came is made up from the end and the duration).
    pub start: Option<CallStart>,
}

/// Where a call's recording can be fetched (a temporary URL on the PBX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub url: String,
    pub name: String,
}

pub struct Pbx {
    http: reqwest::Client,
}

impl Pbx {
    pub fn new(http: reqwest::Client) -> Self {
        Self { http }
    }
}

/// `hex(sha256(api_key + json + salt))`.
pub fn sign(api_key: &str, json: &str, salt: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(api_key.as_bytes());
    hash.update(json.as_bytes());
    hash.update(salt.as_bytes());
    hex::encode(hash.finalize())
}

/// A signed command body for the PBX's API.
pub fn command(account: &Account, json: &str) -> Vec<(String, String)> {
    let key = account.secrets.get("api_key").unwrap_or_default();
    let salt = account.secrets.get("api_salt").unwrap_or_default();
    vec![
        ("vpbx_api_key".into(), key.to_owned()),
        ("sign".into(), sign(key, json, salt)),
        ("json".into(), json.to_owned()),
    ]
}

/// The extension a callback rings first when the account names none.
const DEFAULT_EXTENSION: &str = "101";

fn api_base(account: &Account) -> &str {
    account
        .setting("api_base")
        .unwrap_or_default()
        .trim_end_matches('/')
}

fn transient(reason: &str) -> SendError {
    SendError::Transient {
        retry_after: None,
        whole_account: false,
        reason: reason.to_owned(),
    }
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
    FieldError::new("invalid_event", name, message)
}

/// A caller id as +E.164: PBXs send `79161234567`, `89161234567` or
/// `+7916…`; a short extension (`101`) is internal and names nobody.
pub fn e164(raw: &str) -> Option<String> {
    let digits = raw.trim().trim_start_matches('+');
    if !(10..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match digits.strip_prefix('8') {
        Some(national) if digits.len() == 11 => Some(format!("+7{national}")),
        _ => Some(format!("+{digits}")),
    }
}

fn minutes(seconds: u64) -> String {
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

fn number(event: &Value, name: &str) -> u64 {
    match &event[name] {
        Value::String(s) => s.parse().unwrap_or(0),
        other => other.as_u64().unwrap_or(0),
    }
}

/// The call in words: direction, parties, who answered, durations, IVR.
fn summary(event: &Value, inbound: bool, missed: bool) -> String {
    let party = |side: &str| {
        let raw = event[side].as_str().unwrap_or("?");
        e164(raw).unwrap_or_else(|| raw.to_owned())
    };
    let (from, to) = (party("from"), party("to"));
    let mut text = match (inbound, missed) {
        (true, true) => format!("Missed call from {from} to {to}"),
        (true, false) => format!("Incoming call from {from} to {to}"),
        (false, _) => format!("Outgoing call from {from} to {to}"),
    };
    let (total, talk) = (number(event, "duration_s"), number(event, "talk_s"));
    if let Some(agent) = event["answered_by"].as_str().filter(|_| talk > 0) {
        text.push_str(&format!(", answered by {agent}"));
    }
    if talk > 0 {
        text.push_str(&format!(", talk {} of {}", minutes(talk), minutes(total)));
    } else {
        let result = event["result"].as_str().unwrap_or("no answer");
        text.push_str(&format!(", {result} after {}", minutes(total)));
    }
    let choices: Vec<String> = event["ivr"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some(format!(
                "{} → {}",
                c["menu"].as_str()?,
                c["digits"].as_str()?
            ))
        })
        .collect();
    if !choices.is_empty() {
        text.push_str(&format!(". IVR: {}", choices.join(", ")));
    }
    text
}

fn time_of(event: &Value) -> DateTime<Utc> {
    let seconds = number(event, "at");
    i64::try_from(seconds)
        .ok()
        .filter(|s| *s > 0)
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .unwrap_or_else(Utc::now)
}

/// The recording event as a message with its file to fetch.
fn recording(event: &Value, call_id: &str) -> Result<(String, String, Recording), FieldError> {
    let id = event["recording_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("json.recording_id", "the recording's id"))?;
    let url = event["url"]
        .as_str()
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| bad("json.url", "an http(s) URL to fetch the recording"))?;
    let format = event["format"].as_str().unwrap_or("mp3");
    let safe: String = format
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(5)
        .collect();
    let body = format!("Call recording ({})", minutes(number(event, "duration_s")));
    let file = Recording {
        url: url.to_owned(),
        name: format!("call-{}.{safe}", call_id.replace([':', '/'], "-")),
    };
    Ok((body, format!("recording:{id}"), file))
}

fn parse_event(account: &Account, event: &Value) -> Result<Parsed, FieldError> {
    let kind = event["event"]
        .as_str()
        .ok_or_else(|| bad("json.event", "the event's name"))?;
    let call_id = event["call_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("json.call_id", "the call's id"))?;
    let inbound = match event["direction"].as_str() {
        Some("in") => true,
        Some("out") => false,
        _ => return Err(bad("json.direction", "in or out")),
    };
    let customer_side = if inbound { "from" } else { "to" };
    let phone = event[customer_side]
        .as_str()
        .and_then(e164)
        .ok_or_else(|| {
            bad(
                &format!("json.{customer_side}"),
                "the customer's number (E.164)",
            )
        })?;
    let caller = phone.clone();
    let start = |at: DateTime<Utc>| {
        inbound.then(|| CallStart {
            workspace: account.stored.workspace_id,
            call_id: format!("{}:{call_id}", account.stored.id),
            caller: caller.clone(),
            to: event["to"].as_str().unwrap_or_default().to_owned(),
            at,
        })
    };
    let (body, suffix, missed, file) = match kind {
        "call.started" => {
            return Ok(start(time_of(event)).map_or(Parsed::Ignored, Parsed::CallStarted))
        }
        "call.ringing" | "call.answered" | "call.ivr_input" => return Ok(Parsed::Ignored),
        "call.ended" => {
            let missed = inbound && number(event, "talk_s") == 0;
            (
                summary(event, inbound, missed),
                "ended".to_owned(),
                missed,
                None,
            )
        }
        "call.recording_ready" => {
            let (body, suffix, file) = recording(event, call_id)?;
            (body, suffix, false, Some(file))
        }
        _ => return Err(bad("json.event", "a call.* event of the neutral model")),
    };
    let message = Inbound {
        workspace: account.stored.workspace_id,
        channel: Channel::Phone,
        customer: Customer {
            phone: Some(phone.clone()),
            channel_id: Some(("phone".into(), phone)),
            ..Customer::default()
        },
        body,
        external_id: Some(format!("{}:{call_id}:{suffix}", account.stored.id)),
        at: time_of(event),
    };
    let lasted = i64::try_from(number(event, "duration_s").min(86_400)).unwrap_or(0);
    let began = time_of(event) - chrono::TimeDelta::seconds(lasted);
    Ok(Parsed::Call(Box::new(Call {
        start: (suffix == "ended").then(|| start(began)).flatten(),
        message,
        missed,
        recording: file,
    })))
}

#[async_trait]
impl Connector for Pbx {
    fn channel(&self) -> Channel {
        Channel::Phone
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Phone
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["api_key", "api_salt"]
    }

    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError> {
        for name in ["api_key", "api_salt"] {
            if secrets.get(name).is_none_or(|s| s.trim().len() < 8) {
                return Err(FieldError::new(
                    "invalid_token",
                    format!("secrets.{name}"),
                    "the PBX's API key and salt (8 characters or more)",
                ));
            }
        }
        let ok = settings
            .get("api_base")
            .and_then(Value::as_str)
            .and_then(|b| url::Url::parse(b).ok())
            .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
        if !ok {
            return Err(FieldError::new(
                "invalid_url",
                "settings.api_base",
                "the http(s) URL of the PBX's API",
            ));
        }
        Ok(())
    }

    fn verify(&self, account: &Account, _headers: &HeaderMap, body: &[u8]) -> Result<(), Forged> {
        let key = account.secrets.get("api_key").ok_or(Forged)?;
        let salt = account.secrets.get("api_salt").ok_or(Forged)?;
        let params = form(body);
        let given_key = field(&params, "vpbx_api_key").ok_or(Forged)?;
        let given = field(&params, "sign").ok_or(Forged)?;
        let json = field(&params, "json").ok_or(Forged)?;
        let expected = sign(key, json, salt);
        (same_secret(given_key.as_bytes(), key.as_bytes())
            && same_secret(given.as_bytes(), expected.as_bytes()))
        .then_some(())
        .ok_or(Forged)
    }

    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        let params = form(body);
        let event: Value = field(&params, "json")
            .and_then(|j| serde_json::from_str(j).ok())
            .filter(Value::is_object)
            .ok_or_else(|| bad("json", "an event as a JSON object"))?;
        Ok(vec![parse_event(account, &event)?])
    }

    /// On the phone channel, sending is calling back: the PBX rings the
    /// account's callback extension first, then the customer (Mango
    /// `commands/callback`); the text stays on the conversation as the note.
    async fn send(&self, account: &Account, to: &str, _text: &str) -> Result<String, SendError> {
        let id = uuid::Uuid::now_v7().to_string();
        let extension = account.setting("extension").unwrap_or(DEFAULT_EXTENSION);
        let json = serde_json::json!({
            "command_id": id,
            "from": {"extension": extension},
            "to_number": to.trim_start_matches('+'),
        })
        .to_string();
        let response = self
            .http
            .post(format!("{}/commands/callback", api_base(account)))
            .form(&command(account, &json))
            .send()
            .await
            .map_err(|_| transient("the PBX did not answer"))?;
        match response.status().as_u16() {
            200..=299 => Ok(id),
            429 | 500.. => Err(transient(&format!(
                "the PBX answered HTTP {}",
                response.status()
            ))),
            status => Err(SendError::Permanent {
                reason: format!("the PBX refused the callback: HTTP {status}"),
            }),
        }
    }

    async fn connect(&self, account: &Account, _webhook_url: &str) -> Result<Connected, SendError> {
        let response = self
            .http
            .post(format!("{}/commands/ping", api_base(account)))
            .form(&command(account, "{}"))
            .send()
            .await
            .map_err(|_| transient("the PBX did not answer"))?;
        if !response.status().is_success() {
            return Err(SendError::Permanent {
                reason: format!(
                    "the PBX refused the key: HTTP {}",
                    response.status().as_u16()
                ),
            });
        }
        Ok(Connected {
            detail: "PBX connected; paste the webhook URL into its event settings".into(),
            settings: serde_json::Map::new(),
        })
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            per_account: Duration::from_millis(100),
            per_chat: Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn caller_ids_become_e164_and_extensions_name_nobody() {
        assert_eq!(e164("79161234567"), Some("+79161234567".into()));
        assert_eq!(e164("89161234567"), Some("+79161234567".into()));
        assert_eq!(e164("+79161234567"), Some("+79161234567".into()));
        assert_eq!(e164("101"), None);
    }

    #[test]
    fn a_call_is_summarised_in_words() {
        let answered = json!({"from": "+79161234567", "to": "+74951112233", "answered_by": "101",
            "duration_s": 80, "talk_s": 65, "ivr": [{"menu": "main", "digits": "2"}]});
        assert_eq!(
            summary(&answered, true, false),
            "Incoming call from +79161234567 to +74951112233, answered by 101, talk 1:05 of 1:20. IVR: main → 2"
        );
        let missed = json!({"from": "+79161234567", "to": "+74951112233", "duration_s": 25,
            "talk_s": 0, "result": "no_answer"});
        assert_eq!(
            summary(&missed, true, true),
            "Missed call from +79161234567 to +74951112233, no_answer after 0:25"
        );
    }
}
