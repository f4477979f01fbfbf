//! The supervisor's view of the inbox now: who waits and for how long,
//! conversations by status and channel, each operator's presence and load,
//! and today's response, resolution and satisfaction figures.
//!
//! "Today" is the UTC day. The figures are computed from the stored
//! timeline (the core's response/resolution cycles) of the conversations
//! active today, up to [`ACTIVE_WINDOW`] of them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use seamline_core::inbox::conversation::{cycles, StatusName};
use seamline_core::inbox::csat::Summary;
use seamline_core::inbox::routing::{Presence, QueuePosition};
use seamline_core::inbox::Channel;
use seamline_core::{MemberId, WorkspaceId};
use seamline_store::{
    Backend, ConversationQuery, MessageQuery, Order, StoreResult, StoredConversation,
};
use serde::Serialize;

use super::{queue, DEFAULT_CAPACITY};

/// The most conversations looked at for today's figures.
const ACTIVE_WINDOW: u32 = 500;
/// The most messages of one conversation read for its cycles.
const TIMELINE_WINDOW: u32 = 500;

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub at: DateTime<Utc>,
    /// Serving order.
    pub waiting: Vec<WaitingEntry>,
    pub by_status: BTreeMap<&'static str, u32>,
    /// Unresolved conversations by the channel of their latest message.
    pub by_channel: BTreeMap<&'static str, u32>,
    pub operators: Vec<OperatorLoad>,
    pub today: Today,
}

#[derive(Debug, Serialize)]
pub struct WaitingEntry {
    #[serde(skip)]
    pub conversation: StoredConversation,
    pub conversation_id: String,
    pub position: usize,
    pub waited_secs: i64,
    pub channel: Option<Channel>,
    pub priority: &'static str,
}

#[derive(Debug, Serialize)]
pub struct OperatorLoad {
    pub member_id: MemberId,
    pub presence: Presence,
    pub load: u32,
    pub capacity: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Today {
    /// Cycles that started today and got a first operator reply.
    pub answered: u32,
    pub first_response_avg_secs: Option<i64>,
    pub first_response_median_secs: Option<i64>,
    /// Cycles resolved today.
    pub resolved: u32,
    pub resolution_avg_secs: Option<i64>,
    pub csat_average: Option<f64>,
    pub csat_count: u32,
}

pub async fn snapshot(store: &dyn Backend, ws: WorkspaceId) -> StoreResult<Snapshot> {
    let now = Utc::now();
    let waiting = queue::waiting(store, ws, now)
        .await?
        .into_iter()
        .map(|(conversation, position)| waiting_entry(conversation, position))
        .collect();
    let active = store
        .list_conversations(
            ws,
            &ConversationQuery {
                limit: ACTIVE_WINDOW,
                ..ConversationQuery::default()
            },
        )
        .await?;
    let (mut by_status, mut by_channel) = (BTreeMap::new(), BTreeMap::new());
    for c in &active {
        let status = c.conversation.status.name();
        *by_status.entry(status.as_str()).or_insert(0) += 1;
        if status != StatusName::Resolved {
            if let Some(channel) = c.last_message_channel {
                *by_channel.entry(channel.as_str()).or_insert(0) += 1;
            }
        }
    }
    let operators = store
        .operators(ws, None)
        .await?
        .into_iter()
        .map(|o| OperatorLoad {
            member_id: o.member_id,
            presence: o.presence,
            load: o.load,
            capacity: o.capacity.unwrap_or(DEFAULT_CAPACITY),
        })
        .collect();
    let today = today(store, ws, &active, now).await?;
    Ok(Snapshot {
        at: now,
        waiting,
        by_status,
        by_channel,
        operators,
        today,
    })
}

fn waiting_entry(conversation: StoredConversation, position: QueuePosition) -> WaitingEntry {
    WaitingEntry {
        conversation_id: conversation.conversation.id.to_string(),
        position: position.position,
        waited_secs: position.waited.num_seconds(),
        channel: conversation.last_message_channel,
        priority: position.priority.as_str(),
        conversation,
    }
}

async fn today(
    store: &dyn Backend,
    ws: WorkspaceId,
    active: &[StoredConversation],
    now: DateTime<Utc>,
) -> StoreResult<Today> {
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc());
    let (mut responses, mut resolutions) = (Vec::new(), Vec::new());
    for c in active.iter().filter(|c| c.updated_at >= midnight) {
        let query = MessageQuery {
            limit: TIMELINE_WINDOW,
            order: Order::NewestFirst,
            ..MessageQuery::default()
        };
        let messages: Vec<_> = store
            .list_messages(ws, c.conversation.id, &query)
            .await?
            .into_iter()
            .map(|m| m.message)
            .collect();
        for cycle in cycles(&messages) {
            if let (true, Some(wait)) = (cycle.started_at >= midnight, cycle.first_response_time())
            {
                responses.push(wait);
            }
            if let (Some(done), Some(took)) = (cycle.resolved_at, cycle.resolution_time()) {
                if done >= midnight {
                    resolutions.push(took);
                }
            }
        }
    }
    let csat: Summary = store
        .ratings(ws, midnight, now + Duration::seconds(1))
        .await?
        .iter()
        .map(|r| r.rating.score)
        .collect();
    Ok(Today {
        answered: count(&responses),
        first_response_avg_secs: average(&responses),
        first_response_median_secs: median(&mut responses),
        resolved: count(&resolutions),
        resolution_avg_secs: average(&resolutions),
        csat_average: csat.average(),
        csat_count: u32::try_from(csat.count).unwrap_or(u32::MAX),
    })
}

fn count(durations: &[Duration]) -> u32 {
    u32::try_from(durations.len()).unwrap_or(u32::MAX)
}

fn average(durations: &[Duration]) -> Option<i64> {
    let n = i64::try_from(durations.len()).ok().filter(|n| *n > 0)?;
    Some(durations.iter().map(Duration::num_seconds).sum::<i64>() / n)
}

fn median(durations: &mut [Duration]) -> Option<i64> {
    durations.sort();
    durations
        .get(durations.len() / 2)
        .map(Duration::num_seconds)
}
