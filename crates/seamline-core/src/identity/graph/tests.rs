use super::*;
use crate::identity::identifier::IdentifierKind as K;
use chrono::{DateTime, Utc};

fn id(kind: K, value: &str) -> Identifier {
    Identifier {
        kind,
        value: value.into(),
    }
}

/// Keys in creation order, like UUID v7 event ids.
fn key(n: u128) -> ProfileKey {
    Uuid::from_u128(n)
}

struct World {
    graph: IdentityGraph,
    policy: IdentityPolicy,
    next: u128,
    /// Events come a minute apart unless a test waits longer.
    now: DateTime<Utc>,
}

impl World {
    fn new() -> Self {
        Self {
            graph: IdentityGraph::default(),
            policy: IdentityPolicy::default(),
            next: 1,
            now: DateTime::UNIX_EPOCH + chrono::TimeDelta::days(20_000),
        }
    }

    fn see(&mut self, ids: &[Identifier]) -> Resolution {
        self.next += 1;
        self.now += chrono::TimeDelta::minutes(1);
        self.graph
            .resolve(ids, key(self.next), self.now, &self.policy)
    }

    /// The profile the event went to; panics when it stayed anonymous.
    fn profile(&mut self, ids: &[Identifier]) -> ProfileKey {
        self.see(ids).profile.expect("the event has a profile")
    }

    fn wait_hours(&mut self, hours: i64) {
        self.now += chrono::TimeDelta::hours(hours);
    }
}

fn merged(r: &Resolution) -> bool {
    r.decisions
        .iter()
        .any(|d| matches!(d, Decision::Merged { .. }))
}

#[test]
fn browsing_on_the_phone_and_buying_on_the_desktop_is_one_person() {
    let mut w = World::new();
    let phone = w
        .see(&[id(K::AnonymousId, "phone-cookie")])
        .profile
        .expect("a profile");
    w.see(&[
        id(K::AnonymousId, "phone-cookie"),
        id(K::Email, "olga@example.ru"),
    ]);
    let desktop = w
        .see(&[id(K::AnonymousId, "desktop-cookie")])
        .profile
        .expect("a profile");
    assert_ne!(phone, desktop);
    let login = w.see(&[
        id(K::AnonymousId, "desktop-cookie"),
        id(K::UserId, "olga"),
        id(K::Email, "olga@example.ru"),
    ]);
    assert!(merged(&login));
    assert_eq!(w.graph.profile_count(), 1);
    assert_eq!(login.profile, Some(phone), "the oldest profile survives");
    assert_eq!(w.graph.identifiers(phone).len(), 4);
}

#[test]
fn a_loyalty_card_purchase_joins_the_online_profile_through_the_phone() {
    let mut w = World::new();
    let online = w
        .see(&[id(K::UserId, "olga"), id(K::Phone, "+79161234567")])
        .profile
        .expect("a profile");
    let shop = w.see(&[id(K::LoyaltyCard, "20000001"), id(K::Phone, "+79161234567")]);
    assert_eq!(shop.profile, Some(online));
    assert_eq!(
        w.graph.profile_of(&id(K::LoyaltyCard, "20000001")),
        Some(online)
    );
}

#[test]
fn a_shared_family_tablet_does_not_glue_two_people() {
    let mut w = World::new();
    let tablet = id(K::AnonymousId, "family-tablet");
    let ivan = w
        .see(&[tablet.clone(), id(K::UserId, "ivan")])
        .profile
        .expect("a profile");
    let maria = w.see(&[tablet.clone(), id(K::UserId, "maria")]);
    assert!(maria.decisions.contains(&Decision::MarkedShared {
        identifier: tablet.clone()
    }));
    assert_ne!(maria.profile, Some(ivan));
    assert!(w.graph.is_shared(&tablet));
    assert_eq!(w.graph.profile_count(), 2);
    // Anonymous browsing in the session belongs to whoever logged in.
    assert_eq!(w.see(std::slice::from_ref(&tablet)).profile, maria.profile);
    assert_eq!(w.profile(&[tablet.clone(), id(K::UserId, "ivan")]), ivan);
    assert_eq!(w.profile(std::slice::from_ref(&tablet)), ivan);
    // An e-mail typed on the tablet goes to the person active there, and
    // does not bridge the two.
    let typed = w.see(&[tablet.clone(), id(K::Email, "ivan@example.ru")]);
    assert_eq!(typed.profile, Some(ivan));
    w.see(&[tablet, id(K::UserId, "maria")]);
    assert_eq!(w.graph.profile_count(), 2);
    assert_eq!(
        w.graph.profile_of(&id(K::Email, "ivan@example.ru")),
        Some(ivan)
    );
}

#[test]
fn a_shared_tablet_left_idle_forgets_its_person_and_a_login_claims_the_session() {
    let mut w = World::new();
    let tablet = id(K::AnonymousId, "family-tablet");
    let ivan = w.profile(&[tablet.clone(), id(K::UserId, "ivan")]);
    let maria = w.profile(&[tablet.clone(), id(K::UserId, "maria")]);
    assert_eq!(w.profile(std::slice::from_ref(&tablet)), maria);

    // Hours later someone browses: nobody is known to hold the tablet.
    w.wait_hours(5);
    let browsing = w.see(std::slice::from_ref(&tablet));
    assert_eq!(
        browsing.profile, None,
        "stays anonymous, on nobody's profile"
    );
    let started = w.now;
    assert_eq!(w.see(std::slice::from_ref(&tablet)).profile, None);

    // Then Ivan logs in: the session's anonymous events are his.
    let login = w.see(&[tablet.clone(), id(K::UserId, "ivan")]);
    assert_eq!(login.profile, Some(ivan));
    assert!(login.decisions.contains(&Decision::Claimed {
        profile: ivan,
        identifier: tablet.clone(),
        since: started,
        until: w.now,
    }));
    assert_eq!(w.profile(std::slice::from_ref(&tablet)), ivan);

    // An anonymous session that ended before a login is nobody's.
    w.wait_hours(3);
    assert_eq!(w.see(std::slice::from_ref(&tablet)).profile, None);
    w.wait_hours(3);
    let next = w.see(&[tablet.clone(), id(K::UserId, "maria")]);
    assert_eq!(next.profile, Some(maria));
    assert!(
        !next
            .decisions
            .iter()
            .any(|d| matches!(d, Decision::Claimed { .. })),
        "a login does not claim an earlier session"
    );
    assert_eq!(w.graph.profile_count(), 2);
}

#[test]
fn the_session_window_is_the_workspace_s_setting() {
    let mut w = World::new();
    w.policy.shared_device_session_minutes = 600;
    let tablet = id(K::DeviceId, "kiosk-1");
    w.profile(&[tablet.clone(), id(K::LoyaltyCard, "20000001")]);
    let second = w.profile(&[tablet.clone(), id(K::LoyaltyCard, "20000002")]);
    w.wait_hours(5);
    assert_eq!(w.see(std::slice::from_ref(&tablet)).profile, Some(second));
    w.wait_hours(11);
    assert_eq!(w.see(std::slice::from_ref(&tablet)).profile, None);
}

#[test]
fn two_known_people_are_never_merged_automatically() {
    let mut w = World::new();
    let a = w
        .see(&[id(K::UserId, "u1"), id(K::Email, "one@example.ru")])
        .profile
        .expect("a profile");
    let b = w
        .see(&[id(K::UserId, "u2"), id(K::Phone, "+79160000001")])
        .profile
        .expect("a profile");
    let bridge = w.see(&[id(K::Email, "one@example.ru"), id(K::Phone, "+79160000001")]);
    assert!(!merged(&bridge));
    assert!(bridge.decisions.iter().any(|d| matches!(
        d,
        Decision::Conflict {
            why: ConflictReason::StrongIdentifiers(K::UserId),
            ..
        }
    )));
    assert_eq!(w.graph.profile_count(), 2);
    assert_ne!(w.graph.profile_of(&id(K::UserId, "u1")), Some(b));
    assert_eq!(w.graph.profile_of(&id(K::Email, "one@example.ru")), Some(a));
}

#[test]
fn per_kind_limits_drop_extra_identifiers_and_refuse_merges() {
    let mut w = World::new();
    let p = w.see(&[id(K::UserId, "u")]).profile.expect("a profile");
    for n in 0..6 {
        w.see(&[
            id(K::UserId, "u"),
            id(K::Email, &format!("e{n}@example.ru")),
        ]);
    }
    let emails = w
        .graph
        .identifiers(p)
        .iter()
        .filter(|i| i.kind == K::Email)
        .count();
    assert_eq!(emails, 5, "at most five e-mails");
    // A second user id on the same profile is dropped, not attached.
    let r = w.see(&[id(K::Email, "e0@example.ru"), id(K::UserId, "other")]);
    assert!(r
        .decisions
        .iter()
        .any(|d| matches!(d, Decision::Dropped { .. }) || matches!(d, Decision::Created { .. })));
    assert!(
        w.graph
            .identifiers(p)
            .iter()
            .filter(|i| i.kind == K::UserId)
            .count()
            == 1
    );

    let mut w = World::new();
    w.policy.limits.insert("phone".into(), 2);
    w.see(&[
        id(K::Email, "a@x.ru"),
        id(K::Phone, "+79160000001"),
        id(K::Phone, "+79160000002"),
    ]);
    w.see(&[id(K::Email, "b@x.ru"), id(K::Phone, "+79160000003")]);
    let bridge = w.see(&[id(K::Email, "a@x.ru"), id(K::Email, "b@x.ru")]);
    assert!(bridge.decisions.iter().any(|d| matches!(
        d,
        Decision::Conflict {
            why: ConflictReason::Limit(K::Phone),
            ..
        }
    )));
    assert_eq!(w.graph.profile_count(), 2);
}

#[test]
fn separated_profiles_stay_apart() {
    let mut w = World::new();
    let a = w.see(&[id(K::Email, "a@x.ru")]).profile.expect("a profile");
    let b = w
        .see(&[id(K::Phone, "+79160000001")])
        .profile
        .expect("a profile");
    w.graph.separate(a, b);
    let bridge = w.see(&[id(K::Email, "a@x.ru"), id(K::Phone, "+79160000001")]);
    assert!(bridge.decisions.iter().any(|d| matches!(
        d,
        Decision::Conflict {
            why: ConflictReason::Separated,
            ..
        }
    )));
    assert_eq!(w.graph.profile_count(), 2);
}

#[test]
fn replaying_with_a_separation_restores_the_profiles_as_if_never_linked() {
    let events: Vec<Vec<Identifier>> = vec![
        vec![id(K::AnonymousId, "c1"), id(K::Email, "a@x.ru")],
        vec![id(K::AnonymousId, "c2"), id(K::Phone, "+79160000001")],
        vec![id(K::AnonymousId, "c1"), id(K::Phone, "+79160000001")], // the wrong link
        vec![id(K::AnonymousId, "c2"), id(K::UserId, "bob")],
    ];
    let replay = |skip: Option<usize>, separate: Option<(u128, u128)>| {
        let mut w = World::new();
        if let Some((a, b)) = separate {
            w.graph.separate(key(a), key(b));
        }
        for (n, ids) in events.iter().enumerate() {
            w.next = 1 + n as u128; // the event's own key, as event ids are
            if Some(n) != skip {
                w.see(ids);
            }
        }
        w.graph
    };
    let linked = replay(None, None);
    assert_eq!(linked.profile_count(), 1);
    let never = replay(Some(2), None);
    let undone = replay(None, Some((2, 3)));
    assert_eq!(undone.profile_count(), 2);
    for profile in never.profiles() {
        let mut expected = never.identifiers(profile).to_vec();
        let mut got = undone.identifiers(profile).to_vec();
        expected.sort();
        got.sort();
        assert_eq!(
            got, expected,
            "profile {profile} is exactly as if the link never happened"
        );
    }
}

mod invariants {
    use super::*;
    use proptest::prelude::*;

    fn any_identifier() -> impl Strategy<Value = Identifier> {
        (0..4u8, 0..6u8).prop_map(|(kind, value)| {
            let kind = [K::AnonymousId, K::UserId, K::Email, K::LoyaltyCard][kind as usize].clone();
            id(kind, &format!("v{value}"))
        })
    }

    proptest! {
        #[test]
        fn every_identifier_has_one_owner_and_no_profile_holds_two_strong_values(
            events in proptest::collection::vec(proptest::collection::vec(any_identifier(), 1..4), 1..40)
        ) {
            let mut w = World::new();
            for ids in &events {
                let r = w.see(ids);
                match r.profile {
                    Some(p) => prop_assert!(w.graph.members.contains_key(&p)),
                    None => prop_assert!(
                        ids.iter().all(|i| w.graph.is_shared(i)),
                        "only an event on shared devices alone stays anonymous"
                    ),
                }
            }
            let mut seen = HashSet::new();
            for profile in w.graph.profiles() {
                for identifier in w.graph.identifiers(profile) {
                    prop_assert!(seen.insert(identifier.clone()), "{identifier} is in two profiles");
                    prop_assert_eq!(w.graph.profile_of(identifier), Some(profile));
                }
                for kind in [K::UserId, K::LoyaltyCard] {
                    let n = w.graph.identifiers(profile).iter().filter(|i| i.kind == kind).count();
                    prop_assert!(n <= 1, "{} values of {} on one profile", n, kind);
                }
            }
        }
    }
}
