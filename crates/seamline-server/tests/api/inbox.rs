//! A customer's message from any channel: their one conversation, stored
//! once, routed to an operator (sticky to the one who served them last).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::Utc;
use seamline_bus::Bus;
use seamline_core::inbox::conversation::{AssignReason, Channel};
use seamline_core::inbox::routing::{Presence, TeamRouting};
use seamline_core::{ConversationId, MemberId, Role, TeamId, WorkspaceId};
use seamline_server::inbox::{receive, Customer, Inbound, InboundWriter, InboxError};
use seamline_store::{Backend, MessageQuery, Order, Team};

use crate::support::{spawn_app, TestApp};

fn on(app: &TestApp, channel: Channel, customer: Customer, body: &str, external: &str) -> Inbound {
    to(
        app.workspace.workspace.id,
        channel,
        customer,
        body,
        external,
    )
}

fn to(
    workspace: WorkspaceId,
    channel: Channel,
    customer: Customer,
    body: &str,
    external: &str,
) -> Inbound {
    Inbound {
        workspace,
        channel,
        customer,
        body: body.to_owned(),
        external_id: Some(external.to_owned()),
        at: Utc::now(),
    }
}

fn telegram(id: &str, phone: Option<&str>) -> Customer {
    Customer {
        channel_id: Some(("telegram".into(), id.into())),
        phone: phone.map(str::to_owned),
        name: Some("Ольга".into()),
        ..Customer::default()
    }
}

fn whatsapp(number: &str) -> Customer {
    Customer {
        channel_id: Some(("whatsapp".into(), number.into())),
        phone: Some(number.into()),
        ..Customer::default()
    }
}

/// A team on the messengers with `operators` operators, all online.
async fn team_of(app: &TestApp, operators: usize) -> Vec<MemberId> {
    let ws = app.workspace.workspace.id;
    let team = Team {
        id: TeamId(uuid::Uuid::now_v7()),
        workspace_id: ws,
        name: "Поддержка".into(),
        routing: TeamRouting::default(),
        hours: None,
        channels: BTreeSet::from([Channel::Telegram, Channel::WhatsApp]),
        bots: Default::default(),
        created_at: Utc::now(),
    };
    app.store.create_team(&team).await.expect("team");
    let mut members = Vec::new();
    for _ in 0..operators {
        let email = app.add_member(Role::Operator).await;
        let member = app
            .store
            .member_by_email(&email)
            .await
            .expect("read")
            .expect("member");
        app.store
            .add_team_member(ws, team.id, member.id)
            .await
            .expect("join");
        app.store
            .set_presence(ws, member.id, Presence::Online, Utc::now())
            .await
            .expect("online");
        members.push(member.id);
    }
    members
}

/// Lets the conversation go: resolved and nobody's.
async fn let_go(app: &TestApp, received: &seamline_server::inbox::Received) {
    let ws = app.workspace.workspace.id;
    let stored = app
        .store
        .conversation(ws, received.message.conversation.conversation.id)
        .await
        .expect("read")
        .expect("conversation");
    let mut update = stored.update(Utc::now());
    update.conversation.assign(None, None, AssignReason::Manual);
    update.conversation.resolve().expect("resolves");
    app.store
        .update_conversation(ws, &update)
        .await
        .expect("saved");
}

#[tokio::test]
async fn every_channel_of_one_customer_writes_into_one_conversation_once() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let first = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("1001", Some("8 916 123-45-67")),
            "Где мой заказ?",
            "tg-1",
        ),
    )
    .await
    .expect("received");
    assert!(first.message.new);
    let retry = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("1001", Some("8 916 123-45-67")),
            "Где мой заказ?",
            "tg-1",
        ),
    )
    .await
    .expect("a provider retry");
    assert!(!retry.message.new, "stored once");
    assert_eq!(
        retry.message.message.message.id,
        first.message.message.message.id
    );

    // The same phone on WhatsApp: the same person, the same conversation.
    let later = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::WhatsApp,
            whatsapp("+79161234567"),
            "Это я же, в WhatsApp",
            "wa-1",
        ),
    )
    .await
    .expect("received");
    assert_eq!(later.profile, first.profile);
    let conversation = later.message.conversation.conversation.clone();
    assert_eq!(conversation.id, first.message.conversation.conversation.id);
    assert_eq!(
        conversation.reply_channel(None).ok(),
        Some(Channel::WhatsApp),
        "a reply goes where the customer last wrote"
    );
    let messages = store
        .list_messages(
            app.workspace.workspace.id,
            conversation.id,
            &MessageQuery {
                limit: 10,
                order: Order::OldestFirst,
                ..MessageQuery::default()
            },
        )
        .await
        .expect("messages");
    let bodies: Vec<&str> = messages.iter().map(|m| m.message.body.as_str()).collect();
    assert_eq!(bodies, ["Где мой заказ?", "Это я же, в WhatsApp"]);
    // The profile knows the messenger ids now.
    let profile = app.lookup("telegram", "1001").await;
    assert_eq!(profile["id"], first.profile.to_string());
    assert_eq!(
        app.lookup("whatsapp", "+79161234567").await["id"],
        profile["id"]
    );
}

#[tokio::test]
async fn a_returning_customer_goes_to_the_operator_who_served_them_on_any_channel() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let operators = team_of(&app, 2).await;
    let first = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("2002", Some("+7 903 555-01-01")),
            "Здравствуйте",
            "tg-2",
        ),
    )
    .await
    .expect("received");
    let served_by = first.assigned.expect("an operator is online");
    assert!(operators.contains(&served_by));
    let_go(&app, &first).await;

    // A stranger in between moves the round robin on to the other operator.
    let stranger = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("3003", None),
            "Добрый день",
            "tg-3",
        ),
    )
    .await
    .expect("received");
    assert_ne!(
        stranger.assigned,
        Some(served_by),
        "round robin takes turns"
    );

    let back = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::WhatsApp,
            whatsapp("+79035550101"),
            "Снова я, уже в WhatsApp",
            "wa-2",
        ),
    )
    .await
    .expect("received");
    assert!(back.message.reopened.is_some(), "a new message reopens it");
    assert_eq!(
        back.assigned,
        Some(served_by),
        "sticky: the same operator again"
    );

    // Offline, they are skipped: the customer is not left waiting.
    let_go(&app, &back).await;
    store
        .set_presence(
            app.workspace.workspace.id,
            served_by,
            Presence::Offline,
            Utc::now(),
        )
        .await
        .expect("offline");
    let again = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::WhatsApp,
            whatsapp("+79035550101"),
            "Алло?",
            "wa-3",
        ),
    )
    .await
    .expect("received");
    assert!(again.assigned.is_some_and(|o| o != served_by));
}

#[tokio::test]
async fn nobody_online_leaves_it_waiting_and_bad_messages_are_refused() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let operators = team_of(&app, 1).await;
    store
        .set_presence(
            app.workspace.workspace.id,
            operators[0],
            Presence::Away,
            Utc::now(),
        )
        .await
        .expect("away");
    let waiting = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("4004", None),
            "Есть кто?",
            "tg-4",
        ),
    )
    .await
    .expect("received");
    assert_eq!(waiting.assigned, None);
    assert_eq!(waiting.message.conversation.conversation.assignee, None);

    let nobody = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            Customer::default(),
            "Привет",
            "tg-5",
        ),
    )
    .await;
    assert!(matches!(nobody, Err(InboxError::Invalid(e)) if e.field == "customer"));
    let long = "я".repeat(20_001);
    let too_long = receive(
        store,
        app.bus.as_ref(),
        on(
            &app,
            Channel::Telegram,
            telegram("4004", None),
            &long,
            "tg-6",
        ),
    )
    .await;
    assert!(
        matches!(&too_long, Err(InboxError::Invalid(e)) if e.field == "body"),
        "{too_long:?}"
    );
}

/// Messages that arrive together are written in one transaction; a message
/// that cannot be stored (its sender was erased, its body too long) costs
/// no other its place, leaves nothing behind, and a provider's retry in the
/// same batch is stored once.
#[tokio::test]
async fn messages_written_together_are_each_stored_once_and_a_bad_one_costs_no_other() {
    let app = spawn_app().await;
    let (store, bus) = (app.store.as_ref(), app.bus.as_ref());
    let ws = app.workspace.workspace.id;
    let gone = receive(
        store,
        bus,
        on(
            &app,
            Channel::Telegram,
            telegram("erased", None),
            "Удалите меня",
            "tg-e1",
        ),
    )
    .await
    .expect("received");
    let (status, _) = app
        .api_post(
            &format!("/api/v1/profiles/{}/erase", gone.profile),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);
    let events_before = store.count_events(ws).await.expect("count");

    let writer = InboundWriter::start(app.store.clone(), app.bus.clone());
    let mut inbound: Vec<Inbound> = (0..30)
        .map(|n| {
            let customer = telegram(&format!("group-{n}"), None);
            on(
                &app,
                Channel::Telegram,
                customer,
                &format!("Сообщение {n}"),
                &format!("tg-g{n}"),
            )
        })
        .collect();
    inbound.insert(
        10,
        on(
            &app,
            Channel::Telegram,
            telegram("erased", None),
            "Снова я",
            "tg-e2",
        ),
    );
    let long = "я".repeat(20_001);
    inbound.insert(
        20,
        on(
            &app,
            Channel::Telegram,
            telegram("group-3", None),
            &long,
            "tg-long",
        ),
    );
    inbound.push(on(
        &app,
        Channel::Telegram,
        telegram("group-0", None),
        "Сообщение 0",
        "tg-g0",
    ));
    // Delivered together: one batch, whatever the threads' timing.
    let results = writer.receive_all(inbound).await;

    assert!(
        matches!(&results[10], Err(InboxError::Invalid(e)) if e.field == "customer"),
        "the erased sender is refused: {:?}",
        results[10]
    );
    assert!(
        matches!(&results[20], Err(InboxError::Invalid(e)) if e.field == "body"),
        "{:?}",
        results[20]
    );
    let stored: Vec<_> = results
        .iter()
        .enumerate()
        .filter(|(i, _)| ![10, 20].contains(i))
        .map(|(_, r)| r.as_ref().expect("stored"))
        .collect();
    assert_eq!(stored.len(), 31);
    let (first, retry) = (stored[0], stored[30]);
    assert!(first.message.new && !retry.message.new);
    assert_eq!(
        first.message.message.message.id,
        retry.message.message.message.id
    );
    let conversations: BTreeSet<_> = stored
        .iter()
        .map(|r| r.message.conversation.conversation.id)
        .collect();
    assert_eq!(conversations.len(), 30, "one conversation per sender");
    for received in &stored[..30] {
        let messages = store
            .list_messages(
                ws,
                received.message.conversation.conversation.id,
                &MessageQuery {
                    limit: 10,
                    order: Order::OldestFirst,
                    after: None,
                },
            )
            .await
            .expect("messages");
        assert_eq!(messages.len(), 1, "each message once");
    }
    assert_eq!(
        store.count_events(ws).await.expect("count") - events_before,
        30,
        "an event per stored message, none for the refused ones"
    );

    // A batch with nothing wrong commits whole, each sender answered with
    // their own message; a provider's retry inside it (the last one) is
    // stored once and appends no event of its own.
    let events_before = store.count_events(ws).await.expect("count");
    let together = (0..11)
        .map(|n| {
            let n = n % 10;
            let body = format!("Вместе {n}");
            let customer = telegram(&format!("group-{n}"), None);
            on(
                &app,
                Channel::Telegram,
                customer,
                &body,
                &format!("tg-t{n}"),
            )
        })
        .collect();
    let results: Vec<_> = writer
        .receive_all(together)
        .await
        .into_iter()
        .map(|result| result.expect("stored"))
        .collect();
    for (n, received) in results.iter().take(10).enumerate() {
        assert!(received.message.new);
        assert_eq!(received.message.message.message.body, format!("Вместе {n}"));
        assert_eq!(
            received.profile, stored[n].profile,
            "the sender's own profile"
        );
    }
    let retry = &results[10];
    assert!(!retry.message.new, "the retry finds the message");
    assert_eq!(
        retry.message.message.message.id,
        results[0].message.message.message.id
    );
    assert_eq!(
        store.count_events(ws).await.expect("count") - events_before,
        10,
        "no event for the retry"
    );
    // Each message's event is its sender's, as written at the batch's end.
    let sender = app.lookup("telegram", "group-1").await;
    assert_eq!(sender["event_count"], 2, "{sender}");
    assert_eq!(sender["id"], results[1].profile.to_string(), "{sender}");
}

/// A later message in a batch that reveals who an earlier sender is merges
/// their conversations in the same transaction; both senders are answered
/// with the conversation that is left, not the one merged away.
#[tokio::test]
async fn a_merge_inside_a_batch_answers_each_sender_with_the_conversation_left() {
    let app = spawn_app().await;
    let ws = app.workspace.workspace.id;
    merge_inside_a_batch(app.store.clone(), app.bus.clone(), ws).await;
}

#[tokio::test]
async fn a_merge_inside_a_batch_answers_each_sender_with_the_conversation_left_on_postgres() {
    let Some((_database, store, bus, ws)) = postgres_workspace().await else {
        return;
    };
    merge_inside_a_batch(store, bus, ws).await;
}

/// Retries among new messages (a provider redelivering one it delivered
/// before, or one twice in the same delivery) are answered with the stored
/// message, and the batch is still written as one: each conversation moves
/// one version for all of its messages (written one by one, it would move
/// once per message).
#[tokio::test]
async fn retries_among_new_messages_leave_one_write_of_the_batch() {
    let app = spawn_app().await;
    let ws = app.workspace.workspace.id;
    retries_among_new_messages(app.store.clone(), app.bus.clone(), ws).await;
}

#[tokio::test]
async fn retries_among_new_messages_leave_one_write_of_the_batch_on_postgres() {
    let Some((_database, store, bus, ws)) = postgres_workspace().await else {
        return;
    };
    retries_among_new_messages(store, bus, ws).await;
}

/// A fresh PostgreSQL database with a workspace, and an in-process bus;
/// `None` (skipped loudly, failed under CI) without PostgreSQL.
async fn postgres_workspace() -> Option<(
    Arc<crate::support::postgres::FreshDatabase>,
    Arc<dyn Backend>,
    Arc<dyn Bus>,
    WorkspaceId,
)> {
    let (database, store) = crate::support::postgres::FreshDatabase::create().await?;
    let made = seamline_server::provision::create_workspace(
        store.as_ref(),
        "Batches",
        "batches@shop.example",
        "password-123456",
    )
    .await
    .expect("workspace");
    let bus: Arc<dyn Bus> = Arc::new(seamline_bus::InProcessBus::new(Default::default()));
    Some((database, store, bus, made.workspace.id))
}

async fn merge_inside_a_batch(store: Arc<dyn Backend>, bus: Arc<dyn Bus>, ws: WorkspaceId) {
    let known = receive(
        store.as_ref(),
        bus.as_ref(),
        to(
            ws,
            Channel::Telegram,
            telegram("7007", Some("+79161112233")),
            "Привет",
            "tg-m1",
        ),
    )
    .await
    .expect("received");
    let visitor = |phone: Option<&str>| Customer {
        anonymous_id: Some("visitor-merge".into()),
        phone: phone.map(str::to_owned),
        ..Customer::default()
    };
    let writer = InboundWriter::start(store.clone(), bus);
    let first = to(
        ws,
        Channel::WebChat,
        visitor(None),
        "Здравствуйте",
        "web-m1",
    );
    let second = to(
        ws,
        Channel::WebChat,
        visitor(Some("+7 916 111-22-33")),
        "Мой телефон",
        "web-m2",
    );
    let mut answers = writer.receive_all(vec![first, second]).await.into_iter();
    let first = answers.next().expect("an answer").expect("first");
    let second = answers.next().expect("an answer").expect("second");
    let left = known.message.conversation.conversation.id;
    assert_eq!(
        second.message.conversation.conversation.id, left,
        "the phone joined the known customer"
    );
    assert_eq!(
        first.message.conversation.conversation.id, left,
        "the first sender is answered with the conversation their message is in now"
    );
    assert_eq!(
        first.message.message.message.conversation, left,
        "and their message says so too"
    );
    assert_eq!(
        bodies(store.as_ref(), ws, left).await,
        ["Привет", "Здравствуйте", "Мой телефон"]
    );
}

async fn retries_among_new_messages(store: Arc<dyn Backend>, bus: Arc<dyn Bus>, ws: WorkspaceId) {
    let olga = || telegram("r-olga", None);
    let before = receive(
        store.as_ref(),
        bus.as_ref(),
        to(ws, Channel::Telegram, olga(), "Первое", "tg-r1"),
    )
    .await
    .expect("received");
    let mine = before.message.conversation.conversation.id;
    let version = store
        .conversation(ws, mine)
        .await
        .expect("read")
        .expect("conversation")
        .version;
    let writer = InboundWriter::start(store.clone(), bus);
    let batch = vec![
        to(ws, Channel::Telegram, olga(), "Первое", "tg-r1"),
        to(ws, Channel::Telegram, olga(), "Второе", "tg-r2"),
        to(ws, Channel::Telegram, olga(), "Второе", "tg-r2"),
        to(
            ws,
            Channel::Telegram,
            telegram("r-ivan", None),
            "Я Иван",
            "tg-r3",
        ),
        to(ws, Channel::Telegram, olga(), "Третье", "tg-r4"),
    ];
    let answers: Vec<_> = writer
        .receive_all(batch)
        .await
        .into_iter()
        .map(|answer| answer.expect("stored").message)
        .collect();
    let new: Vec<bool> = answers.iter().map(|a| a.new).collect();
    assert_eq!(new, [false, true, false, true, true]);
    assert_eq!(
        answers[0].message.message.id,
        before.message.message.message.id
    );
    assert_eq!(answers[2].message.message.id, answers[1].message.message.id);
    let (second, third) = (&answers[1].conversation, &answers[4].conversation);
    assert_eq!(second.conversation.id, mine);
    assert_eq!(second, third, "both as the batch left the conversation");
    assert_eq!(second.version, version + 1, "one write for the batch");
    assert_ne!(answers[3].conversation.conversation.id, mine, "Ivan's own");
    assert_eq!(
        bodies(store.as_ref(), ws, mine).await,
        ["Первое", "Второе", "Третье"]
    );
}

async fn bodies(store: &dyn Backend, ws: WorkspaceId, conversation: ConversationId) -> Vec<String> {
    let query = MessageQuery {
        limit: 10,
        order: Order::OldestFirst,
        after: None,
    };
    let messages = store.list_messages(ws, conversation, &query).await;
    messages
        .expect("messages")
        .into_iter()
        .map(|m| m.message.body)
        .collect()
}

/// A workspace waiting for its lock (a long unmerge holding it, say) holds
/// up no other workspace's messages: each has a writer of its own.
#[tokio::test]
async fn a_workspace_waiting_for_its_lock_holds_up_no_other() {
    let Some((_database, store)) = crate::support::postgres::FreshDatabase::create().await else {
        return;
    };
    let bus = std::sync::Arc::new(seamline_bus::InProcessBus::new(Default::default()));
    let mut workspaces = Vec::new();
    for (name, owner) in [
        ("Stalled", "stalled@shop.example"),
        ("Busy", "busy@shop.example"),
    ] {
        let made = seamline_server::provision::create_workspace(
            store.as_ref(),
            name,
            owner,
            "password-123456",
        )
        .await
        .expect("workspace");
        workspaces.push(made.workspace.id);
    }
    let writer = InboundWriter::start(store.clone(), bus);
    let message = |workspace| Inbound {
        workspace,
        channel: Channel::WebChat,
        customer: Customer {
            anonymous_id: Some("visitor-1".into()),
            ..Customer::default()
        },
        body: "Здравствуйте".into(),
        external_id: None,
        at: Utc::now(),
    };
    let held = store.begin_identity(workspaces[0]).await.expect("lock");
    let stalled = tokio::spawn({
        let (writer, message) = (writer.clone(), message(workspaces[0]));
        async move { writer.receive(message).await }
    });
    let other = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        writer.receive(message(workspaces[1])),
    )
    .await;
    assert!(
        matches!(other, Ok(Ok(_))),
        "the other workspace's message is written: {other:?}"
    );
    assert!(!stalled.is_finished(), "the first waits for its lock");
    held.commit().await.expect("release");
    let written = stalled.await.expect("joined");
    assert!(
        written.is_ok(),
        "written once the lock is free: {written:?}"
    );
}
