//! The channels a message travels on. One conversation mixes them: the
//! channel belongs to each message, never to the conversation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Channel {
    /// The site widget's chat.
    WebChat,
    WhatsApp,
    Telegram,
    Viber,
    Vk,
    Email,
    Sms,
    Phone,
    /// Inside the team only: notes and system events. Never reaches the customer.
    Internal,
}

impl Channel {
    pub const ALL: [Channel; 9] = [
        Channel::WebChat,
        Channel::WhatsApp,
        Channel::Telegram,
        Channel::Viber,
        Channel::Vk,
        Channel::Email,
        Channel::Sms,
        Channel::Phone,
        Channel::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::WebChat => "web_chat",
            Channel::WhatsApp => "whatsapp",
            Channel::Telegram => "telegram",
            Channel::Viber => "viber",
            Channel::Vk => "vk",
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Phone => "phone",
            Channel::Internal => "internal",
        }
    }

    /// A channel the customer writes on and can be answered on.
    pub fn is_customer_facing(self) -> bool {
        self != Channel::Internal
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Channel> for &'static str {
    fn from(channel: Channel) -> Self {
        channel.as_str()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let key = s.trim().to_ascii_lowercase().replace('-', "_");
        let alias = match key.as_str() {
            "note" => Some(Channel::Internal),
            "webchat" | "widget" => Some(Channel::WebChat),
            "whats_app" => Some(Channel::WhatsApp),
            "vkontakte" => Some(Channel::Vk),
            "e_mail" => Some(Channel::Email),
            _ => None,
        };
        alias
            .or_else(|| Channel::ALL.into_iter().find(|c| c.as_str() == key))
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

impl TryFrom<String> for Channel {
    type Error = UnknownChannel;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_through_text_and_json() {
        for channel in Channel::ALL {
            assert_eq!(channel.as_str().parse::<Channel>(), Ok(channel));
            let json = serde_json::to_string(&channel).unwrap();
            assert_eq!(json, format!("\"{}\"", channel.as_str()));
            assert_eq!(serde_json::from_str::<Channel>(&json).unwrap(), channel);
        }
    }

    #[test]
    fn aliases_and_spellings_are_accepted() {
        assert_eq!("note".parse(), Ok(Channel::Internal));
        assert_eq!(" WhatsApp ".parse(), Ok(Channel::WhatsApp));
        assert_eq!("web-chat".parse(), Ok(Channel::WebChat));
        assert_eq!("VKontakte".parse(), Ok(Channel::Vk));
        assert_eq!("fax".parse::<Channel>(), Err(UnknownChannel("fax".into())));
        assert!(serde_json::from_str::<Channel>("\"fax\"").is_err());
    }

    #[test]
    fn only_internal_is_hidden_from_the_customer() {
        let hidden: Vec<_> = Channel::ALL
            .into_iter()
            .filter(|c| !c.is_customer_facing())
            .collect();
        assert_eq!(hidden, [Channel::Internal]);
    }
}
