//! The [`WebhookStore`] part of the suite: endpoints round trip and stay in
//! their workspace; a delivery is queued once per dedupe key; due
//! deliveries are leased to one sender at a time; attempts are logged and
//! move the delivery on; the log pages newest first; deleting an endpoint
//! or erasing a profile takes the deliveries with it (proved through a
//! [`RawScan`]).

use chrono::{DateTime, TimeZone, Utc};
use seamline_core::{ProfileId, WebhookDeliveryId, WebhookId, WorkspaceId};
use serde_json::json;
use uuid::Uuid;

use super::{new_workspace, RawScan};
use crate::*;

/// Runs every webhook check, in order, against `store`.
pub async fn run_webhook_suite<S: Backend>(store: &S, scan: &dyn RawScan) {
    endpoints_round_trip_and_stay_in_their_workspace(store).await;
    deliveries_are_queued_once_per_dedupe_key(store).await;
    due_deliveries_are_leased_to_one_sender(store).await;
    attempts_are_logged_and_move_the_delivery_on(store).await;
    the_delivery_log_pages_newest_first(store).await;
    deleting_an_endpoint_deletes_its_deliveries(store).await;
    erasure_removes_the_persons_deliveries(store, scan).await;
}

/// A fixed time, `n` seconds after a base (millisecond precision).
fn at(n: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_760_000_000_000 + n * 1000)
        .single()
        .expect("valid time")
}

fn endpoint(ws: WorkspaceId, events: &[WebhookEvent]) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookId(Uuid::now_v7()),
        workspace_id: ws,
        url: "https://hooks.example.test/seamline?x=1".into(),
        secret: WebhookSecret::new(format!("whsec_{}", Uuid::now_v7().simple())),
        events: events.iter().copied().collect(),
        active: true,
        description: "CRM «sync»".into(),
        created_at: at(0),
        updated_at: at(0),
    }
}

async fn created<S: Backend>(store: &S, ws: WorkspaceId) -> WebhookEndpoint {
    let e = endpoint(ws, &[]);
    store.create_webhook(&e).await.expect("create webhook");
    e
}

fn new_delivery(e: &WebhookEndpoint, key: &str, created_at: DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        id: WebhookDeliveryId(Uuid::now_v7()),
        workspace_id: e.workspace_id,
        endpoint_id: e.id,
        event: WebhookEvent::MessageCreated,
        dedupe_key: key.into(),
        profile_id: None,
        payload: json!({"message": {"body": format!("text of {key}")}}),
        created_at,
    }
}

async fn queued<S: Backend>(store: &S, e: &WebhookEndpoint, key: &str) -> NewDelivery {
    let d = new_delivery(e, key, at(0));
    let new = store
        .enqueue_deliveries(std::slice::from_ref(&d))
        .await
        .expect("enqueue");
    assert_eq!(new, 1);
    d
}

/// The claimed deliveries of `ws` (the queue is shared by every workspace).
async fn claim<S: Backend>(
    store: &S,
    ws: WorkspaceId,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Vec<ClaimedDelivery> {
    let claimed = store
        .claim_deliveries(1000, now, lease_until)
        .await
        .expect("claim");
    claimed
        .into_iter()
        .filter(|c| c.delivery.workspace_id == ws)
        .collect()
}

async fn must<S: Backend>(store: &S, ws: WorkspaceId, id: WebhookDeliveryId) -> WebhookDelivery {
    store
        .delivery(ws, id)
        .await
        .expect("read delivery")
        .expect("delivery exists")
}

fn attempt(id: WebhookDeliveryId, when: DateTime<Utc>, code: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        delivery_id: id,
        attempted_at: when,
        status_code: code,
        duration_ms: 42,
        error: code.is_none().then(|| "connection refused".into()),
        response_excerpt: code.map(|c| format!("answer {c} «ok»")).unwrap_or_default(),
    }
}

pub async fn endpoints_round_trip_and_stay_in_their_workspace<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let mut e = endpoint(
        a.id,
        &[
            WebhookEvent::MessageCreated,
            WebhookEvent::ConversationCreated,
        ],
    );
    store.create_webhook(&e).await.expect("create");
    let other = created(store, a.id).await;
    assert_eq!(
        store.webhook(a.id, e.id).await.expect("read"),
        Some(e.clone())
    );
    assert_eq!(
        store.list_webhooks(a.id).await.expect("list"),
        vec![e.clone(), other.clone()],
        "oldest first"
    );
    assert_eq!(store.webhook(b.id, e.id).await.expect("read"), None);
    assert!(store.list_webhooks(b.id).await.expect("list").is_empty());

    e.url = "http://127.0.0.1:9/other".into();
    e.secret = WebhookSecret::new("whsec_rotated".into());
    e.events.clear();
    e.active = false;
    e.description = String::new();
    e.updated_at = at(5);
    store.update_webhook(&e).await.expect("update");
    assert_eq!(
        store.webhook(a.id, e.id).await.expect("read"),
        Some(e.clone())
    );

    let mut stranger = e.clone();
    stranger.workspace_id = b.id;
    assert!(matches!(
        store.update_webhook(&stranger).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_webhook(b.id, e.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_webhook(a.id, e.id).await.expect("delete");
    assert_eq!(store.webhook(a.id, e.id).await.expect("read"), None);
    assert_eq!(store.list_webhooks(a.id).await.expect("list"), vec![other]);
}

pub async fn deliveries_are_queued_once_per_dedupe_key<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let (first, second) = (created(store, a.id).await, created(store, a.id).await);
    let batch = [
        new_delivery(&first, "msg-1", at(0)),
        new_delivery(&second, "msg-1", at(0)),
    ];
    assert_eq!(store.enqueue_deliveries(&batch).await.expect("enqueue"), 2);
    let again = [
        new_delivery(&first, "msg-1", at(1)),
        new_delivery(&first, "msg-2", at(1)),
    ];
    assert_eq!(
        store.enqueue_deliveries(&again).await.expect("enqueue"),
        1,
        "the same event for the same endpoint is queued once"
    );
    assert!(store
        .delivery(a.id, again[0].id)
        .await
        .expect("read")
        .is_none());

    let mut smuggled = new_delivery(&first, "msg-3", at(1));
    smuggled.workspace_id = b.id;
    assert_eq!(
        store
            .enqueue_deliveries(&[smuggled])
            .await
            .expect("enqueue"),
        0,
        "a delivery lands only on its own workspace's endpoint"
    );

    let stored = must(store, a.id, batch[0].id).await;
    assert_eq!(
        (stored.status, stored.attempts, stored.next_attempt_at),
        (DeliveryState::Pending, 0, Some(at(0)))
    );
    assert_eq!(stored.payload, batch[0].payload);
    assert_eq!(stored.event, WebhookEvent::MessageCreated);
    assert_eq!(store.delivery(b.id, batch[0].id).await.expect("read"), None);
}

pub async fn due_deliveries_are_leased_to_one_sender<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let ws = ws.id;
    let live = created(store, ws).await;
    let mut off = created(store, ws).await;
    off.active = false;
    store.update_webhook(&off).await.expect("disable");
    let sent = queued(store, &live, "a").await;
    queued(store, &off, "b").await;

    let claimed = claim(store, ws, at(1), at(31)).await;
    assert_eq!(claimed.len(), 1, "only active endpoints' deliveries");
    assert_eq!(claimed[0].delivery.id, sent.id);
    assert_eq!(claimed[0].url, live.url);
    assert_eq!(claimed[0].secret, live.secret);
    assert!(
        claim(store, ws, at(2), at(32)).await.is_empty(),
        "a leased delivery is not claimed twice"
    );
    let again = claim(store, ws, at(40), at(70)).await;
    assert_eq!(again.len(), 1, "a lease that ran out frees the delivery");

    off.active = true;
    store.update_webhook(&off).await.expect("enable");
    assert_eq!(claim(store, ws, at(41), at(71)).await.len(), 1);
}

pub async fn attempts_are_logged_and_move_the_delivery_on<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let e = created(store, a.id).await;
    let d = queued(store, &e, "m").await;
    assert_eq!(claim(store, a.id, at(1), at(31)).await.len(), 1);

    let failed = attempt(d.id, at(2), None);
    assert!(matches!(
        store.record_attempt(b.id, &failed, NextStep::GiveUp).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .record_attempt(a.id, &failed, NextStep::RetryAt(at(100)))
        .await
        .expect("record failure");
    let now = must(store, a.id, d.id).await;
    assert_eq!(
        (now.status, now.attempts, now.next_attempt_at),
        (DeliveryState::Failed, 1, Some(at(100)))
    );
    assert!(
        claim(store, a.id, at(50), at(80)).await.is_empty(),
        "not due before its retry time, though the lease is released"
    );
    assert_eq!(claim(store, a.id, at(100), at(130)).await.len(), 1);

    let ok = attempt(d.id, at(101), Some(204));
    store
        .record_attempt(a.id, &ok, NextStep::Succeeded)
        .await
        .expect("record success");
    let done = must(store, a.id, d.id).await;
    assert_eq!(
        (done.status, done.attempts, done.next_attempt_at),
        (DeliveryState::Succeeded, 2, None)
    );
    assert_eq!(
        store.delivery_attempts(a.id, d.id).await.expect("attempts"),
        vec![failed, ok]
    );
    assert!(store
        .delivery_attempts(b.id, d.id)
        .await
        .expect("attempts")
        .is_empty());
    assert!(claim(store, a.id, at(200), at(230)).await.is_empty());

    assert!(matches!(
        store.redeliver(b.id, d.id, at(300)).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .redeliver(a.id, d.id, at(300))
        .await
        .expect("redeliver");
    let again = must(store, a.id, d.id).await;
    assert_eq!(
        (again.status, again.attempts, again.next_attempt_at),
        (DeliveryState::Pending, 2, Some(at(300)))
    );
    let claimed = claim(store, a.id, at(300), at(330)).await;
    assert_eq!(claimed.len(), 1);
    store
        .record_attempt(a.id, &attempt(d.id, at(301), Some(500)), NextStep::GiveUp)
        .await
        .expect("give up");
    let given_up = must(store, a.id, d.id).await;
    assert_eq!(
        (given_up.status, given_up.next_attempt_at),
        (DeliveryState::GivenUp, None)
    );
}

pub async fn the_delivery_log_pages_newest_first<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let e = created(store, a.id).await;
    let other = created(store, a.id).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(queued(store, &e, &format!("k{i}")).await.id);
    }
    queued(store, &other, "k0").await;
    ids.reverse();
    let page = |before| DeliveryQuery { before, limit: 2 };
    let first = store
        .deliveries(a.id, e.id, page(None))
        .await
        .expect("page");
    assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), ids[..2]);
    let rest = store
        .deliveries(a.id, e.id, page(first.last().map(|d| d.seq)))
        .await
        .expect("page");
    assert_eq!(rest.iter().map(|d| d.id).collect::<Vec<_>>(), ids[2..4]);
    assert!(store
        .deliveries(b.id, e.id, page(None))
        .await
        .expect("page")
        .is_empty());
}

pub async fn deleting_an_endpoint_deletes_its_deliveries<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let e = created(store, ws.id).await;
    let d = queued(store, &e, "gone").await;
    store
        .record_attempt(ws.id, &attempt(d.id, at(1), Some(500)), NextStep::GiveUp)
        .await
        .expect("record");
    store.delete_webhook(ws.id, e.id).await.expect("delete");
    assert_eq!(store.delivery(ws.id, d.id).await.expect("read"), None);
    assert!(store
        .delivery_attempts(ws.id, d.id)
        .await
        .expect("attempts")
        .is_empty());
}

pub async fn erasure_removes_the_persons_deliveries<S: Backend>(store: &S, scan: &dyn RawScan) {
    let (ws, _, _) = new_workspace(store).await;
    let ws = ws.id;
    let tag = Uuid::now_v7().simple().to_string();
    let [person, bystander] = [ProfileId(Uuid::now_v7()), ProfileId(Uuid::now_v7())];
    let mut tx = store.begin_identity(ws).await.expect("begin");
    tx.apply(&[
        IdentityOp::CreateProfile {
            id: person,
            at: at(0),
        },
        IdentityOp::CreateProfile {
            id: bystander,
            at: at(0),
        },
    ])
    .await
    .expect("profiles");
    tx.commit().await.expect("commit");
    let e = created(store, ws).await;
    let about = |profile, key: &str| NewDelivery {
        profile_id: Some(profile),
        payload: json!({"message": {"body": format!("мой номер {tag}"), "key": key}}),
        ..new_delivery(&e, key, at(0))
    };
    let (theirs, other) = (about(person, "p"), about(bystander, "b"));
    store
        .enqueue_deliveries(&[theirs.clone(), other.clone()])
        .await
        .expect("enqueue");
    let mut echoed = attempt(theirs.id, at(1), Some(400));
    echoed.response_excerpt = format!("bad body: мой номер {tag}");
    store
        .record_attempt(ws, &echoed, NextStep::RetryAt(at(60)))
        .await
        .expect("record");
    assert_eq!(scan.find_text(&tag).await.len(), 3, "found before erasure");

    store
        .erase_profile(ws, person, &[], at(10))
        .await
        .expect("erase");
    assert_eq!(store.delivery(ws, theirs.id).await.expect("read"), None);
    assert_eq!(
        scan.find_text(&tag).await,
        vec!["webhook_deliveries.payload".to_string()],
        "only the bystander's delivery is left"
    );
    assert!(store.delivery(ws, other.id).await.expect("read").is_some());
}
