//! Sending one mail through the account's SMTP server (lettre, rustls).
//! 4xx answers and connection trouble are transient; 5xx are permanent.

use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{header, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::{Settings, TlsMode};
use crate::channels::SendError;

/// A mail to send, with its thread.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    pub to: &'a str,
    pub body: &'a str,
    /// Our `Message-ID`, without angle brackets.
    pub id: &'a str,
    /// The thread's ids, oldest first; the last is the parent.
    pub thread: &'a [String],
    pub reply_to: Option<&'a str>,
    /// A bot's or the system's message: `Auto-Submitted: auto-replied`.
    pub automatic: bool,
}

/// RFC 3834 `Auto-Submitted`.
#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".to_owned())
    }
}

fn permanent(reason: impl Into<String>) -> SendError {
    SendError::Permanent {
        reason: reason.into(),
    }
}

fn bracketed(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("<{id}>"))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn compose(settings: &Settings, mail: &Outgoing<'_>) -> Result<Message, SendError> {
    let from = Mailbox::new(
        Some(settings.from_name.clone()).filter(|n| !n.is_empty()),
        settings
            .from_address
            .parse()
            .map_err(|_| permanent("the account's from address is not valid"))?,
    );
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| permanent(format!("{} is not an e-mail address", mail.to)))?;
    let subject = match settings.from_name.as_str() {
        "" => "Re: your message".to_owned(),
        name => format!("Re: your message to {name}"),
    };
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<{}>", mail.id)));
    if let Some(parent) = mail.thread.last() {
        builder = builder
            .in_reply_to(format!("<{parent}>"))
            .references(bracketed(mail.thread));
    }
    if let Some(reply_to) = mail.reply_to {
        let reply_to = reply_to
            .parse()
            .map_err(|_| permanent("bad reply address"))?;
        builder = builder.reply_to(reply_to);
    }
    if mail.automatic {
        builder = builder.header(AutoSubmitted);
    }
    builder
        .header(header::ContentType::TEXT_PLAIN)
        .body(mail.body.to_owned())
        .map_err(|e| permanent(format!("the mail could not be built: {e}")))
}

fn transport(
    settings: &Settings,
    password: &str,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
    let server = &settings.smtp;
    let params = || {
        TlsParameters::new(server.host.clone())
            .map_err(|e| permanent(format!("TLS setup for {}: {e}", server.host)))
    };
    let tls = match server.tls {
        TlsMode::Tls => Tls::Wrapper(params()?),
        TlsMode::Starttls => Tls::Required(params()?),
        TlsMode::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(server.host.clone())
        .port(server.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(30)));
    if !server.user.is_empty() {
        builder = builder.credentials(Credentials::new(server.user.clone(), password.to_owned()));
    }
    Ok(builder.build())
}

/// Sends `message`; an SMTP 5xx is permanent, anything else transient.
pub async fn send(settings: &Settings, password: &str, message: Message) -> Result<(), SendError> {
    let sent = transport(settings, password)?.send(message).await;
    sent.map(drop).map_err(classify)
}

/// Logs in to the SMTP server without sending.
pub async fn check(settings: &Settings, password: &str) -> Result<(), SendError> {
    match transport(settings, password)?.test_connection().await {
        Ok(true) => Ok(()),
        Ok(false) => Err(transient("the SMTP server did not answer")),
        Err(error) => Err(classify(error)),
    }
}

fn transient(reason: impl Into<String>) -> SendError {
    SendError::Transient {
        retry_after: None,
        whole_account: false,
        reason: reason.into(),
    }
}

fn classify(error: lettre::transport::smtp::Error) -> SendError {
    let reason = format!("SMTP: {error}");
    if error.is_permanent() {
        permanent(reason)
    } else {
        transient(reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn settings() -> Settings {
        Settings::parse(&json!({
            "imap_host": "imap.example", "imap_port": 993,
            "smtp_host": "smtp.example", "smtp_port": 587, "smtp_tls": "starttls",
            "from_address": "support@shop.example", "from_name": "Shop",
            "reply_domain": "reply.shop.example",
        }))
        .expect("settings")
    }

    #[test]
    fn a_reply_carries_its_thread_and_a_bot_reply_says_it_is_automatic() {
        let thread = [
            "a@client.example".to_owned(),
            "b@reply.shop.example".to_owned(),
        ];
        let mail = Outgoing {
            to: "anna@client.example",
            body: "Hello",
            id: "c@reply.shop.example",
            thread: &thread,
            reply_to: Some("reply+abc@reply.shop.example"),
            automatic: true,
        };
        let raw = String::from_utf8(compose(&settings(), &mail).expect("built").formatted())
            .expect("text");
        assert!(raw.contains("Message-ID: <c@reply.shop.example>"), "{raw}");
        assert!(raw.contains("In-Reply-To: <b@reply.shop.example>"), "{raw}");
        assert!(
            raw.contains("References: <a@client.example> <b@reply.shop.example>"),
            "{raw}"
        );
        assert!(
            raw.contains("Reply-To: reply+abc@reply.shop.example"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-replied"), "{raw}");
        let human = Outgoing {
            automatic: false,
            thread: &[],
            ..mail
        };
        let raw = String::from_utf8(compose(&settings(), &human).expect("built").formatted())
            .expect("text");
        assert!(
            !raw.contains("Auto-Submitted") && !raw.contains("In-Reply-To"),
            "{raw}"
        );
    }

    #[test]
    fn a_recipient_that_is_no_address_is_permanent() {
        let bad = compose(
            &settings(),
            &Outgoing {
                to: "not an address",
                body: "",
                id: "x@y",
                thread: &[],
                reply_to: None,
                automatic: false,
            },
        );
        assert!(matches!(bad, Err(SendError::Permanent { .. })));
    }
}
