//! Time-ordered identifiers (UUID v7). The caller supplies the UUID so this
//! crate stays free of clocks and randomness; `Uuid::now_v7()` is the usual source.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// A tenant. Every stored row belongs to exactly one workspace.
    WorkspaceId
);
id_type!(
    /// A person who works in a workspace (operator, analyst, ...).
    MemberId
);
id_type!(
    /// A write key or a secret API key.
    KeyId
);
id_type!(
    /// A stored event (distinct from the client's `messageId`).
    EventId
);
id_type!(
    /// A customer profile: one person across every channel.
    ProfileId
);
id_type!(
    /// One continuous conversation with a customer, across every channel.
    ConversationId
);
id_type!(
    /// One entry in a conversation: a message, a note or a system event.
    /// (Not the tracking API's client-chosen `messageId`.)
    ConversationMessageId
);
id_type!(
    /// A group of operators that conversations are routed to.
    TeamId
);
id_type!(
    /// An outbound webhook endpoint of a workspace.
    WebhookId
);
id_type!(
    /// One event queued for one webhook endpoint (with its attempts).
    WebhookDeliveryId
);
id_type!(
    /// A connected channel account of a workspace (a Telegram bot, ...).
    ChannelAccountId
);
