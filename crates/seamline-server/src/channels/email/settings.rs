//! An e-mail account's settings: where to read (IMAP) and send (SMTP) and
//! who we are. Flat text fields (`imap_host`, `imap_port`, `imap_tls`,
//! `imap_user`, the same for `smtp_`, `from_address`, `from_name`,
//! `reply_domain`), as the settings form posts them; a port may also be a
//! number. Passwords are sealed secrets (`imap_password`,
//! `smtp_password`), never settings.

use seamline_core::FieldError;
use serde_json::Value;

/// How a connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain, then upgraded by STARTTLS (IMAP 143, submission 587).
    Starttls,
    /// No TLS: only for a server on the same machine.
    None,
}

#[derive(Debug, Clone)]
pub struct Server {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub user: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub imap: Server,
    pub smtp: Server,
    pub from_address: String,
    pub from_name: String,
    /// The domain of the `reply+<token>@…` addresses.
    pub reply_domain: String,
}

fn bad(field: &str, message: &str) -> FieldError {
    FieldError::new("invalid", format!("settings.{field}"), message.to_owned())
}

fn text<'a>(settings: &'a Value, field: &str) -> &'a str {
    settings
        .get(field)
        .and_then(Value::as_str)
        .map_or("", str::trim)
}

fn server(settings: &Value, prefix: &str) -> Result<Server, FieldError> {
    let name = |f: &str| format!("{prefix}_{f}");
    let host = text(settings, &name("host"));
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad(&name("host"), "the server's host name"));
    }
    let port = match settings.get(name("port")) {
        Some(Value::Number(n)) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    let port = port
        .filter(|p| *p > 0)
        .ok_or_else(|| bad(&name("port"), "a port from 1 to 65535"))?;
    let tls = match text(settings, &name("tls")) {
        "" | "tls" => TlsMode::Tls,
        "starttls" => TlsMode::Starttls,
        "none" => TlsMode::None,
        _ => return Err(bad(&name("tls"), "tls, starttls or none")),
    };
    Ok(Server {
        host: host.to_owned(),
        port,
        tls,
        user: text(settings, &name("user")).to_owned(),
    })
}

impl Settings {
    pub fn parse(settings: &Value) -> Result<Self, FieldError> {
        let parsed = Settings {
            imap: server(settings, "imap")?,
            smtp: server(settings, "smtp")?,
            from_address: text(settings, "from_address").to_owned(),
            from_name: text(settings, "from_name").to_owned(),
            reply_domain: text(settings, "reply_domain").to_owned(),
        };
        if !is_address(&parsed.from_address) {
            return Err(bad(
                "from_address",
                "an e-mail address such as support@shop.example",
            ));
        }
        let domain = &parsed.reply_domain;
        if !domain.contains('.') || domain.contains(['@', ' ']) {
            return Err(bad("reply_domain", "a domain such as reply.shop.example"));
        }
        Ok(parsed)
    }
}

fn is_address(text: &str) -> bool {
    text.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !text.contains(' ')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form() -> Value {
        json!({"imap_host": "imap.shop.example", "imap_port": "993", "imap_user": "support",
               "smtp_host": "smtp.shop.example", "smtp_port": 587, "smtp_tls": "starttls",
               "from_address": "support@shop.example", "reply_domain": "reply.shop.example"})
    }

    #[test]
    fn the_form_parses_and_each_mistake_names_its_field() {
        let parsed = Settings::parse(&form()).expect("valid");
        assert_eq!((parsed.imap.port, parsed.imap.tls), (993, TlsMode::Tls));
        assert_eq!(
            (parsed.smtp.port, parsed.smtp.tls),
            (587, TlsMode::Starttls)
        );
        for (field, value) in [
            ("imap_host", json!("")),
            ("smtp_port", json!("99999")),
            ("imap_tls", json!("ssl3")),
            ("from_address", json!("support")),
            ("reply_domain", json!("x@y")),
        ] {
            let mut settings = form();
            settings[field] = value;
            let error = Settings::parse(&settings).expect_err(field);
            assert_eq!(error.field, format!("settings.{field}"));
        }
    }
}
