//! The resolution rules, over an in-memory identity graph.
//!
//! An event's identifiers either find the profiles that hold them or start
//! a new one; profiles they bridge merge into the oldest, unless a guard
//! stops it:
//! - two profiles with different strong identifiers (user id, loyalty card)
//!   never merge: a conflict is recorded for people to review;
//! - a merge or an attachment that would exceed a kind's limit is refused;
//! - a cookie or device seen with a second strong identity is marked
//!   shared and links nothing from then on. Its later anonymous events go to
//!   the profile active in that session (the last strong identity seen on
//!   it, until the device is idle for the policy's session window); with
//!   nobody active they stay anonymous, and the person who logs in later in
//!   the same session claims them;
//! - profiles separated by hand (an unmerge) never merge again.
//!
//! Profile keys are supplied by the caller (the id of the event that created
//! the profile), so replaying the same events gives the same graph: that is
//! how an unmerge restores profiles exactly.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::identifier::{Identifier, IdentifierKind};
use super::policy::IdentityPolicy;

pub type ProfileKey = Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", content = "kind", rename_all = "snake_case")]
pub enum ConflictReason {
    /// Both profiles hold a different identifier of this strong kind.
    StrongIdentifiers(IdentifierKind),
    /// Together they would hold more of this kind than the limit allows.
    Limit(IdentifierKind),
    /// Someone separated them by hand.
    Separated,
}

/// One change the resolution made (or refused to make), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Created {
        profile: ProfileKey,
    },
    Attached {
        profile: ProfileKey,
        identifier: Identifier,
    },
    Merged {
        survivor: ProfileKey,
        absorbed: ProfileKey,
        via: Identifier,
    },
    Conflict {
        profile: ProfileKey,
        other: ProfileKey,
        via: Identifier,
        why: ConflictReason,
    },
    MarkedShared {
        identifier: Identifier,
    },
    Dropped {
        profile: ProfileKey,
        identifier: Identifier,
    },
    /// `profile` logged in on a shared device at `until`: the events left
    /// anonymous there from `since` (this session's) are theirs.
    Claimed {
        profile: ProfileKey,
        identifier: Identifier,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    },
}

/// The profile an event belongs to (none: it stays anonymous on a shared
/// device nobody is active on), and what resolving it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub profile: Option<ProfileKey>,
    pub decisions: Vec<Decision>,
}

/// The current session on a shared device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct DeviceSession {
    /// Who is using the device: the last strong identity seen on it while
    /// the session lasts.
    pub active: Option<ProfileKey>,
    /// The latest event on the device.
    pub last_at: DateTime<Utc>,
    /// The first event of this session left anonymous (nobody active yet).
    pub anonymous_since: Option<DateTime<Utc>>,
}

impl DeviceSession {
    fn lasts(&self, at: DateTime<Utc>, policy: &IdentityPolicy) -> bool {
        (at - self.last_at).abs() <= policy.shared_device_session()
    }
}

#[derive(Debug, Clone, Default)]
pub struct IdentityGraph {
    owner: HashMap<Identifier, ProfileKey>,
    members: HashMap<ProfileKey, Vec<Identifier>>,
    /// Shared identifiers and the session on each.
    shared: HashMap<Identifier, DeviceSession>,
    separated: HashSet<(ProfileKey, ProfileKey)>,
}

fn pair(a: ProfileKey, b: ProfileKey) -> (ProfileKey, ProfileKey) {
    if a < b {
        (a, b)
    } else {
        (b, a)
    }
}

/// The part of a graph that one resolution needs: the profiles it may
/// touch, with all their identifiers, and the shared devices and
/// separations among them. The store loads it; the graph resolves on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub profiles: Vec<(ProfileKey, Vec<Identifier>)>,
    /// Shared identifiers and the session on each.
    pub shared: Vec<(Identifier, DeviceSession)>,
    pub separated: Vec<(ProfileKey, ProfileKey)>,
}

impl IdentityGraph {
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let mut graph = Self::default();
        for (profile, identifiers) in snapshot.profiles {
            for id in &identifiers {
                graph.owner.insert(id.clone(), profile);
            }
            graph
                .members
                .entry(profile)
                .or_default()
                .extend(identifiers);
        }
        graph.shared.extend(snapshot.shared);
        for (a, b) in snapshot.separated {
            graph.separate(a, b);
        }
        graph
    }

    /// The session on a shared identifier.
    pub fn session_on(&self, identifier: &Identifier) -> Option<DeviceSession> {
        self.shared.get(identifier).copied()
    }

    pub fn profile_of(&self, identifier: &Identifier) -> Option<ProfileKey> {
        self.owner.get(identifier).copied()
    }

    pub fn identifiers(&self, profile: ProfileKey) -> &[Identifier] {
        self.members.get(&profile).map_or(&[], Vec::as_slice)
    }

    pub fn profiles(&self) -> impl Iterator<Item = ProfileKey> + '_ {
        self.members.keys().copied()
    }

    pub fn profile_count(&self) -> usize {
        self.members.len()
    }

    pub fn is_shared(&self, identifier: &Identifier) -> bool {
        self.shared.contains_key(identifier)
    }

    /// Keeps `a` and `b` apart from now on.
    pub fn separate(&mut self, a: ProfileKey, b: ProfileKey) {
        self.separated.insert(pair(a, b));
    }

    /// Resolves the identifiers of one event that happened `at`.
    /// `new_profile` is the key a profile created by this event gets.
    pub fn resolve(
        &mut self,
        identifiers: &[Identifier],
        new_profile: ProfileKey,
        at: DateTime<Utc>,
        policy: &IdentityPolicy,
    ) -> Resolution {
        let mut decisions = Vec::new();
        let strong: Vec<&Identifier> = identifiers.iter().filter(|i| i.kind.is_strong()).collect();
        let (linking, shared) = self.split_shared(identifiers, &strong, at, &mut decisions);
        let mut candidates: Vec<ProfileKey> = Vec::new();
        for id in &linking {
            if let Some(p) = self.profile_of(id) {
                if !candidates.contains(&p) {
                    candidates.push(p);
                }
            }
        }
        // On a shared device, an event nobody else claims belongs to the
        // person of the session, if there is one.
        let active = shared.iter().find_map(|id| {
            self.shared
                .get(*id)
                .filter(|s| s.lasts(at, policy))
                .and_then(|s| s.active)
        });
        let target = if !candidates.is_empty() {
            Some(self.merge_candidates(candidates, &linking, &strong, policy, &mut decisions))
        } else if let Some(active) = active.filter(|_| strong.is_empty()) {
            Some(active)
        } else if linking.is_empty() {
            None
        } else {
            Some(self.create(new_profile, &mut decisions))
        };
        if let Some(target) = target {
            for id in &linking {
                if !self.owner.contains_key(*id) {
                    self.attach(target, id, policy, &mut decisions);
                }
            }
        }
        // A login, the session's person and an anonymous event move the
        // session on; an event another identifier placed leaves it alone.
        if !strong.is_empty() || target.is_none() || target == active {
            for id in shared {
                self.continue_session(id, target, at, policy, &mut decisions);
            }
        }
        Resolution {
            profile: target,
            decisions,
        }
    }

    /// Moves the session on a shared device on by one event whose person is
    /// `person` (none: the event stays anonymous). A known person arriving
    /// after anonymous events of the same session claims them.
    fn continue_session(
        &mut self,
        device: &Identifier,
        person: Option<ProfileKey>,
        at: DateTime<Utc>,
        policy: &IdentityPolicy,
        decisions: &mut Vec<Decision>,
    ) {
        let Some(session) = self.shared.get_mut(device) else {
            return;
        };
        let lasts = session.lasts(at, policy);
        match person {
            Some(person) => {
                if let Some(since) = session.anonymous_since.filter(|_| lasts) {
                    decisions.push(Decision::Claimed {
                        profile: person,
                        identifier: device.clone(),
                        since,
                        until: at,
                    });
                }
                session.active = Some(person);
                session.anonymous_since = None;
            }
            None => {
                session.active = None;
                if !lasts || session.anonymous_since.is_none() {
                    session.anonymous_since = Some(at);
                }
            }
        }
        session.last_at = session.last_at.max(at);
    }

    /// Splits off identifiers that are (or now become) shared devices.
    fn split_shared<'a>(
        &mut self,
        identifiers: &'a [Identifier],
        strong: &[&Identifier],
        at: DateTime<Utc>,
        decisions: &mut Vec<Decision>,
    ) -> (Vec<&'a Identifier>, Vec<&'a Identifier>) {
        let mut linking = Vec::new();
        let mut shared = Vec::new();
        for id in identifiers {
            if self.shared.contains_key(id) {
                shared.push(id);
                continue;
            }
            let owner = self.profile_of(id).filter(|_| id.kind.is_shareable());
            if let Some(owner) = owner.filter(|p| strong.iter().any(|s| self.holds_other(*p, s))) {
                let session = DeviceSession {
                    active: Some(owner),
                    last_at: at,
                    anonymous_since: None,
                };
                self.shared.insert(id.clone(), session);
                decisions.push(Decision::MarkedShared {
                    identifier: id.clone(),
                });
                shared.push(id);
                continue;
            }
            linking.push(id);
        }
        (linking, shared)
    }

    /// Does `profile` hold a different value of `strong`'s kind?
    fn holds_other(&self, profile: ProfileKey, strong: &Identifier) -> bool {
        self.identifiers(profile)
            .iter()
            .any(|i| i.kind == strong.kind && i.value != strong.value)
    }

    fn create(&mut self, profile: ProfileKey, decisions: &mut Vec<Decision>) -> ProfileKey {
        self.members.entry(profile).or_default();
        decisions.push(Decision::Created { profile });
        profile
    }

    /// Merges the bridged profiles into one target and returns it: the
    /// profile holding the event's strong identifier, else the oldest.
    fn merge_candidates(
        &mut self,
        mut candidates: Vec<ProfileKey>,
        linking: &[&Identifier],
        strong: &[&Identifier],
        policy: &IdentityPolicy,
        decisions: &mut Vec<Decision>,
    ) -> ProfileKey {
        let owns_strong =
            |g: &Self, p: ProfileKey| strong.iter().any(|s| g.profile_of(s) == Some(p));
        candidates.sort_by_key(|p| (!owns_strong(self, *p), *p));
        let target = candidates[0];
        for other in candidates.into_iter().skip(1) {
            let Some(via) = linking.iter().find(|id| self.profile_of(id) == Some(other)) else {
                continue;
            };
            let via = (*via).clone();
            match self.merge_blocker(target, other, policy) {
                Some(why) => decisions.push(Decision::Conflict {
                    profile: target,
                    other,
                    via,
                    why,
                }),
                None => {
                    self.absorb(target, other);
                    decisions.push(Decision::Merged {
                        survivor: target,
                        absorbed: other,
                        via,
                    });
                }
            }
        }
        target
    }

    fn merge_blocker(
        &self,
        a: ProfileKey,
        b: ProfileKey,
        policy: &IdentityPolicy,
    ) -> Option<ConflictReason> {
        if self.separated.contains(&pair(a, b)) {
            return Some(ConflictReason::Separated);
        }
        let (ids_a, ids_b) = (self.identifiers(a), self.identifiers(b));
        for strong in ids_a.iter().filter(|i| i.kind.is_strong()) {
            if ids_b
                .iter()
                .any(|o| o.kind == strong.kind && o.value != strong.value)
            {
                return Some(ConflictReason::StrongIdentifiers(strong.kind.clone()));
            }
        }
        let mut kinds: Vec<&IdentifierKind> = ids_a.iter().chain(ids_b).map(|i| &i.kind).collect();
        kinds.sort();
        kinds.dedup();
        kinds.into_iter().find_map(|kind| {
            let count = ids_a
                .iter()
                .chain(ids_b)
                .filter(|i| &i.kind == kind)
                .count();
            (count > policy.limit(kind)).then(|| ConflictReason::Limit(kind.clone()))
        })
    }

    /// Moves everything of `absorbed` into `survivor`.
    fn absorb(&mut self, survivor: ProfileKey, absorbed: ProfileKey) {
        let moved = self.members.remove(&absorbed).unwrap_or_default();
        for id in &moved {
            self.owner.insert(id.clone(), survivor);
        }
        self.members.entry(survivor).or_default().extend(moved);
        for session in self.shared.values_mut() {
            if session.active == Some(absorbed) {
                session.active = Some(survivor);
            }
        }
        let rekeyed: Vec<_> = self
            .separated
            .iter()
            .filter(|(a, b)| *a == absorbed || *b == absorbed)
            .copied()
            .collect();
        for (a, b) in rekeyed {
            self.separated.remove(&(a, b));
            let other = if a == absorbed { b } else { a };
            self.separated.insert(pair(survivor, other));
        }
    }

    fn attach(
        &mut self,
        profile: ProfileKey,
        id: &Identifier,
        policy: &IdentityPolicy,
        decisions: &mut Vec<Decision>,
    ) {
        let held = self
            .identifiers(profile)
            .iter()
            .filter(|i| i.kind == id.kind)
            .count();
        if held >= policy.limit(&id.kind) {
            decisions.push(Decision::Dropped {
                profile,
                identifier: id.clone(),
            });
            return;
        }
        self.owner.insert(id.clone(), profile);
        self.members.entry(profile).or_default().push(id.clone());
        decisions.push(Decision::Attached {
            profile,
            identifier: id.clone(),
        });
    }
}

#[cfg(test)]
mod tests;
