use super::*;
use proptest::prelude::*;
use uuid::Uuid;

fn member(n: u128) -> MemberId {
    MemberId(Uuid::from_u128(n))
}

fn op(n: u128, presence: Presence, load: u32, capacity: u32) -> Operator {
    Operator {
        member: member(n),
        presence,
        load,
        capacity,
    }
}

fn online(n: u128, load: u32) -> Operator {
    op(n, Presence::Online, load, 5)
}

fn team(rule: Rule) -> TeamRouting {
    TeamRouting { rule, sticky: true }
}

fn assigned(routed: Routed) -> Option<(MemberId, Reason)> {
    match routed.decision {
        Decision::Assign { operator, reason } => Some((operator, reason)),
        Decision::Queue => None,
    }
}

#[test]
fn a_returning_customer_gets_their_operator_on_any_channel() {
    // Olga (7) is in another team but online with room: she gets them.
    let olga = online(7, 2);
    let routed = route(
        &team(Rule::RoundRobin),
        &[online(1, 0), online(2, 0)],
        Some(member(1)),
        Some(&olga),
    );
    assert_eq!(assigned(routed), Some((member(7), Reason::Sticky)));
    assert_eq!(routed.cursor, Some(member(1)), "sticky takes no turn");
}

#[test]
fn sticky_falls_back_to_the_team_rule() {
    for last in [
        op(7, Presence::Away, 0, 5),
        op(7, Presence::Offline, 0, 5),
        op(7, Presence::Online, 5, 5),
    ] {
        let routed = route(&team(Rule::RoundRobin), &[online(1, 0)], None, Some(&last));
        assert_eq!(assigned(routed), Some((member(1), Reason::RoundRobin)));
    }
    let not_sticky = TeamRouting {
        rule: Rule::RoundRobin,
        sticky: false,
    };
    let routed = route(&not_sticky, &[online(1, 0)], None, Some(&online(7, 0)));
    assert_eq!(assigned(routed), Some((member(1), Reason::RoundRobin)));
}

#[test]
fn round_robin_takes_turns_after_the_cursor() {
    let ops = [online(3, 0), online(1, 0), online(2, 0)];
    let rr = team(Rule::RoundRobin);
    let mut cursor = None;
    let mut order = Vec::new();
    for _ in 0..4 {
        let routed = route(&rr, &ops, cursor, None);
        cursor = routed.cursor;
        order.extend(assigned(routed).map(|(m, _)| m.0.as_u128()));
    }
    assert_eq!(order, [1, 2, 3, 1]);
    // The cursor's operator left: the next one in id order goes.
    let routed = route(&rr, &[online(1, 0), online(3, 0)], Some(member(2)), None);
    assert_eq!(assigned(routed), Some((member(3), Reason::RoundRobin)));
}

#[test]
fn round_robin_skips_who_cannot_take() {
    let ops = [
        op(1, Presence::Away, 0, 5),
        op(2, Presence::Online, 5, 5),
        op(3, Presence::Offline, 0, 5),
        op(4, Presence::Online, 0, 0),
        online(5, 4),
    ];
    let routed = route(&team(Rule::RoundRobin), &ops, None, None);
    assert_eq!(assigned(routed), Some((member(5), Reason::RoundRobin)));
}

#[test]
fn least_loaded_goes_by_share_of_capacity() {
    // 4 of 10 is lighter than 2 of 3.
    let ops = [
        op(1, Presence::Online, 2, 3),
        op(2, Presence::Online, 4, 10),
    ];
    let routed = route(&team(Rule::LeastLoaded), &ops, None, None);
    assert_eq!(assigned(routed), Some((member(2), Reason::LeastLoaded)));
    assert_eq!(routed.cursor, Some(member(2)));
}

#[test]
fn least_loaded_ties_take_turns() {
    let ops = [online(1, 1), online(2, 1), online(3, 4)];
    let ll = team(Rule::LeastLoaded);
    let first = route(&ll, &ops, None, None);
    assert_eq!(assigned(first).map(|a| a.0), Some(member(1)));
    let second = route(&ll, &ops, first.cursor, None);
    assert_eq!(assigned(second).map(|a| a.0), Some(member(2)));
}

#[test]
fn everyone_busy_means_the_queue() {
    let ops = [op(1, Presence::Online, 3, 3), op(2, Presence::Away, 0, 3)];
    for rule in [Rule::RoundRobin, Rule::LeastLoaded] {
        let routed = route(&team(rule), &ops, Some(member(1)), None);
        assert_eq!(routed.decision, Decision::Queue);
        assert_eq!(routed.cursor, Some(member(1)));
    }
    assert_eq!(
        route(&team(Rule::RoundRobin), &[], None, None).decision,
        Decision::Queue
    );
}

#[test]
fn presence_and_settings_parse() {
    for p in Presence::ALL {
        assert_eq!(p.as_str().parse::<Presence>(), Ok(p));
    }
    assert_eq!("busy".parse::<Presence>().unwrap_err().field, "presence");
    let settings: TeamRouting = serde_json::from_str(r#"{"rule":"least_loaded"}"#).unwrap();
    assert_eq!(
        settings,
        TeamRouting {
            rule: Rule::LeastLoaded,
            sticky: true
        }
    );
}

fn any_operator(n: u128) -> impl Strategy<Value = Operator> {
    (
        prop_oneof![
            Just(Presence::Online),
            Just(Presence::Away),
            Just(Presence::Offline)
        ],
        0u32..6,
        0u32..6,
    )
        .prop_map(move |(presence, load, capacity)| op(n, presence, load, capacity))
}

fn any_team() -> impl Strategy<Value = Vec<Operator>> {
    proptest::collection::vec(0u128..8, 0..8)
        .prop_flat_map(|ids| ids.into_iter().map(any_operator).collect::<Vec<_>>())
}

proptest! {
    #[test]
    fn never_assigns_someone_who_cannot_take(
        ops in any_team(),
        last in proptest::option::of(any_operator(100)),
        cursor in proptest::option::of(0u128..10),
        least_loaded in any::<bool>(),
        sticky in any::<bool>(),
    ) {
        let rule = if least_loaded { Rule::LeastLoaded } else { Rule::RoundRobin };
        let settings = TeamRouting { rule, sticky };
        let routed = route(&settings, &ops, cursor.map(member), last.as_ref());
        match routed.decision {
            Decision::Assign { operator, reason: Reason::Sticky } => {
                prop_assert!(sticky);
                prop_assert!(last.is_some_and(|l| l.member == operator && l.can_take()));
            }
            Decision::Assign { operator, .. } => {
                prop_assert!(ops.iter().any(|o| o.member == operator && o.can_take()));
                prop_assert_eq!(routed.cursor, Some(operator));
            }
            Decision::Queue => {
                prop_assert!(!ops.iter().any(Operator::can_take));
                prop_assert!(!(sticky && last.is_some_and(|l| l.can_take())));
            }
        }
    }

    /// Over n × k rounds each of n free operators gets exactly k.
    #[test]
    fn round_robin_is_fair(n in 1u128..8, k in 1usize..20, start in proptest::option::of(0u128..10)) {
        let ops: Vec<Operator> = (0..n).map(|i| op(i, Presence::Online, 0, 1)).collect();
        let mut cursor = start.map(member);
        let mut counts = vec![0usize; n as usize];
        for _ in 0..(n as usize * k) {
            let routed = route(&team(Rule::RoundRobin), &ops, cursor, None);
            cursor = routed.cursor;
            let (m, _) = assigned(routed).ok_or_else(|| TestCaseError::fail("queued"))?;
            counts[m.0.as_u128() as usize] += 1;
        }
        prop_assert!(counts.iter().all(|c| *c == k), "{:?}", counts);
    }

    /// Least loaded with equal capacities keeps loads within one of each other.
    #[test]
    fn least_loaded_evens_out(n in 1usize..6, rounds in 0usize..40) {
        let mut ops: Vec<Operator> = (0..n).map(|i| op(i as u128, Presence::Online, 0, 100)).collect();
        let mut cursor = None;
        for _ in 0..rounds {
            let routed = route(&team(Rule::LeastLoaded), &ops, cursor, None);
            cursor = routed.cursor;
            let (m, _) = assigned(routed).ok_or_else(|| TestCaseError::fail("queued"))?;
            if let Some(o) = ops.iter_mut().find(|o| o.member == m) {
                o.load += 1;
            }
        }
        let loads: Vec<u32> = ops.iter().map(|o| o.load).collect();
        let spread = loads.iter().max().zip(loads.iter().min()).map_or(0, |(a, b)| a - b);
        prop_assert!(spread <= 1, "{:?}", loads);
    }
}
