//! Identifier kinds and normalisation. Two spellings of one phone or e-mail
//! become one value; values that identify nobody (junk, placeholders,
//! blocked) are refused and never link profiles.

use std::fmt;
use std::str::FromStr;

use phonenumber::country;
use serde::{Deserialize, Serialize};

use super::policy::IdentityPolicy;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum IdentifierKind {
    /// A browser cookie / the tracking `anonymousId`.
    AnonymousId,
    /// The site's login id (`userId`).
    UserId,
    DeviceId,
    Email,
    Phone,
    LoyaltyCard,
    Telegram,
    WhatsApp,
    Viber,
    Vk,
    /// A kind the workspace defines (`custom:<name>`).
    Custom(String),
}

impl IdentifierKind {
    pub const BUILT_IN: [IdentifierKind; 10] = [
        IdentifierKind::AnonymousId,
        IdentifierKind::UserId,
        IdentifierKind::DeviceId,
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::LoyaltyCard,
        IdentifierKind::Telegram,
        IdentifierKind::WhatsApp,
        IdentifierKind::Viber,
        IdentifierKind::Vk,
    ];

    pub fn as_str(&self) -> &str {
        match self {
            IdentifierKind::AnonymousId => "anonymous_id",
            IdentifierKind::UserId => "user_id",
            IdentifierKind::DeviceId => "device_id",
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::LoyaltyCard => "loyalty_card",
            IdentifierKind::Telegram => "telegram",
            IdentifierKind::WhatsApp => "whatsapp",
            IdentifierKind::Viber => "viber",
            IdentifierKind::Vk => "vk",
            IdentifierKind::Custom(name) => name,
        }
    }

    /// Names one person for sure: two different values of a strong kind are
    /// two people, so profiles holding them never merge automatically.
    pub fn is_strong(&self) -> bool {
        matches!(self, IdentifierKind::UserId | IdentifierKind::LoyaltyCard)
    }

    /// Belongs to a device that several people may use.
    pub fn is_shareable(&self) -> bool {
        matches!(self, IdentifierKind::AnonymousId | IdentifierKind::DeviceId)
    }

    /// Which identifier to drop first when a profile's limit would be
    /// exceeded (lower keeps longer).
    pub fn drop_priority(&self) -> u8 {
        match self {
            IdentifierKind::UserId => 0,
            IdentifierKind::LoyaltyCard => 1,
            IdentifierKind::Email => 2,
            IdentifierKind::Phone => 3,
            _ => 4,
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentifierKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim().to_ascii_lowercase().replace('-', "_");
        let aliases = [
            ("anonymousid", IdentifierKind::AnonymousId),
            ("cookie", IdentifierKind::AnonymousId),
            ("userid", IdentifierKind::UserId),
            ("deviceid", IdentifierKind::DeviceId),
            ("e_mail", IdentifierKind::Email),
            ("phone_number", IdentifierKind::Phone),
            ("card", IdentifierKind::LoyaltyCard),
            ("discount_card", IdentifierKind::LoyaltyCard),
            ("loyalty", IdentifierKind::LoyaltyCard),
            ("tg", IdentifierKind::Telegram),
            ("wa", IdentifierKind::WhatsApp),
            ("vkontakte", IdentifierKind::Vk),
        ];
        if let Some(kind) = Self::BUILT_IN.iter().find(|k| k.as_str() == s) {
            return Ok(kind.clone());
        }
        if let Some((_, kind)) = aliases.iter().find(|(alias, _)| *alias == s) {
            return Ok(kind.clone());
        }
        let custom = s.strip_prefix("custom:").unwrap_or(&s);
        let valid = !custom.is_empty()
            && custom.len() <= 64
            && custom
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            Ok(IdentifierKind::Custom(format!("custom:{custom}")))
        } else {
            Err(format!("{s:?} is not an identifier type"))
        }
    }
}

impl From<IdentifierKind> for String {
    fn from(kind: IdentifierKind) -> Self {
        kind.as_str().to_owned()
    }
}

impl TryFrom<String> for IdentifierKind {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// A normalised identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    #[serde(rename = "type")]
    pub kind: IdentifierKind,
    pub value: String,
}

impl Identifier {
    /// A one-way fingerprint: what is kept of an erased identifier so it
    /// never links again, without keeping the identifier itself.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(
            format!("{}:{}", self.kind, self.value).as_bytes(),
        ))
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Why a raw value is not used as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAnIdentifier {
    #[error("a placeholder value that identifies nobody")]
    Junk,
    #[error("blocked by the workspace")]
    Blocked,
    #[error("not a phone number")]
    BadPhone,
    #[error("not an e-mail address")]
    BadEmail,
    #[error("too long")]
    TooLong,
}

const MAX_IDENTIFIER_CHARS: usize = 255;

impl Identifier {
    /// Normalises `raw` as a `kind` identifier under `policy`.
    pub fn parse(
        kind: IdentifierKind,
        raw: &str,
        policy: &IdentityPolicy,
    ) -> Result<Self, NotAnIdentifier> {
        let trimmed = raw.trim();
        if trimmed.chars().count() > MAX_IDENTIFIER_CHARS {
            return Err(NotAnIdentifier::TooLong);
        }
        if is_junk(trimmed, &kind) {
            return Err(NotAnIdentifier::Junk);
        }
        let value = match kind {
            IdentifierKind::Phone | IdentifierKind::WhatsApp => {
                normalise_phone(trimmed, &policy.default_region)?
            }
            IdentifierKind::Email => normalise_email(trimmed, policy.fold_emails)?,
            IdentifierKind::LoyaltyCard => trimmed
                .chars()
                .filter(|c| !matches!(c, ' ' | '-'))
                .collect(),
            IdentifierKind::Telegram | IdentifierKind::Vk | IdentifierKind::Viber => {
                trimmed.to_owned()
            }
            _ => trimmed.to_owned(),
        };
        if is_junk(&value, &kind)
            || (matches!(kind, IdentifierKind::Email) && is_placeholder_email(&value))
        {
            return Err(NotAnIdentifier::Junk);
        }
        let identifier = Identifier { kind, value };
        if policy.is_blocked(&identifier) {
            return Err(NotAnIdentifier::Blocked);
        }
        Ok(identifier)
    }
}

/// Values widely seen in the wild that identify nobody.
fn is_junk(value: &str, kind: &IdentifierKind) -> bool {
    let unquoted = value.trim_matches(|c| c == '"' || c == '\'').trim();
    const WORDS: [&str; 16] = [
        "",
        "anonymous",
        "guest",
        "distinct_id",
        "id",
        "not_authenticated",
        "email",
        "undefined",
        "true",
        "false",
        "[object object]",
        "nan",
        "none",
        "null",
        "nil",
        "unknown",
    ];
    if WORDS.iter().any(|w| w.eq_ignore_ascii_case(unquoted)) {
        return true;
    }
    let separator = |c: char| matches!(c, '+' | ' ' | '-' | '(' | ')');
    // "0", "000-000", "--": zeros and separators are nobody's id, of any kind.
    if unquoted.chars().all(|c| c == '0' || separator(c)) {
        return true;
    }
    // "1111111111", "8888 8888": one repeated digit is a placeholder phone
    // or card, but it may well be a real user id ("111111") or other id.
    let numeric = matches!(
        kind,
        IdentifierKind::Phone | IdentifierKind::WhatsApp | IdentifierKind::LoyaltyCard
    );
    let mut digits = unquoted.chars().filter(|c| !separator(*c));
    numeric
        && digits
            .next()
            .is_some_and(|first| first.is_ascii_digit() && digits.all(|c| c == first))
}

fn is_placeholder_email(email: &str) -> bool {
    const PLACEHOLDERS: [&str; 8] = [
        "test@test.com",
        "test@example.com",
        "example@example.com",
        "email@example.com",
        "noemail@noemail.com",
        "no@email.com",
        "a@a.com",
        "user@example.com",
    ];
    PLACEHOLDERS.contains(&email)
}

/// Phones to E.164: `8 916 123-45-67`, `8(916)1234567`, `+7 916 123 45 67`
/// and `79161234567` are one number in Russia.
pub fn normalise_phone(raw: &str, default_region: &str) -> Result<String, NotAnIdentifier> {
    let region = country::Id::from_str(&default_region.to_ascii_uppercase()).ok();
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    let attempts = [
        Some(raw.to_owned()),
        (!raw.starts_with('+')).then(|| format!("+{digits}")),
    ];
    for attempt in attempts.into_iter().flatten() {
        if let Ok(number) = phonenumber::parse(region, &attempt) {
            if phonenumber::is_valid(&number) {
                return Ok(number.format().mode(phonenumber::Mode::E164).to_string());
            }
        }
    }
    Err(NotAnIdentifier::BadPhone)
}

/// E-mails trimmed and lower-cased; with `fold`, gmail dots and `+tags` go.
pub fn normalise_email(raw: &str, fold: bool) -> Result<String, NotAnIdentifier> {
    let lower = raw.trim().to_lowercase();
    let (local, domain) = lower.split_once('@').ok_or(NotAnIdentifier::BadEmail)?;
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !lower.contains(char::is_whitespace)
        && !domain.contains('@');
    if !valid {
        return Err(NotAnIdentifier::BadEmail);
    }
    if !fold {
        return Ok(lower);
    }
    let local = local.split('+').next().unwrap_or(local);
    let gmail = matches!(domain, "gmail.com" | "googlemail.com");
    let local: String = if gmail {
        local.chars().filter(|c| *c != '.').collect()
    } else {
        local.to_owned()
    };
    let domain = if gmail { "gmail.com" } else { domain };
    Ok(format!("{local}@{domain}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> IdentityPolicy {
        IdentityPolicy::default()
    }

    #[test]
    fn russian_phone_spellings_are_one_number() {
        for raw in [
            "8 916 123-45-67",
            "8(916)1234567",
            "+7 916 123 45 67",
            "79161234567",
            "+79161234567",
        ] {
            assert_eq!(
                normalise_phone(raw, "RU").as_deref(),
                Ok("+79161234567"),
                "{raw}"
            );
        }
        assert_eq!(
            normalise_phone("+44 20 7946 0958", "RU").as_deref(),
            Ok("+442079460958")
        );
        assert_eq!(
            normalise_phone("020 7946 0958", "GB").as_deref(),
            Ok("+442079460958")
        );
        assert!(normalise_phone("12", "RU").is_err());
        assert!(normalise_phone("call me", "RU").is_err());
    }

    #[test]
    fn emails_fold_only_when_the_workspace_says_so() {
        assert_eq!(
            normalise_email("  Olga.S+shop@GMail.com ", false).as_deref(),
            Ok("olga.s+shop@gmail.com")
        );
        assert_eq!(
            normalise_email("Olga.S+shop@GMail.com", true).as_deref(),
            Ok("olgas@gmail.com")
        );
        assert_eq!(
            normalise_email("o.s+x@yandex.ru", true).as_deref(),
            Ok("o.s@yandex.ru")
        );
        assert!(normalise_email("not-an-email", true).is_err());
        assert!(normalise_email("a@b", true).is_err());
    }

    #[test]
    fn junk_never_becomes_an_identifier() {
        let p = policy();
        for raw in [
            "",
            "  ",
            "null",
            "undefined",
            "\"null\"",
            "0",
            "NaN",
            "[object Object]",
            "anonymous",
            "Guest",
        ] {
            assert_eq!(
                Identifier::parse(IdentifierKind::UserId, raw, &p),
                Err(NotAnIdentifier::Junk),
                "{raw:?}"
            );
        }
        assert_eq!(
            Identifier::parse(IdentifierKind::Phone, "0000000000", &p),
            Err(NotAnIdentifier::Junk)
        );
        assert_eq!(
            Identifier::parse(IdentifierKind::Phone, "8 (111) 111-11-11", &p),
            Err(NotAnIdentifier::BadPhone)
        );
        assert_eq!(
            Identifier::parse(IdentifierKind::Email, "TEST@test.com", &p),
            Err(NotAnIdentifier::Junk)
        );
    }

    #[test]
    fn a_repeated_digit_is_junk_only_where_it_is_a_placeholder() {
        let p = policy();
        for (kind, raw) in [
            (IdentifierKind::Phone, "1111111111"),
            (IdentifierKind::Phone, "8 (888) 888-88-88"),
            (IdentifierKind::WhatsApp, "77777777777"),
            (IdentifierKind::LoyaltyCard, "8888 8888"),
            (IdentifierKind::UserId, "000-000"),
            (IdentifierKind::UserId, "--"),
            (
                IdentifierKind::AnonymousId,
                "00000000-0000-0000-0000-000000000000",
            ),
            (IdentifierKind::DeviceId, "0"),
        ] {
            assert_eq!(
                Identifier::parse(kind.clone(), raw, &p),
                Err(NotAnIdentifier::Junk),
                "{kind}:{raw:?}"
            );
        }
        // Sequential database ids reach 111111; that customer is real.
        for (kind, raw) in [
            (IdentifierKind::UserId, "111111"),
            (IdentifierKind::UserId, "7777777"),
            (IdentifierKind::Custom("custom:crm_id".into()), "222"),
        ] {
            assert_eq!(
                Identifier::parse(kind.clone(), raw, &p).map(|i| i.value),
                Ok(raw.to_owned()),
                "{kind}:{raw:?}"
            );
        }
    }

    #[test]
    fn a_workspace_block_list_is_honoured() {
        let mut p = policy();
        p.block_list.push("loyalty_card:0000-STAFF".to_lowercase());
        p.block_list.push("email:kiosk@shop.ru".into());
        assert_eq!(
            Identifier::parse(IdentifierKind::Email, "Kiosk@Shop.ru", &p),
            Err(NotAnIdentifier::Blocked)
        );
        assert!(Identifier::parse(IdentifierKind::Email, "olga@shop.ru", &p).is_ok());
    }

    #[test]
    fn kinds_parse_from_their_names_and_aliases() {
        assert_eq!("phone".parse::<IdentifierKind>(), Ok(IdentifierKind::Phone));
        assert_eq!(
            "discount_card".parse::<IdentifierKind>(),
            Ok(IdentifierKind::LoyaltyCard)
        );
        assert_eq!(
            "crm_id".parse::<IdentifierKind>(),
            Ok(IdentifierKind::Custom("custom:crm_id".into()))
        );
        assert!("bad kind!".parse::<IdentifierKind>().is_err());
    }
}
