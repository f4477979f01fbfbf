//! The waiting queue kept moving: conversations nobody could take are
//! given out as operators come online or finish, operators gone past the
//! grace period hand theirs back, and snoozes end on time.
//!
//! [`drain`] runs right after anything that frees an operator (a resolve,
//! an unassign, someone coming online) and every few seconds from
//! [`run`], which also does the time-driven work. Every step writes over
//! the version it read, so instances running it at once cannot double-assign.

use std::time::Duration;

use chrono::{DateTime, Utc};
use seamline_bus::Bus;
use seamline_core::inbox::conversation::{AssignReason, StatusName};
use seamline_core::inbox::routing::{queue, AutoUnassign, Presence, Waiting};
use seamline_core::{MemberId, WorkspaceId};
use seamline_store::{
    AssigneeFilter, AssignmentCause, Backend, ConversationQuery, StoreError, StoreResult,
    StoredConversation,
};
use tokio_util::sync::CancellationToken;

use super::live::{publish, LiveEvent};
use super::route::{can_take_any, route_conversation};

/// How often the time-driven work runs.
const TICK: Duration = Duration::from_secs(5);
/// The most waiting conversations looked at in one pass.
const QUEUE_WINDOW: u32 = 500;

/// The workspace's waiting conversations in serving order (urgent first,
/// then first come first served), with their wait.
pub async fn waiting(
    store: &dyn Backend,
    ws: WorkspaceId,
    now: DateTime<Utc>,
) -> StoreResult<
    Vec<(
        StoredConversation,
        seamline_core::inbox::routing::QueuePosition,
    )>,
> {
    let query = ConversationQuery {
        assignee: AssigneeFilter::Unassigned,
        statuses: vec![StatusName::Open],
        limit: QUEUE_WINDOW,
        ..ConversationQuery::default()
    };
    let mut open = store.list_conversations(ws, &query).await?;
    let entries: Vec<Waiting> = open
        .iter()
        .map(|c| Waiting {
            conversation: c.conversation.id,
            priority: c.conversation.priority,
            since: c.conversation.waiting_since.unwrap_or(c.updated_at),
        })
        .collect();
    let mut ordered = Vec::with_capacity(open.len());
    for position in queue(&entries, now) {
        if let Some(at) = open
            .iter()
            .position(|c| c.conversation.id == position.conversation)
        {
            ordered.push((open.swap_remove(at), position));
        }
    }
    Ok(ordered)
}

/// Gives waiting conversations to operators who can take them, in queue
/// order; answers how many were assigned.
pub async fn drain(store: &dyn Backend, bus: &dyn Bus, ws: WorkspaceId) -> StoreResult<usize> {
    let now = Utc::now();
    if !can_take_any(store, ws).await? {
        return Ok(0);
    }
    let mut assigned = 0;
    for (conversation, _) in waiting(store, ws, now).await? {
        if let Some(routed) = route_conversation(store, ws, &conversation, now).await? {
            publish(bus, LiveEvent::Conversation(&routed)).await;
            assigned += 1;
            if !can_take_any(store, ws).await? {
                break;
            }
        }
    }
    Ok(assigned)
}

/// Hands back the open conversations of operators offline past the grace
/// period, and wakes snoozes that are over.
pub async fn tidy(
    store: &dyn Backend,
    bus: &dyn Bus,
    ws: WorkspaceId,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let rule = AutoUnassign::default();
    let gone: Vec<MemberId> = store
        .operators(ws, None)
        .await?
        .iter()
        .filter(|o| o.load > 0)
        .filter(|o| {
            o.presence_since
                .is_some_and(|since| rule.is_due(o.presence, since, now))
        })
        .map(|o| o.member_id)
        .collect();
    for member in gone {
        let query = ConversationQuery {
            assignee: AssigneeFilter::Operator(member),
            statuses: vec![StatusName::Open, StatusName::Pending],
            limit: QUEUE_WINDOW,
            ..ConversationQuery::default()
        };
        for conversation in store.list_conversations(ws, &query).await? {
            let mut update = conversation.update(now);
            let team = update.conversation.team;
            update
                .conversation
                .assign(None, team, AssignReason::OperatorOffline);
            update.assignment = Some(AssignmentCause {
                reason: AssignReason::OperatorOffline,
                actor: None,
                note: None,
            });
            save(store, bus, ws, &update).await?;
        }
    }
    let snoozed = ConversationQuery {
        statuses: vec![StatusName::Snoozed],
        limit: QUEUE_WINDOW,
        ..ConversationQuery::default()
    };
    for conversation in store.list_conversations(ws, &snoozed).await? {
        let mut update = conversation.update(now);
        if update.conversation.wake(now).is_some() {
            save(store, bus, ws, &update).await?;
        }
    }
    Ok(())
}

/// Writes a change made by the system; one written meanwhile wins.
async fn save(
    store: &dyn Backend,
    bus: &dyn Bus,
    ws: WorkspaceId,
    update: &seamline_store::ConversationUpdate,
) -> StoreResult<()> {
    match store.update_conversation(ws, update).await {
        Ok(saved) => {
            publish(bus, LiveEvent::Conversation(&saved)).await;
            Ok(())
        }
        Err(StoreError::Conflict(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The time-driven work for every workspace, every few seconds, until `stop`.
pub async fn run(
    store: std::sync::Arc<dyn Backend>,
    bus: std::sync::Arc<dyn Bus>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(error) = pass(store.as_ref(), bus.as_ref()).await {
            tracing::warn!(%error, "the inbox queue pass failed; it runs again shortly");
        }
    }
}

async fn pass(store: &dyn Backend, bus: &dyn Bus) -> StoreResult<()> {
    let now = Utc::now();
    for workspace in store.list_workspaces().await? {
        tidy(store, bus, workspace.id, now).await?;
        drain(store, bus, workspace.id).await?;
    }
    Ok(())
}

/// An operator's presence, changed by them (or their screens going away);
/// coming online takes work from the queue at once.
pub async fn set_presence(
    store: &dyn Backend,
    bus: &dyn Bus,
    ws: WorkspaceId,
    member: MemberId,
    presence: Presence,
) -> StoreResult<seamline_store::OperatorState> {
    let state = store.set_presence(ws, member, presence, Utc::now()).await?;
    if presence == Presence::Online {
        drain(store, bus, ws).await?;
    }
    Ok(state)
}
