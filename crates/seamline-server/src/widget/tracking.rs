//! Per-visitor tracking codes in messenger links, so that a chat started in
//! WhatsApp, Telegram, Viber or VK joins the visitor's site session (and
//! with it their ad source).
//!
//! A visitor's code is 8 base32 characters of HMAC-SHA256 over their
//! anonymous id under the workspace's tracking key: the same visitor always
//! gets the same code, and nobody can work out another visitor's. The code
//! is recorded as the visitor's identifier (`custom:tracking_code`, through
//! the tracking pipeline), and each link carries it the way its messenger
//! passes a start parameter on (`shared/reference/channels.md`):
//!
//! | messenger | link | arrives as |
//! |---|---|---|
//! | Telegram | `t.me/<bot>?start=CODE` | the text `/start CODE` |
//! | WhatsApp | `wa.me/<number>?text=… [CODE]` | in the first message's text, if kept |
//! | Viber | `viber://pa?chatURI=<uri>&context=CODE` | `context` of `conversation_started` |
//! | VK | `vk.me/<name>?ref=CODE&ref_source=widget` | `ref` of the first message |
//!
//! A connector finds the code ([`find_code`] for texts), asks [`vouched`]
//! whether it may tie this sender to the visitor, and passes it on in
//! [`Customer::tracking_code`](crate::inbox::Customer).

use chrono::Utc;
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::inbox::widget_identity::user_hash;
use seamline_core::tracking::{parse_message, Envelope};
use seamline_core::{EventId, WorkspaceId};
use seamline_store::{Backend, NewEvent, ProfileQuery, StoreResult};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::settings::Buttons;

/// The identifier type codes are recorded under (`context.externalIds`).
pub const CODE_TYPE: &str = "tracking_code";
const CODE_CHARS: usize = 8;
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The visitor's code: 8 characters of `A-Z 2-7`.
pub fn code_for(tracking_key: &str, anonymous_id: &str) -> String {
    let digest = user_hash(tracking_key.as_bytes(), anonymous_id)
        .ok()
        .and_then(|h| hex::decode(h).ok())
        .unwrap_or_default();
    // 5 bytes are 40 bits: 8 characters of 5 bits.
    let bits = digest
        .iter()
        .take(5)
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..CODE_CHARS)
        .map(|i| BASE32[((bits >> (35 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn is_code(text: &str) -> bool {
    text.len() == CODE_CHARS && text.bytes().all(|b| BASE32.contains(&b))
}

/// The code in a messenger message's text: a Telegram `/start CODE`, or
/// `[CODE]` anywhere (WhatsApp's prefilled text, perhaps edited around).
pub fn find_code(text: &str) -> Option<String> {
    let text = text.trim();
    if let Some(payload) = text.strip_prefix("/start ") {
        return is_code(payload.trim()).then(|| payload.trim().to_owned());
    }
    text.match_indices('[').find_map(|(at, _)| {
        let rest = &text[at + 1..];
        let candidate = rest.get(..CODE_CHARS)?;
        (is_code(candidate) && rest[CODE_CHARS..].starts_with(']')).then(|| candidate.to_owned())
    })
}

/// A messenger button of the launcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub channel: &'static str,
    pub label: &'static str,
    pub url: String,
}

/// Percent-encoded, spaces as `%20` (a `+` would reach WhatsApp as is).
fn encoded(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The workspace's messenger links, each carrying `code`.
pub fn links(buttons: &Buttons, code: &str) -> Vec<Link> {
    buttons
        .messengers()
        .map(|(channel, account)| {
            let (label, url) = match channel {
                "whatsapp" => (
                    "WhatsApp",
                    format!(
                        "https://wa.me/{account}?text={}",
                        encoded(&format!("Hello! [{code}]"))
                    ),
                ),
                "telegram" => ("Telegram", format!("https://t.me/{account}?start={code}")),
                "viber" => (
                    "Viber",
                    format!("viber://pa?chatURI={}&context={code}", encoded(account)),
                ),
                _ => (
                    "VK",
                    format!("https://vk.me/{account}?ref={code}&ref_source=widget"),
                ),
            };
            Link {
                channel,
                label,
                url,
            }
        })
        .collect()
}

/// The event that records `code` as the visitor's identifier. Its message
/// id is the code's, so recording it again on every page stores nothing.
pub fn registration(
    workspace: WorkspaceId,
    anonymous_id: &str,
    code: &str,
) -> Result<NewEvent, seamline_core::FieldError> {
    let message = json!({
        "type": "identify",
        "anonymousId": anonymous_id,
        "messageId": format!("tracking-code-{code}"),
        "context": {"externalIds": [{"type": CODE_TYPE, "id": code}]},
        "timestamp": Utc::now().to_rfc3339(),
    });
    let envelope = Envelope {
        received_at: Utc::now(),
        request_ip: None,
    };
    let mut message_id = || Uuid::now_v7().to_string();
    let event = parse_message(&message.to_string(), &envelope, &mut message_id)?;
    Ok(NewEvent {
        id: EventId(Uuid::now_v7()),
        workspace_id: workspace,
        event,
    })
}

fn code_identifier(code: &str) -> Identifier {
    Identifier {
        kind: IdentifierKind::Custom(format!("custom:{CODE_TYPE}")),
        value: code.to_owned(),
    }
}

/// Whether `code` may tie `sender` (a messenger account, `("telegram",
/// "123")`) to the visitor it was made for: it must be a visitor's code, and
/// that visitor must not already be tied to another account of the same
/// messenger. A link forwarded to a friend so never glues two people; the
/// friend's chat simply starts a profile of its own.
pub async fn vouched(
    store: &dyn Backend,
    workspace: WorkspaceId,
    code: &str,
    sender: (&str, &str),
) -> StoreResult<bool> {
    if !is_code(code) {
        return Ok(false);
    }
    let query = ProfileQuery {
        identifiers: vec![code_identifier(code)],
        limit: 1,
        ..ProfileQuery::default()
    };
    let Some(visitor) = store
        .list_profiles(workspace, &query)
        .await?
        .first()
        .map(|p| p.id)
    else {
        return Ok(false);
    };
    let Ok(kind) = sender.0.parse::<IdentifierKind>() else {
        return Ok(false);
    };
    let held = store.profile_identifiers(workspace, visitor).await?;
    Ok(!held
        .iter()
        .any(|h| h.identifier.kind == kind && h.identifier.value != sender.1.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_stable_per_visitor_and_differs_between_visitors() {
        let code = code_for("key", "visitor-1");
        assert!(is_code(&code), "{code}");
        assert_eq!(code, code_for("key", "visitor-1"));
        assert_ne!(code, code_for("key", "visitor-2"));
        assert_ne!(code, code_for("other key", "visitor-1"));
    }

    #[test]
    fn codes_are_found_in_a_start_command_or_in_brackets() {
        assert_eq!(find_code("/start ABCD2345"), Some("ABCD2345".into()));
        assert_eq!(
            find_code("Hello! [ABCD2345] where is my order?"),
            Some("ABCD2345".into())
        );
        assert_eq!(find_code("[abcd2345]"), None, "codes are upper case");
        assert_eq!(find_code("[ABCD23456]"), None);
        assert_eq!(find_code("/start ABCD"), None);
        assert_eq!(
            find_code("Привет [ещё] [QWERTY23]"),
            Some("QWERTY23".into())
        );
        assert_eq!(find_code("no code ["), None);
    }

    #[test]
    fn each_link_carries_the_code_as_its_messenger_expects() {
        let buttons = Buttons {
            whatsapp: Some("79161234567".into()),
            telegram: Some("shop_bot".into()),
            viber: Some("shop".into()),
            vk: Some("club42".into()),
            ..Buttons::default()
        };
        let urls: Vec<String> = links(&buttons, "ABCD2345")
            .into_iter()
            .map(|l| l.url)
            .collect();
        assert_eq!(
            urls,
            [
                "https://wa.me/79161234567?text=Hello%21%20%5BABCD2345%5D",
                "https://t.me/shop_bot?start=ABCD2345",
                "viber://pa?chatURI=shop&context=ABCD2345",
                "https://vk.me/club42?ref=ABCD2345&ref_source=widget",
            ]
        );
        assert_eq!(find_code("Hello! [ABCD2345]"), Some("ABCD2345".into()));
    }
}
