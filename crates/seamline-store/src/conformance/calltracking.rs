//! The [`CallTrackingStore`] part of the suite: numbers are unique per
//! workspace and stay in it; a visitor keeps their pool number, others get
//! free ones or a counted miss, even when they ask at the same moment; a
//! lapsed reservation frees its number and stays as history; a call is
//! recorded once; stats count calls by source and misses.

use chrono::{DateTime, Duration, TimeZone, Utc};
use seamline_core::calltracking::{decide, NumberKind, SourceBinding, DEFAULT_TAIL_S};
use seamline_core::identity::{Identifier, IdentifierKind};
use seamline_core::tracking::Attribution;
use seamline_core::{ProfileId, WorkspaceId};
use uuid::Uuid;

use super::new_workspace;
use crate::*;

/// Runs every call-tracking check, in order, against `store`.
pub async fn run_call_tracking_suite<S: Backend>(store: &S) {
    numbers_are_unique_and_stay_in_their_workspace(store).await;
    visitors_keep_their_number_and_a_full_pool_misses(store).await;
    concurrent_visitors_never_share_a_number(store).await;
    lapsed_reservations_free_the_number_and_stay_as_history(store).await;
    calls_are_recorded_once_and_counted_by_source(store).await;
    erasure_scrubs_the_persons_visits(store).await;
}

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_760_000_000 + s, 0)
        .single()
        .expect("valid time")
}

fn tail() -> Duration {
    Duration::seconds(i64::from(DEFAULT_TAIL_S))
}

fn pool_number(ws: WorkspaceId, number: &str) -> TrackingNumber {
    TrackingNumber {
        id: Uuid::now_v7(),
        workspace_id: ws,
        number: number.into(),
        kind: NumberKind::Pool,
        source: None,
        created_at: at(0),
    }
}

fn from_yandex() -> Attribution {
    Attribution {
        utm_source: Some("yandex".into()),
        utm_medium: Some("cpc".into()),
        ..Attribution::default()
    }
}

async fn ask<S: Backend>(store: &S, ws: WorkspaceId, visitor: &str, now: i64) -> Reserved {
    let request = ReservationRequest {
        id: Uuid::now_v7(),
        anonymous_id: visitor.into(),
        session_id: Some(format!("session-{visitor}")),
        source: from_yandex(),
        now: at(now),
    };
    let rule = |pool: &seamline_core::calltracking::Pool| decide(pool, visitor, at(now), tail());
    store
        .reserve_tracking_number(ws, &request, &rule)
        .await
        .expect("reserve")
}

fn held(reserved: &Reserved) -> &seamline_core::calltracking::Reservation {
    match reserved {
        Reserved::Held(r) => r,
        Reserved::Missed => panic!("expected a number, got a miss"),
    }
}

pub async fn numbers_are_unique_and_stay_in_their_workspace<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let pool = pool_number(a.id, "+74951112201");
    store.add_tracking_number(&pool).await.expect("add");
    let billboard = TrackingNumber {
        kind: NumberKind::Static,
        source: Some(SourceBinding {
            label: Some("Билборд на Тверской".into()),
            ..SourceBinding::default()
        }),
        ..pool_number(a.id, "+74951112200")
    };
    store.add_tracking_number(&billboard).await.expect("add");
    let again = pool_number(a.id, "+74951112201");
    assert!(matches!(
        store.add_tracking_number(&again).await,
        Err(StoreError::Conflict(_))
    ));
    // Another workspace may use the same number for itself.
    store
        .add_tracking_number(&pool_number(b.id, "+74951112201"))
        .await
        .expect("another workspace");
    assert_eq!(
        store.tracking_numbers(a.id).await.expect("list"),
        vec![pool.clone(), billboard.clone()],
        "pool first, then static"
    );
    assert!(matches!(
        store.delete_tracking_number(b.id, pool.id).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_tracking_number(a.id, billboard.id)
        .await
        .expect("delete");
    assert_eq!(
        store.tracking_numbers(a.id).await.expect("list"),
        vec![pool]
    );
}

pub async fn visitors_keep_their_number_and_a_full_pool_misses<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    for n in ["+74951112201", "+74951112202"] {
        store
            .add_tracking_number(&pool_number(ws.id, n))
            .await
            .expect("add");
    }
    let anna = ask(store, ws.id, "anna", 0).await;
    let anna = held(&anna);
    assert_eq!(anna.source, from_yandex());
    assert_eq!(anna.session_id.as_deref(), Some("session-anna"));
    assert_eq!(anna.expires_at, at(0) + tail());
    let again = ask(store, ws.id, "anna", 60).await;
    let again = held(&again);
    assert_eq!(again.id, anna.id, "the same reservation");
    assert_eq!(again.number, anna.number);
    assert_eq!(again.held_from, at(0));
    assert_eq!(again.last_seen, at(60));
    assert_eq!(
        again.expires_at,
        at(60) + tail(),
        "the tail runs from the last activity"
    );
    let boris = ask(store, ws.id, "boris", 70).await;
    assert_ne!(held(&boris).number, anna.number);
    assert_eq!(ask(store, ws.id, "vera", 80).await, Reserved::Missed);
    assert_eq!(ask(store, ws.id, "vera", 90).await, Reserved::Missed);
    let active = store
        .active_reservations(ws.id, at(100))
        .await
        .expect("active");
    assert_eq!(active.len(), 2);
    let stats = store
        .call_tracking_stats(ws.id, at(0), at(3600))
        .await
        .expect("stats");
    assert_eq!(stats.misses, 2);
    let (other, _, _) = new_workspace(store).await;
    assert!(store
        .active_reservations(other.id, at(100))
        .await
        .expect("active")
        .is_empty());
}

pub async fn concurrent_visitors_never_share_a_number<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    for n in ["+74951112201", "+74951112202", "+74951112203"] {
        store
            .add_tracking_number(&pool_number(ws.id, n))
            .await
            .expect("add");
    }
    let w = ws.id;
    let all = tokio::join!(
        ask(store, w, "v1", 0),
        ask(store, w, "v2", 0),
        ask(store, w, "v3", 0),
        ask(store, w, "v4", 0),
        ask(store, w, "v5", 0),
        ask(store, w, "v6", 0),
        ask(store, w, "v7", 0),
        ask(store, w, "v8", 0),
    );
    let all = [all.0, all.1, all.2, all.3, all.4, all.5, all.6, all.7];
    let mut numbers: Vec<&str> = all
        .iter()
        .filter_map(|r| match r {
            Reserved::Held(r) => Some(r.number.as_str()),
            Reserved::Missed => None,
        })
        .collect();
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        ["+74951112201", "+74951112202", "+74951112203"],
        "each number once"
    );
    let stats = store
        .call_tracking_stats(w, at(0), at(60))
        .await
        .expect("stats");
    assert_eq!(stats.misses, 5);
}

pub async fn lapsed_reservations_free_the_number_and_stay_as_history<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    store
        .add_tracking_number(&pool_number(ws.id, "+74951112201"))
        .await
        .expect("add");
    let anna = ask(store, ws.id, "anna", 0).await;
    let lapse = i64::from(DEFAULT_TAIL_S);
    assert_eq!(
        ask(store, ws.id, "boris", lapse - 1).await,
        Reserved::Missed
    );
    let boris = ask(store, ws.id, "boris", lapse).await;
    assert_eq!(held(&boris).number, held(&anna).number);
    assert_ne!(held(&boris).id, held(&anna).id);
    let margin = Duration::seconds(2);
    let history = |t| store.reservations_around(ws.id, "+74951112201", at(t), margin);
    let early = history(10).await.expect("history");
    assert_eq!(
        early
            .iter()
            .map(|r| r.anonymous_id.as_str())
            .collect::<Vec<_>>(),
        ["anna"]
    );
    let late = history(lapse + 10).await.expect("history");
    assert_eq!(
        late.iter()
            .map(|r| r.anonymous_id.as_str())
            .collect::<Vec<_>>(),
        ["boris"]
    );
    assert!(store
        .reservations_around(ws.id, "+74951112299", at(10), margin)
        .await
        .expect("history")
        .is_empty());
}

pub async fn calls_are_recorded_once_and_counted_by_source<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let call = |call_id: &str, label: &str, t: i64| TrackedCall {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        call_id: call_id.into(),
        number: "+74951112201".into(),
        kind: NumberKind::Pool,
        reservation_id: Some(Uuid::now_v7()),
        anonymous_id: Some("anna".into()),
        source: from_yandex(),
        source_label: label.into(),
        started_at: at(t),
    };
    let first = call("100:500:1", "yandex / cpc", 10);
    let stored = store.record_tracked_call(&first).await.expect("record");
    assert_eq!(stored, first);
    let retry = call("100:500:1", "something else", 20);
    assert_eq!(
        store.record_tracked_call(&retry).await.expect("record"),
        first,
        "a re-sent call keeps its first attribution"
    );
    store
        .record_tracked_call(&call("100:500:2", "yandex / cpc", 30))
        .await
        .expect("record");
    store
        .record_tracked_call(&call("100:500:3", "Билборд", 40))
        .await
        .expect("record");
    store
        .record_tracked_call(&call("100:500:4", "Билборд", 5000))
        .await
        .expect("record");
    let stats = store
        .call_tracking_stats(ws.id, at(0), at(3600))
        .await
        .expect("stats");
    assert_eq!(
        stats.calls_by_source,
        vec![("yandex / cpc".to_owned(), 2), ("Билборд".to_owned(), 1)]
    );
    let (other, _, _) = new_workspace(store).await;
    assert_eq!(
        store
            .call_tracking_stats(other.id, at(0), at(3600))
            .await
            .expect("stats"),
        CallTrackingStats::default()
    );
}

pub async fn erasure_scrubs_the_persons_visits<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    for n in ["+74951112201", "+74951112202"] {
        store
            .add_tracking_number(&pool_number(ws.id, n))
            .await
            .expect("add");
    }
    let person = ProfileId(Uuid::now_v7());
    let mut tx = store.begin_identity(ws.id).await.expect("begin");
    tx.apply(&[
        IdentityOp::CreateProfile {
            id: person,
            at: at(0),
        },
        IdentityOp::Own {
            identifier: Identifier {
                kind: IdentifierKind::AnonymousId,
                value: "visitor-erased".into(),
            },
            profile: person,
            at: at(0),
            source: "test".into(),
            event: None,
        },
    ])
    .await
    .expect("apply");
    tx.commit().await.expect("commit");
    let erased = ask(store, ws.id, "visitor-erased", 0).await;
    let kept = ask(store, ws.id, "visitor-kept", 0).await;
    let call = TrackedCall {
        id: Uuid::now_v7(),
        workspace_id: ws.id,
        call_id: "100:500:9".into(),
        number: held(&erased).number.clone(),
        kind: NumberKind::Pool,
        reservation_id: Some(held(&erased).id),
        anonymous_id: Some("visitor-erased".into()),
        source: from_yandex(),
        source_label: "yandex / cpc".into(),
        started_at: at(10),
    };
    store.record_tracked_call(&call).await.expect("record");
    store
        .erase_profile(ws.id, person, &[], at(20))
        .await
        .expect("erase");
    let history = store
        .reservations_around(ws.id, &held(&erased).number, at(10), Duration::seconds(2))
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].anonymous_id, "[erased]");
    assert_eq!(history[0].session_id, None);
    assert_eq!(history[0].source, Attribution::default());
    let after = store.record_tracked_call(&call).await.expect("read back");
    assert_eq!(after.anonymous_id, None);
    assert_eq!(after.source, Attribution::default());
    assert_eq!(
        after.source_label, "yandex / cpc",
        "the count by source stays"
    );
    let other = store
        .reservations_around(ws.id, &held(&kept).number, at(10), Duration::seconds(2))
        .await
        .expect("history");
    assert_eq!(
        other[0].anonymous_id, "visitor-kept",
        "nobody else is touched"
    );
}
