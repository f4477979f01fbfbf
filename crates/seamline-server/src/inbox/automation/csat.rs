//! The satisfaction survey: one question after a conversation is
//! resolved, asked by the bot on the channel the customer last wrote on.
//! The customer's next message, if it reads as a score (1 to 5, or
//! stars), is the answer: it is recorded for the operator and team who had
//! the conversation, thanked, and leaves the conversation resolved. Any
//! other message is an ordinary one and the survey is dropped.
//!
//! Workspaces switch the survey on in their `csat` setting (off until then).

use chrono::Utc;
use seamline_bus::Bus;
use seamline_core::inbox::conversation::StatusName;
use seamline_core::inbox::csat::{Rating, Score};
use seamline_core::inbox::{MessageKind, Status};
use seamline_core::{ConversationId, WorkspaceId};
use seamline_store::{
    Backend, CsatRecord, PendingSurvey, Store, StoreError, StoreResult, StoredConversation,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{post, rewrite};
use crate::inbox::receive::{Inbound, InboxError};

const SETTING: &str = "csat";
pub const QUESTION: &str = "How would you rate our help? Reply 1 to 5 (5 is best).";
pub const THANKS: &str = "Thank you for your rating!";

/// The workspace's survey settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsatSettings {
    /// Ask after each resolve.
    pub survey: bool,
}

pub async fn settings_of(store: &dyn Store, ws: WorkspaceId) -> StoreResult<CsatSettings> {
    match store.setting(ws, SETTING).await? {
        None => Ok(CsatSettings::default()),
        Some(value) => serde_json::from_value(value)
            .map_err(|e| StoreError::Corrupt(format!("csat setting: {e}"))),
    }
}

pub async fn save_settings(
    store: &dyn Store,
    ws: WorkspaceId,
    settings: CsatSettings,
) -> StoreResult<()> {
    let value = serde_json::to_value(settings)
        .map_err(|e| StoreError::Corrupt(format!("csat setting: {e}")))?;
    store.put_setting(ws, SETTING, &value, Utc::now()).await
}

/// Whether a status change is a resolve that should be followed by a
/// survey: taken before the change, so resolving twice asks once.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub struct SurveyOnResolve(bool);

impl SurveyOnResolve {
    pub async fn check(
        store: &dyn Backend,
        ws: WorkspaceId,
        id: ConversationId,
        target: StatusName,
    ) -> StoreResult<Self> {
        if target != StatusName::Resolved {
            return Ok(Self(false));
        }
        let Some(current) = store.conversation(ws, id).await? else {
            return Ok(Self(false));
        };
        if current.conversation.status == Status::Resolved || !settings_of(store, ws).await?.survey
        {
            return Ok(Self(false));
        }
        // A survey left from a resolve an operator undid is stale: this
        // resolve asks again.
        store.take_survey(ws, id).await?;
        Ok(Self(true))
    }

    /// Sends the question if the conversation (as saved) was resolved and
    /// the customer has a channel to ask on.
    pub async fn send(
        self,
        store: &dyn Backend,
        bus: &dyn Bus,
        saved: &StoredConversation,
    ) -> Result<(), InboxError> {
        let c = &saved.conversation;
        let Some(channel) = c.last_inbound_channel else {
            return Ok(());
        };
        if !self.0 || c.status != Status::Resolved {
            return Ok(());
        }
        let survey = PendingSurvey {
            workspace_id: saved.workspace_id,
            conversation_id: c.id,
            operator: c.assignee,
            team: c.team,
            sent_at: Utc::now(),
        };
        if store.open_survey(&survey).await? {
            post(
                store,
                bus,
                saved,
                MessageKind::Bot,
                channel,
                QUESTION.into(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The customer wrote into a resolved conversation: a pending survey is
/// answered by a score (returns the conversation, resolved again and
/// thanked) or dropped by anything else (`None`: an ordinary message).
pub async fn answer(
    store: &dyn Backend,
    bus: &dyn Bus,
    inbound: &Inbound,
    conversation: &StoredConversation,
) -> Result<Option<StoredConversation>, InboxError> {
    let (ws, id) = (inbound.workspace, conversation.conversation.id);
    let Some(survey) = store.take_survey(ws, id).await? else {
        return Ok(None);
    };
    let Some(score) = Score::from_reply(&inbound.body) else {
        return Ok(None);
    };
    store
        .record_rating(&CsatRecord {
            id: Uuid::now_v7(),
            workspace_id: ws,
            conversation_id: id,
            rating: Rating {
                operator: survey.operator,
                team: survey.team,
                score,
            },
            at: inbound.at,
        })
        .await?;
    // Undo the reopen the answer's arrival made.
    let resolved = rewrite(store, conversation, inbound.at, |update| {
        update.conversation.resolve().is_ok()
    })
    .await?;
    let thanked = post(
        store,
        bus,
        &resolved,
        MessageKind::Bot,
        inbound.channel,
        THANKS.into(),
    )
    .await?;
    Ok(Some(thanked))
}
