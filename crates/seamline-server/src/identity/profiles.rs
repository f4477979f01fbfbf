//! Profile operations people start: read with computed fields, merge by
//! hand, undo a merge (by replaying the profile's events as if the link
//! never happened), erase.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use seamline_core::identity::{
    observe, Decision, DeviceSession, Identifier, IdentityGraph, IdentityPolicy, Snapshot,
};
use seamline_core::tracking::EventType;
use seamline_core::{ProfileId, WorkspaceId};
use seamline_store::{
    Backend, EventQuery, IdentityOp, MergeRecord, Order, Profile, StoreError, StoredEvent,
};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::ops::{
    absorb_profile, decision_ops, merge_traits, placement_op, share_ops, EventContext,
};
use super::tracked_of;
use crate::error::{ApiError, ApiResult};

const PAGE: u32 = 1000;

/// The live profile `id` is now part of (itself unless it was merged).
pub async fn live_profile(
    store: &dyn Backend,
    ws: WorkspaceId,
    id: ProfileId,
) -> ApiResult<Profile> {
    let mut current = store
        .profile(ws, id)
        .await?
        .ok_or(ApiError::NotFound("profile"))?;
    for _ in 0..16 {
        match current.merged_into {
            Some(next) => {
                current = store
                    .profile(ws, next)
                    .await?
                    .ok_or(ApiError::NotFound("profile"))?
            }
            None => return Ok(current),
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "profile {id} has a merge chain that does not end"
    )))
}

/// Every event of a profile, oldest first.
pub async fn all_events(
    store: &dyn Backend,
    ws: WorkspaceId,
    id: ProfileId,
) -> ApiResult<Vec<StoredEvent>> {
    let mut query = EventQuery {
        limit: PAGE,
        order: Order::OldestFirst,
        ..EventQuery::default()
    };
    let mut events = Vec::new();
    loop {
        let page = store.profile_events(ws, id, &query).await?;
        let full = page.len() == PAGE as usize;
        query.after_seq = page.last().map(|e| e.seq);
        events.extend(page);
        if !full {
            return Ok(events);
        }
    }
}

/// Money in minor units of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub currency: String,
    pub amount_minor: i64,
}

/// Fields computed from a profile's events.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Computed {
    pub event_count: usize,
    pub order_count: usize,
    pub lifetime_revenue: Vec<Money>,
    pub channels: Vec<String>,
    pub last_order_at: Option<DateTime<Utc>>,
}

/// Order count, revenue (net of refunds, `revenue` else `total`, in minor
/// units per currency), and the channels the person used.
pub fn compute(events: &[StoredEvent]) -> Computed {
    let mut revenue: HashMap<String, i64> = HashMap::new();
    let mut computed = Computed {
        event_count: events.len(),
        ..Computed::default()
    };
    for event in events {
        let channel = channel_of(event);
        if !computed.channels.contains(&channel) {
            computed.channels.push(channel);
        }
        let props = &event.payload["properties"];
        let sign = match event.event_name.as_deref() {
            Some("Order Completed") if event.event_type == EventType::Track => {
                computed.order_count += 1;
                computed.last_order_at = Some(event.timestamp);
                1
            }
            Some("Order Refunded") if event.event_type == EventType::Track => -1,
            _ => continue,
        };
        let worth = amount_of(props);
        // Amounts come from customers' events: saturate, never overflow.
        let total = revenue.entry(worth.currency).or_default();
        *total = total.saturating_add(worth.amount_minor.saturating_mul(sign));
    }
    let mut money: Vec<Money> = revenue
        .into_iter()
        .map(|(currency, amount_minor)| Money {
            currency,
            amount_minor,
        })
        .collect();
    money.sort_by(|a, b| a.currency.cmp(&b.currency));
    computed.lifetime_revenue = money;
    computed
}

/// What an order's `properties` say it is worth: `revenue`, else `total`
/// (zero when neither), in minor units of `currency` (RUB when unsaid).
pub(crate) fn amount_of(properties: &Value) -> Money {
    let amount = properties["revenue"]
        .as_f64()
        .or_else(|| properties["total"].as_f64())
        .unwrap_or(0.0);
    Money {
        currency: properties["currency"]
            .as_str()
            .unwrap_or("RUB")
            .to_uppercase(),
        amount_minor: (amount * 100.0).round() as i64,
    }
}

/// The channel an event came through: as it says, else app or web.
pub(crate) fn channel_of(event: &StoredEvent) -> String {
    let said = event.payload["properties"]["channel"]
        .as_str()
        .or_else(|| event.payload["context"]["channel"].as_str());
    match (said, event.event_type) {
        (Some(channel), _) => channel.to_lowercase(),
        (None, EventType::Screen) => "app".into(),
        _ => "web".into(),
    }
}

/// Merges `other` into `profile` by hand, recorded with the actor.
pub async fn merge_by_hand(
    store: &dyn Backend,
    ws: WorkspaceId,
    profile: ProfileId,
    other: ProfileId,
    actor: &str,
) -> ApiResult<MergeRecord> {
    let (a, b) = (
        live_profile(store, ws, profile).await?,
        live_profile(store, ws, other).await?,
    );
    if a.id == b.id {
        return Err(ApiError::field(
            "same_profile",
            "other_profile_id",
            "these are already one profile",
        ));
    }
    let (mut survivor, absorbed) = if a.id < b.id { (a, b) } else { (b, a) };
    let mut tx = store.begin_inbound(ws).await?;
    let snapshot = tx.load(&[], &[survivor.id, absorbed.id]).await?;
    refuse_two_strong_identities(&snapshot)?;
    absorb_profile(&mut survivor, &absorbed);
    let record = MergeRecord {
        id: Uuid::now_v7(),
        workspace_id: ws,
        survivor: survivor.id,
        absorbed: absorbed.id,
        via: None,
        event_id: None,
        actor: Some(actor.to_owned()),
        at: Utc::now(),
        undone_at: None,
    };
    tx.apply(&[
        IdentityOp::Absorb {
            survivor: survivor.id,
            absorbed: absorbed.id,
        },
        IdentityOp::Merge(record.clone()),
        touch(&survivor),
    ])
    .await?;
    tx.merge_conversations(survivor.id, absorbed.id, record.at)
        .await?;
    tx.commit().await?;
    Ok(record)
}

/// A merge by hand keeps the invariant too: one user id, one card.
fn refuse_two_strong_identities(snapshot: &Snapshot) -> ApiResult<()> {
    let all: Vec<&Identifier> = snapshot.profiles.iter().flat_map(|(_, ids)| ids).collect();
    for strong in all.iter().filter(|i| i.kind.is_strong()) {
        if all
            .iter()
            .any(|o| o.kind == strong.kind && o.value != strong.value)
        {
            return Err(ApiError::field(
                "strong_identifier_conflict",
                "other_profile_id",
                format!(
                    "both profiles have a different {}: they are two people",
                    strong.kind.as_str().replace('_', " ")
                ),
            ));
        }
    }
    Ok(())
}

fn touch(profile: &Profile) -> IdentityOp {
    IdentityOp::Touch {
        profile: profile.id,
        traits: profile.traits.clone(),
        trait_times: profile.trait_times.clone(),
        first_seen: profile.first_seen,
        last_seen: profile.last_seen,
    }
}

/// Undoes merge `merge_id` of `profile`: its events are replayed on the
/// graph around it with the two sides kept apart, which yields both
/// profiles exactly as they would be had the link never happened, and every
/// event is re-assigned accordingly.
pub async fn unmerge(
    store: &dyn Backend,
    ws: WorkspaceId,
    profile: ProfileId,
    merge_id: Uuid,
    policy: &IdentityPolicy,
) -> ApiResult<Vec<ProfileId>> {
    let record = store
        .merge_record(ws, merge_id)
        .await?
        .ok_or(ApiError::NotFound("merge"))?;
    let live = live_profile(store, ws, profile).await?;
    if record.undone_at.is_some() {
        return Err(ApiError::field(
            "already_undone",
            "merge_id",
            "this merge was already undone",
        ));
    }
    if live_profile(store, ws, record.survivor).await?.id != live.id {
        return Err(ApiError::field(
            "not_this_profile",
            "merge_id",
            "this merge is not part of this profile",
        ));
    }
    let events = all_events(store, ws, live.id).await?;
    let mut tx = store.begin_identity(ws).await?;
    let mut identifiers: Vec<Identifier> = events
        .iter()
        .flat_map(|e| observe(&tracked_of(e), policy).identifiers)
        .collect();
    identifiers.sort();
    identifiers.dedup();
    // Another person's erased identifier can sit in these events' payloads
    // (resolution dropped it when they arrived): the replay drops it too.
    let erased = tx.erased(&identifiers).await?;
    let identifiers: Vec<Identifier> = identifiers
        .into_iter()
        .filter(|id| !erased.contains(id))
        .collect();
    let mut around = tx.load(&identifiers, &[live.id]).await?;
    let held: Vec<Identifier> = around
        .profiles
        .iter()
        .filter(|(key, _)| *key == live.id.as_uuid())
        .flat_map(|(_, ids)| ids.clone())
        .collect();
    around.profiles.retain(|(key, _)| *key != live.id.as_uuid());
    around
        .shared
        .retain(|(_, session)| session.active != Some(live.id.as_uuid()));
    around
        .separated
        .push((record.survivor.as_uuid(), record.absorbed.as_uuid()));
    // Sessions on shared devices start afresh for the replay (its old events
    // against each other, so logins claim what they claimed) and are not
    // written back: the device's current session is not the replay's.
    let sessions = around.shared.clone();
    let was_shared: Vec<Identifier> = sessions.iter().map(|(id, _)| id.clone()).collect();
    for (_, session) in &mut around.shared {
        *session = DeviceSession {
            active: None,
            last_at: DateTime::<Utc>::MIN_UTC,
            anonymous_since: None,
        };
    }
    let mut ops = vec![IdentityOp::Reset { profile: live.id }];
    let (replayed, profiles) = replay(&events, around, ws, policy, &erased, &mut ops);
    ops.retain(
        |op| !matches!(op, IdentityOp::Share { identifier, .. } if was_shared.contains(identifier)),
    );
    // A shared device this profile held stays with it, as it was (the
    // reset below would drop it, and the replay never links it again).
    for (device, session) in sessions.iter().filter(|(id, _)| held.contains(id)) {
        ops.push(IdentityOp::Own {
            identifier: device.clone(),
            profile: live.id,
            at: live.first_seen,
            source: "track".into(),
            event: None,
        });
        ops.push(IdentityOp::Share {
            identifier: device.clone(),
            session: *session,
        });
    }
    // Only the profiles these events create are rebuilt; a neighbour one of
    // them landed on keeps its identifiers and traits.
    let rebuilt: HashSet<ProfileId> = events.iter().map(|e| ProfileId(e.id.as_uuid())).collect();
    for key in profiles.keys().filter(|key| rebuilt.contains(key)) {
        ops.insert(1, IdentityOp::Reset { profile: *key });
    }
    ops.extend(
        profiles
            .iter()
            .filter(|(key, _)| rebuilt.contains(key))
            .map(|(_, profile)| touch(profile)),
    );
    ops.push(IdentityOp::UndoMerge {
        id: merge_id,
        at: Utc::now(),
    });
    ops.push(IdentityOp::Separate {
        a: record.survivor,
        b: record.absorbed,
    });
    tx.apply(&ops).await?;
    tx.commit().await?;
    // The conversation splits with the profiles: each side's messages go
    // back to the profile they were written for.
    for profile in replayed.iter().filter(|p| **p != live.id) {
        store
            .split_conversation(ws, live.id, *profile, Utc::now())
            .await?;
    }
    Ok(replayed)
}

/// Replays `events` on `around`; pushes the writes, returns the live
/// profiles of the replay and their traits.
fn replay(
    events: &[StoredEvent],
    around: Snapshot,
    ws: WorkspaceId,
    policy: &IdentityPolicy,
    erased: &[Identifier],
    ops: &mut Vec<IdentityOp>,
) -> (Vec<ProfileId>, HashMap<ProfileId, Profile>) {
    let mut graph = IdentityGraph::from_snapshot(around);
    let mut profiles: HashMap<ProfileId, Profile> = HashMap::new();
    let mut assigned: Vec<ProfileId> = Vec::new();
    for event in events {
        let mut observation = observe(&tracked_of(event), policy);
        observation.identifiers.retain(|id| !erased.contains(id));
        if observation.identifiers.is_empty() {
            continue;
        }
        let resolution = graph.resolve(
            &observation.identifiers,
            event.id.as_uuid(),
            event.timestamp,
            policy,
        );
        let placement = resolution.profile.map(ProfileId);
        let kept: Vec<Decision> = resolution
            .decisions
            .iter()
            .filter(|d| !matches!(d, Decision::Conflict { .. }))
            .cloned()
            .collect();
        let traits = placement.map_or_else(Map::new, |p| {
            observation.traits_for(|id| graph.profile_of(id), p.as_uuid())
        });
        let cx = EventContext {
            workspace: ws,
            event: event.id,
            at: event.timestamp,
            source: "track",
            traits: &traits,
        };
        ops.extend(
            decision_ops(&kept, &cx)
                .into_iter()
                .filter(|op| !matches!(op, IdentityOp::Merge(_))),
        );
        ops.extend(share_ops(&graph, &observation.identifiers));
        ops.push(placement_op(
            &graph,
            &observation.identifiers,
            event,
            placement,
        ));
        let Some(target) = placement else {
            continue;
        };
        fold_into(&mut profiles, &kept, target, ws, &traits, event.timestamp);
        if !assigned.contains(&target) {
            assigned.push(target);
        }
    }
    let live: Vec<ProfileId> = assigned
        .into_iter()
        .filter(|p| profiles.contains_key(p))
        .collect();
    (live, profiles)
}

/// Keeps the in-memory traits of replayed profiles in step with decisions.
fn fold_into(
    profiles: &mut HashMap<ProfileId, Profile>,
    decisions: &[Decision],
    target: ProfileId,
    ws: WorkspaceId,
    traits: &Map<String, Value>,
    at: DateTime<Utc>,
) {
    for decision in decisions {
        if let Decision::Merged {
            survivor, absorbed, ..
        } = decision
        {
            if let Some(gone) = profiles.remove(&ProfileId(*absorbed)) {
                let into = profiles
                    .entry(ProfileId(*survivor))
                    .or_insert_with(|| blank(ProfileId(*survivor), ws, at));
                absorb_profile(into, &gone);
            }
        }
    }
    let profile = profiles
        .entry(target)
        .or_insert_with(|| blank(target, ws, at));
    merge_traits(profile, traits, at);
    profile.first_seen = profile.first_seen.min(at);
    profile.last_seen = profile.last_seen.max(at);
}

fn blank(id: ProfileId, ws: WorkspaceId, at: DateTime<Utc>) -> Profile {
    Profile {
        id,
        workspace_id: ws,
        first_seen: at,
        last_seen: at,
        traits: Map::new(),
        trait_times: Map::new(),
        merged_into: None,
    }
}

/// Erases a person: everything the store holds on them, and a fingerprint
/// of each identifier so it never links again.
pub async fn erase(store: &dyn Backend, ws: WorkspaceId, profile: ProfileId) -> ApiResult<()> {
    let live = live_profile(store, ws, profile).await?;
    let identifiers = store.profile_identifiers(ws, live.id).await?;
    let fingerprints: Vec<String> = identifiers
        .iter()
        .map(|i| i.identifier.fingerprint())
        .collect();
    store
        .erase_profile(ws, live.id, &fingerprints, Utc::now())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            other => other.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use seamline_core::{EventId, WorkspaceId};
    use serde_json::json;

    fn order(name: &str, revenue: f64) -> StoredEvent {
        StoredEvent {
            seq: 1,
            id: EventId(Uuid::nil()),
            workspace_id: WorkspaceId(Uuid::nil()),
            message_id: "m".into(),
            event_type: EventType::Track,
            event_name: Some(name.into()),
            user_id: Some("u".into()),
            anonymous_id: None,
            timestamp: Utc::now(),
            received_at: Utc::now(),
            enrichment: json!({}),
            payload: json!({"properties": {"revenue": revenue, "currency": "RUB"}}),
        }
    }

    #[test]
    fn huge_amounts_from_events_saturate_instead_of_overflowing() {
        let events = [
            order("Order Completed", 1e300),
            order("Order Completed", 1e300),
            order("Order Refunded", -1e300),
        ];
        let computed = compute(&events);
        assert_eq!(computed.order_count, 2);
        assert_eq!(computed.lifetime_revenue[0].amount_minor, i64::MAX);
    }
}
