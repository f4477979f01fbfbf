//! From the core's decisions to the store's writes.

use chrono::{DateTime, Utc};
use seamline_core::identity::{Decision, Identifier, IdentityGraph};
use seamline_core::{EventId, ProfileId};
use seamline_store::{ConflictRecord, IdentityOp, MergeRecord, Profile};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What one resolved event writes.
pub struct EventContext<'a> {
    pub workspace: seamline_core::WorkspaceId,
    pub event: EventId,
    pub at: DateTime<Utc>,
    pub source: &'a str,
    pub traits: &'a Map<String, Value>,
}

pub fn decision_ops(decisions: &[Decision], cx: &EventContext<'_>) -> Vec<IdentityOp> {
    decisions
        .iter()
        .filter_map(|d| decision_op(d, cx))
        .flatten()
        .collect()
}

fn decision_op(decision: &Decision, cx: &EventContext<'_>) -> Option<Vec<IdentityOp>> {
    Some(match decision {
        Decision::Created { profile } => vec![IdentityOp::CreateProfile {
            id: ProfileId(*profile),
            at: cx.at,
        }],
        Decision::Attached {
            profile,
            identifier,
        } => vec![IdentityOp::Own {
            identifier: identifier.clone(),
            profile: ProfileId(*profile),
            at: cx.at,
            source: cx.source.to_owned(),
            event: Some(cx.event),
        }],
        Decision::Merged {
            survivor,
            absorbed,
            via,
        } => vec![
            IdentityOp::Absorb {
                survivor: ProfileId(*survivor),
                absorbed: ProfileId(*absorbed),
            },
            IdentityOp::Merge(MergeRecord {
                id: Uuid::now_v7(),
                workspace_id: cx.workspace,
                survivor: ProfileId(*survivor),
                absorbed: ProfileId(*absorbed),
                via: Some(via.clone()),
                event_id: Some(cx.event),
                actor: None,
                at: cx.at,
                undone_at: None,
            }),
        ],
        Decision::Conflict {
            profile,
            other,
            via,
            why,
        } => vec![IdentityOp::Conflict(ConflictRecord {
            id: Uuid::now_v7(),
            workspace_id: cx.workspace,
            profile: ProfileId(*profile),
            other: ProfileId(*other),
            via: via.clone(),
            reason: serde_json::to_value(why)
                .map(|v| reason_text(&v))
                .unwrap_or_default(),
            event_id: Some(cx.event),
            at: cx.at,
            resolved_at: None,
        })],
        Decision::Claimed {
            profile,
            identifier,
            since,
            until,
        } => vec![IdentityOp::Claim {
            device: identifier.clone(),
            since: *since,
            until: *until,
            profile: ProfileId(*profile),
        }],
        Decision::MarkedShared { .. } | Decision::Dropped { .. } => return None,
    })
}

/// `{"reason": "strong_identifiers", "kind": "user_id"}` → `strong_identifiers:user_id`.
fn reason_text(value: &Value) -> String {
    let reason = value["reason"].as_str().unwrap_or("conflict");
    match value["kind"].as_str() {
        Some(kind) => format!("{reason}:{kind}"),
        None => reason.to_owned(),
    }
}

/// The shared devices among `identifiers` and their sessions now.
pub fn share_ops(graph: &IdentityGraph, identifiers: &[Identifier]) -> Vec<IdentityOp> {
    identifiers
        .iter()
        .filter_map(|id| {
            graph.session_on(id).map(|session| IdentityOp::Share {
                identifier: id.clone(),
                session,
            })
        })
        .collect()
}

/// Where the resolved event goes: onto its profile, or left anonymous on
/// the shared devices it happened on.
pub fn placement_op(
    graph: &IdentityGraph,
    identifiers: &[Identifier],
    event: &seamline_store::StoredEvent,
    profile: Option<ProfileId>,
) -> IdentityOp {
    match profile {
        Some(profile) => IdentityOp::Assign {
            event: event.id,
            seq: event.seq,
            profile,
        },
        None => IdentityOp::LeaveAnonymous {
            event: event.id,
            seq: event.seq,
            at: event.timestamp,
            devices: identifiers
                .iter()
                .filter(|id| graph.is_shared(id))
                .cloned()
                .collect(),
        },
    }
}

/// Latest-wins traits: merges `newer` into `into`, each value kept when
/// its time is not older than what is there.
pub fn merge_traits(into: &mut Profile, traits: &Map<String, Value>, at: DateTime<Utc>) {
    let at_text = Value::String(at.to_rfc3339());
    for (key, value) in traits {
        let newer = into
            .trait_times
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .is_none_or(|held| held.with_timezone(&Utc) <= at);
        if newer {
            into.traits.insert(key.clone(), value.clone());
            into.trait_times.insert(key.clone(), at_text.clone());
        }
    }
}

/// Folds an absorbed profile's traits and times into the survivor's.
pub fn absorb_profile(survivor: &mut Profile, absorbed: &Profile) {
    for (key, value) in &absorbed.traits {
        let at = absorbed
            .trait_times
            .get(key)
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or(absorbed.first_seen, |t| t.with_timezone(&Utc));
        merge_traits(
            survivor,
            &Map::from_iter([(key.clone(), value.clone())]),
            at,
        );
    }
    survivor.first_seen = survivor.first_seen.min(absorbed.first_seen);
    survivor.last_seen = survivor.last_seen.max(absorbed.last_seen);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn profile() -> Profile {
        let t = Utc
            .with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        Profile {
            id: ProfileId(Uuid::nil()),
            workspace_id: seamline_core::WorkspaceId(Uuid::nil()),
            first_seen: t,
            last_seen: t,
            traits: Map::new(),
            trait_times: Map::new(),
            merged_into: None,
        }
    }

    #[test]
    fn the_latest_trait_wins_by_event_time_not_arrival() {
        let mut p = profile();
        let noon = Utc
            .with_ymd_and_hms(2024, 5, 1, 12, 0, 0)
            .single()
            .expect("time");
        let morning = Utc
            .with_ymd_and_hms(2024, 5, 1, 8, 0, 0)
            .single()
            .expect("time");
        merge_traits(
            &mut p,
            json!({"name": "Оля"}).as_object().expect("object"),
            noon,
        );
        merge_traits(
            &mut p,
            json!({"name": "Ольга", "city": "Москва"})
                .as_object()
                .expect("object"),
            morning,
        );
        assert_eq!(p.traits["name"], "Оля", "an older event does not overwrite");
        assert_eq!(p.traits["city"], "Москва", "but adds what was missing");
    }
}
