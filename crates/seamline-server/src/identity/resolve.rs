//! Resolving committed events into their profiles, a batch at a time.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use seamline_core::identity::{observe, Identifier, IdentityGraph, IdentityPolicy, Observation};
use seamline_core::tracking::{Enrichment, TrackedEvent};
use seamline_core::WorkspaceId;
use seamline_core::{EventId, ProfileId};
use seamline_store::{Backend, IdentityOp, IdentityTx, Profile, StoreResult, StoredEvent};
use serde_json::Map;

use super::ops::{
    absorb_profile, decision_ops, merge_traits, placement_op, share_ops, EventContext,
};

/// The stored event as the core's tracked event (what `observe` reads).
pub fn tracked_of(event: &StoredEvent) -> TrackedEvent {
    TrackedEvent {
        message_id: event.message_id.clone(),
        event_type: event.event_type,
        event_name: event.event_name.clone(),
        user_id: event.user_id.clone(),
        anonymous_id: event.anonymous_id.clone(),
        timestamp: event.timestamp,
        received_at: event.received_at,
        enrichment: serde_json::from_value::<Enrichment>(event.enrichment.clone())
            .unwrap_or_default(),
        payload: event.payload.as_object().cloned().unwrap_or_default(),
    }
}

/// Resolves `events` of one workspace in one serialised transaction, which
/// also merges the conversations of the profiles it merged: under the
/// workspace's lock, and never lost to a retry that finds the events
/// already resolved.
pub async fn resolve_events(
    store: &dyn Backend,
    policy: &IdentityPolicy,
    workspace: WorkspaceId,
    events: &[&StoredEvent],
) -> StoreResult<()> {
    let mut tx = store.begin_inbound(workspace).await?;
    let mut fresh: Vec<&StoredEvent> = Vec::with_capacity(events.len());
    for event in events {
        let repeated = fresh.iter().any(|e| e.id == event.id);
        if !repeated && !tx.is_assigned(event.id).await? {
            fresh.push(event);
        }
    }
    let mut graph = BatchGraph::load(tx.as_mut(), policy, &fresh).await?;
    for event in fresh {
        let placed = graph.resolve_new(tx.as_mut(), policy, event).await?;
        for (survivor, absorbed, at) in placed.merged {
            tx.merge_conversations(survivor, absorbed, at).await?;
        }
    }
    graph.finish(tx.as_mut()).await?;
    tx.commit().await
}

/// Where one event went and which profiles it merged (survivor, absorbed).
#[derive(Debug, Default)]
pub struct Placed {
    /// None: no usable identifier, or anonymous on a shared device.
    pub profile: Option<ProfileId>,
    pub merged: Vec<(ProfileId, ProfileId, DateTime<Utc>)>,
}

/// The part of the identity graph a batch of events touches, read once for
/// all of them: each event then resolves in memory on what the events
/// before it left (the graph changes as the store does), and only its
/// writes go to the store. Between two events of the batch nothing else
/// writes the identifiers: the transaction holds the workspace's lock.
pub struct BatchGraph {
    graph: IdentityGraph,
    /// The batch's identifiers that were erased and may never link again.
    erased: HashSet<Identifier>,
    /// Each event's identifiers and traits, as read when loading.
    observed: HashMap<EventId, Observation>,
    /// The graph's profiles as the batch's writes leave them (traits and
    /// first/last seen change only by this batch's touches).
    profiles: HashMap<ProfileId, Profile>,
    /// Writes not made yet ([`deferrable`]): nothing in the batch reads
    /// them back, so they are written together, one statement per kind
    /// where the store can, before any other write
    /// ([`BatchGraph::finish`] writes the rest).
    deferred: Vec<IdentityOp>,
}

impl BatchGraph {
    /// Reads what `events` (to be resolved in `tx`, in any order) touch.
    pub async fn load(
        tx: &mut dyn IdentityTx,
        policy: &IdentityPolicy,
        events: &[&StoredEvent],
    ) -> StoreResult<Self> {
        let observed: HashMap<EventId, Observation> = events
            .iter()
            .map(|event| (event.id, observe(&tracked_of(event), policy)))
            .collect();
        let mut wanted: Vec<Identifier> = observed
            .values()
            .flat_map(|o| o.identifiers.iter().cloned())
            .collect();
        wanted.sort();
        wanted.dedup();
        let erased: HashSet<Identifier> = tx.erased(&wanted).await?.into_iter().collect();
        wanted.retain(|id| !erased.contains(id));
        if wanted.is_empty() {
            return Ok(Self {
                graph: IdentityGraph::default(),
                erased,
                observed,
                profiles: HashMap::new(),
                deferred: Vec::new(),
            });
        }
        let snapshot = tx.load(&wanted, &[]).await?;
        let held: Vec<ProfileId> = snapshot
            .profiles
            .iter()
            .map(|(p, _)| ProfileId(*p))
            .collect();
        let profiles = match held.is_empty() {
            true => HashMap::new(),
            false => tx
                .profiles(&held)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect(),
        };
        Ok(Self {
            graph: IdentityGraph::from_snapshot(snapshot),
            erased,
            observed,
            profiles,
            deferred: Vec::new(),
        })
    }

    /// Resolves `event`, one of the batch's, and writes what it changed.
    pub async fn resolve_new(
        &mut self,
        tx: &mut dyn IdentityTx,
        policy: &IdentityPolicy,
        event: &StoredEvent,
    ) -> StoreResult<Placed> {
        let observation = match self.observed.remove(&event.id) {
            Some(observed) => observed,
            None => observe(&tracked_of(event), policy),
        };
        let identifiers: Vec<Identifier> = observation
            .identifiers
            .iter()
            .filter(|id| !self.erased.contains(*id))
            .cloned()
            .collect();
        if identifiers.is_empty() {
            return Ok(Placed::default());
        }
        let graph = &mut self.graph;
        let resolution = graph.resolve(&identifiers, event.id.as_uuid(), event.timestamp, policy);
        let profile = resolution.profile.map(ProfileId);
        let mut ops = Vec::new();
        if let Some(profile) = profile {
            let traits = observation.traits_for(|id| graph.profile_of(id), profile.as_uuid());
            let cx = EventContext {
                workspace: event.workspace_id,
                event: event.id,
                at: event.timestamp,
                source: "track",
                traits: &traits,
            };
            ops.extend(decision_ops(&resolution.decisions, &cx));
            ops.extend(share_ops(graph, &identifiers));
            ops.push(placement_op(graph, &identifiers, event, Some(profile)));
            self.write(tx, event.workspace_id, ops).await?;
            let touch = self
                .touch_op(tx, &resolution.decisions, profile, &cx)
                .await?;
            self.deferred.push(touch);
        } else {
            ops.extend(share_ops(graph, &identifiers));
            ops.push(placement_op(graph, &identifiers, event, None));
            self.write(tx, event.workspace_id, ops).await?;
        }
        let merged = resolution
            .decisions
            .iter()
            .filter_map(|d| match d {
                seamline_core::identity::Decision::Merged {
                    survivor, absorbed, ..
                } => Some((ProfileId(*survivor), ProfileId(*absorbed), event.timestamp)),
                _ => None,
            })
            .collect();
        Ok(Placed { profile, merged })
    }

    /// Writes what the batch left unwritten. Call it before anything reads
    /// events' profiles or profiles' traits, and before the commit.
    pub async fn finish(&mut self, tx: &mut dyn IdentityTx) -> StoreResult<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        tx.apply(&in_runs(std::mem::take(&mut self.deferred))).await
    }

    /// Writes `ops` in order: the [`deferrable`] ones wait; any other first
    /// writes what waits.
    async fn write(
        &mut self,
        tx: &mut dyn IdentityTx,
        workspace: WorkspaceId,
        ops: Vec<IdentityOp>,
    ) -> StoreResult<()> {
        let mut now = Vec::new();
        for op in ops {
            if !deferrable(&op) {
                if now.is_empty() {
                    self.finish(tx).await?;
                }
                now.push(op);
                continue;
            }
            if !now.is_empty() {
                tx.apply(&std::mem::take(&mut now)).await?;
            }
            // A profile this batch creates is as its creation left it (its
            // key is a new event's id: nothing held it before).
            if let IdentityOp::CreateProfile { id, at } = &op {
                self.profiles.entry(*id).or_insert_with(|| Profile {
                    id: *id,
                    workspace_id: workspace,
                    first_seen: *at,
                    last_seen: *at,
                    traits: Map::new(),
                    trait_times: Map::new(),
                    merged_into: None,
                });
            }
            self.deferred.push(op);
        }
        if !now.is_empty() {
            tx.apply(&now).await?;
        }
        Ok(())
    }

    /// The target's traits and first/last seen after this event (and any
    /// profiles it absorbed), kept for the batch's next events.
    async fn touch_op(
        &mut self,
        tx: &mut dyn IdentityTx,
        decisions: &[seamline_core::identity::Decision],
        profile: ProfileId,
        cx: &EventContext<'_>,
    ) -> StoreResult<IdentityOp> {
        use seamline_core::identity::Decision;
        let absorbed: Vec<ProfileId> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Merged { absorbed, .. } => Some(ProfileId(*absorbed)),
                _ => None,
            })
            .collect();
        let unread: Vec<ProfileId> = std::iter::once(profile)
            .chain(absorbed.iter().copied())
            .filter(|p| !self.profiles.contains_key(p))
            .collect();
        if !unread.is_empty() {
            let read = tx.profiles(&unread).await?;
            self.profiles.extend(read.into_iter().map(|p| (p.id, p)));
        }
        let Some(mut target) = self.profiles.get(&profile).cloned() else {
            return Err(seamline_store::StoreError::NotFound("profile"));
        };
        for other in absorbed.iter().filter_map(|p| self.profiles.get(p)) {
            absorb_profile(&mut target, other);
        }
        merge_traits(&mut target, cx.traits, cx.at);
        // A login that claims a session's anonymous events was there since then.
        let claimed_since = decisions.iter().filter_map(|d| match d {
            Decision::Claimed { since, .. } => Some(*since),
            _ => None,
        });
        let first = claimed_since.fold(cx.at, DateTime::min);
        target.first_seen = target.first_seen.min(first);
        target.last_seen = target.last_seen.max(cx.at);
        let touch = IdentityOp::Touch {
            profile,
            first_seen: target.first_seen,
            last_seen: target.last_seen,
            traits: target.traits.clone(),
            trait_times: target.trait_times.clone(),
        };
        self.profiles.insert(profile, target);
        Ok(touch)
    }
}

/// Creations, identifiers owned, placements and touches: what a batch's
/// events mostly write, and none of it read back by the batch (which keeps
/// the graph and the profiles in memory), so it waits to be written as
/// sets. Any other write (sharing a device, a merge) first writes what
/// waits, keeping the order the ops depend on.
fn deferrable(op: &IdentityOp) -> bool {
    matches!(
        op,
        IdentityOp::CreateProfile { .. }
            | IdentityOp::Own { .. }
            | IdentityOp::Assign { .. }
            | IdentityOp::Touch { .. }
    )
}

/// What waits, as runs a store writes as sets: creations first (the rest
/// name the profiles), then identifiers, placements and touches, each run
/// keeping the last per identifier, event or profile, as writing them in
/// order would.
fn in_runs(mut deferred: Vec<IdentityOp>) -> Vec<IdentityOp> {
    deferred.sort_by_key(|op| match op {
        IdentityOp::CreateProfile { .. } => 0,
        IdentityOp::Own { .. } => 1,
        IdentityOp::Assign { .. } => 2,
        _ => 3,
    });
    deferred
}
