//! Channel connectors: messengers and other providers into the one inbox.
//!
//! A connector ([`Connector`]) knows one provider's wire format and nothing
//! of storage: it verifies a webhook, parses it into [`Parsed`] items,
//! sends a text and checks a connection. Everything else is shared here:
//! accounts with sealed secrets ([`secrets`], [`accounts`]), the webhook
//! route ([`webhook`]: verify → parse → `inbox::receive`, 401 and nothing
//! stored on forgery), and the outbox sender ([`sender`]: leases, backoff
//! with jitter, pacing, permanent versus transient errors, delivery status
//! pushed live). Adding a channel = one module implementing [`Connector`]
//! plus one line in [`Connectors::standard`].

pub mod accounts;
pub mod calls;
pub mod email;
pub mod opt_out;
pub mod pbx;
pub mod secrets;
pub mod sender;
pub mod sms;
pub mod telegram;
pub mod viber;
pub mod vk;
pub mod webhook;
pub mod whatsapp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::Channel;
use seamline_core::FieldError;
use seamline_store::{Backend, ChannelAccount, DeliveryStatus, OutboundEntry};
use serde_json::Value;

pub use secrets::{SecretError, SecretKey, Secrets};

use crate::inbox::Inbound;

/// What the channel framework needs from the server's configuration.
#[derive(Debug, Clone)]
pub struct ChannelsConfig {
    /// Seals provider secrets at rest.
    pub secret_key: SecretKey,
    /// The public base URL providers reach this server at (webhook URLs);
    /// none: the URL the request came in on.
    pub public_url: Option<String>,
    /// How often the sender looks for due messages when not woken.
    pub poll: Duration,
    /// First retry delay; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before a message fails for good.
    pub max_attempts: u32,
    /// How long a call to a provider may take before it counts as timed
    /// out.
    pub send_timeout: Duration,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        Self {
            secret_key: SecretKey::for_this_process(),
            public_url: None,
            poll: Duration::from_millis(500),
            base_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(15 * 60),
            max_attempts: 12,
            send_timeout: Duration::from_secs(20),
        }
    }
}

/// A channel account with its secrets opened, as connectors see it.
#[derive(Debug, Clone)]
pub struct Account {
    pub stored: ChannelAccount,
    pub secrets: Secrets,
}

impl Account {
    /// A public setting as text (`api_base`, `bot_username`).
    pub fn setting(&self, name: &str) -> Option<&str> {
        self.stored.settings.get(name).and_then(Value::as_str)
    }
}

/// A webhook that did not prove it came from the provider.
#[derive(Debug, thiserror::Error)]
#[error("the webhook is not signed by the provider")]
pub struct Forged;

/// One thing a webhook said.
#[derive(Debug, Clone)]
pub enum Parsed {
    /// A customer's message, for `inbox::receive`; a tracking code in
    /// `customer.tracking_code` is checked (`vouched`) before it is used.
    Message(Inbound),
    /// A delivery report about a message we sent (its provider id).
    Status {
        external_id: String,
        status: DeliveryStatus,
        reason: Option<String>,
    },
    /// A customer who showed up without writing (Viber's
    /// `conversation_started`): their identifiers and a vouched tracking
    /// code are recorded on the profile, no message is appended (`body` unused).
    Arrived(Inbound),
    /// The provider expects this exact text as the answer (VK's
    /// `confirmation`).
    Answer(String),
    /// A customer's message that also answers consent on the channel (an
    /// SMS `STOP` withdraws marketing, `START` grants it again).
    Consent { message: Inbound, granted: bool },
    /// A phone call (or its recording) for the customer's conversation.
    Call(Box<pbx::Call>),
    /// An inbound call begins: call tracking ties it to whoever held the
    /// number called.
    CallStarted(crate::calltracking::CallStart),
    /// Understood and deliberately not stored (a bot's own echo, an
    /// update kind the inbox does not show).
    Ignored,
}

/// Why a send or a connection check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (network, 5xx, 429); not before `retry_after` when
    /// the provider said so. `whole_account`: the provider throttles the
    /// whole account, not only this chat.
    #[error("{reason}")]
    Transient {
        retry_after: Option<Duration>,
        whole_account: bool,
        reason: String,
    },
    /// Never going to work (blocked, unknown chat, bad token).
    #[error("{reason}")]
    Permanent { reason: String },
    /// No answer in time, after the request may have reached the
    /// provider: a provider without an idempotency key may have sent it,
    /// so the sender tries once more at most (channels.md §1).
    #[error("{reason}")]
    TimedOut { reason: String },
}

/// What a successful connection check learnt.
#[derive(Debug, Clone, PartialEq)]
pub struct Connected {
    /// For the status line (`@shop_bot`).
    pub detail: String,
    /// Public settings to store on the account (the bot's username).
    pub settings: serde_json::Map<String, Value>,
}

/// How fast a provider lets an account send (its documented or FAQ limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Least time between two sends of one account.
    pub per_account: Duration,
    /// Least time between two sends to one chat.
    pub per_chat: Duration,
}

/// One provider's protocol.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    fn channel(&self) -> Channel;
    /// The identifier kind the customer's chat id is recorded as: the
    /// sender finds the recipient by it.
    fn recipient_kind(&self) -> IdentifierKind;
    /// The secret fields an operator enters (masked in views).
    fn secret_fields(&self) -> &'static [&'static str];
    /// Secret fields the server makes up once per account (a webhook
    /// secret to hand the provider).
    fn generated_secrets(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks an account's settings and secrets before they are stored.
    fn validate(&self, settings: &Value, secrets: &Secrets) -> Result<(), FieldError>;
    /// Checks the request came from the provider (constant-time compares).
    fn verify(&self, account: &Account, headers: &HeaderMap, body: &[u8]) -> Result<(), Forged>;
    /// A verified body as inbox items; a malformed one is a 400 naming the field.
    fn parse(&self, account: &Account, body: &[u8]) -> Result<Vec<Parsed>, FieldError>;
    /// Sends `text` to the chat `to`; returns the provider's message id.
    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError>;
    /// Sends an outbox entry; a connector that threads replies (e-mail's
    /// `In-Reply-To`) reads the conversation from `store`.
    async fn send_entry(
        &self,
        _store: &dyn Backend,
        account: &Account,
        to: &str,
        entry: &OutboundEntry,
    ) -> Result<String, SendError> {
        self.send(account, to, &entry.body).await
    }
    /// Checks the credentials and points the provider's webhook at
    /// `webhook_url`.
    async fn connect(&self, account: &Account, webhook_url: &str) -> Result<Connected, SendError>;
    fn pacing(&self) -> Pacing;
    /// The body of a 200 to an accepted webhook (VK wants `ok`).
    fn acknowledgement(&self) -> &'static str {
        ""
    }
    /// A `GET` handshake on the webhook URL (WhatsApp's `hub.challenge`):
    /// the text to answer, `Err` when the request does not prove it knows
    /// the account's secret; `None`: the provider has no such handshake.
    fn challenge(
        &self,
        _account: &Account,
        _query: &BTreeMap<String, String>,
    ) -> Option<Result<String, Forged>> {
        None
    }
    /// How long after the customer's last message on this channel `body`
    /// may still be sent (WhatsApp's 24-hour window for free-form text);
    /// `None`: any time.
    fn reply_window(&self, _body: &str) -> Option<Duration> {
        None
    }
}

/// The connectors this server runs, by channel.
#[derive(Clone)]
pub struct Connectors(Arc<BTreeMap<&'static str, Arc<dyn Connector>>>);

impl Connectors {
    /// Every connector Seamline ships.
    pub fn standard(http: reqwest::Client) -> Self {
        let all: Vec<Arc<dyn Connector>> = vec![
            Arc::new(telegram::Telegram::new(http.clone())),
            Arc::new(email::Email),
            Arc::new(sms::Sms::new(http.clone())),
            Arc::new(pbx::Pbx::new(http.clone())),
            Arc::new(whatsapp::WhatsApp::new(http.clone())),
            Arc::new(viber::Viber::new(http.clone())),
            Arc::new(vk::Vk::new(http)),
        ];
        Self(Arc::new(
            all.into_iter().map(|c| (c.channel().as_str(), c)).collect(),
        ))
    }

    pub fn get(&self, channel: Channel) -> Option<&Arc<dyn Connector>> {
        self.0.get(channel.as_str())
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.0.values().map(|c| c.channel()).collect()
    }
}

/// The client connectors call providers with: waits bounded by `timeout`,
/// no redirects (a redirect would carry the token elsewhere).
pub fn http_client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// A request to `provider` that got no answer, told without its URL (the
/// URL or headers may hold a token). A timeout may come after the provider
/// acted on the request: unless the request carries an idempotency key
/// (`idempotent`: VK's `random_id`) it is [`SendError::TimedOut`], tried
/// once more at most (channels.md §0, §1). Anything else never reached the
/// provider and is retried.
pub fn unanswered(provider: &str, error: &reqwest::Error, idempotent: bool) -> SendError {
    let what = if error.is_timeout() {
        if !idempotent {
            return SendError::TimedOut {
                reason: format!("{provider}: no answer in time"),
            };
        }
        "no answer in time"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "network error"
    };
    SendError::Transient {
        retry_after: None,
        whole_account: false,
        reason: format!("{provider}: {what}"),
    }
}

/// An `api_base` setting, when given, is an http(s) URL (tests point a
/// connector at a fake provider with it).
pub fn check_api_base(settings: &Value) -> Result<(), FieldError> {
    let Some(base) = settings.get("api_base") else {
        return Ok(());
    };
    let ok = base
        .as_str()
        .and_then(|b| url::Url::parse(b).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "invalid_url",
            "settings.api_base",
            "an http(s) URL of the provider's API",
        ))
    }
}

/// Whether `given_hex` is the hex HMAC-SHA256 of the raw `body` under
/// `key` (WhatsApp's and Viber's webhook signatures); constant time.
pub fn signed_sha256_hex(key: &str, body: &[u8], given_hex: &str) -> bool {
    let Ok(tag) = hex::decode(given_hex.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// Compares secrets without leaking where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
