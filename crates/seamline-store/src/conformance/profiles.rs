//! The [`ProfileStore`] half of the suite: the identity transaction and
//! every [`IdentityOp`], profile reads, consent, erasure and isolation.
//! What no trait method can show (that an erased person's values are gone
//! from every table) the backend's test proves through a [`RawScan`].

use std::collections::BTreeSet;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use seamline_core::identity::{DeviceSession, Identifier, IdentifierKind, Snapshot};
use seamline_core::tracking::{EventType, TrackedEvent};
use seamline_core::{EventId, ProfileId, WorkspaceId};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{new_event, new_workspace, tracked};
use crate::*;

/// Raw access to a backend's tables, for the checks that must look past
/// the trait: implemented by each backend's test.
#[async_trait]
pub trait RawScan: Send + Sync {
    /// `table.column` of every stored value, in every table and workspace,
    /// whose text form contains `needle` (one entry per matching row).
    async fn find_text(&self, needle: &str) -> Vec<String>;
}

/// Runs every profile check, in order, against `store`.
pub async fn run_profile_suite<S: Store + ProfileStore>(store: &S, scan: &dyn RawScan) {
    identity_tx_creates_profiles_and_owns_identifiers(store).await;
    load_returns_owners_shared_devices_and_separations(store).await;
    absorb_moves_everything_to_the_survivor(store).await;
    reset_empties_and_revives_a_profile(store).await;
    touch_round_trips_traits_and_times(store).await;
    touches_written_together_leave_the_last_per_profile(store).await;
    creations_and_identifiers_written_together_end_as_in_order(store).await;
    merges_are_recorded_and_undone(store).await;
    conflicts_stay_open_until_resolved(store).await;
    uncommitted_identity_transactions_leave_nothing(store).await;
    identity_transactions_of_a_workspace_are_serialised(store).await;
    profiles_are_listed_searched_and_paged(store).await;
    profile_timelines_filter_and_page(store).await;
    consent_history_is_kept_in_order(store).await;
    erasure_scrubs_the_person_everywhere(store, scan).await;
    profiles_of_one_workspace_are_invisible_to_another(store).await;
    a_login_claims_the_events_left_anonymous_in_its_session(store).await;
}

/// A fixed time, `n` seconds after a base (millisecond precision).
fn t(n: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_700_000_000_000 + n * 1000)
        .single()
        .expect("valid time")
}

fn pid() -> ProfileId {
    ProfileId(Uuid::now_v7())
}

fn ident(kind: IdentifierKind, value: impl Into<String>) -> Identifier {
    Identifier {
        kind,
        value: value.into(),
    }
}

fn create(id: ProfileId, at: DateTime<Utc>) -> IdentityOp {
    IdentityOp::CreateProfile { id, at }
}

fn own(identifier: &Identifier, profile: ProfileId, at: DateTime<Utc>) -> IdentityOp {
    IdentityOp::Own {
        identifier: identifier.clone(),
        profile,
        at,
        source: "track".into(),
        event: None,
    }
}

fn touch(profile: ProfileId, traits: Value, seen: (DateTime<Utc>, DateTime<Utc>)) -> IdentityOp {
    let Value::Object(traits) = traits else {
        panic!("traits are an object")
    };
    let trait_times = traits
        .keys()
        .map(|k| (k.clone(), json!(seen.1.to_rfc3339())))
        .collect();
    IdentityOp::Touch {
        profile,
        traits,
        trait_times,
        first_seen: seen.0,
        last_seen: seen.1,
    }
}

fn assign(event: &StoredEvent, profile: ProfileId) -> IdentityOp {
    IdentityOp::Assign {
        event: event.id,
        seq: event.seq,
        profile,
    }
}

/// Applies `ops` in one identity transaction and commits.
async fn apply<P: ProfileStore + ?Sized>(store: &P, ws: WorkspaceId, ops: &[IdentityOp]) {
    let mut tx = store.begin_identity(ws).await.expect("begin identity");
    tx.apply(ops).await.expect("apply");
    tx.commit().await.expect("commit");
}

/// `load` in a transaction of its own.
async fn load<P: ProfileStore + ?Sized>(
    store: &P,
    ws: WorkspaceId,
    identifiers: &[Identifier],
    profiles: &[ProfileId],
) -> Snapshot {
    let mut tx = store.begin_identity(ws).await.expect("begin identity");
    let snapshot = tx.load(identifiers, profiles).await.expect("load");
    tx.commit().await.expect("commit");
    snapshot
}

/// The session a test's [`share`] leaves on a device.
fn session_of(active: ProfileId) -> DeviceSession {
    DeviceSession {
        active: Some(active.as_uuid()),
        last_at: t(3),
        anonymous_since: None,
    }
}

/// Marks `device` shared with `active` on it.
fn share(device: &Identifier, active: ProfileId) -> IdentityOp {
    IdentityOp::Share {
        identifier: device.clone(),
        session: session_of(active),
    }
}

/// A snapshot in one canonical order, each separation once.
fn canonical(mut s: Snapshot) -> Snapshot {
    for (_, ids) in &mut s.profiles {
        ids.sort();
    }
    s.profiles.sort();
    s.shared.sort();
    s.separated.sort();
    s.separated.dedup();
    s
}

fn pair(a: ProfileId, b: ProfileId) -> (Uuid, Uuid) {
    let (a, b) = (a.as_uuid(), b.as_uuid());
    (a.min(b), a.max(b))
}

fn all_events(limit: u32) -> EventQuery {
    EventQuery {
        limit,
        ..EventQuery::default()
    }
}

fn all_profiles() -> ProfileQuery {
    ProfileQuery {
        limit: 1000,
        ..ProfileQuery::default()
    }
}

/// Appends `events` and returns them as stored, in input order.
async fn append<S: Store + ?Sized>(
    store: &S,
    ws: WorkspaceId,
    events: Vec<TrackedEvent>,
) -> Vec<StoredEvent> {
    let new: Vec<NewEvent> = events.into_iter().map(|e| new_event(ws, e)).collect();
    assert!(store
        .append_events(&new)
        .await
        .expect("append")
        .into_iter()
        .all(|stored| stored));
    let stored = store
        .list_events(ws, &all_events(10_000))
        .await
        .expect("list");
    new.iter()
        .map(|n| {
            stored
                .iter()
                .find(|s| s.id == n.id)
                .cloned()
                .expect("appended event is listed")
        })
        .collect()
}

fn event_at(
    message_id: &str,
    kind: EventType,
    user: Option<&str>,
    at: DateTime<Utc>,
) -> TrackedEvent {
    let mut event = tracked(message_id, kind, user, None);
    event.timestamp = at;
    event
}

fn ids(profiles: &[Profile]) -> Vec<ProfileId> {
    profiles.iter().map(|p| p.id).collect()
}

fn event_ids(events: &[StoredEvent]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

async fn held<P: ProfileStore + ?Sized>(
    store: &P,
    ws: WorkspaceId,
    profile: ProfileId,
) -> BTreeSet<Identifier> {
    store
        .profile_identifiers(ws, profile)
        .await
        .expect("identifiers")
        .into_iter()
        .map(|i| {
            assert_eq!(i.profile_id, profile);
            i.identifier
        })
        .collect()
}

async fn must_profile<P: ProfileStore + ?Sized>(
    store: &P,
    ws: WorkspaceId,
    id: ProfileId,
) -> Profile {
    store
        .profile(ws, id)
        .await
        .expect("read profile")
        .unwrap_or_else(|| panic!("profile {id} exists"))
}

pub async fn identity_tx_creates_profiles_and_owns_identifiers<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (olga, ivan) = (pid(), pid());
    let source_event = EventId(Uuid::now_v7());
    let email = ident(IdentifierKind::Email, "olga@example.test");
    let phone = ident(IdentifierKind::Phone, "+79161234567");
    let crm = ident(IdentifierKind::Custom("custom:crm_id".into()), "CRM-42");
    let user = ident(IdentifierKind::UserId, "ivan-1");
    apply(
        store,
        ws.id,
        &[
            create(olga, t(0)),
            create(ivan, t(1)),
            IdentityOp::Own {
                identifier: email.clone(),
                profile: olga,
                at: t(0),
                source: "track".into(),
                event: Some(source_event),
            },
            IdentityOp::Own {
                identifier: phone.clone(),
                profile: olga,
                at: t(1),
                source: "import".into(),
                event: None,
            },
            IdentityOp::Own {
                identifier: crm.clone(),
                profile: olga,
                at: t(2),
                source: "manual".into(),
                event: None,
            },
            own(&user, ivan, t(1)),
        ],
    )
    .await;

    let expected_olga = Profile {
        id: olga,
        workspace_id: ws.id,
        first_seen: t(0),
        last_seen: t(0),
        traits: Map::new(),
        trait_times: Map::new(),
        merged_into: None,
    };
    assert_eq!(must_profile(store, ws.id, olga).await, expected_olga);
    let stored = store
        .profile_identifiers(ws.id, olga)
        .await
        .expect("identifiers");
    let expected = vec![
        ProfileIdentifier {
            identifier: email.clone(),
            profile_id: olga,
            first_seen: t(0),
            source: "track".into(),
            source_event: Some(source_event),
            shared: false,
            active_profile: None,
            session_last_at: None,
            anonymous_since: None,
        },
        ProfileIdentifier {
            identifier: phone.clone(),
            profile_id: olga,
            first_seen: t(1),
            source: "import".into(),
            source_event: None,
            shared: false,
            active_profile: None,
            session_last_at: None,
            anonymous_since: None,
        },
        ProfileIdentifier {
            identifier: crm.clone(),
            profile_id: olga,
            first_seen: t(2),
            source: "manual".into(),
            source_event: None,
            shared: false,
            active_profile: None,
            session_last_at: None,
            anonymous_since: None,
        },
    ];
    assert_eq!(stored, expected, "every field round-trips, oldest first");

    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    let profiles = tx.profiles(&[ivan, pid(), olga]).await.expect("profiles");
    assert_eq!(
        ids(&profiles),
        [ivan, olga],
        "found ones, in the order asked"
    );
    assert_eq!(profiles[1], expected_olga);
    let by_email = tx
        .load(std::slice::from_ref(&email), &[])
        .await
        .expect("load");
    assert_eq!(
        canonical(by_email),
        canonical(Snapshot {
            profiles: vec![(
                olga.as_uuid(),
                vec![email.clone(), phone.clone(), crm.clone()]
            )],
            ..Snapshot::default()
        }),
        "the owner comes with all its identifiers"
    );
    let both = tx
        .load(&[user.clone(), phone.clone()], &[])
        .await
        .expect("load");
    assert_eq!(
        canonical(both),
        canonical(Snapshot {
            profiles: vec![
                (
                    olga.as_uuid(),
                    vec![email.clone(), phone.clone(), crm.clone()]
                ),
                (ivan.as_uuid(), vec![user.clone()]),
            ],
            ..Snapshot::default()
        })
    );
    let by_profile = tx.load(&[], &[ivan]).await.expect("load");
    assert_eq!(
        by_profile.profiles,
        vec![(ivan.as_uuid(), vec![user.clone()])]
    );
    let unknown = ident(IdentifierKind::Email, "nobody@example.test");
    assert_eq!(
        tx.load(&[unknown], &[]).await.expect("load"),
        Snapshot::default()
    );
    tx.commit().await.expect("commit");

    // Owning a held identifier moves it; when it was first seen stays.
    apply(
        store,
        ws.id,
        &[IdentityOp::Own {
            identifier: phone.clone(),
            profile: ivan,
            at: t(9),
            source: "sms".into(),
            event: None,
        }],
    )
    .await;
    assert_eq!(held(store, ws.id, olga).await, BTreeSet::from([email, crm]));
    let ivans = store
        .profile_identifiers(ws.id, ivan)
        .await
        .expect("identifiers");
    let moved = ivans
        .iter()
        .find(|i| i.identifier == phone)
        .expect("phone moved");
    assert_eq!(moved.profile_id, ivan);
    assert_eq!(moved.first_seen, t(1));
    assert_eq!(ivans.len(), 2);
}

pub async fn load_returns_owners_shared_devices_and_separations<S: Store + ProfileStore>(
    store: &S,
) {
    let (ws, _, _) = new_workspace(store).await;
    let (a, b, c) = (pid(), pid(), pid());
    let cookie = ident(IdentifierKind::AnonymousId, "cookie-1");
    let (ua, ub) = (
        ident(IdentifierKind::UserId, "user-a"),
        ident(IdentifierKind::UserId, "user-b"),
    );
    apply(
        store,
        ws.id,
        &[
            create(a, t(0)),
            create(b, t(0)),
            create(c, t(0)),
            own(&cookie, a, t(0)),
            own(&ua, a, t(1)),
            own(&ub, b, t(2)),
            share(&cookie, b),
            IdentityOp::Separate { a: c, b: a },
            IdentityOp::Separate { a, b: c },
        ],
    )
    .await;

    let on_a = store
        .profile_identifiers(ws.id, a)
        .await
        .expect("identifiers");
    let shared = on_a
        .iter()
        .find(|i| i.identifier == cookie)
        .expect("cookie");
    assert!(shared.shared);
    assert_eq!(shared.active_profile, Some(b));
    assert_eq!(
        shared.profile_id, a,
        "a shared device stays with its holder"
    );

    let snapshot = load(store, ws.id, std::slice::from_ref(&cookie), &[]).await;
    assert_eq!(
        canonical(snapshot),
        canonical(Snapshot {
            profiles: vec![
                (a.as_uuid(), vec![cookie.clone(), ua.clone()]),
                (b.as_uuid(), vec![ub.clone()]),
            ],
            shared: vec![(cookie.clone(), session_of(b))],
            separated: vec![pair(a, c)],
        }),
        "the holder and the profile active on the device, with a's separation"
    );
    let snapshot = load(store, ws.id, &[], &[c]).await;
    assert_eq!(snapshot.profiles, vec![(c.as_uuid(), vec![])]);
    assert_eq!(
        snapshot.separated,
        vec![pair(a, c)],
        "a separation is one ordered pair, whichever way it was given"
    );

    // Owning a shared device again makes it an ordinary identifier.
    apply(store, ws.id, &[own(&cookie, b, t(5))]).await;
    let on_b = store
        .profile_identifiers(ws.id, b)
        .await
        .expect("identifiers");
    let owned = on_b
        .iter()
        .find(|i| i.identifier == cookie)
        .expect("cookie");
    assert!(!owned.shared);
    assert_eq!(owned.active_profile, None);
    assert!(load(store, ws.id, &[cookie], &[]).await.shared.is_empty());
}

pub async fn absorb_moves_everything_to_the_survivor<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    // Absorbed < separated-from < survivor, so the rekeyed pair has to be
    // re-ordered: (absorbed, x) becomes (x, survivor).
    let mut sorted: Vec<ProfileId> = (0..3).map(|_| pid()).collect();
    sorted.sort();
    let (absorbed, x, survivor) = (sorted[0], sorted[1], sorted[2]);
    let (earlier, y) = (pid(), pid());
    let a_email = ident(IdentifierKind::Email, "a@example.test");
    let e_email = ident(IdentifierKind::Email, "earlier@example.test");
    let s_user = ident(IdentifierKind::UserId, "survivor");
    let device = ident(IdentifierKind::DeviceId, "tablet-1");
    let events = append(
        store,
        ws.id,
        vec![
            event_at("abs-1", EventType::Track, None, t(1)),
            event_at("abs-2", EventType::Track, None, t(2)),
            event_at("abs-3", EventType::Track, None, t(3)),
        ],
    )
    .await;
    let [on_earlier, on_absorbed, on_survivor] = &events[..] else {
        panic!("three events")
    };
    apply(
        store,
        ws.id,
        &[
            create(absorbed, t(0)),
            create(x, t(0)),
            create(survivor, t(0)),
            create(earlier, t(0)),
            create(y, t(0)),
            own(&a_email, absorbed, t(0)),
            own(&e_email, earlier, t(0)),
            own(&s_user, survivor, t(0)),
            own(&device, x, t(0)),
            share(&device, earlier),
            assign(on_earlier, earlier),
            assign(on_absorbed, absorbed),
            assign(on_survivor, survivor),
            IdentityOp::Separate { a: absorbed, b: x },
            IdentityOp::Separate { a: absorbed, b: y },
            IdentityOp::Separate { a: survivor, b: y },
            IdentityOp::Separate { a: earlier, b: y },
            // `earlier` merges into `absorbed` first.
            IdentityOp::Absorb {
                survivor: absorbed,
                absorbed: earlier,
            },
        ],
    )
    .await;
    assert_eq!(
        must_profile(store, ws.id, earlier).await.merged_into,
        Some(absorbed)
    );
    assert_eq!(
        held(store, ws.id, absorbed).await,
        BTreeSet::from([a_email.clone(), e_email.clone()])
    );

    apply(store, ws.id, &[IdentityOp::Absorb { survivor, absorbed }]).await;

    for gone in [absorbed, earlier] {
        assert_eq!(
            must_profile(store, ws.id, gone).await.merged_into,
            Some(survivor),
            "merged into the survivor, also what was merged into the absorbed"
        );
        assert!(held(store, ws.id, gone).await.is_empty());
        assert!(store
            .profile_events(ws.id, gone, &all_events(100))
            .await
            .expect("timeline")
            .is_empty());
    }
    assert_eq!(must_profile(store, ws.id, survivor).await.merged_into, None);
    assert_eq!(
        held(store, ws.id, survivor).await,
        BTreeSet::from([a_email, e_email, s_user])
    );
    let timeline = store
        .profile_events(ws.id, survivor, &all_events(100))
        .await
        .expect("timeline");
    assert_eq!(
        event_ids(&timeline),
        [on_survivor.id, on_absorbed.id, on_earlier.id],
        "the events moved along, newest first"
    );
    let tablet = store
        .profile_identifiers(ws.id, x)
        .await
        .expect("identifiers");
    assert_eq!(
        tablet[0].active_profile,
        Some(survivor),
        "the device's active profile too"
    );

    let snapshot = load(store, ws.id, &[], &[survivor]).await;
    assert_eq!(
        canonical(snapshot).separated,
        canonical(Snapshot {
            separated: vec![pair(x, survivor), pair(survivor, y)],
            ..Snapshot::default()
        })
        .separated,
        "separations rekeyed to the survivor, each pair once"
    );
    assert_eq!(
        load(store, ws.id, &[], &[x]).await.separated,
        vec![(x.as_uuid(), survivor.as_uuid())],
        "a rekeyed pair is stored ordered"
    );
    apply(store, ws.id, &[IdentityOp::Separate { a: survivor, b: x }]).await;
    assert_eq!(
        load(store, ws.id, &[], &[x]).await.separated,
        vec![(x.as_uuid(), survivor.as_uuid())],
        "separating the rekeyed pair again adds nothing"
    );
    assert!(load(store, ws.id, &[], &[absorbed, earlier])
        .await
        .separated
        .is_empty());

    let live = store
        .list_profiles(ws.id, &all_profiles())
        .await
        .expect("list");
    assert_eq!(
        ids(&live).into_iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([survivor, x, y])
    );

    apply(
        store,
        ws.id,
        &[IdentityOp::Absorb {
            survivor,
            absorbed: survivor,
        }],
    )
    .await;
    assert_eq!(
        must_profile(store, ws.id, survivor).await.merged_into,
        None,
        "absorbing a profile into itself changes nothing"
    );
}

pub async fn reset_empties_and_revives_a_profile<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (keep, gone, recreated) = (pid(), pid(), pid());
    let email = ident(IdentifierKind::Email, "reset@example.test");
    let card = ident(IdentifierKind::LoyaltyCard, "7700 0001");
    apply(
        store,
        ws.id,
        &[
            create(keep, t(0)),
            create(gone, t(0)),
            create(recreated, t(3)),
            own(&email, keep, t(0)),
            own(&card, gone, t(0)),
            touch(keep, json!({"name": "Анна"}), (t(0), t(5))),
            touch(gone, json!({"city": "Тверь"}), (t(0), t(5))),
            IdentityOp::Absorb {
                survivor: keep,
                absorbed: gone,
            },
            IdentityOp::Absorb {
                survivor: keep,
                absorbed: recreated,
            },
        ],
    )
    .await;
    assert_eq!(held(store, ws.id, keep).await.len(), 2);

    apply(
        store,
        ws.id,
        &[
            IdentityOp::Reset { profile: keep },
            IdentityOp::Reset { profile: gone },
            create(recreated, t(7)),
        ],
    )
    .await;
    let reset = must_profile(store, ws.id, keep).await;
    assert!(reset.traits.is_empty() && reset.trait_times.is_empty());
    assert_eq!(reset.merged_into, None);
    assert!(
        held(store, ws.id, keep).await.is_empty(),
        "identifiers forgotten"
    );
    assert!(load(store, ws.id, &[email, card], &[])
        .await
        .profiles
        .is_empty());
    let revived = must_profile(store, ws.id, gone).await;
    assert_eq!(
        revived.merged_into, None,
        "a reset revives a merged profile"
    );
    assert!(revived.traits.is_empty());
    assert_eq!(
        must_profile(store, ws.id, recreated).await.merged_into,
        None,
        "creating a merged profile again revives it"
    );
    let live = store
        .list_profiles(ws.id, &all_profiles())
        .await
        .expect("list");
    assert_eq!(live.len(), 3);
}

pub async fn touch_round_trips_traits_and_times<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let p = pid();
    let traits = json!({
        "name": "Ольга Петрова 🌸",
        "city": "Нижний Новгород",
        "orders": 3,
        "ratio": 0.5,
        "vip": true,
        "nothing": null,
        "tags": ["кофе ☕", "круассан 🥐"],
        "address": {"street": "ул. Ленина, 1", "zip": "603000"},
        "quote": "«ёлка» \"x\" \\ 😀"
    });
    let Value::Object(traits) = traits else {
        unreachable!()
    };
    let trait_times: Map<String, Value> = traits
        .keys()
        .enumerate()
        .map(|(i, k)| (k.clone(), json!(t(i as i64).to_rfc3339())))
        .collect();
    apply(
        store,
        ws.id,
        &[
            create(p, t(0)),
            IdentityOp::Touch {
                profile: p,
                traits: traits.clone(),
                trait_times: trait_times.clone(),
                first_seen: t(-100),
                last_seen: t(100),
            },
        ],
    )
    .await;
    let expected = Profile {
        id: p,
        workspace_id: ws.id,
        first_seen: t(-100),
        last_seen: t(100),
        traits: traits.clone(),
        trait_times: trait_times.clone(),
        merged_into: None,
    };
    assert_eq!(must_profile(store, ws.id, p).await, expected);
    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    assert_eq!(tx.profiles(&[p]).await.expect("profiles"), vec![expected]);
    tx.commit().await.expect("commit");

    // A touch replaces traits and times whole.
    apply(
        store,
        ws.id,
        &[touch(p, json!({"name": "Оля 🙂"}), (t(-100), t(200)))],
    )
    .await;
    let touched = must_profile(store, ws.id, p).await;
    assert_eq!(Value::Object(touched.traits), json!({"name": "Оля 🙂"}));
    assert_eq!(touched.trait_times.len(), 1);
    assert_eq!((touched.first_seen, touched.last_seen), (t(-100), t(200)));
}

pub async fn touches_written_together_leave_the_last_per_profile<S: Store + ProfileStore>(
    store: &S,
) {
    let (ws, _, _) = new_workspace(store).await;
    let (p, q, untouched) = (pid(), pid(), pid());
    apply(
        store,
        ws.id,
        &[create(p, t(0)), create(q, t(0)), create(untouched, t(0))],
    )
    .await;
    apply(
        store,
        ws.id,
        &[
            touch(p, json!({"name": "Оля"}), (t(0), t(1))),
            touch(q, json!({"city": "Казань", "vip": true}), (t(-5), t(2))),
            touch(p, json!({"name": "Ольга", "city": "Самара"}), (t(0), t(3))),
        ],
    )
    .await;
    let p_now = must_profile(store, ws.id, p).await;
    assert_eq!(
        Value::Object(p_now.traits),
        json!({"name": "Ольга", "city": "Самара"})
    );
    assert_eq!((p_now.first_seen, p_now.last_seen), (t(0), t(3)));
    let q_now = must_profile(store, ws.id, q).await;
    assert_eq!(
        Value::Object(q_now.traits),
        json!({"city": "Казань", "vip": true})
    );
    assert_eq!(q_now.trait_times.len(), 2);
    assert_eq!((q_now.first_seen, q_now.last_seen), (t(-5), t(2)));
    let other = must_profile(store, ws.id, untouched).await;
    assert!(other.traits.is_empty() && other.last_seen == t(0));
}

pub async fn merges_are_recorded_and_undone<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (survivor, first, second) = (pid(), pid(), pid());
    let merge = |absorbed: ProfileId,
                 survivor: ProfileId,
                 via: Option<Identifier>,
                 actor: Option<&str>,
                 at| MergeRecord {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        survivor,
        absorbed,
        event_id: via.as_ref().map(|_| EventId(Uuid::now_v7())),
        via,
        actor: actor.map(Into::into),
        at,
        undone_at: None,
    };
    let auto = merge(
        first,
        survivor,
        Some(ident(IdentifierKind::Email, "merge@example.test")),
        None,
        t(1),
    );
    let by_hand = merge(second, survivor, None, Some("manager@shop.test"), t(2));
    let elsewhere = merge(survivor, first, None, Some("manager@shop.test"), t(3));
    apply(
        store,
        ws.id,
        &[
            IdentityOp::Merge(auto.clone()),
            IdentityOp::Merge(by_hand.clone()),
            IdentityOp::Merge(elsewhere.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.merges(ws.id, survivor).await.expect("merges"),
        vec![by_hand.clone(), auto.clone()],
        "merges into the profile, newest first"
    );
    assert_eq!(
        store.merges(ws.id, first).await.expect("merges"),
        vec![elsewhere]
    );
    assert_eq!(
        store.merge_record(ws.id, auto.id).await.expect("record"),
        Some(auto.clone())
    );
    assert_eq!(
        store
            .merge_record(ws.id, Uuid::now_v7())
            .await
            .expect("record"),
        None
    );

    apply(
        store,
        ws.id,
        &[IdentityOp::UndoMerge {
            id: auto.id,
            at: t(10),
        }],
    )
    .await;
    let undone = MergeRecord {
        undone_at: Some(t(10)),
        ..auto.clone()
    };
    assert_eq!(
        store.merge_record(ws.id, auto.id).await.expect("record"),
        Some(undone.clone())
    );
    assert_eq!(
        store.merges(ws.id, survivor).await.expect("merges"),
        vec![by_hand, undone],
        "undone merges are still listed"
    );
}

pub async fn conflicts_stay_open_until_resolved<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (p, o, q) = (pid(), pid(), pid());
    let conflict = |profile, other, at| ConflictRecord {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        profile,
        other,
        via: ident(IdentifierKind::AnonymousId, "cookie-shared"),
        reason: "strong_identifiers:user_id".into(),
        event_id: Some(EventId(Uuid::now_v7())),
        at,
        resolved_at: None,
    };
    let (c1, c2, c3) = (
        conflict(p, o, t(1)),
        conflict(q, p, t(2)),
        conflict(o, q, t(3)),
    );
    apply(
        store,
        ws.id,
        &[
            IdentityOp::Conflict(c1.clone()),
            IdentityOp::Conflict(c2.clone()),
            IdentityOp::Conflict(c3.clone()),
        ],
    )
    .await;
    assert_eq!(
        store.conflicts(ws.id, Some(p)).await.expect("conflicts"),
        vec![c2.clone(), c1.clone()],
        "as either side, newest first"
    );
    assert_eq!(
        store.conflicts(ws.id, Some(o)).await.expect("conflicts"),
        vec![c3.clone(), c1.clone()]
    );
    assert_eq!(
        store.conflicts(ws.id, None).await.expect("conflicts"),
        vec![c3.clone(), c2.clone(), c1.clone()]
    );

    store
        .resolve_conflict(ws.id, c1.id, t(5))
        .await
        .expect("resolve");
    assert_eq!(
        store.conflicts(ws.id, Some(p)).await.expect("conflicts"),
        vec![c2.clone()]
    );
    assert_eq!(
        store.conflicts(ws.id, None).await.expect("conflicts"),
        vec![c3, c2]
    );
    for id in [c1.id, Uuid::now_v7()] {
        let err = store
            .resolve_conflict(ws.id, id, t(6))
            .await
            .expect_err("resolved or unknown");
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
}

pub async fn uncommitted_identity_transactions_leave_nothing<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let events = append(
        store,
        ws.id,
        vec![event_at("rb-1", EventType::Track, None, t(0))],
    )
    .await;
    let (p, o) = (pid(), pid());
    let email = ident(IdentifierKind::Email, "rollback@example.test");
    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    tx.apply(&[
        create(p, t(0)),
        create(o, t(0)),
        own(&email, p, t(0)),
        assign(&events[0], p),
        touch(p, json!({"name": "Откат"}), (t(0), t(1))),
        IdentityOp::Separate { a: p, b: o },
        IdentityOp::Conflict(ConflictRecord {
            id: Uuid::now_v7(),
            workspace_id: ws.id,
            profile: p,
            other: o,
            via: email.clone(),
            reason: "limit:email".into(),
            event_id: None,
            at: t(0),
            resolved_at: None,
        }),
        IdentityOp::Merge(MergeRecord {
            id: Uuid::now_v7(),
            workspace_id: ws.id,
            survivor: p,
            absorbed: o,
            via: None,
            event_id: None,
            actor: None,
            at: t(0),
            undone_at: None,
        }),
    ])
    .await
    .expect("apply");
    assert_eq!(
        tx.load(std::slice::from_ref(&email), &[])
            .await
            .expect("load")
            .profiles
            .len(),
        1,
        "the transaction sees its own writes"
    );
    drop(tx);

    assert_eq!(store.profile(ws.id, p).await.expect("read"), None);
    assert!(store
        .profile_identifiers(ws.id, p)
        .await
        .expect("identifiers")
        .is_empty());
    assert!(store
        .list_profiles(ws.id, &all_profiles())
        .await
        .expect("list")
        .is_empty());
    assert!(store.merges(ws.id, p).await.expect("merges").is_empty());
    assert!(store
        .conflicts(ws.id, None)
        .await
        .expect("conflicts")
        .is_empty());
    assert!(store
        .profile_events(ws.id, p, &all_events(10))
        .await
        .expect("timeline")
        .is_empty());
    // The next transaction gets the lock and sees nothing of the dropped one.
    let mut tx = store
        .begin_identity(ws.id)
        .await
        .expect("begin after a rollback");
    assert!(!tx.is_assigned(events[0].id).await.expect("assigned"));
    assert_eq!(
        tx.load(&[email], &[o]).await.expect("load"),
        Snapshot {
            profiles: vec![(o.as_uuid(), vec![])],
            ..Snapshot::default()
        }
    );
    tx.apply(&[create(p, t(0)), assign(&events[0], p)])
        .await
        .expect("apply");
    tx.commit().await.expect("commit");
    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    assert!(tx.is_assigned(events[0].id).await.expect("assigned"));
    assert!(!tx
        .is_assigned(EventId(Uuid::now_v7()))
        .await
        .expect("assigned"));
    tx.commit().await.expect("commit");
}

pub async fn identity_transactions_of_a_workspace_are_serialised<S: Store + ProfileStore>(
    store: &S,
) {
    let (ws, _, _) = new_workspace(store).await;
    let p = pid();
    let email = ident(IdentifierKind::Email, "first@example.test");
    let mut first = store.begin_identity(ws.id).await.expect("begin first");
    first
        .apply(&[create(p, t(0)), own(&email, p, t(0))])
        .await
        .expect("apply");
    let commit_first_later = async move {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        first.commit().await.expect("commit first");
    };
    let second = async {
        let mut second = store.begin_identity(ws.id).await.expect("begin second");
        let seen = second
            .load(std::slice::from_ref(&email), &[])
            .await
            .expect("load");
        second.commit().await.expect("commit second");
        seen
    };
    let ((), seen) = tokio::join!(commit_first_later, second);
    assert_eq!(
        seen.profiles,
        vec![(p.as_uuid(), vec![email])],
        "the second transaction began only after the first committed"
    );
}

pub async fn profiles_are_listed_searched_and_paged<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let mut ops = Vec::new();
    // Twelve plain profiles, seen in groups of three at the same time, so
    // paging has to break ties by id.
    for i in 0..12 {
        let p = pid();
        ops.push(create(p, t(0)));
        ops.push(touch(
            p,
            json!({"name": format!("Клиент {i}")}),
            (t(0), t(i / 3)),
        ));
    }
    let olga = pid();
    let email = ident(IdentifierKind::Email, "olga.smirnova@example.test");
    let (percent, thousand) = (pid(), pid());
    let (underscore, plain) = (pid(), pid());
    let crm = |v: &str| ident(IdentifierKind::Custom("custom:crm_id".into()), v);
    let merged = pid();
    ops.extend([
        create(olga, t(0)),
        own(&email, olga, t(0)),
        touch(olga, json!({"name": "Ольга 🌸"}), (t(0), t(2))),
        create(percent, t(0)),
        touch(percent, json!({"note": "скидка 100%"}), (t(0), t(2))),
        create(thousand, t(0)),
        touch(thousand, json!({"note": "скидка 1000"}), (t(0), t(2))),
        create(underscore, t(0)),
        own(&crm("a_b-7"), underscore, t(0)),
        create(plain, t(0)),
        own(&crm("axb-7"), plain, t(0)),
        create(merged, t(0)),
        touch(merged, json!({"name": "Ольга 🌸"}), (t(0), t(9))),
        own(
            &ident(IdentifierKind::Email, "olga.merged@example.test"),
            merged,
            t(0),
        ),
        IdentityOp::Absorb {
            survivor: olga,
            absorbed: merged,
        },
    ]);
    apply(store, ws.id, &ops).await;

    let search = |text: &str| ProfileQuery {
        text: Some(text.into()),
        ..all_profiles()
    };
    let found = |q: ProfileQuery| async move {
        let mut found = ids(&store.list_profiles(ws.id, &q).await.expect("list"));
        found.sort();
        found
    };
    let sorted = |mut v: Vec<ProfileId>| {
        v.sort();
        v
    };
    assert_eq!(
        found(ProfileQuery {
            identifiers: vec![email.clone()],
            ..all_profiles()
        })
        .await,
        [olga]
    );
    assert_eq!(
        found(ProfileQuery {
            identifiers: vec![email.clone(), crm("axb-7"), crm("missing")],
            ..all_profiles()
        })
        .await,
        sorted(vec![olga, plain])
    );
    let moved = ident(IdentifierKind::Email, "olga.merged@example.test");
    assert_eq!(
        found(ProfileQuery {
            identifiers: vec![email.clone(), moved],
            ..all_profiles()
        })
        .await,
        [olga],
        "once, by any of its identifiers, a merged one's too"
    );
    assert_eq!(
        found(search("smirnova")).await,
        [olga],
        "an identifier's value"
    );
    assert_eq!(
        found(search("SMIRNOVA")).await,
        [olga],
        "ASCII case does not matter"
    );
    assert_eq!(
        found(search("olga.merged")).await,
        [olga],
        "identifiers moved to the survivor"
    );
    assert_eq!(
        found(search("Ольга 🌸")).await,
        [olga],
        "traits text, never a merged profile"
    );
    assert_eq!(found(search("100%")).await, [percent], "% is literal");
    assert_eq!(found(search("a_b")).await, [underscore], "_ is literal");
    assert!(found(search("no such text")).await.is_empty());
    assert_eq!(
        found(ProfileQuery {
            identifiers: vec![crm("axb-7")],
            text: Some("1000".into()),
            ..all_profiles()
        })
        .await,
        sorted(vec![plain, thousand]),
        "identifiers or text"
    );

    let everyone = store
        .list_profiles(ws.id, &all_profiles())
        .await
        .expect("list");
    assert_eq!(everyone.len(), 12 + 5, "live profiles only");
    assert!(everyone.iter().all(|p| p.merged_into.is_none()));
    let mut expected: Vec<(DateTime<Utc>, ProfileId)> =
        everyone.iter().map(|p| (p.last_seen, p.id)).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(
        everyone
            .iter()
            .map(|p| (p.last_seen, p.id))
            .collect::<Vec<_>>(),
        expected,
        "most recently seen first, ties by id descending"
    );
    let mut paged = Vec::new();
    let mut query = ProfileQuery {
        limit: 4,
        ..ProfileQuery::default()
    };
    loop {
        let page = store.list_profiles(ws.id, &query).await.expect("page");
        assert!(page.len() <= 4);
        paged.extend(ids(&page));
        match page.last() {
            Some(last) if page.len() == 4 => query.after = Some((last.last_seen, last.id)),
            _ => break,
        }
    }
    assert_eq!(paged, ids(&everyone), "every profile once, in order");
}

pub async fn profile_timelines_filter_and_page<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (p, q) = (pid(), pid());
    let events = append(
        store,
        ws.id,
        (0..10)
            .map(|i| {
                let kind = if i % 3 == 0 {
                    EventType::Identify
                } else {
                    EventType::Track
                };
                let user = if i % 2 == 0 { "even" } else { "odd" };
                event_at(&format!("tl-{i}"), kind, Some(user), t(i))
            })
            .collect(),
    )
    .await;
    // p gets 0..7 except 4, q gets 4, 7, 8, 9.
    let mine: Vec<&StoredEvent> = events
        .iter()
        .enumerate()
        .filter(|(i, _)| *i < 7 && *i != 4)
        .map(|(_, e)| e)
        .collect();
    let mut ops = vec![create(p, t(0)), create(q, t(0))];
    ops.extend(events.iter().map(|e| assign(e, q)));
    ops.extend(mine.iter().map(|e| assign(e, p)));
    apply(store, ws.id, &ops).await;
    let newest_first: Vec<EventId> = mine.iter().rev().map(|e| e.id).collect();

    let timeline = store
        .profile_events(ws.id, p, &all_events(100))
        .await
        .expect("timeline");
    assert_eq!(
        event_ids(&timeline),
        newest_first,
        "re-assigned events, newest first"
    );
    assert_eq!(timeline[0], *mine[5], "whole events");
    assert_eq!(
        store
            .profile_events(ws.id, q, &all_events(100))
            .await
            .expect("timeline")
            .len(),
        4
    );

    let mut paged = Vec::new();
    let mut query = all_events(2);
    loop {
        let page = store.profile_events(ws.id, p, &query).await.expect("page");
        paged.extend(event_ids(&page));
        match page.last() {
            Some(last) if page.len() == 2 => query.after_seq = Some(last.seq),
            _ => break,
        }
    }
    assert_eq!(paged, newest_first, "paged by seq, every event once");

    let oldest = store
        .profile_events(
            ws.id,
            p,
            &EventQuery {
                order: Order::OldestFirst,
                after_seq: Some(mine[0].seq),
                limit: 2,
                ..EventQuery::default()
            },
        )
        .await
        .expect("oldest");
    assert_eq!(event_ids(&oldest), [mine[1].id, mine[2].id]);

    let identifies = store
        .profile_events(
            ws.id,
            p,
            &EventQuery {
                event_type: Some(EventType::Identify),
                ..all_events(100)
            },
        )
        .await
        .expect("by type");
    assert_eq!(
        event_ids(&identifies),
        [events[6].id, events[3].id, events[0].id]
    );

    let recent = store
        .profile_events(
            ws.id,
            p,
            &EventQuery {
                since: Some(t(3)),
                user_id: Some("odd".into()),
                ..all_events(100)
            },
        )
        .await
        .expect("since, by user");
    assert_eq!(event_ids(&recent), [events[5].id, events[3].id]);
}

pub async fn consent_history_is_kept_in_order<S: Store + ProfileStore>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let (p, other) = (pid(), pid());
    apply(store, ws.id, &[create(p, t(0)), create(other, t(0))]).await;
    let consent = |profile, purpose: &str, channel: &str, granted, at| ConsentRecord {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        profile_id: profile,
        purpose: purpose.into(),
        channel: channel.into(),
        granted,
        source: "web_form".into(),
        wording: "Согласен получать новости 📰 «Утро»".into(),
        at,
    };
    let granted = consent(p, "marketing", "email", true, t(2));
    let withdrawn = consent(p, "marketing", "email", false, t(5));
    let oldest = consent(p, "analytics", "any", true, t(1));
    let same_time = consent(p, "service", "sms", true, t(5));
    let others = consent(other, "marketing", "sms", true, t(0));
    for c in [&granted, &withdrawn, &oldest, &same_time, &others] {
        store.record_consent(c.clone()).await.expect("record");
    }
    assert_eq!(
        store.consents(ws.id, p).await.expect("history"),
        vec![oldest, granted, withdrawn, same_time],
        "oldest first, every record kept"
    );
    assert_eq!(
        store.consents(ws.id, other).await.expect("history"),
        vec![others]
    );
}

pub async fn erasure_scrubs_the_person_everywhere<S: Store + ProfileStore>(
    store: &S,
    scan: &dyn RawScan,
) {
    let (ws, _, _) = new_workspace(store).await;
    let tag = Uuid::now_v7().simple().to_string();
    // The person: `person`, with `older` merged into it, which had
    // absorbed `oldest` before. Every value carries `tag`, so the scan of
    // the whole database can only find this person's.
    let (person, older, oldest, bystander) = (pid(), pid(), pid(), pid());
    let user = ident(IdentifierKind::UserId, format!("user-{tag}"));
    let email = ident(IdentifierKind::Email, format!("olga.{tag}@example.test"));
    let cookie = ident(IdentifierKind::AnonymousId, format!("anon-{tag}"));
    let old_email = ident(IdentifierKind::Email, format!("old.{tag}@example.test"));
    let card = ident(IdentifierKind::LoyaltyCard, format!("CARD{tag}"));
    let device = ident(IdentifierKind::DeviceId, format!("device-{tag}"));
    let name = format!("Ольга {tag} 🌸");
    let city = format!("Казань-{tag}");
    let nickname = format!("Оля-{tag}");
    let theirs = ident(IdentifierKind::UserId, format!("bystander-{tag}"));
    let their_tablet = ident(IdentifierKind::DeviceId, "family-tablet");

    let mut identify = event_at("er-1", EventType::Identify, Some(&user.value), t(1));
    identify.anonymous_id = Some(cookie.value.clone());
    identify.payload.insert("userId".into(), json!(user.value));
    identify
        .payload
        .insert("anonymousId".into(), json!(cookie.value));
    identify.payload.insert(
        "traits".into(),
        json!({"email": email.value, "name": name, "city": city}),
    );
    let mut older_event = event_at("er-2", EventType::Identify, None, t(0));
    older_event.payload.insert(
        "traits".into(),
        json!({"email": old_email.value, "nickname": nickname, "card": card.value}),
    );
    let mut oldest_event = event_at("er-3", EventType::Track, None, t(0));
    oldest_event
        .payload
        .insert("context".into(), json!({"device": {"id": device.value}}));
    let mut their_event = event_at("er-4", EventType::Identify, Some("them"), t(2));
    their_event
        .payload
        .insert("traits".into(), json!({"name": "Пётр"}));
    // Browsing on the person's cookie, shared and with nobody active.
    let mut anonymous = event_at("er-5", EventType::Page, None, t(3));
    anonymous.anonymous_id = Some(cookie.value.clone());
    anonymous
        .payload
        .insert("anonymousId".into(), json!(cookie.value));
    let events = append(
        store,
        ws.id,
        vec![identify, older_event, oldest_event, their_event, anonymous],
    )
    .await;

    let merge = |survivor, absorbed, via: &Identifier| MergeRecord {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        survivor,
        absorbed,
        via: Some(via.clone()),
        event_id: None,
        actor: None,
        at: t(1),
        undone_at: None,
    };
    let conflict = |profile, other, via: &Identifier| ConflictRecord {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        profile,
        other,
        via: via.clone(),
        reason: "strong_identifiers:user_id".into(),
        event_id: None,
        at: t(1),
        resolved_at: None,
    };
    let (first_merge, second_merge) = (
        merge(older, oldest, &device),
        merge(person, older, &old_email),
    );
    let (with_person, with_older) = (
        conflict(bystander, person, &cookie),
        conflict(older, bystander, &card),
    );
    let bystander_conflict = conflict(bystander, pid(), &their_tablet);
    apply(
        store,
        ws.id,
        &[
            create(person, t(0)),
            create(older, t(0)),
            create(oldest, t(0)),
            create(bystander, t(0)),
            own(&user, person, t(1)),
            own(&email, person, t(1)),
            own(&cookie, person, t(1)),
            own(&old_email, older, t(0)),
            own(&card, older, t(0)),
            own(&device, oldest, t(0)),
            own(&theirs, bystander, t(2)),
            own(&their_tablet, bystander, t(2)),
            share(&their_tablet, person),
            touch(person, json!({"name": name, "city": city}), (t(0), t(1))),
            touch(older, json!({"nickname": nickname}), (t(0), t(0))),
            touch(
                oldest,
                json!({"device_name": format!("Планшет {tag}")}),
                (t(0), t(0)),
            ),
            touch(bystander, json!({"name": "Пётр"}), (t(2), t(2))),
            assign(&events[0], person),
            assign(&events[1], older),
            assign(&events[2], oldest),
            assign(&events[3], bystander),
            IdentityOp::LeaveAnonymous {
                event: events[4].id,
                seq: events[4].seq,
                at: t(3),
                devices: vec![cookie.clone()],
            },
            IdentityOp::Absorb {
                survivor: older,
                absorbed: oldest,
            },
            IdentityOp::Merge(first_merge.clone()),
            IdentityOp::Absorb {
                survivor: person,
                absorbed: older,
            },
            IdentityOp::Merge(second_merge.clone()),
            IdentityOp::Conflict(with_person.clone()),
            IdentityOp::Conflict(with_older.clone()),
            IdentityOp::Conflict(bystander_conflict.clone()),
        ],
    )
    .await;
    let person_ids = [&user, &email, &cookie, &old_email, &card, &device];
    let mut needles: Vec<String> = person_ids.iter().map(|i| i.value.clone()).collect();
    needles.extend([
        name.clone(),
        city.clone(),
        nickname.clone(),
        format!("Планшет {tag}"),
    ]);
    for needle in &needles {
        assert!(
            !scan.find_text(needle).await.is_empty(),
            "the scan finds {needle:?} before the erasure"
        );
    }
    let their_profile = must_profile(store, ws.id, bystander).await;
    let their_ids = store
        .profile_identifiers(ws.id, bystander)
        .await
        .expect("identifiers");
    let their_timeline = store
        .profile_events(ws.id, bystander, &all_events(100))
        .await
        .expect("timeline");
    let events_before = store.count_events(ws.id).await.expect("count");

    let fingerprints: Vec<String> = person_ids.iter().map(|i| i.fingerprint()).collect();
    store
        .erase_profile(ws.id, person, &fingerprints, t(50))
        .await
        .expect("erase");

    for needle in &needles {
        let found = scan.find_text(needle).await;
        assert!(
            found.is_empty(),
            "{needle:?} survived the erasure in {found:?}"
        );
    }
    assert_eq!(
        store.count_events(ws.id).await.expect("count"),
        events_before,
        "event rows stay for aggregates"
    );
    let stored = store
        .list_events(ws.id, &all_events(100))
        .await
        .expect("list");
    for erased in &events[..3] {
        let row = stored.iter().find(|e| e.id == erased.id).expect("row kept");
        assert_eq!(
            (row.user_id.as_deref(), row.anonymous_id.as_deref()),
            (None, None)
        );
        assert_eq!(row.event_type, erased.event_type);
        assert_eq!(row.timestamp, erased.timestamp);
    }
    let erased_profile = must_profile(store, ws.id, person).await;
    assert!(erased_profile.traits.is_empty() && erased_profile.trait_times.is_empty());
    assert!(store
        .profile_identifiers(ws.id, person)
        .await
        .expect("identifiers")
        .is_empty());
    for record in [&first_merge, &second_merge] {
        let kept = store
            .merge_record(ws.id, record.id)
            .await
            .expect("record")
            .expect("kept");
        assert_eq!(kept.via, None);
        assert_eq!(
            (kept.survivor, kept.absorbed),
            (record.survivor, record.absorbed)
        );
    }
    assert_eq!(
        store.conflicts(ws.id, None).await.expect("conflicts"),
        vec![bystander_conflict],
        "the person's conflicts are closed"
    );

    // Everyone else is untouched (but no longer points at the person).
    assert_eq!(must_profile(store, ws.id, bystander).await, their_profile);
    let expected_ids: Vec<ProfileIdentifier> = their_ids
        .into_iter()
        .map(|i| ProfileIdentifier {
            active_profile: None,
            ..i
        })
        .collect();
    assert_eq!(
        store
            .profile_identifiers(ws.id, bystander)
            .await
            .expect("identifiers"),
        expected_ids
    );
    assert_eq!(
        store
            .profile_events(ws.id, bystander, &all_events(100))
            .await
            .expect("timeline"),
        their_timeline
    );

    // The erased identifiers never link again, in this workspace.
    let stranger = ident(
        IdentifierKind::Email,
        format!("stranger.{tag}@example.test"),
    );
    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    assert_eq!(
        tx.erased(&[
            stranger.clone(),
            card.clone(),
            theirs.clone(),
            email.clone()
        ])
        .await
        .expect("erased"),
        vec![card.clone(), email.clone()]
    );
    tx.commit().await.expect("commit");
    let (elsewhere, _, _) = new_workspace(store).await;
    let mut tx = store.begin_identity(elsewhere.id).await.expect("begin");
    assert!(tx.erased(&[card, email]).await.expect("erased").is_empty());
    tx.commit().await.expect("commit");
}

pub async fn profiles_of_one_workspace_are_invisible_to_another<S: Store + ProfileStore>(
    store: &S,
) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let (pa, absorbed, qa) = (pid(), pid(), pid());
    let email = ident(IdentifierKind::Email, "isolated@example.test");
    let cookie = ident(IdentifierKind::AnonymousId, "isolated-cookie");
    let erased = ident(IdentifierKind::Phone, "+79990000000");
    let events = append(
        store,
        a.id,
        vec![event_at("iso-1", EventType::Track, None, t(0))],
    )
    .await;
    let merge = MergeRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        survivor: pa,
        absorbed,
        via: Some(email.clone()),
        event_id: None,
        actor: None,
        at: t(1),
        undone_at: None,
    };
    let conflict = ConflictRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        profile: pa,
        other: qa,
        via: cookie.clone(),
        reason: "separated".into(),
        event_id: None,
        at: t(1),
        resolved_at: None,
    };
    let consent = ConsentRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        profile_id: pa,
        purpose: "marketing".into(),
        channel: "email".into(),
        granted: true,
        source: "widget".into(),
        wording: "Да".into(),
        at: t(1),
    };
    apply(
        store,
        a.id,
        &[
            create(pa, t(0)),
            create(absorbed, t(0)),
            create(qa, t(0)),
            own(&email, pa, t(0)),
            own(&cookie, pa, t(0)),
            share(&cookie, qa),
            touch(pa, json!({"name": "Изолированная"}), (t(0), t(1))),
            assign(&events[0], pa),
            IdentityOp::Absorb {
                survivor: pa,
                absorbed,
            },
            IdentityOp::Merge(merge.clone()),
            IdentityOp::Conflict(conflict.clone()),
            IdentityOp::Separate { a: pa, b: qa },
        ],
    )
    .await;
    store
        .record_consent(consent.clone())
        .await
        .expect("consent");
    let temp = pid();
    let erased_holder = [create(temp, t(0)), own(&erased, temp, t(0))];
    apply(store, a.id, &erased_holder).await;
    store
        .erase_profile(a.id, temp, &[erased.fingerprint()], t(2))
        .await
        .expect("erase");
    let before = (
        must_profile(store, a.id, pa).await,
        store
            .profile_identifiers(a.id, pa)
            .await
            .expect("identifiers"),
        store
            .profile_events(a.id, pa, &all_events(10))
            .await
            .expect("timeline"),
        store.merges(a.id, pa).await.expect("merges"),
        must_profile(store, a.id, absorbed).await,
        load(store, a.id, &[], &[pa]).await,
    );

    // Reads from B see nothing of A.
    let mut tx = store.begin_identity(b.id).await.expect("begin in B");
    assert_eq!(
        tx.load(&[email.clone(), cookie.clone()], &[])
            .await
            .expect("load"),
        Snapshot::default()
    );
    assert_eq!(
        canonical(tx.load(&[], &[pa, qa]).await.expect("load")),
        canonical(Snapshot {
            profiles: vec![(pa.as_uuid(), vec![]), (qa.as_uuid(), vec![])],
            ..Snapshot::default()
        }),
        "no identifiers, shared devices or separations of A"
    );
    assert!(tx
        .erased(std::slice::from_ref(&erased))
        .await
        .expect("erased")
        .is_empty());
    assert!(tx
        .profiles(&[pa, absorbed])
        .await
        .expect("profiles")
        .is_empty());
    assert!(!tx.is_assigned(events[0].id).await.expect("assigned"));
    tx.commit().await.expect("commit");
    assert_eq!(store.profile(b.id, pa).await.expect("read"), None);
    assert!(store
        .list_profiles(b.id, &all_profiles())
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_profiles(
            b.id,
            &ProfileQuery {
                identifiers: vec![email.clone()],
                text: Some("isolated".into()),
                ..all_profiles()
            }
        )
        .await
        .expect("search")
        .is_empty());
    assert!(store
        .profile_identifiers(b.id, pa)
        .await
        .expect("identifiers")
        .is_empty());
    assert!(store
        .profile_events(b.id, pa, &all_events(10))
        .await
        .expect("timeline")
        .is_empty());
    assert!(store.merges(b.id, pa).await.expect("merges").is_empty());
    assert_eq!(
        store.merge_record(b.id, merge.id).await.expect("record"),
        None
    );
    assert!(store
        .conflicts(b.id, None)
        .await
        .expect("conflicts")
        .is_empty());
    assert!(store
        .conflicts(b.id, Some(pa))
        .await
        .expect("conflicts")
        .is_empty());
    assert!(matches!(
        store.resolve_conflict(b.id, conflict.id, t(3)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.consents(b.id, pa).await.expect("consents").is_empty());

    // Writes from B never reach A's rows.
    let pb = pid();
    apply(
        store,
        b.id,
        &[
            create(pb, t(0)),
            own(&email, pb, t(5)),
            share(&cookie, pb),
            IdentityOp::Absorb {
                survivor: pb,
                absorbed: pa,
            },
            IdentityOp::Absorb {
                survivor: pb,
                absorbed: qa,
            },
            touch(pa, json!({"name": "чужой"}), (t(5), t(5))),
            IdentityOp::UndoMerge {
                id: merge.id,
                at: t(5),
            },
            IdentityOp::Reset { profile: pa },
            IdentityOp::Reset { profile: absorbed },
            assign(&events[0], pb),
        ],
    )
    .await;
    assert!(
        store
            .profile_events(b.id, pb, &all_events(10))
            .await
            .expect("timeline")
            .is_empty(),
        "an event of A never shows in B, even assigned there"
    );
    let mut tx = store.begin_identity(b.id).await.expect("begin in B");
    let err = tx
        .apply(&[create(absorbed, t(5))])
        .await
        .expect_err("A's profile id");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    drop(tx);
    store
        .erase_profile(b.id, pa, &[], t(6))
        .await
        .expect("erase in B");
    store
        .resolve_conflict(a.id, conflict.id, t(6))
        .await
        .expect("A resolves its own");

    let after = (
        must_profile(store, a.id, pa).await,
        store
            .profile_identifiers(a.id, pa)
            .await
            .expect("identifiers"),
        store
            .profile_events(a.id, pa, &all_events(10))
            .await
            .expect("timeline"),
        store.merges(a.id, pa).await.expect("merges"),
        must_profile(store, a.id, absorbed).await,
        load(store, a.id, &[], &[pa]).await,
    );
    assert_eq!(after, before, "A is exactly as it was");
    assert_eq!(
        store.consents(a.id, pa).await.expect("consents"),
        vec![consent]
    );
}

pub async fn a_login_claims_the_events_left_anonymous_in_its_session<S: Store + ProfileStore>(
    store: &S,
) {
    let (ws, _, _) = new_workspace(store).await;
    let (ivan, maria) = (pid(), pid());
    let tablet = ident(IdentifierKind::AnonymousId, "family-tablet");
    let mut browsing = Vec::new();
    for (n, at) in [(1, t(10)), (2, t(100)), (3, t(101)), (4, t(200))] {
        let mut event = event_at(&format!("cl-{n}"), EventType::Page, None, at);
        event.anonymous_id = Some(tablet.value.clone());
        browsing.push(event);
    }
    let events = append(store, ws.id, browsing).await;
    let left = |event: &StoredEvent| IdentityOp::LeaveAnonymous {
        event: event.id,
        seq: event.seq,
        at: event.timestamp,
        devices: vec![tablet.clone()],
    };
    apply(
        store,
        ws.id,
        &[
            create(ivan, t(0)),
            create(maria, t(0)),
            own(&tablet, ivan, t(0)),
            share(&tablet, maria),
            // The first event was Maria's until a replay left it anonymous.
            assign(&events[0], maria),
            left(&events[0]),
            left(&events[1]),
            left(&events[2]),
            // After his login: a later session's, not his.
            left(&events[3]),
            // Ivan logs in at t(102): the session began at t(100).
            IdentityOp::Claim {
                device: tablet.clone(),
                since: t(100),
                until: t(102),
                profile: ivan,
            },
        ],
    )
    .await;
    let timeline = |p| async move {
        event_ids(
            &store
                .profile_events(ws.id, p, &all_events(10))
                .await
                .expect("timeline"),
        )
    };
    assert_eq!(
        timeline(ivan).await,
        [events[2].id, events[1].id],
        "the session's anonymous events are Ivan's"
    );
    assert!(
        timeline(maria).await.is_empty(),
        "an event left anonymous is on nobody's profile"
    );
    // A claimed event is claimed once; an earlier session stays claimable.
    apply(
        store,
        ws.id,
        &[IdentityOp::Claim {
            device: tablet.clone(),
            since: t(0),
            until: t(50),
            profile: maria,
        }],
    )
    .await;
    assert_eq!(timeline(maria).await, [events[0].id]);
    assert_eq!(timeline(ivan).await.len(), 2);
}

/// Runs of creations and of identifiers owned, as a batch writes them:
/// each identifier ends with its last owner, first seen as its first op
/// said, as writing them one by one would leave it; a profile id another
/// workspace holds is refused.
pub async fn creations_and_identifiers_written_together_end_as_in_order<S: Store + ProfileStore>(
    store: &S,
) {
    let (ws, _, _) = new_workspace(store).await;
    let (a, b) = (pid(), pid());
    let (phone, email) = (
        ident(IdentifierKind::Phone, "+79160000001"),
        ident(IdentifierKind::Email, "together@example.test"),
    );
    apply(
        store,
        ws.id,
        &[
            create(a, t(0)),
            create(b, t(1)),
            own(&phone, a, t(2)),
            own(&email, b, t(3)),
            own(&phone, b, t(4)),
        ],
    )
    .await;
    assert_eq!(must_profile(store, ws.id, b).await.first_seen, t(1));
    let held = store
        .profile_identifiers(ws.id, b)
        .await
        .expect("identifiers");
    let seen: Vec<(&str, DateTime<Utc>)> = held
        .iter()
        .map(|h| (h.identifier.value.as_str(), h.first_seen))
        .collect();
    assert_eq!(held.len(), 2, "{seen:?}");
    assert!(seen.contains(&("+79160000001", t(2))), "{seen:?}");
    assert!(seen.contains(&("together@example.test", t(3))), "{seen:?}");
    let left = store
        .profile_identifiers(ws.id, a)
        .await
        .expect("identifiers");
    assert!(left.is_empty(), "the phone moved on: {left:?}");

    let (other, _, _) = new_workspace(store).await;
    let mut tx = store.begin_identity(other.id).await.expect("begin");
    let taken = tx.apply(&[create(pid(), t(0)), create(a, t(0))]).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
}
