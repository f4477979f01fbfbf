//! Routing a conversation nobody has: the team bound to its channel (or the
//! workspace's first team), the core's rule, sticky to the last operator.

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::AssignReason;
use seamline_core::inbox::routing::{route, Decision, Operator};
use seamline_core::WorkspaceId;
use seamline_store::{
    AssignmentCause, Backend, CursorMove, OperatorState, StoreError, StoreResult,
    StoredConversation, Team,
};

use super::automation;

/// How many conversations an operator takes at once unless set otherwise.
pub const DEFAULT_CAPACITY: u32 = 5;

/// Assigns `conversation` if someone can take it; returns it assigned. A
/// conversation written meanwhile (a version conflict) is left as it is.
pub async fn route_conversation(
    store: &dyn Backend,
    ws: WorkspaceId,
    conversation: &StoredConversation,
    now: DateTime<Utc>,
) -> StoreResult<Option<StoredConversation>> {
    let teams = store.list_teams(ws).await?;
    let Some(team) = team_of(&teams, conversation) else {
        return Ok(None);
    };
    if automation::holds(conversation, team, now) {
        return Ok(None);
    }
    let operators: Vec<Operator> = store
        .operators(ws, Some(team.id))
        .await?
        .iter()
        .map(operator)
        .collect();
    let last = match store
        .last_operator(ws, conversation.conversation.id)
        .await?
    {
        Some(member) => store.operator(ws, member).await?.map(|o| operator(&o)),
        None => None,
    };
    let cursor = store.routing_cursor(ws, team.id).await?;
    let routed = route(&team.routing, &operators, cursor, last.as_ref());
    let Decision::Assign { operator, reason } = routed.decision else {
        return Ok(None);
    };
    let reason = AssignReason::from(reason);
    let mut update = conversation.update(now);
    update
        .conversation
        .assign(Some(operator), Some(team.id), reason);
    update.assignment = Some(AssignmentCause {
        reason,
        actor: None,
        note: None,
    });
    update.cursor = routed
        .cursor
        .filter(|to| Some(*to) != cursor)
        .map(|to| CursorMove {
            team: team.id,
            from: cursor,
            to,
        });
    match store.update_conversation(ws, &update).await {
        Ok(assigned) => Ok(Some(assigned)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Is anyone in the workspace online with room for one more?
pub async fn can_take_any(store: &dyn Backend, ws: WorkspaceId) -> StoreResult<bool> {
    Ok(store
        .operators(ws, None)
        .await?
        .iter()
        .any(|o| operator(o).can_take()))
}

/// A conversation passed to a team stays with it; a new one goes to the
/// team bound to its channel, else the first.
pub(super) fn team_of<'t>(
    teams: &'t [Team],
    conversation: &StoredConversation,
) -> Option<&'t Team> {
    let channel = conversation.last_message_channel;
    teams
        .iter()
        .find(|t| Some(t.id) == conversation.conversation.team)
        .or_else(|| {
            teams
                .iter()
                .find(|t| channel.is_some_and(|c| t.channels.contains(&c)))
        })
        .or(teams.first())
}

fn operator(state: &OperatorState) -> Operator {
    Operator {
        member: state.member_id,
        presence: state.presence,
        load: state.load,
        capacity: state.capacity.unwrap_or(DEFAULT_CAPACITY),
    }
}
