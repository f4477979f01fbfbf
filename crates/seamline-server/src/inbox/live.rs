//! Live inbox updates: what happened in a conversation, pushed over the bus
//! to every instance and from there to the screens connected to it.
//!
//! Each instance holds one bus subscription (`inbox.>`) and fans frames
//! out in memory: a visitor's widget listens to its own conversation, an
//! operator's inbox to the workspace. Thousands of sockets cost one bus
//! consumer per instance, not one each.
//!
//! A frame is JSON with a `type`:
//! - `message`: `{"message": <stored message>}`, a new message of any kind;
//! - `conversation`: `{"conversation": <stored conversation>}`, a new state
//!   (status, assignee, team, priority, labels, unread);
//! - `typing`: `{"party": "visitor"|"operator", "member_id", "name"}`;
//! - `read`: `{"party": "visitor"|"operator", "at"}`, read receipts.
//!
//! Every frame also names its `workspace_id`, `profile_id` and
//! `conversation_id`. Frames are hints for screens: a missed one is
//! repaired by the next reload, so publishing is best effort and logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use seamline_bus::{Bus, BusError, Message, SubscriptionKind};
use seamline_core::{ConversationId, MemberId, ProfileId, WorkspaceId};
use seamline_store::{StoredConversation, StoredMessage};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Frames a slow screen may fall behind by before it skips some.
const SCREEN_BACKLOG: usize = 256;

/// The subject a customer's conversation is pushed on.
pub fn subject_of(workspace: WorkspaceId, profile: ProfileId) -> String {
    format!("inbox.{workspace}.{profile}")
}

/// Who is typing or has read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Visitor,
    Operator,
}

/// One thing that happened in a conversation.
#[derive(Debug, Clone)]
pub enum LiveEvent<'a> {
    Message(&'a StoredMessage),
    Conversation(&'a StoredConversation),
    Typing {
        at: Whose,
        party: Party,
        member: Option<MemberId>,
        name: Option<&'a str>,
    },
    Read {
        at: Whose,
        party: Party,
        when: DateTime<Utc>,
    },
}

/// The conversation a frame is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Whose {
    pub workspace_id: WorkspaceId,
    pub profile_id: ProfileId,
    pub conversation_id: ConversationId,
}

impl Whose {
    pub fn of(conversation: &StoredConversation) -> Self {
        Self {
            workspace_id: conversation.workspace_id,
            profile_id: conversation.conversation.profile,
            conversation_id: conversation.conversation.id,
        }
    }

    fn of_message(message: &StoredMessage) -> Self {
        Self {
            workspace_id: message.workspace_id,
            profile_id: message.profile_id,
            conversation_id: message.message.conversation,
        }
    }
}

impl LiveEvent<'_> {
    fn whose(&self) -> Whose {
        match self {
            Self::Message(m) => Whose::of_message(m),
            Self::Conversation(c) => Whose::of(c),
            Self::Typing { at, .. } | Self::Read { at, .. } => *at,
        }
    }

    fn frame(&self) -> Value {
        let mut frame = match self {
            Self::Message(message) => json!({"type": "message", "message": message}),
            Self::Conversation(conversation) => {
                json!({"type": "conversation", "conversation": conversation})
            }
            Self::Typing {
                party,
                member,
                name,
                ..
            } => json!({"type": "typing", "party": party, "member_id": member, "name": name}),
            Self::Read { party, when, .. } => json!({"type": "read", "party": party, "at": when}),
        };
        let whose = self.whose();
        frame["workspace_id"] = json!(whose.workspace_id);
        frame["profile_id"] = json!(whose.profile_id);
        frame["conversation_id"] = json!(whose.conversation_id);
        frame
    }
}

/// Publishes `event` to every instance; a failure is logged, not returned
/// (the write it reports is already committed).
pub async fn publish(bus: &dyn Bus, event: LiveEvent<'_>) {
    let whose = event.whose();
    let message = Message {
        subject: subject_of(whose.workspace_id, whose.profile_id),
        id: Uuid::now_v7().to_string(),
        payload: Bytes::from(event.frame().to_string()),
    };
    if let Err(error) = bus.publish(message).await {
        tracing::warn!(%error, "an inbox change was saved but not pushed live");
    }
}

/// A frame as a screen gets it: who it is about, and its JSON.
#[derive(Debug, Clone)]
pub struct Frame {
    pub whose: Whose,
    pub kind: FrameKind,
    pub json: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    Message,
    Conversation,
    Typing,
    Read,
}

impl FrameKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Message => "message",
            Self::Conversation => "conversation",
            Self::Typing => "typing",
            Self::Read => "read",
        }
    }
}

impl Frame {
    fn parse(payload: &[u8]) -> Option<Self> {
        #[derive(Deserialize)]
        struct Head {
            #[serde(rename = "type")]
            kind: FrameKind,
            #[serde(flatten)]
            whose: Whose,
        }
        let text = std::str::from_utf8(payload).ok()?;
        let head: Head = serde_json::from_str(text).ok()?;
        Some(Self {
            whose: head.whose,
            kind: head.kind,
            json: Arc::from(text),
        })
    }

    pub fn value(&self) -> Option<Value> {
        serde_json::from_str(&self.json).ok()
    }
}

type Sender = broadcast::Sender<Arc<Frame>>;
pub type Receiver = broadcast::Receiver<Arc<Frame>>;

#[derive(Default)]
struct Listeners {
    conversations: HashMap<(WorkspaceId, ProfileId), Sender>,
    workspaces: HashMap<WorkspaceId, Sender>,
    /// Conversations listened to after the last sweep of closed ones.
    swept_at: usize,
    /// Inbox screens each operator has open on this instance.
    screens: HashMap<(WorkspaceId, MemberId), usize>,
}

impl Listeners {
    /// Forgets conversations nobody listens to any more, once their number
    /// has doubled since the last sweep (amortised O(1) per socket).
    fn sweep(&mut self) {
        if self.conversations.len() >= 2 * self.swept_at.max(64) {
            self.conversations.retain(|_, s| s.receiver_count() > 0);
            self.swept_at = self.conversations.len();
        }
    }
}

/// This instance's live fan-out. Cheap to clone.
#[derive(Clone, Default)]
pub struct LiveHub {
    listeners: Arc<Mutex<Listeners>>,
}

impl LiveHub {
    /// Subscribes to the bus before returning, so nothing published after
    /// is missed, and fans out until `stop`.
    pub async fn start(bus: Arc<dyn Bus>, stop: CancellationToken) -> Result<Self, BusError> {
        let hub = Self::default();
        let subscription = bus
            .subscribe("inbox.>", SubscriptionKind::Broadcast)
            .await?;
        tokio::spawn(hub.clone().relay(bus, subscription, stop));
        Ok(hub)
    }

    async fn relay(
        self,
        bus: Arc<dyn Bus>,
        mut subscription: seamline_bus::Subscription,
        stop: CancellationToken,
    ) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                delivery = subscription.next() => match delivery {
                    Some(delivery) => {
                        if let Some(frame) = Frame::parse(&delivery.message.payload) {
                            self.dispatch(Arc::new(frame));
                        }
                    }
                    None => {
                        // The bus dropped us: resubscribe, with a pause so a
                        // bus that is down is not hammered.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        match bus.subscribe("inbox.>", SubscriptionKind::Broadcast).await {
                            Ok(again) => subscription = again,
                            Err(error) => tracing::warn!(%error, "live inbox updates paused"),
                        }
                    }
                },
            }
        }
    }

    fn listeners(&self) -> MutexGuard<'_, Listeners> {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn dispatch(&self, frame: Arc<Frame>) {
        let whose = frame.whose;
        let mut listeners = self.listeners();
        let key = (whose.workspace_id, whose.profile_id);
        if let Some(sender) = listeners.conversations.get(&key) {
            if sender.send(frame.clone()).is_err() {
                listeners.conversations.remove(&key);
            }
        }
        if let Some(sender) = listeners.workspaces.get(&whose.workspace_id) {
            if sender.send(frame).is_err() {
                listeners.workspaces.remove(&whose.workspace_id);
            }
        }
    }

    /// Frames of one customer's conversation (the visitor's widget).
    pub fn watch_conversation(&self, workspace: WorkspaceId, profile: ProfileId) -> Receiver {
        let mut listeners = self.listeners();
        listeners.sweep();
        listeners
            .conversations
            .entry((workspace, profile))
            .or_insert_with(|| broadcast::channel(SCREEN_BACKLOG).0)
            .subscribe()
    }

    /// Frames of every conversation in the workspace (operators' screens).
    pub fn watch_workspace(&self, workspace: WorkspaceId) -> Receiver {
        let mut listeners = self.listeners();
        listeners
            .workspaces
            .entry(workspace)
            .or_insert_with(|| broadcast::channel(SCREEN_BACKLOG).0)
            .subscribe()
    }

    /// An operator opened an inbox screen here.
    pub fn screen_opened(&self, workspace: WorkspaceId, member: MemberId) {
        *self
            .listeners()
            .screens
            .entry((workspace, member))
            .or_default() += 1;
    }

    /// An operator closed one; answers how many they still have open here.
    pub fn screen_closed(&self, workspace: WorkspaceId, member: MemberId) -> usize {
        let mut listeners = self.listeners();
        let key = (workspace, member);
        let left = listeners
            .screens
            .get(&key)
            .map_or(0, |n| n.saturating_sub(1));
        if left == 0 {
            listeners.screens.remove(&key);
        } else {
            listeners.screens.insert(key, left);
        }
        left
    }

    pub fn screens(&self, workspace: WorkspaceId, member: MemberId) -> usize {
        self.listeners()
            .screens
            .get(&(workspace, member))
            .copied()
            .unwrap_or(0)
    }

    /// Screens listening on this instance, for `/metrics` and benchmarks.
    pub fn listening(&self) -> usize {
        let listeners = self.listeners();
        listeners
            .conversations
            .values()
            .chain(listeners.workspaces.values())
            .map(Sender::receiver_count)
            .sum()
    }
}

/// The next frame for a screen; `None` when the hub is gone. A screen that
/// fell behind skips what it missed (its next reload shows it).
pub async fn next_frame(receiver: &mut Receiver) -> Option<Arc<Frame>> {
    loop {
        match receiver.recv().await {
            Ok(frame) => return Some(frame),
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                tracing::debug!(skipped, "a live screen fell behind");
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
