//! Routing a conversation nobody has: the team bound to its channel (or the
//! workspace's first team), the core's rule, sticky to the last operator.

use chrono::{DateTime, Utc};
use seamline_core::inbox::conversation::AssignReason;
use seamline_core::inbox::routing::{route, Decision, Operator};
use seamline_core::{MemberId, WorkspaceId};
use seamline_store::{
    AssignmentCause, Backend, CursorMove, OperatorState, StoreError, StoreResult,
    StoredConversation,
};

/// How many conversations an operator takes at once unless set otherwise.
const DEFAULT_CAPACITY: u32 = 5;

/// Assigns `conversation` if someone can take it; returns who. A
/// conversation written meanwhile (a version conflict) is left as it is.
pub async fn route_conversation(
    store: &dyn Backend,
    ws: WorkspaceId,
    conversation: &StoredConversation,
    now: DateTime<Utc>,
) -> StoreResult<Option<MemberId>> {
    let teams = store.list_teams(ws).await?;
    let channel = conversation.last_message_channel;
    let Some(team) = teams
        .iter()
        .find(|t| channel.is_some_and(|c| t.channels.contains(&c)))
        .or(teams.first())
    else {
        return Ok(None);
    };
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
        Ok(_) => Ok(Some(operator)),
        Err(StoreError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

fn operator(state: &OperatorState) -> Operator {
    Operator {
        member: state.member_id,
        presence: state.presence,
        load: state.load,
        capacity: state.capacity.unwrap_or(DEFAULT_CAPACITY),
    }
}
