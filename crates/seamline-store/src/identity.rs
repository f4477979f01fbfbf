//! Profiles and the identity graph as stored.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use seamline_core::identity::{DeviceSession, Identifier, Snapshot};
use seamline_core::{EventId, ProfileId, WorkspaceId};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::StoreResult;

/// One person. `merged_into` is set once the profile was absorbed by another.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: ProfileId,
    pub workspace_id: WorkspaceId,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Latest value of each trait.
    pub traits: Map<String, Value>,
    /// When each trait got its latest value (latest wins by event time).
    #[serde(skip)]
    pub trait_times: Map<String, Value>,
    pub merged_into: Option<ProfileId>,
}

/// An identifier with the profile that holds it and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileIdentifier {
    #[serde(flatten)]
    pub identifier: Identifier,
    pub profile_id: ProfileId,
    pub first_seen: DateTime<Utc>,
    /// `track`, `import`, `manual`, or a channel name.
    pub source: String,
    pub source_event: Option<EventId>,
    /// A device seen with two people: it links nothing any more.
    pub shared: bool,
    /// For a shared device, the profile active on it in its current session.
    pub active_profile: Option<ProfileId>,
    /// For a shared device, its latest event.
    #[serde(skip)]
    pub session_last_at: Option<DateTime<Utc>>,
    /// For a shared device, the first event of its session left anonymous.
    #[serde(skip)]
    pub anonymous_since: Option<DateTime<Utc>>,
}

impl ProfileIdentifier {
    /// The session on this identifier, when it is a shared device.
    pub fn device_session(&self) -> Option<DeviceSession> {
        self.shared.then(|| DeviceSession {
            active: self.active_profile.map(|p| p.as_uuid()),
            last_at: self.session_last_at.unwrap_or(self.first_seen),
            anonymous_since: self.anonymous_since,
        })
    }
}

/// A snapshot's profiles (each once, in the given order, with its
/// identifiers in order) and the shared devices among them, from each
/// wanted profile's identifiers as a backend reads them: one entry per
/// identifier, or one `None` for a profile that holds none. Separations
/// are the caller's to add.
pub fn snapshot_of(held: impl IntoIterator<Item = (Uuid, Option<ProfileIdentifier>)>) -> Snapshot {
    let mut snapshot = Snapshot::default();
    for (profile, stored) in held {
        if snapshot
            .profiles
            .last()
            .is_none_or(|(last, _)| *last != profile)
        {
            snapshot.profiles.push((profile, Vec::new()));
        }
        let Some(stored) = stored else { continue };
        if let Some(session) = stored.device_session() {
            snapshot.shared.push((stored.identifier.clone(), session));
        }
        if let Some((_, identifiers)) = snapshot.profiles.last_mut() {
            identifiers.push(stored.identifier);
        }
    }
    snapshot
}

/// Why two profiles are one: a recorded, undoable fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergeRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub survivor: ProfileId,
    pub absorbed: ProfileId,
    /// The identifier both held (none for a merge by hand).
    pub via: Option<Identifier>,
    pub event_id: Option<EventId>,
    /// Who merged by hand (a member's e-mail); none for automatic merges.
    pub actor: Option<String>,
    pub at: DateTime<Utc>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// Two profiles an event linked but a guard kept apart, for review.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub profile: ProfileId,
    pub other: ProfileId,
    pub via: Identifier,
    pub reason: String,
    pub event_id: Option<EventId>,
    pub at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One write of an identity transaction; the server computes them from
/// the core's decisions, the store only executes them.
#[derive(Debug, Clone, PartialEq)]
pub enum IdentityOp {
    CreateProfile {
        id: ProfileId,
        at: DateTime<Utc>,
    },
    /// Insert or move an identifier to a profile.
    Own {
        identifier: Identifier,
        profile: ProfileId,
        at: DateTime<Utc>,
        source: String,
        event: Option<EventId>,
    },
    /// Marks a device shared, with its session now.
    Share {
        identifier: Identifier,
        session: DeviceSession,
    },
    /// The event belongs to nobody: it happened on these shared devices
    /// with nobody active (a later login in the session may claim it).
    LeaveAnonymous {
        event: EventId,
        seq: i64,
        at: DateTime<Utc>,
        devices: Vec<Identifier>,
    },
    /// The events left anonymous on `device` from `since` to `until` (a
    /// session up to its login) are `profile`'s.
    Claim {
        device: Identifier,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        profile: ProfileId,
    },
    /// Moves identifiers and events of `absorbed` to `survivor`, marks it merged.
    Absorb {
        survivor: ProfileId,
        absorbed: ProfileId,
    },
    /// Forgets a profile's identifiers and traits and revives it (before a replay).
    Reset {
        profile: ProfileId,
    },
    Merge(MergeRecord),
    Conflict(ConflictRecord),
    UndoMerge {
        id: Uuid,
        at: DateTime<Utc>,
    },
    Separate {
        a: ProfileId,
        b: ProfileId,
    },
    /// Event `seq` belongs to `profile` (insert or move).
    Assign {
        event: EventId,
        seq: i64,
        profile: ProfileId,
    },
    /// New trait values and times, and the profile's first/last seen.
    Touch {
        profile: ProfileId,
        traits: Map<String, Value>,
        trait_times: Map<String, Value>,
        first_seen: DateTime<Utc>,
        last_seen: DateTime<Utc>,
    },
}

/// How many of `ops`, from the first, a backend may write as one set:
/// a run of creations, of identifiers owned, of placements or of touches
/// (at least one op).
pub fn set_run(ops: &[IdentityOp]) -> usize {
    let same = |a: &IdentityOp, b: &IdentityOp| {
        matches!(
            (a, b),
            (
                IdentityOp::CreateProfile { .. },
                IdentityOp::CreateProfile { .. }
            ) | (IdentityOp::Own { .. }, IdentityOp::Own { .. })
                | (IdentityOp::Assign { .. }, IdentityOp::Assign { .. })
                | (IdentityOp::Touch { .. }, IdentityOp::Touch { .. })
        )
    };
    match ops.first() {
        Some(first) => ops.iter().take_while(|op| same(first, op)).count().max(1),
        None => 0,
    }
}

/// The profiles `ops` create, each once.
pub fn creations(ops: &[IdentityOp]) -> Vec<(ProfileId, DateTime<Utc>)> {
    let mut seen = std::collections::HashSet::new();
    ops.iter()
        .filter_map(|op| match op {
            IdentityOp::CreateProfile { id, at } if seen.insert(*id) => Some((*id, *at)),
            _ => None,
        })
        .collect()
}

/// An identifier's row as a run of [`IdentityOp::Own`] leaves it.
#[derive(Debug, Clone, PartialEq)]
pub struct Owned<'a> {
    pub identifier: &'a Identifier,
    /// The last owner.
    pub profile: ProfileId,
    /// When, how and by which event it was first seen: the first op's (a
    /// later op only moves the identifier).
    pub at: DateTime<Utc>,
    pub source: &'a str,
    pub event: Option<EventId>,
}

/// The identifiers among `ops` as writing them one by one leaves them: one
/// per identifier, in first-seen order.
pub fn owned(ops: &[IdentityOp]) -> Vec<Owned<'_>> {
    let mut rows: Vec<Owned<'_>> = Vec::new();
    let mut index: std::collections::HashMap<&Identifier, usize> = Default::default();
    for op in ops {
        let IdentityOp::Own {
            identifier,
            profile,
            at,
            source,
            event,
        } = op
        else {
            continue;
        };
        match index.get(identifier) {
            Some(&i) => rows[i].profile = *profile,
            None => {
                index.insert(identifier, rows.len());
                rows.push(Owned {
                    identifier,
                    profile: *profile,
                    at: *at,
                    source,
                    event: *event,
                });
            }
        }
    }
    rows
}

/// The placements among `ops` as writing them one by one leaves them: the
/// last per event.
pub fn placements(ops: &[IdentityOp]) -> Vec<(EventId, i64, ProfileId)> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<_> = ops
        .iter()
        .rev()
        .filter_map(|op| match op {
            IdentityOp::Assign {
                event,
                seq,
                profile,
            } if seen.insert(*event) => Some((*event, *seq, *profile)),
            _ => None,
        })
        .collect();
    last.reverse();
    last
}

/// The touches among `ops` as writing them one by one leaves them: the
/// last per profile (a touch writes the profile's whole state).
pub fn touches(ops: &[IdentityOp]) -> Vec<&IdentityOp> {
    let mut seen = std::collections::HashSet::new();
    let mut last: Vec<&IdentityOp> = ops
        .iter()
        .rev()
        .filter(|op| matches!(op, IdentityOp::Touch { profile, .. } if seen.insert(*profile)))
        .collect();
    last.reverse();
    last
}

/// A transaction over one workspace's identity graph. Resolutions of one
/// workspace are serialised (a lock held until commit), so concurrent
/// events on several instances end in one consistent graph.
#[async_trait]
pub trait IdentityTx: Send {
    /// The profiles holding any of `identifiers`, plus `profiles`, with all
    /// their identifiers, shared devices among them and their separations.
    async fn load(
        &mut self,
        identifiers: &[Identifier],
        profiles: &[ProfileId],
    ) -> StoreResult<Snapshot>;
    /// Which of `identifiers` were erased and may never link again.
    async fn erased(&mut self, identifiers: &[Identifier]) -> StoreResult<Vec<Identifier>>;
    async fn profiles(&mut self, ids: &[ProfileId]) -> StoreResult<Vec<Profile>>;
    /// Whether the event was already resolved (redelivery).
    async fn is_assigned(&mut self, event: EventId) -> StoreResult<bool>;
    async fn apply(&mut self, ops: &[IdentityOp]) -> StoreResult<()>;
    async fn commit(self: Box<Self>) -> StoreResult<()>;
}

/// A page of profiles, most recently seen first.
#[derive(Debug, Clone, Default)]
pub struct ProfileQuery {
    /// Profiles holding any of these identifiers.
    pub identifiers: Vec<Identifier>,
    /// Or whose identifier values or name contain this text.
    pub text: Option<String>,
    pub limit: u32,
    /// Continue after this (last_seen, id) position.
    pub after: Option<(DateTime<Utc>, ProfileId)>,
}

/// What the customer has agreed to, per purpose and channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsentRecord {
    pub id: Uuid,
    pub workspace_id: WorkspaceId,
    pub profile_id: ProfileId,
    /// `marketing`, `analytics` or `service`.
    pub purpose: String,
    /// `email`, `sms`, `whatsapp`, `telegram`, `viber`, `vk`, `calls`, or `any`.
    pub channel: String,
    pub granted: bool,
    /// Where it was given: `web_form`, `widget`, `sms_stop`, `operator`, `import`...
    pub source: String,
    /// The words the customer was shown.
    pub wording: String,
    pub at: DateTime<Utc>,
}
