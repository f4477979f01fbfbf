//! The one suite every [`Store`] backend must pass, run by each backend's
//! tests against a fresh, migrated database. Every check creates its own
//! workspaces, so checks never see each other's tenant data.
//!
//! [`run_all`] covers [`Store`]; [`run_profile_suite`] covers
//! [`ProfileStore`], [`run_inbox_suite`] covers [`InboxStore`],
//! [`run_webhook_suite`] covers [`WebhookStore`] and
//! [`run_channel_suite`] covers [`ChannelStore`], all four
//! with a backend-specific [`RawScan`] for what only a look at the raw
//! tables can prove.

use chrono::{DateTime, Duration, TimeZone, Utc};
use seamline_core::tracking::{Clock, Enrichment, EventType, TrackedEvent};
use seamline_core::{EventId, KeyId, MemberId, Role, WorkspaceId};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::*;

mod calltracking;
mod channels;
mod inbox;
mod profiles;
mod webhooks;
pub use calltracking::*;
pub use channels::*;
pub use inbox::*;
pub use profiles::*;
pub use webhooks::*;

/// Runs every check, in order, against `store`.
pub async fn run_all(store: &dyn Store) {
    migrations_are_idempotent(store).await;
    workspace_setup_is_one_transaction(store).await;
    members_are_scoped_to_their_workspace(store).await;
    sessions_expire_and_die_with_their_member(store).await;
    keys_are_found_by_hash_until_revoked(store).await;
    events_are_stored_once_per_message_id(store).await;
    events_round_trip_exactly(store).await;
    event_queries_filter_and_paginate(store).await;
    events_of_one_workspace_are_invisible_to_another(store).await;
    outbox_holds_exactly_the_new_events_until_completed(store).await;
    every_consumer_gets_its_own_outbox_entry(store).await;
    an_append_can_claim_its_own_outbox_entry(store).await;
    import_checkpoints_are_per_workspace_and_source(store).await;
    settings_are_per_workspace_and_replaced_whole(store).await;
}

pub async fn settings_are_per_workspace_and_replaced_whole(store: &dyn Store) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    assert_eq!(store.setting(a.id, "identity").await.expect("read"), None);
    let first = serde_json::json!({"default_region": "DE", "block_list": ["phone:+4930"]});
    store
        .put_setting(a.id, "identity", &first, now())
        .await
        .expect("put");
    assert_eq!(
        store.setting(a.id, "identity").await.expect("read"),
        Some(first)
    );
    let second = serde_json::json!({"fold_emails": true, "name": "Ольга \"quoted\""});
    store
        .put_setting(a.id, "identity", &second, now())
        .await
        .expect("replace");
    assert_eq!(
        store.setting(a.id, "identity").await.expect("read"),
        Some(second)
    );
    assert_eq!(
        store.setting(b.id, "identity").await.expect("read"),
        None,
        "another workspace's settings are its own"
    );
    assert_eq!(store.setting(a.id, "widget").await.expect("read"), None);
}

fn now() -> DateTime<Utc> {
    // Millisecond precision: what every backend keeps.
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .expect("now is a valid time")
}

fn member(ws: WorkspaceId, role: Role) -> Member {
    let id = Uuid::now_v7();
    Member {
        id: MemberId(id),
        workspace_id: ws,
        email: format!("{id}@example.test"),
        name: "Анна Smith".into(),
        role,
        password_hash: "$argon2id$placeholder".into(),
        created_at: now(),
    }
}

fn key(ws: WorkspaceId, kind: KeyKind) -> ApiKey {
    let secret = format!("sl_{}_{}", kind.as_str(), Uuid::now_v7().simple());
    ApiKey {
        id: KeyId(Uuid::now_v7()),
        workspace_id: ws,
        kind,
        name: "default".into(),
        prefix: secret.chars().take(12).collect(),
        plaintext: (kind == KeyKind::Write).then(|| secret.clone()),
        secret_hash: format!("hash-of-{secret}"),
        created_at: now(),
        revoked_at: None,
    }
}

/// A fresh workspace with an owner and one key of each kind.
pub async fn new_workspace(store: &dyn Store) -> (Workspace, Member, Vec<ApiKey>) {
    let ws = Workspace {
        id: WorkspaceId(Uuid::now_v7()),
        name: "Кофейня «Утро»".into(),
        created_at: now(),
    };
    let owner = member(ws.id, Role::Owner);
    let keys = vec![key(ws.id, KeyKind::Write), key(ws.id, KeyKind::Secret)];
    let setup = WorkspaceSetup {
        workspace: ws.clone(),
        owner: owner.clone(),
        keys: keys.clone(),
    };
    let created = store
        .create_workspace(setup)
        .await
        .expect("create workspace");
    assert_eq!(created, ws);
    (ws, owner, keys)
}

fn tracked(
    message_id: &str,
    event_type: EventType,
    user_id: Option<&str>,
    anonymous_id: Option<&str>,
) -> TrackedEvent {
    let timestamp = now();
    let mut payload = Map::new();
    payload.insert("type".into(), json!(event_type.as_str()));
    payload.insert("messageId".into(), json!(message_id));
    TrackedEvent {
        message_id: message_id.into(),
        event_type,
        event_name: (event_type == EventType::Track).then(|| "Order Completed".into()),
        user_id: user_id.map(Into::into),
        anonymous_id: anonymous_id.map(Into::into),
        timestamp,
        received_at: timestamp,
        enrichment: Enrichment {
            clock: Clock::correct(None, None, timestamp),
            ..Enrichment::default()
        },
        payload,
    }
}

fn new_event(ws: WorkspaceId, event: TrackedEvent) -> NewEvent {
    NewEvent {
        id: EventId(Uuid::now_v7()),
        workspace_id: ws,
        event,
    }
}

fn all(limit: u32) -> EventQuery {
    EventQuery {
        limit,
        ..EventQuery::default()
    }
}

pub async fn migrations_are_idempotent(store: &dyn Store) {
    store.migrate().await.expect("second migrate is a no-op");
    store.ping().await.expect("ping");
}

pub async fn workspace_setup_is_one_transaction(store: &dyn Store) {
    let (ws, owner, keys) = new_workspace(store).await;
    assert_eq!(
        store.workspace(ws.id).await.expect("read"),
        Some(ws.clone())
    );
    assert!(store.list_workspaces().await.expect("list").contains(&ws));
    assert_eq!(
        store.list_members(ws.id).await.expect("members"),
        vec![owner.clone()]
    );
    assert_eq!(
        store.list_keys(ws.id).await.expect("keys").len(),
        keys.len()
    );

    // A setup whose owner e-mail is taken fails whole: no workspace is left behind.
    let clash = Workspace {
        id: WorkspaceId(Uuid::now_v7()),
        name: "clash".into(),
        created_at: now(),
    };
    let mut owner2 = member(clash.id, Role::Owner);
    owner2.email = owner.email.clone();
    let setup = WorkspaceSetup {
        workspace: clash.clone(),
        owner: owner2,
        keys: vec![key(clash.id, KeyKind::Write)],
    };
    let err = store
        .create_workspace(setup)
        .await
        .expect_err("duplicate e-mail");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.workspace(clash.id).await.expect("read"), None);
    assert!(store.list_keys(clash.id).await.expect("keys").is_empty());
}

pub async fn members_are_scoped_to_their_workspace(store: &dyn Store) {
    let (a, owner_a, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let analyst = store
        .create_member(member(a.id, Role::Analyst))
        .await
        .expect("create");
    assert_eq!(
        store.member(a.id, analyst.id).await.expect("read"),
        Some(analyst.clone())
    );
    assert_eq!(
        store.member(b.id, analyst.id).await.expect("read"),
        None,
        "not visible from B"
    );
    assert_eq!(
        store
            .member_by_email(&analyst.email)
            .await
            .expect("by email"),
        Some(analyst.clone())
    );

    let mut twin = member(b.id, Role::Operator);
    twin.email = owner_a.email.clone();
    assert!(matches!(
        store.create_member(twin).await,
        Err(StoreError::Conflict(_))
    ));

    store
        .set_member_role(a.id, analyst.id, Role::Supervisor)
        .await
        .expect("re-role");
    let reread = store
        .member(a.id, analyst.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(reread.role, Role::Supervisor);
    assert!(matches!(
        store.set_member_role(b.id, analyst.id, Role::Owner).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_member(b.id, analyst.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_member(a.id, analyst.id).await.expect("delete");
    assert_eq!(store.member(a.id, analyst.id).await.expect("read"), None);
}

pub async fn sessions_expire_and_die_with_their_member(store: &dyn Store) {
    let (ws, _, _) = new_workspace(store).await;
    let operator = store
        .create_member(member(ws.id, Role::Operator))
        .await
        .expect("create");
    let session = Session {
        token_hash: format!("token-{}", Uuid::now_v7()),
        member_id: operator.id,
        workspace_id: ws.id,
        csrf_token: "csrf".into(),
        created_at: now(),
        expires_at: now() + Duration::hours(1),
    };
    store
        .create_session(session.clone())
        .await
        .expect("create session");
    assert_eq!(
        store
            .session(&session.token_hash, now())
            .await
            .expect("read"),
        Some(session.clone())
    );
    let later = now() + Duration::hours(2);
    assert_eq!(
        store
            .session(&session.token_hash, later)
            .await
            .expect("read"),
        None,
        "expired"
    );

    store
        .delete_member(ws.id, operator.id)
        .await
        .expect("delete member");
    assert_eq!(
        store
            .session(&session.token_hash, now())
            .await
            .expect("read"),
        None,
        "gone with member"
    );

    let owner = &store.list_members(ws.id).await.expect("members")[0];
    let second = Session {
        token_hash: format!("token-{}", Uuid::now_v7()),
        member_id: owner.id,
        ..session
    };
    store.create_session(second.clone()).await.expect("create");
    store
        .delete_session(&second.token_hash)
        .await
        .expect("logout");
    assert_eq!(
        store
            .session(&second.token_hash, now())
            .await
            .expect("read"),
        None
    );
}

pub async fn keys_are_found_by_hash_until_revoked(store: &dyn Store) {
    let (a, _, keys) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let write = &keys[0];
    let found = store
        .key_by_hash(KeyKind::Write, &write.secret_hash)
        .await
        .expect("lookup");
    assert_eq!(found.as_ref().map(|k| k.workspace_id), Some(a.id));
    assert_eq!(found.and_then(|k| k.plaintext), write.plaintext);
    assert_eq!(
        store
            .key_by_hash(KeyKind::Secret, &write.secret_hash)
            .await
            .expect("lookup"),
        None,
        "a write key is not a secret key"
    );

    assert!(matches!(
        store.revoke_key(b.id, write.id, now()).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .key_by_hash(KeyKind::Write, &write.secret_hash)
        .await
        .expect("lookup")
        .is_some());
    store
        .revoke_key(a.id, write.id, now())
        .await
        .expect("revoke");
    assert_eq!(
        store
            .key_by_hash(KeyKind::Write, &write.secret_hash)
            .await
            .expect("lookup"),
        None
    );
    let listed = store.list_keys(a.id).await.expect("list");
    assert!(listed
        .iter()
        .any(|k| k.id == write.id && k.revoked_at.is_some()));

    let extra = key(a.id, KeyKind::Secret);
    store.create_key(extra.clone()).await.expect("create key");
    assert!(store
        .key_by_hash(KeyKind::Secret, &extra.secret_hash)
        .await
        .expect("lookup")
        .is_some());
    assert!(store
        .list_keys(b.id)
        .await
        .expect("list")
        .iter()
        .all(|k| k.workspace_id == b.id));
}

pub async fn events_are_stored_once_per_message_id(store: &dyn Store) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let first = vec![
        new_event(a.id, tracked("m1", EventType::Track, Some("u1"), None)),
        new_event(a.id, tracked("m2", EventType::Page, None, Some("anon"))),
        new_event(a.id, tracked("m1", EventType::Track, Some("u1"), None)),
    ];
    assert_eq!(
        store.append_events(&first).await.expect("append"),
        vec![true, true, false]
    );
    let retry = vec![
        new_event(a.id, tracked("m2", EventType::Page, None, Some("anon"))),
        new_event(a.id, tracked("m3", EventType::Identify, Some("u1"), None)),
        new_event(b.id, tracked("m1", EventType::Track, Some("u1"), None)),
    ];
    assert_eq!(
        store.append_events(&retry).await.expect("append"),
        vec![false, true, true]
    );
    assert_eq!(store.count_events(a.id).await.expect("count"), 3);
    assert_eq!(store.count_events(b.id).await.expect("count"), 1);
    assert!(store
        .append_events(&[])
        .await
        .expect("empty append")
        .is_empty());
}

pub async fn events_round_trip_exactly(store: &dyn Store) {
    let (ws, _, _) = new_workspace(store).await;
    let mut event = tracked(
        "unicode-1",
        EventType::Track,
        Some("пользователь-1"),
        Some("anon-😀"),
    );
    event.payload.insert(
        "properties".into(),
        json!({"text": "Борщ и пирожок 🥟", "nested": {"z": 1, "a": [1.5, null, true]}}),
    );
    event.enrichment.attribution.utm_source = Some("yandex".into());
    let new = new_event(ws.id, event.clone());
    store
        .append_events(std::slice::from_ref(&new))
        .await
        .expect("append");
    let stored = store.list_events(ws.id, &all(10)).await.expect("list");
    let [one] = &stored[..] else {
        panic!("one event, got {stored:?}")
    };
    assert_eq!(one.id, new.id);
    assert_eq!(one.workspace_id, ws.id);
    assert_eq!(one.message_id, "unicode-1");
    assert_eq!(one.event_type, EventType::Track);
    assert_eq!(one.event_name.as_deref(), Some("Order Completed"));
    assert_eq!(one.user_id.as_deref(), Some("пользователь-1"));
    assert_eq!(one.anonymous_id.as_deref(), Some("anon-😀"));
    assert_eq!(one.timestamp, event.timestamp);
    assert_eq!(one.received_at, event.received_at);
    assert_eq!(one.payload, Value::Object(event.payload.clone()));
    assert_eq!(
        one.payload.to_string(),
        Value::Object(event.payload).to_string(),
        "key order kept"
    );
    assert_eq!(one.enrichment["attribution"]["utm_source"], "yandex");
}

pub async fn event_queries_filter_and_paginate(store: &dyn Store) {
    let (ws, _, _) = new_workspace(store).await;
    let mut batch = Vec::new();
    for i in 0..25 {
        let (kind, user) = if i % 5 == 0 {
            (EventType::Identify, "u-a")
        } else {
            (EventType::Track, "u-b")
        };
        let mut event = tracked(
            &format!("p{i}"),
            kind,
            Some(user),
            Some(&format!("anon-{}", i % 2)),
        );
        event.timestamp = Utc
            .timestamp_millis_opt(1_700_000_000_000 + i * 60_000)
            .single()
            .expect("time");
        batch.push(new_event(ws.id, event));
    }
    store.append_events(&batch).await.expect("append");

    let mut seen = Vec::new();
    let mut query = all(10);
    loop {
        let page = store.list_events(ws.id, &query).await.expect("page");
        seen.extend(page.iter().map(|e| e.message_id.clone()));
        match page.last() {
            Some(last) if page.len() == 10 => query.after_seq = Some(last.seq),
            _ => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("p{i}")).collect();
    assert_eq!(seen, expected, "newest first, every event once");

    let oldest = store
        .list_events(
            ws.id,
            &EventQuery {
                order: Order::OldestFirst,
                limit: 3,
                ..EventQuery::default()
            },
        )
        .await
        .expect("oldest");
    let ids: Vec<_> = oldest.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["p0", "p1", "p2"]);

    let identifies = store
        .list_events(
            ws.id,
            &EventQuery {
                event_type: Some(EventType::Identify),
                ..all(100)
            },
        )
        .await
        .expect("by type");
    assert_eq!(identifies.len(), 5);
    assert!(identifies
        .iter()
        .all(|e| e.event_type == EventType::Identify));

    let by_user = store
        .list_events(
            ws.id,
            &EventQuery {
                user_id: Some("u-b".into()),
                ..all(100)
            },
        )
        .await
        .expect("by user");
    assert_eq!(by_user.len(), 20);

    let by_anon = store
        .list_events(
            ws.id,
            &EventQuery {
                anonymous_id: Some("anon-1".into()),
                ..all(100)
            },
        )
        .await
        .expect("by anonymous id");
    assert_eq!(by_anon.len(), 12);

    let since = Utc
        .timestamp_millis_opt(1_700_000_000_000 + 20 * 60_000)
        .single()
        .expect("time");
    let recent = store
        .list_events(
            ws.id,
            &EventQuery {
                since: Some(since),
                ..all(100)
            },
        )
        .await
        .expect("since");
    assert_eq!(recent.len(), 5);
}

pub async fn events_of_one_workspace_are_invisible_to_another(store: &dyn Store) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    store
        .append_events(&[new_event(
            a.id,
            tracked("secret-a", EventType::Track, Some("ua"), None),
        )])
        .await
        .expect("append");
    let from_b = store
        .list_events(
            b.id,
            &EventQuery {
                user_id: Some("ua".into()),
                ..all(100)
            },
        )
        .await
        .expect("list");
    assert!(from_b.is_empty(), "B sees nothing of A");
    assert_eq!(store.count_events(b.id).await.expect("count"), 0);
}

pub async fn outbox_holds_exactly_the_new_events_until_completed(store: &dyn Store) {
    drain_outbox(store, BUS_CONSUMER).await;
    let (ws, _, _) = new_workspace(store).await;
    let events = vec![
        new_event(ws.id, tracked("o1", EventType::Track, Some("u"), None)),
        new_event(ws.id, tracked("o2", EventType::Track, Some("u"), None)),
    ];
    store.append_events(&events).await.expect("append");
    store
        .append_events(&events[..1])
        .await
        .expect("duplicate append adds no entry");

    let t0 = now();
    let claimed = store
        .claim_outbox(BUS_CONSUMER, 100, t0, t0 + Duration::seconds(30))
        .await
        .expect("claim");
    let [entry] = &claimed[..] else {
        panic!("one entry, got {claimed:?}")
    };
    let ids: Vec<_> = entry.events.iter().map(|e| e.message_id.as_str()).collect();
    assert_eq!(ids, ["o1", "o2"]);

    let again = store
        .claim_outbox(BUS_CONSUMER, 100, t0, t0 + Duration::seconds(30))
        .await
        .expect("claim");
    assert!(again.is_empty(), "a leased entry is not handed out twice");
    let after_lease = t0 + Duration::seconds(31);
    let reclaimed = store
        .claim_outbox(
            BUS_CONSUMER,
            100,
            after_lease,
            after_lease + Duration::seconds(30),
        )
        .await
        .expect("claim");
    assert_eq!(
        reclaimed.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![entry.id],
        "a dead relay's lease expires"
    );

    store.complete_outbox(&[entry.id]).await.expect("complete");
    let far = t0 + Duration::hours(1);
    assert!(store
        .claim_outbox(BUS_CONSUMER, 100, far, far)
        .await
        .expect("claim")
        .is_empty());
}

async fn drain_outbox(store: &dyn Store, consumer: &str) {
    let far = now() + Duration::days(365);
    loop {
        let entries = store
            .claim_outbox(consumer, 1000, far, far + Duration::seconds(1))
            .await
            .expect("drain");
        if entries.is_empty() {
            return;
        }
        let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
        store.complete_outbox(&ids).await.expect("complete");
    }
}

pub async fn every_consumer_gets_its_own_outbox_entry(store: &dyn Store) {
    for consumer in OUTBOX_CONSUMERS {
        drain_outbox(store, consumer).await;
    }
    let (ws, _, _) = new_workspace(store).await;
    store
        .append_events(&[new_event(
            ws.id,
            tracked("c1", EventType::Track, Some("u"), None),
        )])
        .await
        .expect("append");
    for consumer in OUTBOX_CONSUMERS {
        assert_eq!(
            store.outbox_backlog(consumer).await.expect("backlog"),
            1,
            "{consumer}"
        );
    }
    let t0 = now();
    let bus = store
        .claim_outbox(BUS_CONSUMER, 10, t0, t0 + Duration::seconds(30))
        .await
        .expect("claim");
    assert_eq!(bus.len(), 1);
    assert_eq!(
        store.outbox_backlog(BUS_CONSUMER).await.expect("backlog"),
        1,
        "a leased entry still waits"
    );
    store.complete_outbox(&[bus[0].id]).await.expect("complete");
    assert_eq!(
        store.outbox_backlog(BUS_CONSUMER).await.expect("backlog"),
        0
    );
    let identity = store
        .claim_outbox(IDENTITY_CONSUMER, 10, t0, t0 + Duration::seconds(30))
        .await
        .expect("claim");
    assert_eq!(
        identity.len(),
        1,
        "handling the bus entry leaves the identity entry"
    );
    assert_eq!(identity[0].events[0].message_id, "c1");
    store
        .complete_outbox(&[identity[0].id])
        .await
        .expect("complete");
}

pub async fn an_append_can_claim_its_own_outbox_entry(store: &dyn Store) {
    for consumer in OUTBOX_CONSUMERS {
        drain_outbox(store, consumer).await;
    }
    let (ws, _, _) = new_workspace(store).await;
    let first = new_event(ws.id, tracked("c0", EventType::Track, Some("u"), None));
    let stored = store.append_events(&[first]).await.expect("append");
    assert_eq!(stored, [true]);
    drain_outbox(store, BUS_CONSUMER).await;
    let mut late = tracked("c2", EventType::Page, None, Some("anon"));
    late.timestamp = Utc::now(); // finer than any backend keeps
    let events = vec![
        new_event(ws.id, tracked("c1", EventType::Track, Some("u"), None)),
        new_event(ws.id, tracked("c0", EventType::Track, Some("u"), None)),
        new_event(ws.id, late),
        new_event(ws.id, tracked("c1", EventType::Track, Some("u"), None)),
    ];
    let t0 = now();
    let appended = store
        .append_and_claim(events, BUS_CONSUMER, t0 + Duration::seconds(30))
        .await
        .expect("append and claim");
    assert_eq!(appended.new, [true, false, true, false]);
    let entry = appended.entry.expect("an entry for the new events");
    let oldest_first = EventQuery {
        order: Order::OldestFirst,
        ..all(10)
    };
    let listed = store.list_events(ws.id, &oldest_first).await.expect("list");
    assert_eq!(
        entry.events,
        listed[1..],
        "the entry holds the events as stored"
    );

    let claim = |at: DateTime<Utc>, consumer| {
        store.claim_outbox(consumer, 100, at, at + Duration::seconds(30))
    };
    let bus = claim(t0, BUS_CONSUMER).await.expect("claim");
    assert!(bus.is_empty(), "the entry is leased to the appender");
    let identity = claim(t0, IDENTITY_CONSUMER).await.expect("claim");
    assert_eq!(identity.len(), 2, "other consumers' entries are not leased");
    let after_lease = t0 + Duration::seconds(31);
    let reclaimed = claim(after_lease, BUS_CONSUMER).await.expect("claim");
    assert_eq!(
        reclaimed
            .iter()
            .map(|e| (e.id, &e.events))
            .collect::<Vec<_>>(),
        [(entry.id, &entry.events)],
        "an appender that died leaves its entry to any worker"
    );
    let ids: Vec<i64> = reclaimed.iter().chain(&identity).map(|e| e.id).collect();
    store.complete_outbox(&ids).await.expect("complete");

    let nothing_new = vec![new_event(
        ws.id,
        tracked("c0", EventType::Track, Some("u"), None),
    )];
    let appended = store
        .append_and_claim(nothing_new, BUS_CONSUMER, t0 + Duration::seconds(30))
        .await
        .expect("append and claim");
    assert_eq!(appended.new, [false]);
    assert!(appended.entry.is_none(), "nothing new, no entry");
}

pub async fn import_checkpoints_are_per_workspace_and_source(store: &dyn Store) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    assert_eq!(
        store.import_checkpoint(a.id, "file-1").await.expect("read"),
        None
    );
    store
        .set_import_checkpoint(a.id, "file-1", 1000)
        .await
        .expect("set");
    store
        .set_import_checkpoint(a.id, "file-1", 2000)
        .await
        .expect("advance");
    assert_eq!(
        store.import_checkpoint(a.id, "file-1").await.expect("read"),
        Some(2000)
    );
    assert_eq!(
        store.import_checkpoint(a.id, "file-2").await.expect("read"),
        None
    );
    assert_eq!(
        store.import_checkpoint(b.id, "file-1").await.expect("read"),
        None
    );
}
