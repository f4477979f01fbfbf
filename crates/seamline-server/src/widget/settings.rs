//! The `widget` workspace setting: what the site's launcher shows, and the
//! two keys only the server holds.
//!
//! One JSON document: the public part ([`WidgetSettings`]) plus
//! `identity_secret` (signs the site's user ids; shown to owners and admins
//! only, never logged) and `tracking_key` (derives visitors' tracking codes;
//! never shown). A `PUT` replaces the public part and keeps both keys.

use chrono::Utc;
use seamline_core::FieldError;
use seamline_store::{Store, StoreResult};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::new_token;

/// The setting's name in the store.
pub const SETTING: &str = "widget";
const IDENTITY_SECRET: &str = "identity_secret";
const TRACKING_KEY: &str = "tracking_key";

const MAX_TITLE_CHARS: usize = 60;
const MAX_GREETING_CHARS: usize = 200;

/// What the workspace chose to show on its site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WidgetSettings {
    /// The launcher's and the panel's heading.
    pub title: String,
    /// The line under the heading.
    pub greeting: String,
    /// `#rrggbb`.
    pub accent_color: String,
    pub buttons: Buttons,
    pub prechat: PreChat,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        Self {
            title: "Chat with us".into(),
            greeting: "We usually answer in a few minutes".into(),
            accent_color: "#3b5bdb".into(),
            buttons: Buttons::default(),
            prechat: PreChat::default(),
        }
    }
}

/// The launcher's menu: the chat, a callback request, and the workspace's
/// messenger accounts (none until set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Buttons {
    pub chat: bool,
    pub callback: bool,
    /// The business number, digits with country code (`79161234567`).
    pub whatsapp: Option<String>,
    /// The bot's username, without `@`.
    pub telegram: Option<String>,
    /// The bot's chat URI.
    pub viber: Option<String>,
    /// The community's screen name or `clubNNN`.
    pub vk: Option<String>,
}

impl Default for Buttons {
    fn default() -> Self {
        Self {
            chat: true,
            callback: true,
            whatsapp: None,
            telegram: None,
            viber: None,
            vk: None,
        }
    }
}

/// Whether the pre-chat form asks for a field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    #[default]
    Off,
    Optional,
    Required,
}

/// The form a visitor fills in before their first message (all off: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreChat {
    pub name: Ask,
    pub email: Ask,
    pub phone: Ask,
}

const TOP_KEYS: [&str; 5] = ["title", "greeting", "accent_color", "buttons", "prechat"];
const BUTTON_KEYS: [&str; 6] = ["chat", "callback", "whatsapp", "telegram", "viber", "vk"];
const PRECHAT_KEYS: [&str; 3] = ["name", "email", "phone"];

impl WidgetSettings {
    /// Parses a `PUT` body: keys left out take their defaults, an unknown
    /// or malformed one is refused by its path (`buttons.telegram`).
    pub fn parse(body: &Value) -> Result<Self, FieldError> {
        let Some(top) = body.as_object() else {
            return Err(FieldError::new("invalid_value", "", "a JSON object"));
        };
        known_keys(top, &TOP_KEYS, "")?;
        for (key, allowed) in [
            ("buttons", &BUTTON_KEYS[..]),
            ("prechat", &PRECHAT_KEYS[..]),
        ] {
            match top.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::Object(inner)) => known_keys(inner, allowed, key)?,
                Some(_) => return Err(FieldError::new("invalid_value", key, "a JSON object")),
            }
        }
        let mut settings = Self::default();
        if let Some(value) = top.get("title") {
            settings.title = text(value, "title")?;
        }
        if let Some(value) = top.get("greeting") {
            settings.greeting = text(value, "greeting")?;
        }
        if let Some(value) = top.get("accent_color") {
            settings.accent_color = text(value, "accent_color")?;
        }
        for key in BUTTON_KEYS {
            let field = format!("buttons.{key}");
            if let Some(value) = body["buttons"].get(key) {
                settings.buttons.set(key, value, &field)?;
            }
        }
        for key in PRECHAT_KEYS {
            let field = format!("prechat.{key}");
            if let Some(value) = body["prechat"].get(key) {
                let ask = serde_json::from_value(value.clone()).map_err(|_| {
                    FieldError::new("invalid_value", &field, "off, optional or required")
                })?;
                settings.prechat.set(key, ask);
            }
        }
        settings.validated()
    }

    /// The same settings checked and written canonically (trimmed, `@`
    /// and number punctuation dropped); the error names the field.
    pub fn validated(mut self) -> Result<Self, FieldError> {
        self.title = bounded(&self.title, "title", 1, MAX_TITLE_CHARS)?;
        self.greeting = bounded(&self.greeting, "greeting", 0, MAX_GREETING_CHARS)?;
        self.accent_color = colour(&self.accent_color)?;
        self.buttons = self.buttons.validated()?;
        Ok(self)
    }
}

impl Buttons {
    fn set(&mut self, key: &str, value: &Value, field: &str) -> Result<(), FieldError> {
        let flag = || {
            value
                .as_bool()
                .ok_or_else(|| FieldError::new("invalid_value", field, "true or false"))
        };
        let account = || match value {
            Value::Null => Ok(None),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(FieldError::new(
                "invalid_value",
                field,
                "text, or null for none",
            )),
        };
        match key {
            "chat" => self.chat = flag()?,
            "callback" => self.callback = flag()?,
            "whatsapp" => self.whatsapp = account()?,
            "telegram" => self.telegram = account()?,
            "viber" => self.viber = account()?,
            _ => self.vk = account()?,
        }
        Ok(())
    }

    fn validated(mut self) -> Result<Self, FieldError> {
        self.whatsapp = self.whatsapp.as_deref().map(whatsapp_number).transpose()?;
        self.telegram = self.telegram.as_deref().map(telegram_bot).transpose()?;
        self.viber = self
            .viber
            .as_deref()
            .map(|uri| handle(uri, "buttons.viber", "a Viber chat URI such as myshop"))
            .transpose()?;
        self.vk = self
            .vk
            .as_deref()
            .map(|name| handle(name, "buttons.vk", "a community screen name or clubNNN"))
            .transpose()?;
        Ok(self)
    }

    /// The messenger accounts set, by channel name.
    pub fn messengers(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("whatsapp", &self.whatsapp),
            ("telegram", &self.telegram),
            ("viber", &self.viber),
            ("vk", &self.vk),
        ]
        .into_iter()
        .filter_map(|(name, account)| account.as_deref().map(|a| (name, a)))
    }
}

impl PreChat {
    fn set(&mut self, key: &str, ask: Ask) {
        match key {
            "name" => self.name = ask,
            "email" => self.email = ask,
            _ => self.phone = ask,
        }
    }
}

fn known_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    parent: &str,
) -> Result<(), FieldError> {
    match object.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let field = if parent.is_empty() {
                unknown.clone()
            } else {
                format!("{parent}.{unknown}")
            };
            let hint = if unknown == IDENTITY_SECRET {
                "the secret is generated by the server: rotate it instead"
            } else {
                "not a widget setting"
            };
            Err(FieldError::new("unknown_setting", field, hint))
        }
    }
}

fn text(value: &Value, field: &str) -> Result<String, FieldError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| FieldError::new("invalid_value", field, "text"))
}

fn bounded(raw: &str, field: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let value = raw.trim();
    let chars = value.chars().count();
    if chars < min || chars > max || value.chars().any(char::is_control) {
        return Err(FieldError::new(
            "invalid_value",
            field,
            format!("{min} to {max} characters on one line"),
        ));
    }
    Ok(value.to_owned())
}

fn colour(raw: &str) -> Result<String, FieldError> {
    let value = raw.trim().to_ascii_lowercase();
    let hex = value.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "invalid_value",
            "accent_color",
            "a colour written #rrggbb, such as #3b5bdb",
        ))
    }
}

/// `+7 916 123-45-67` → `79161234567`, as `wa.me` wants it.
fn whatsapp_number(raw: &str) -> Result<String, FieldError> {
    let punctuation = |c: char| c == '+' || c == ' ' || c == '-' || c == '(' || c == ')';
    let digits: String = raw.trim().chars().filter(|c| !punctuation(*c)).collect();
    let valid = (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if valid {
        Ok(digits)
    } else {
        Err(FieldError::new(
            "invalid_value",
            "buttons.whatsapp",
            "the full international number, such as +7 916 123-45-67",
        ))
    }
}

/// Telegram's rule: 5 to 32 of `A-Z a-z 0-9 _`, ending in `bot`.
fn telegram_bot(raw: &str) -> Result<String, FieldError> {
    let name = raw.trim().trim_start_matches('@');
    let valid = (5..=32).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.to_ascii_lowercase().ends_with("bot");
    if valid {
        Ok(name.to_owned())
    } else {
        Err(FieldError::new(
            "invalid_value",
            "buttons.telegram",
            "the bot's username, such as myshop_bot",
        ))
    }
}

/// A name that goes into a link as it is: letters, digits, `_ . -`.
fn handle(raw: &str, field: &str, hint: &str) -> Result<String, FieldError> {
    let name = raw.trim().trim_start_matches('@');
    let valid = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if valid {
        Ok(name.to_owned())
    } else {
        Err(FieldError::new("invalid_value", field, hint))
    }
}

/// The whole stored document; `{}` before anything was saved.
async fn document(store: &dyn Store, workspace: seamline_core::WorkspaceId) -> StoreResult<Value> {
    Ok(store
        .setting(workspace, SETTING)
        .await?
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::Object(Map::new())))
}

/// The workspace's settings; a stored value that no longer parses falls
/// back to the defaults field by field (serde's `default`).
pub async fn load(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
) -> StoreResult<WidgetSettings> {
    let stored = document(store, workspace).await?;
    Ok(serde_json::from_value(stored).unwrap_or_default())
}

/// Replaces the public settings, keeping the server's keys.
pub async fn save(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
    settings: &WidgetSettings,
) -> StoreResult<()> {
    let current = document(store, workspace).await?;
    let mut next = serde_json::to_value(settings).unwrap_or_default();
    for key in [IDENTITY_SECRET, TRACKING_KEY] {
        if let Some(kept) = current.get(key) {
            next[key] = kept.clone();
        }
    }
    store
        .put_setting(workspace, SETTING, &next, Utc::now())
        .await
}

/// The secret sites sign their user ids with; `None` until generated.
pub async fn identity_secret(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
) -> StoreResult<Option<String>> {
    let stored = document(store, workspace).await?;
    Ok(stored[IDENTITY_SECRET]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned))
}

/// Generates a new identity secret (the old one stops working at once).
pub async fn rotate_identity_secret(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
) -> StoreResult<String> {
    let secret = new_token();
    put_key(store, workspace, IDENTITY_SECRET, &secret).await?;
    Ok(secret)
}

/// The key visitors' tracking codes are derived with, made on first use.
pub async fn tracking_key(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
) -> StoreResult<String> {
    let stored = document(store, workspace).await?;
    if let Some(key) = stored[TRACKING_KEY].as_str().filter(|k| !k.is_empty()) {
        return Ok(key.to_owned());
    }
    let key = new_token();
    put_key(store, workspace, TRACKING_KEY, &key).await?;
    // Two first uses at once: the last write wins, and both read it back.
    let stored = document(store, workspace).await?;
    Ok(stored[TRACKING_KEY].as_str().unwrap_or(&key).to_owned())
}

async fn put_key(
    store: &dyn Store,
    workspace: seamline_core::WorkspaceId,
    name: &str,
    value: &str,
) -> StoreResult<()> {
    let mut stored = document(store, workspace).await?;
    stored[name] = Value::String(value.to_owned());
    store
        .put_setting(workspace, SETTING, &stored, Utc::now())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refused(body: Value) -> String {
        WidgetSettings::parse(&body).expect_err("refused").field
    }

    #[test]
    fn an_empty_body_is_the_defaults_and_accounts_are_written_canonically() {
        assert_eq!(
            WidgetSettings::parse(&json!({})),
            Ok(WidgetSettings::default())
        );
        let parsed = WidgetSettings::parse(&json!({"buttons": {
            "whatsapp": "+7 (916) 123-45-67", "telegram": "@MyShop_bot", "vk": "club123", "viber": ""
        }}))
        .expect("valid");
        assert_eq!(parsed.buttons.whatsapp.as_deref(), Some("79161234567"));
        assert_eq!(parsed.buttons.telegram.as_deref(), Some("MyShop_bot"));
        assert_eq!(parsed.buttons.viber, None);
        assert_eq!(parsed.buttons.messengers().count(), 3);
    }

    #[test]
    fn each_bad_or_unknown_setting_is_named() {
        assert_eq!(refused(json!({"colour": "#fff"})), "colour");
        assert_eq!(
            refused(json!({"identity_secret": "mine"})),
            "identity_secret"
        );
        assert_eq!(refused(json!({"buttons": {"skype": "x"}})), "buttons.skype");
        assert_eq!(refused(json!({"title": ""})), "title");
        assert_eq!(refused(json!({"greeting": "a\nb"})), "greeting");
        assert_eq!(refused(json!({"accent_color": "blue"})), "accent_color");
        assert_eq!(refused(json!({"buttons": {"chat": "yes"}})), "buttons.chat");
        assert_eq!(
            refused(json!({"buttons": {"whatsapp": "12"}})),
            "buttons.whatsapp"
        );
        assert_eq!(
            refused(json!({"buttons": {"telegram": "myshop"}})),
            "buttons.telegram"
        );
        assert_eq!(refused(json!({"buttons": {"vk": "a b"}})), "buttons.vk");
        assert_eq!(
            refused(json!({"prechat": {"email": "maybe"}})),
            "prechat.email"
        );
        assert_eq!(refused(json!({"prechat": {"age": "off"}})), "prechat.age");
    }
}
