//! Opt-out and opt-in keywords (`STOP`, `СТОП`, `START`): the message is
//! stored like any other, and the answer is recorded as the customer's
//! marketing consent on that channel, which every marketing send asks
//! through `identity::consent::allows`. Replies to the customer are
//! service messages and are not held back by it.

use chrono::Utc;
use seamline_core::inbox::conversation::Channel;
use seamline_store::ConsentRecord;
use uuid::Uuid;

use crate::error::ApiError;
use crate::identity::consent;
use crate::inbox::{self, Inbound, InboxError};
use crate::AppState;

/// Stores `message` and records `granted` for marketing on `channel`, once
/// per provider message (a re-sent webhook records nothing new).
pub async fn record(
    state: &AppState,
    channel: Channel,
    message: Inbound,
    granted: bool,
) -> Result<(), ApiError> {
    let wording = message.body.trim().to_owned();
    let received = inbox::receive(state.store.as_ref(), state.bus.as_ref(), message)
        .await
        .map_err(|e| match e {
            InboxError::Invalid(error) => ApiError::from(error),
            InboxError::Store(error) => error.into(),
        })?;
    if !received.message.new {
        return Ok(());
    }
    let name = channel.as_str();
    let record = ConsentRecord {
        id: Uuid::now_v7(),
        workspace_id: received.message.message.workspace_id,
        profile_id: received.profile,
        purpose: "marketing".into(),
        channel: if consent::CHANNELS.contains(&name) {
            name
        } else {
            "any"
        }
        .into(),
        granted,
        source: format!("{name}_keyword"),
        wording,
        at: Utc::now(),
    };
    state.store.record_consent(record).await?;
    Ok(())
}
