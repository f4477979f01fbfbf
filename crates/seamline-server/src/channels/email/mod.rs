//! E-mail: IMAP in, SMTP out (channels reference §5).
//!
//! Not a webhook provider: the [`poller`] reads each account's `INBOX`
//! after the last UID it stored, and replies leave through the outbox
//! like every channel's ([`Connector::send_entry`]), threaded with
//! `In-Reply-To`/`References` and a `Reply-To` that names the
//! conversation ([`thread`]). Our `Message-ID`s are the messages'
//! external ids, so a customer's reply and a bounce find them.

pub mod html;
pub mod imap;
pub mod poller;
pub mod read;
pub mod settings;
pub mod smtp;
pub mod thread;

use async_trait::async_trait;
use axum::http::HeaderMap;
use chrono::Utc;
use seamline_core::identity::IdentifierKind;
use seamline_core::inbox::conversation::{Channel, MessageKind};
use seamline_core::{ConversationId, FieldError};
use seamline_store::{Backend, MessageQuery, Order, OutboundEntry, StoreResult};
use serde_json::Value;

use super::{Account, Connected, Connector, Forged, Pacing, Parsed, Secrets, SendError};
use settings::Settings;

/// The connector; it holds nothing (servers are per account).
pub struct Email;

/// Ids of the thread kept in `References` (the newest).
const THREAD_IDS: usize = 20;

fn permanent(reason: impl Into<String>) -> SendError {
    SendError::Permanent {
        reason: reason.into(),
    }
}

fn settings_of(account: &Account) -> Result<Settings, SendError> {
    Settings::parse(&account.stored.settings).map_err(|e| permanent(e.message))
}

/// What a reply needs to know of its conversation.
struct Thread {
    conversation: ConversationId,
    /// E-mail ids of the conversation, oldest first.
    ids: Vec<String>,
    automatic: bool,
}

async fn thread_of(store: &dyn Backend, entry: &OutboundEntry) -> StoreResult<Thread> {
    let ws = entry.workspace_id;
    let (conversation, _) = store
        .conversation_for_profile(ws, entry.profile_id, Utc::now())
        .await?;
    let query = MessageQuery {
        limit: 200,
        order: Order::NewestFirst,
        ..MessageQuery::default()
    };
    let recent = store
        .list_messages(ws, conversation.conversation.id, &query)
        .await?;
    let automatic = recent
        .iter()
        .find(|m| m.message.id == entry.message_id)
        .is_some_and(|m| m.message.kind == MessageKind::Bot);
    let mut ids: Vec<String> = recent
        .iter()
        .filter(|m| m.message.channel == Channel::Email && m.message.id != entry.message_id)
        .filter_map(|m| m.external_id.clone())
        .take(THREAD_IDS)
        .collect();
    ids.reverse();
    Ok(Thread {
        conversation: conversation.conversation.id,
        ids,
        automatic,
    })
}

async fn deliver(account: &Account, mail: &smtp::Outgoing<'_>) -> Result<String, SendError> {
    let settings = settings_of(account)?;
    let message = smtp::compose(&settings, mail)?;
    let password = account.secrets.get("smtp_password").unwrap_or_default();
    smtp::send(&settings, password, message).await?;
    Ok(mail.id.to_owned())
}

#[async_trait]
impl Connector for Email {
    fn channel(&self) -> Channel {
        Channel::Email
    }

    fn recipient_kind(&self) -> IdentifierKind {
        IdentifierKind::Email
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["imap_password", "smtp_password"]
    }

    fn generated_secrets(&self) -> &'static [&'static str] {
        &["thread_key"]
    }

    fn validate(&self, settings: &Value, _secrets: &Secrets) -> Result<(), FieldError> {
        Settings::parse(settings).map(drop)
    }

    /// Mail never arrives by webhook: every request to the URL is refused.
    fn verify(&self, _: &Account, _: &HeaderMap, _: &[u8]) -> Result<(), Forged> {
        Err(Forged)
    }

    fn parse(&self, _: &Account, _: &[u8]) -> Result<Vec<Parsed>, FieldError> {
        Err(FieldError::new(
            "not_a_webhook",
            "body",
            "e-mail is read from the mailbox over IMAP",
        ))
    }

    /// A mail outside any thread.
    async fn send(&self, account: &Account, to: &str, text: &str) -> Result<String, SendError> {
        let domain = settings_of(account)?.reply_domain;
        let id = format!("{}@{domain}", uuid::Uuid::now_v7());
        let mail = smtp::Outgoing {
            to,
            body: text,
            id: &id,
            thread: &[],
            reply_to: None,
            automatic: false,
        };
        deliver(account, &mail).await
    }

    /// A reply in its conversation's thread. The `Message-ID` is the
    /// message's own id, so a retry after a lost answer is the same mail.
    async fn send_entry(
        &self,
        store: &dyn Backend,
        account: &Account,
        to: &str,
        entry: &OutboundEntry,
    ) -> Result<String, SendError> {
        let settings = settings_of(account)?;
        let thread = thread_of(store, entry)
            .await
            .map_err(|e| SendError::Transient {
                retry_after: None,
                whole_account: false,
                reason: e.to_string(),
            })?;
        let key = account.secrets.get("thread_key").unwrap_or_default();
        let reply_to = thread::reply_address(key, &settings.reply_domain, thread.conversation);
        let id = format!("{}@{}", entry.message_id.0, settings.reply_domain);
        let mail = smtp::Outgoing {
            to,
            body: &entry.body,
            id: &id,
            thread: &thread.ids,
            reply_to: Some(&reply_to),
            automatic: thread.automatic,
        };
        deliver(account, &mail).await
    }

    /// Logs in to both servers.
    async fn connect(&self, account: &Account, _webhook_url: &str) -> Result<Connected, SendError> {
        let settings = settings_of(account)?;
        let password = account.secrets.get("imap_password").unwrap_or_default();
        let (session, _) = imap::open(&settings.imap, password)
            .await
            .map_err(|e| permanent(e.to_string()))?;
        imap::close(session).await;
        let password = account.secrets.get("smtp_password").unwrap_or_default();
        smtp::check(&settings, password).await?;
        Ok(Connected {
            detail: format!(
                "{} (IMAP {}, SMTP {})",
                settings.from_address, settings.imap.host, settings.smtp.host
            ),
            settings: serde_json::Map::new(),
        })
    }

    /// Mail servers take bursts; a pause keeps a big reply run polite.
    fn pacing(&self) -> Pacing {
        Pacing {
            per_account: std::time::Duration::from_millis(100),
            per_chat: std::time::Duration::ZERO,
        }
    }
}
