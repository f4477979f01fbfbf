//! The [`InboxStore`] part of the suite: teams and operators; one
//! conversation per profile, however many callers ask at once; updates
//! over the version read; the append path (reopen, reply channel, unread,
//! a provider's retry stored once); paging; merges and splits with
//! profiles; canned responses; CSAT; erasure (proved through a
//! [`RawScan`]); and that no method reaches another workspace.

use chrono::{DateTime, NaiveDate, TimeZone, Utc, Weekday};
use seamline_core::inbox::bot::{BotSetup, BotState, CollectField, Collected, OutOfHours};
use seamline_core::inbox::conversation::{AssignReason, StatusChange, StatusName, SystemEvent};
use seamline_core::inbox::csat::{Rating, Score};
use seamline_core::inbox::hours::{BusinessHours, HoursConfig, Span};
use seamline_core::inbox::routing::{Presence, Rule, TeamRouting};
use seamline_core::inbox::template::CannedResponse;
use seamline_core::inbox::{Channel, Label, Message, MessageKind, Priority, Status};
use seamline_core::tracking::EventType;
use seamline_core::{
    ConversationId, ConversationMessageId, MemberId, ProfileId, Role, TeamId, WorkspaceId,
};
use uuid::Uuid;

use super::{member, new_event, new_workspace, tracked, RawScan};
use crate::*;

/// Runs every inbox check, in order, against `store`.
pub async fn run_inbox_suite<S: Backend>(store: &S, scan: &dyn RawScan) {
    teams_round_trip_and_are_unique_per_workspace(store).await;
    team_members_and_operator_presence(store).await;
    each_profile_has_one_conversation(store).await;
    racing_callers_get_one_conversation(store).await;
    updates_write_over_the_version_they_read(store).await;
    round_robin_turns_move_the_cursor_once(store).await;
    appending_updates_the_conversation(store).await;
    provider_retries_are_stored_once(store).await;
    messages_round_trip_and_page_in_time_order(store).await;
    conversations_filter_and_page_newest_activity_first(store).await;
    merges_move_messages_and_splits_give_them_back(store).await;
    canned_responses_are_unique_by_shortcut(store).await;
    notes_find_the_people_they_mention(store).await;
    ratings_are_listed_by_time(store).await;
    one_survey_pends_per_conversation_and_is_taken_once(store).await;
    erasure_scrubs_the_persons_conversation(store, scan).await;
    the_inbox_of_one_workspace_is_invisible_to_another(store).await;
    an_inbound_batch_finds_conversations_and_appends_together(store).await;
    // Last: it leases the outbox entries it inspects.
    an_inbound_transaction_commits_whole_or_not_at_all(store).await;
}

/// A fixed time, `n` seconds after a base (millisecond precision).
fn at(n: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_750_000_000_000 + n * 1000)
        .single()
        .expect("valid time")
}

fn label(text: &str) -> Label {
    Label::parse(text).expect("valid label")
}

fn team(ws: WorkspaceId, name: &str) -> Team {
    Team {
        id: TeamId(Uuid::now_v7()),
        workspace_id: ws,
        name: name.into(),
        routing: TeamRouting::default(),
        hours: None,
        channels: Default::default(),
        bots: BotSetup::default(),
        created_at: at(0),
    }
}

async fn create_team<S: Backend>(store: &S, ws: WorkspaceId, name: &str) -> Team {
    let team = team(ws, name);
    store.create_team(&team).await.expect("create team");
    team
}

pub(super) async fn operator<S: Backend>(store: &S, ws: WorkspaceId) -> MemberId {
    let created = store
        .create_member(member(ws, Role::Operator))
        .await
        .expect("create member");
    created.id
}

/// `n` new profiles of `ws`.
async fn profiles<S: Backend>(store: &S, ws: WorkspaceId, n: usize) -> Vec<ProfileId> {
    let ids: Vec<ProfileId> = (0..n).map(|_| ProfileId(Uuid::now_v7())).collect();
    let ops: Vec<IdentityOp> = ids
        .iter()
        .map(|&id| IdentityOp::CreateProfile { id, at: at(0) })
        .collect();
    identity(store, ws, &ops).await;
    ids
}

async fn identity<S: Backend>(store: &S, ws: WorkspaceId, ops: &[IdentityOp]) {
    let mut tx = store.begin_identity(ws).await.expect("begin identity");
    tx.apply(ops).await.expect("apply");
    tx.commit().await.expect("commit");
}

/// A new profile's conversation.
pub(super) async fn conversation<S: Backend>(store: &S, ws: WorkspaceId) -> StoredConversation {
    let [profile] = profiles(store, ws, 1).await[..] else {
        panic!("one profile")
    };
    let (conversation, created) = store
        .conversation_for_profile(ws, profile, at(0))
        .await
        .expect("conversation");
    assert!(created);
    conversation
}

fn message(
    conversation: ConversationId,
    kind: MessageKind,
    channel: Channel,
    body: &str,
    at: DateTime<Utc>,
) -> NewMessage {
    let id = ConversationMessageId(Uuid::now_v7());
    NewMessage {
        message: Message::new(id, conversation, kind, channel, body.into(), at)
            .expect("a valid message"),
        sender: None,
        attachments: vec![],
        external_id: None,
        delivery: None,
    }
}

pub(super) fn inbound(
    c: ConversationId,
    channel: Channel,
    body: &str,
    at: DateTime<Utc>,
) -> NewMessage {
    message(c, MessageKind::Inbound, channel, body, at)
}

pub(super) fn outbound(
    c: ConversationId,
    operator: MemberId,
    channel: Channel,
    body: &str,
    at: DateTime<Utc>,
) -> NewMessage {
    let mut reply = message(c, MessageKind::Outbound { operator }, channel, body, at);
    reply.delivery = Some(DeliveryStatus::Pending);
    reply
}

fn note(c: ConversationId, author: MemberId, body: &str, at: DateTime<Utc>) -> NewMessage {
    let kind = MessageKind::Note {
        author,
        mentions: vec![],
    };
    message(c, kind, Channel::Internal, body, at)
}

pub(super) async fn append<S: Backend>(
    store: &S,
    ws: WorkspaceId,
    m: &NewMessage,
) -> AppendedMessage {
    store.append_message(ws, m).await.expect("append")
}

/// `c` written back with `change` applied.
async fn update<S: Backend>(
    store: &S,
    ws: WorkspaceId,
    c: &StoredConversation,
    change: impl FnOnce(&mut ConversationUpdate),
) -> StoredConversation {
    let mut u = c.update(at(1));
    change(&mut u);
    store.update_conversation(ws, &u).await.expect("update")
}

async fn must<S: Backend>(store: &S, ws: WorkspaceId, id: ConversationId) -> StoredConversation {
    store
        .conversation(ws, id)
        .await
        .expect("read")
        .expect("conversation exists")
}

fn all_messages() -> MessageQuery {
    MessageQuery {
        limit: 1000,
        order: Order::OldestFirst,
        ..MessageQuery::default()
    }
}

async fn bodies<S: Backend>(store: &S, ws: WorkspaceId, c: ConversationId) -> Vec<String> {
    let messages = store
        .list_messages(ws, c, &all_messages())
        .await
        .expect("messages");
    messages.into_iter().map(|m| m.message.body).collect()
}

fn everything() -> ConversationQuery {
    ConversationQuery {
        limit: 1000,
        ..ConversationQuery::default()
    }
}

pub async fn teams_round_trip_and_are_unique_per_workspace<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let hours = BusinessHours::new(HoursConfig {
        time_zone: "Europe/Moscow".into(),
        weekly: vec![Span {
            day: Weekday::Mon,
            from: "09:00".into(),
            to: "18:00".into(),
        }],
        holidays: vec![NaiveDate::from_ymd_opt(2026, 1, 1).expect("date")],
    })
    .expect("valid hours");
    let mut sales = team(a.id, "Sales «Север»");
    sales.routing = TeamRouting {
        rule: Rule::LeastLoaded,
        sticky: false,
    };
    sales.hours = Some(hours);
    sales.channels = [Channel::WhatsApp, Channel::Telegram].into();
    sales.bots = BotSetup {
        greeting: Some("Здравствуйте!".into()),
        flow: None,
        out_of_hours: Some(OutOfHours::Message {
            text: "Мы откроемся в 9:00".into(),
        }),
    };
    store.create_team(&sales).await.expect("create");
    assert_eq!(
        store.team(a.id, sales.id).await.expect("read"),
        Some(sales.clone())
    );
    let billing = create_team(store, a.id, "Billing").await;
    let listed = store.list_teams(a.id).await.expect("list");
    assert_eq!(listed, vec![billing.clone(), sales.clone()], "by name");

    let twin = team(a.id, "Billing");
    assert!(matches!(
        store.create_team(&twin).await,
        Err(StoreError::Conflict(_))
    ));
    create_team(store, b.id, "Billing").await;

    sales.name = "Sales North".into();
    sales.hours = None;
    sales.channels = [Channel::Vk].into();
    sales.routing = TeamRouting::default();
    store.update_team(&sales).await.expect("update");
    assert_eq!(
        store.team(a.id, sales.id).await.expect("read"),
        Some(sales.clone())
    );
    let renamed = Team {
        name: "Billing".into(),
        ..sales.clone()
    };
    assert!(matches!(
        store.update_team(&renamed).await,
        Err(StoreError::Conflict(_))
    ));
    let foreign = Team {
        workspace_id: b.id,
        ..sales.clone()
    };
    assert!(matches!(
        store.update_team(&foreign).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.team(b.id, sales.id).await.expect("read"), None);

    // Deleting a team takes it off its conversations, as a new version.
    let c = conversation(store, a.id).await;
    let routed = update(store, a.id, &c, |u| u.conversation.team = Some(sales.id)).await;
    assert!(matches!(
        store.delete_team(b.id, sales.id).await,
        Err(StoreError::NotFound(_))
    ));
    store.delete_team(a.id, sales.id).await.expect("delete");
    assert_eq!(store.team(a.id, sales.id).await.expect("read"), None);
    assert_eq!(store.list_teams(a.id).await.expect("list"), vec![billing]);
    let after = must(store, a.id, c.conversation.id).await;
    assert_eq!(after.conversation.team, None);
    assert!(after.version > routed.version);
    assert!(matches!(
        store.delete_team(a.id, sales.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn team_members_and_operator_presence<S: Backend>(store: &S) {
    let (a, owner, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let support = create_team(store, a.id, "Support").await;
    let (olga, ivan, anna) = (
        operator(store, a.id).await,
        operator(store, a.id).await,
        operator(store, a.id).await,
    );
    let stranger = operator(store, b.id).await;
    for member in [olga, ivan, olga] {
        store
            .add_team_member(a.id, support.id, member)
            .await
            .expect("add member");
    }
    for (ws, team, member) in [
        (a.id, support.id, stranger),
        (a.id, TeamId(Uuid::now_v7()), olga),
        (b.id, support.id, stranger),
    ] {
        assert!(matches!(
            store.add_team_member(ws, team, member).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert_eq!(
        store.member_teams(a.id, olga).await.expect("teams"),
        vec![support.id]
    );
    assert!(store
        .member_teams(a.id, anna)
        .await
        .expect("teams")
        .is_empty());

    let mut team_members = [olga, ivan];
    team_members.sort();
    let fresh: Vec<OperatorState> = team_members
        .iter()
        .map(|&member_id| OperatorState {
            member_id,
            presence: Presence::Offline,
            presence_since: None,
            capacity: None,
            load: 0,
        })
        .collect();
    assert_eq!(
        store
            .operators(a.id, Some(support.id))
            .await
            .expect("operators"),
        fresh
    );
    let everyone: Vec<MemberId> = store
        .operators(a.id, None)
        .await
        .expect("operators")
        .iter()
        .map(|o| o.member_id)
        .collect();
    let mut expected = vec![owner.id, olga, ivan, anna];
    expected.sort();
    assert_eq!(everyone, expected, "every member, by id");

    // The presence's time moves only when the presence changes.
    let online = store
        .set_presence(a.id, olga, Presence::Online, at(1))
        .await
        .expect("presence");
    assert_eq!(
        (online.presence, online.presence_since),
        (Presence::Online, Some(at(1)))
    );
    let still = store
        .set_presence(a.id, olga, Presence::Online, at(2))
        .await
        .expect("presence");
    assert_eq!(still.presence_since, Some(at(1)));
    let away = store
        .set_presence(a.id, olga, Presence::Away, at(3))
        .await
        .expect("presence");
    assert_eq!(
        (away.presence, away.presence_since),
        (Presence::Away, Some(at(3)))
    );
    store
        .set_capacity(a.id, olga, Some(3))
        .await
        .expect("capacity");
    store
        .set_capacity(a.id, ivan, Some(2))
        .await
        .expect("capacity");
    let ivan_state = store
        .operator(a.id, ivan)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(
        (
            ivan_state.presence,
            ivan_state.presence_since,
            ivan_state.capacity
        ),
        (Presence::Offline, None, Some(2))
    );
    let offline = store
        .set_presence(a.id, ivan, Presence::Offline, at(4))
        .await
        .expect("presence");
    assert_eq!(
        (offline.presence_since, offline.capacity),
        (Some(at(4)), Some(2))
    );

    // Load: assigned and not resolved.
    let open = conversation(store, a.id).await;
    update(store, a.id, &open, |u| u.conversation.assignee = Some(olga)).await;
    let done = conversation(store, a.id).await;
    update(store, a.id, &done, |u| {
        u.conversation.assignee = Some(olga);
        u.conversation.status = Status::Resolved;
    })
    .await;
    let olga_state = store
        .operator(a.id, olga)
        .await
        .expect("read")
        .expect("member");
    assert_eq!(
        olga_state,
        OperatorState {
            member_id: olga,
            presence: Presence::Away,
            presence_since: Some(at(3)),
            capacity: Some(3),
            load: 1,
        }
    );

    assert_eq!(store.operator(b.id, olga).await.expect("read"), None);
    assert!(matches!(
        store
            .set_presence(b.id, olga, Presence::Online, at(5))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.set_capacity(b.id, olga, Some(9)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store
        .operators(b.id, Some(support.id))
        .await
        .expect("operators")
        .is_empty());

    store
        .remove_team_member(a.id, support.id, ivan)
        .await
        .expect("remove");
    store
        .remove_team_member(b.id, support.id, olga)
        .await
        .expect("a no-op from another workspace");
    let left: Vec<MemberId> = store
        .operators(a.id, Some(support.id))
        .await
        .expect("operators")
        .iter()
        .map(|o| o.member_id)
        .collect();
    assert_eq!(left, vec![olga]);

    // A member who leaves takes their memberships and state along, and
    // their conversations go back unassigned.
    store
        .delete_member(a.id, olga)
        .await
        .expect("delete member");
    assert_eq!(store.operator(a.id, olga).await.expect("read"), None);
    assert!(store
        .operators(a.id, Some(support.id))
        .await
        .expect("operators")
        .is_empty());
    assert_eq!(
        must(store, a.id, open.conversation.id)
            .await
            .conversation
            .assignee,
        None
    );
}

pub async fn each_profile_has_one_conversation<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let [p, q] = profiles(store, a.id, 2).await[..] else {
        panic!("two profiles")
    };
    let (c, created) = store
        .conversation_for_profile(a.id, p, at(5))
        .await
        .expect("open");
    assert!(created);
    let conv = &c.conversation;
    assert_eq!((conv.profile, conv.status), (p, Status::Open));
    assert_eq!((conv.assignee, conv.team), (None, None));
    assert_eq!(conv.priority, Priority::None);
    assert!(conv.labels.is_empty());
    assert_eq!(
        (
            conv.last_inbound_channel,
            conv.last_inbound_at,
            conv.waiting_since
        ),
        (None, None, None)
    );
    assert_eq!((conv.created_at, c.updated_at), (at(5), at(5)));
    assert_eq!(
        (c.workspace_id, &c.bot, c.unread, c.last_message_at),
        (a.id, &BotState::NotStarted, 0, None)
    );

    let (again, created) = store
        .conversation_for_profile(a.id, p, at(9))
        .await
        .expect("again");
    assert!(!created);
    assert_eq!(again, c);
    assert_eq!(
        store.conversation(a.id, conv.id).await.expect("read"),
        Some(c.clone())
    );
    let (other, _) = store
        .conversation_for_profile(a.id, q, at(5))
        .await
        .expect("open");
    assert_ne!(other.conversation.id, conv.id);

    for (ws, profile) in [(b.id, p), (a.id, ProfileId(Uuid::now_v7()))] {
        assert!(matches!(
            store.conversation_for_profile(ws, profile, at(5)).await,
            Err(StoreError::NotFound(_))
        ));
    }

    // A profile merged into another is served the survivor's conversation.
    let [merged] = profiles(store, a.id, 1).await[..] else {
        panic!("one profile")
    };
    let absorb = IdentityOp::Absorb {
        survivor: p,
        absorbed: merged,
    };
    identity(store, a.id, &[absorb]).await;
    let (survivors, created) = store
        .conversation_for_profile(a.id, merged, at(6))
        .await
        .expect("redirected");
    assert!(!created);
    assert_eq!(survivors.conversation.id, conv.id);
}

pub async fn racing_callers_get_one_conversation<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let [p] = profiles(store, ws.id, 1).await[..] else {
        panic!("one profile")
    };
    let open = || store.conversation_for_profile(ws.id, p, at(1));
    let (r1, r2, r3, r4) = tokio::join!(open(), open(), open(), open());
    let results: Vec<(StoredConversation, bool)> = [r1, r2, r3, r4]
        .into_iter()
        .map(|r| r.expect("conversation"))
        .collect();
    assert_eq!(results.iter().filter(|(_, created)| *created).count(), 1);
    assert!(results
        .iter()
        .all(|(c, _)| c.conversation.id == results[0].0.conversation.id));
    assert_eq!(
        store
            .list_conversations(ws.id, &everything())
            .await
            .expect("list")
            .len(),
        1
    );
}

pub async fn updates_write_over_the_version_they_read<S: Backend>(store: &S) {
    let (a, owner, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let c = conversation(store, a.id).await;
    let olga = operator(store, a.id).await;
    let support = create_team(store, a.id, "Support").await;

    let mut u = c.update(at(10));
    u.conversation.status = Status::Snoozed { until: at(100) };
    u.conversation.priority = Priority::High;
    u.conversation.labels = [label("vip"), label("refund")].into();
    u.conversation.assignee = Some(olga);
    u.conversation.team = Some(support.id);
    u.conversation.waiting_since = Some(at(9));
    u.bot = BotState::Waiting {
        step: "phone".into(),
        attempts: 1,
        collected: vec![Collected {
            field: CollectField::Name,
            value: "Ольга".into(),
        }],
    };
    u.assignment = Some(AssignmentCause {
        reason: AssignReason::Manual,
        actor: Some(owner.id),
        note: Some("VIP, call back".into()),
    });
    let written = store.update_conversation(a.id, &u).await.expect("update");
    assert_eq!(written.conversation, u.conversation);
    assert_eq!((&written.bot, written.updated_at), (&u.bot, at(10)));
    assert!(written.version > c.version);
    assert_eq!(written.activity_seq, c.activity_seq, "no new activity");
    assert_eq!(must(store, a.id, c.conversation.id).await, written);

    let stale = store.update_conversation(a.id, &u).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(must(store, a.id, c.conversation.id).await, written);

    let history = store
        .assignment_history(a.id, c.conversation.id)
        .await
        .expect("history");
    let [first] = &history[..] else {
        panic!("one record, got {history:?}")
    };
    assert_eq!(
        (
            first.from_operator,
            first.from_team,
            first.to_operator,
            first.to_team
        ),
        (None, None, Some(olga), Some(support.id))
    );
    assert_eq!(
        (first.reason, first.actor, first.note.as_deref(), first.at),
        (
            Some(AssignReason::Manual),
            Some(owner.id),
            Some("VIP, call back"),
            at(10)
        )
    );
    assert_eq!(
        (first.workspace_id, first.conversation_id),
        (a.id, c.conversation.id)
    );

    // No change of hands, no record; a change without a cause has no reason.
    let higher = update(store, a.id, &written, |u| {
        u.conversation.priority = Priority::Urgent
    })
    .await;
    let mut unassign = higher.update(at(11));
    unassign.conversation.assignee = None;
    let to_team = store
        .update_conversation(a.id, &unassign)
        .await
        .expect("unassign");
    let history = store
        .assignment_history(a.id, c.conversation.id)
        .await
        .expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(
        (
            history[1].from_operator,
            history[1].to_operator,
            history[1].reason
        ),
        (Some(olga), None, None)
    );

    let stranger = operator(store, b.id).await;
    let foreign_team = create_team(store, b.id, "Theirs").await;
    let mut to_stranger = to_team.update(at(12));
    to_stranger.conversation.assignee = Some(stranger);
    let mut to_their_team = to_team.update(at(12));
    to_their_team.conversation.team = Some(foreign_team.id);
    for foreign in [to_stranger, to_their_team] {
        assert!(matches!(
            store.update_conversation(a.id, &foreign).await,
            Err(StoreError::NotFound(_))
        ));
    }
    assert!(matches!(
        store
            .update_conversation(b.id, &to_team.update(at(12)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(must(store, a.id, c.conversation.id).await, to_team);
}

pub async fn round_robin_turns_move_the_cursor_once<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let support = create_team(store, a.id, "Support").await;
    let (olga, ivan) = (operator(store, a.id).await, operator(store, a.id).await);
    assert_eq!(
        store
            .routing_cursor(a.id, support.id)
            .await
            .expect("cursor"),
        None
    );
    let turn = |c: &StoredConversation, from, to| {
        let mut u = c.update(at(2));
        u.conversation.assignee = Some(to);
        u.conversation.team = Some(support.id);
        u.cursor = Some(CursorMove {
            team: support.id,
            from,
            to,
        });
        u.assignment = Some(AssignmentCause {
            reason: AssignReason::RoundRobin,
            actor: None,
            note: None,
        });
        u
    };
    let (first, second) = (
        conversation(store, a.id).await,
        conversation(store, a.id).await,
    );
    store
        .update_conversation(a.id, &turn(&first, None, olga))
        .await
        .expect("first turn");
    assert_eq!(
        store
            .routing_cursor(a.id, support.id)
            .await
            .expect("cursor"),
        Some(olga)
    );

    // A router that read the cursor before the first turn loses, whole.
    let lost = store
        .update_conversation(a.id, &turn(&second, None, ivan))
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(must(store, a.id, second.conversation.id).await, second);
    assert!(store
        .assignment_history(a.id, second.conversation.id)
        .await
        .expect("history")
        .is_empty());
    store
        .update_conversation(a.id, &turn(&second, Some(olga), ivan))
        .await
        .expect("second turn");
    assert_eq!(
        store
            .routing_cursor(a.id, support.id)
            .await
            .expect("cursor"),
        Some(ivan)
    );

    let third = conversation(store, a.id).await;
    let mut elsewhere = turn(&third, Some(ivan), olga);
    elsewhere.cursor = Some(CursorMove {
        team: TeamId(Uuid::now_v7()),
        from: None,
        to: olga,
    });
    assert!(matches!(
        store.update_conversation(a.id, &elsewhere).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.routing_cursor(b.id, support.id).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn appending_updates_the_conversation<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let ws = ws.id;
    let olga = operator(store, ws).await;
    let c = conversation(store, ws).await;
    let id = c.conversation.id;
    let resolved = update(store, ws, &c, |u| u.conversation.status = Status::Resolved).await;

    let first = append(store, ws, &inbound(id, Channel::Telegram, "Привет", at(2))).await;
    assert!(first.new);
    assert_eq!(
        first.reopened,
        Some(StatusChange {
            from: Status::Resolved,
            to: Status::Open
        })
    );
    let conv = &first.conversation;
    assert_eq!(conv.conversation.status, Status::Open);
    assert_eq!(
        (
            conv.conversation.last_inbound_channel,
            conv.conversation.last_inbound_at,
            conv.conversation.waiting_since
        ),
        (Some(Channel::Telegram), Some(at(2)), Some(at(2)))
    );
    assert_eq!(
        (conv.last_message_channel, conv.last_message_at, conv.unread),
        (Some(Channel::Telegram), Some(at(2)), 1)
    );
    assert!(conv.activity_seq > resolved.activity_seq);
    assert!(conv.version > resolved.version);
    assert_eq!(first.message.profile_id, c.conversation.profile);
    assert_eq!(must(store, ws, id).await, *conv);

    let second = append(store, ws, &inbound(id, Channel::WhatsApp, "Алло?", at(3))).await;
    assert_eq!(second.reopened, None, "already open");
    let conv = &second.conversation.conversation;
    assert_eq!(conv.last_inbound_channel, Some(Channel::WhatsApp));
    assert_eq!(conv.waiting_since, Some(at(2)), "waiting since the first");
    assert_eq!(second.conversation.unread, 2);

    let late = append(store, ws, &inbound(id, Channel::Email, "старое", at(1))).await;
    let conv = &late.conversation;
    assert_eq!(
        (conv.conversation.last_inbound_channel, conv.last_message_at),
        (Some(Channel::WhatsApp), Some(at(3))),
        "an older message does not take the latest's place"
    );
    assert_eq!(conv.unread, 3);

    let noted = append(store, ws, &note(id, olga, "проверю заказ", at(4))).await;
    let conv = &noted.conversation;
    assert_eq!(conv.last_message_at, Some(at(3)), "a note is not a message");
    assert_eq!(conv.conversation.waiting_since, Some(at(2)));
    assert!(conv.activity_seq > late.conversation.activity_seq);

    let replied = append(
        store,
        ws,
        &outbound(id, olga, Channel::WhatsApp, "Здравствуйте!", at(5)),
    )
    .await;
    let conv = &replied.conversation;
    assert_eq!(conv.conversation.waiting_since, None);
    assert_eq!(conv.unread, 0);
    assert_eq!(
        (conv.last_message_channel, conv.last_message_at),
        (Some(Channel::WhatsApp), Some(at(5)))
    );
    let bot = append(
        store,
        ws,
        &message(
            id,
            MessageKind::Bot,
            Channel::Telegram,
            "Оцените нас",
            at(6),
        ),
    )
    .await;
    assert_eq!(
        bot.conversation.last_message_channel,
        Some(Channel::Telegram)
    );
    assert_eq!(bot.conversation.conversation.waiting_since, None);
    assert_eq!(
        store.last_operator(ws, id).await.expect("last operator"),
        Some(olga)
    );

    append(
        store,
        ws,
        &inbound(id, Channel::Telegram, "ещё вопрос", at(7)),
    )
    .await;
    store.mark_read(ws, id).await.expect("read");
    assert_eq!(must(store, ws, id).await.unread, 0);
    assert!(matches!(
        store.mark_read(ws, ConversationId(Uuid::now_v7())).await,
        Err(StoreError::NotFound(_))
    ));

    let current = must(store, ws, id).await;
    let snoozed = update(store, ws, &current, |u| {
        u.conversation.status = Status::Snoozed { until: at(100) }
    })
    .await;
    let woke = append(store, ws, &inbound(id, Channel::Telegram, "вы тут?", at(8))).await;
    assert_eq!(
        woke.reopened,
        Some(StatusChange {
            from: snoozed.conversation.status,
            to: Status::Open
        })
    );
    assert_eq!(must(store, ws, id).await, woke.conversation);

    let nowhere = inbound(ConversationId(Uuid::now_v7()), Channel::Sms, "?", at(9));
    assert!(matches!(
        store.append_message(ws, &nowhere).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn provider_retries_are_stored_once<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let (c, d) = (
        conversation(store, a.id).await,
        conversation(store, a.id).await,
    );
    let id = c.conversation.id;
    let mut first = inbound(id, Channel::WhatsApp, "Где мой заказ?", at(1));
    first.external_id = Some("wamid.1".into());
    first.sender = Some("Ольга".into());
    let stored = append(store, a.id, &first).await;
    assert!(stored.new);

    // The provider retries with our next id and its own id again.
    let mut retry = inbound(id, Channel::WhatsApp, "Где мой заказ?!", at(2));
    retry.external_id = Some("wamid.1".into());
    let again = append(store, a.id, &retry).await;
    assert!(!again.new);
    assert_eq!(again.message, stored.message);
    assert_eq!(again.conversation, stored.conversation, "nothing changed");
    assert_eq!(again.reopened, None);
    let into_other = Message {
        id: ConversationMessageId(Uuid::now_v7()),
        conversation: d.conversation.id,
        ..retry.message.clone()
    };
    let elsewhere = append(
        store,
        a.id,
        &NewMessage {
            message: into_other,
            ..retry.clone()
        },
    )
    .await;
    assert!(!elsewhere.new);
    assert_eq!(elsewhere.message, stored.message);
    assert_eq!(elsewhere.conversation.conversation.id, id);
    let same_id = append(store, a.id, &first).await;
    assert!(!same_id.new, "our own id again");
    assert_eq!(bodies(store, a.id, id).await, ["Где мой заказ?"]);

    // The same external id on another channel is another message.
    let mut telegram = inbound(id, Channel::Telegram, "tg", at(3));
    telegram.external_id = Some("wamid.1".into());
    assert!(append(store, a.id, &telegram).await.new);
    assert_eq!(
        store
            .message_by_external_id(a.id, Channel::WhatsApp, "wamid.1")
            .await
            .expect("lookup"),
        Some(stored.message.clone())
    );
    assert_eq!(
        store
            .message_by_external_id(a.id, Channel::Telegram, "wamid.1")
            .await
            .expect("lookup")
            .map(|m| m.message.body),
        Some("tg".into())
    );
    assert_eq!(
        store
            .message_by_external_id(b.id, Channel::WhatsApp, "wamid.1")
            .await
            .expect("lookup"),
        None
    );

    // An id taken in another workspace is refused, not revealed.
    let theirs = conversation(store, b.id).await;
    let mut copy = first.clone();
    copy.message.conversation = theirs.conversation.id;
    copy.external_id = None;
    assert!(matches!(
        store.append_message(b.id, &copy).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(bodies(store, b.id, theirs.conversation.id).await.is_empty());
}

pub async fn messages_round_trip_and_page_in_time_order<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let olga = operator(store, a.id).await;
    let c = conversation(store, a.id).await;
    let id = c.conversation.id;

    let mut photo = inbound(id, Channel::Telegram, "Вот фото 📷 <b>", at(1));
    photo.sender = Some("@olga".into());
    photo.external_id = Some("tg-77".into());
    photo.attachments = vec![Attachment {
        name: "чек.jpg".into(),
        content_type: "image/jpeg".into(),
        size: 48_213,
        key: "blobs/ab/cd".into(),
    }];
    let reply = outbound(id, olga, Channel::Telegram, "Спасибо!", at(2));
    let mention = message(
        id,
        MessageKind::Note {
            author: olga,
            mentions: vec![olga],
        },
        Channel::Internal,
        "@olga check",
        at(3),
    );
    let handoff = message(
        id,
        MessageKind::Event {
            actor: None,
            event: SystemEvent::HandedOff {
                collected: vec![Collected {
                    field: CollectField::Phone,
                    value: "+79991234567".into(),
                }],
                team: None,
            },
        },
        Channel::Internal,
        "",
        at(4),
    );
    let all = [photo, reply, mention, handoff];
    for m in &all {
        append(store, a.id, m).await;
    }
    let expected: Vec<StoredMessage> = all
        .iter()
        .map(|m| StoredMessage {
            workspace_id: a.id,
            profile_id: c.conversation.profile,
            message: m.message.clone(),
            sender: m.sender.clone(),
            attachments: m.attachments.clone(),
            external_id: m.external_id.clone(),
            delivery: m.delivery,
            delivery_reason: None,
        })
        .collect();
    let listed = store
        .list_messages(a.id, id, &all_messages())
        .await
        .expect("list");
    assert_eq!(listed, expected);

    let reply_id = all[1].message.id;
    store
        .set_delivery(
            a.id,
            reply_id,
            DeliveryStatus::Failed,
            Some("blocked by user"),
        )
        .await
        .expect("delivery");
    let failed = store
        .list_messages(a.id, id, &all_messages())
        .await
        .expect("list");
    assert_eq!(
        (failed[1].delivery, failed[1].delivery_reason.as_deref()),
        (Some(DeliveryStatus::Failed), Some("blocked by user"))
    );
    store
        .set_delivery(a.id, reply_id, DeliveryStatus::Read, None)
        .await
        .expect("delivery");
    for (ws, message) in [
        (b.id, reply_id),
        (a.id, ConversationMessageId(Uuid::now_v7())),
    ] {
        assert!(matches!(
            store
                .set_delivery(ws, message, DeliveryStatus::Sent, None)
                .await,
            Err(StoreError::NotFound(_))
        ));
    }

    // 21 more, three at each time, so paging breaks ties by id.
    for i in 0..21 {
        let body = format!("m{i}");
        append(
            store,
            a.id,
            &inbound(id, Channel::Sms, &body, at(10 + i / 3)),
        )
        .await;
    }
    let everything = store
        .list_messages(a.id, id, &all_messages())
        .await
        .expect("list");
    assert_eq!(everything.len(), 25);
    let mut order: Vec<(DateTime<Utc>, ConversationMessageId)> =
        everything.iter().map(StoredMessage::position).collect();
    order.sort();
    assert_eq!(
        everything
            .iter()
            .map(StoredMessage::position)
            .collect::<Vec<_>>(),
        order,
        "time order, ties by id"
    );
    for direction in [Order::OldestFirst, Order::NewestFirst] {
        let mut query = MessageQuery {
            limit: 4,
            order: direction,
            after: None,
        };
        let mut seen = Vec::new();
        loop {
            let page = store.list_messages(a.id, id, &query).await.expect("page");
            seen.extend(page.iter().map(StoredMessage::position));
            match page.last() {
                Some(last) if page.len() == 4 => query.after = Some(last.position()),
                _ => break,
            }
        }
        let mut expected = order.clone();
        if direction == Order::NewestFirst {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{direction:?}: every message once");
    }
}

pub async fn conversations_filter_and_page_newest_activity_first<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let ws = ws.id;
    let (olga, ivan) = (operator(store, ws).await, operator(store, ws).await);
    let (sales, support) = (
        create_team(store, ws, "Sales").await,
        create_team(store, ws, "Support").await,
    );
    // (assignee, team, status, channel of the latest message, label)
    let setups = [
        (
            Some(olga),
            Some(sales.id),
            Status::Open,
            Channel::WhatsApp,
            Some("vip"),
        ),
        (
            Some(ivan),
            Some(support.id),
            Status::Pending,
            Channel::Telegram,
            None,
        ),
        (
            None,
            Some(sales.id),
            Status::Open,
            Channel::Email,
            Some("vip"),
        ),
        (None, None, Status::Resolved, Channel::WhatsApp, None),
        (
            Some(olga),
            Some(support.id),
            Status::Snoozed { until: at(1000) },
            Channel::Vk,
            Some("refund"),
        ),
    ];
    let mut ids = Vec::new();
    for (assignee, team, status, channel, tag) in setups {
        let c = conversation(store, ws).await;
        let after = append(store, ws, &inbound(c.conversation.id, channel, "hi", at(1))).await;
        update(store, ws, &after.conversation, |u| {
            u.conversation.assignee = assignee;
            u.conversation.team = team;
            u.conversation.status = status;
            u.conversation.labels = tag.map(label).into_iter().collect();
        })
        .await;
        ids.push(c.conversation.id);
    }
    let ids = &ids;
    let list = |query: ConversationQuery| async move {
        let found = store.list_conversations(ws, &query).await.expect("list");
        found
            .iter()
            .map(|c| {
                ids.iter()
                    .position(|id| *id == c.conversation.id)
                    .expect("one of ours")
            })
            .collect::<Vec<usize>>()
    };
    let q = everything;
    assert_eq!(list(q()).await, [4, 3, 2, 1, 0], "newest activity first");
    let cases: Vec<(ConversationQuery, Vec<usize>)> = vec![
        (
            ConversationQuery {
                assignee: AssigneeFilter::Operator(olga),
                ..q()
            },
            vec![4, 0],
        ),
        (
            ConversationQuery {
                assignee: AssigneeFilter::Unassigned,
                ..q()
            },
            vec![3, 2],
        ),
        (
            ConversationQuery {
                teams: vec![sales.id],
                ..q()
            },
            vec![2, 0],
        ),
        (
            ConversationQuery {
                teams: vec![sales.id, support.id],
                ..q()
            },
            vec![4, 2, 1, 0],
        ),
        (
            ConversationQuery {
                statuses: vec![StatusName::Open],
                ..q()
            },
            vec![2, 0],
        ),
        (
            ConversationQuery {
                statuses: vec![StatusName::Pending, StatusName::Snoozed],
                ..q()
            },
            vec![4, 1],
        ),
        (
            ConversationQuery {
                channel: Some(Channel::WhatsApp),
                ..q()
            },
            vec![3, 0],
        ),
        (
            ConversationQuery {
                label: Some(label("vip")),
                ..q()
            },
            vec![2, 0],
        ),
        (
            ConversationQuery {
                assignee: AssigneeFilter::Unassigned,
                teams: vec![sales.id],
                statuses: vec![StatusName::Open],
                label: Some(label("vip")),
                ..q()
            },
            vec![2],
        ),
    ];
    for (query, expected) in cases {
        let described = format!("{query:?}");
        assert_eq!(list(query).await, expected, "{described}");
    }

    let mut query = ConversationQuery { limit: 2, ..q() };
    let mut pages = Vec::new();
    loop {
        let page = store.list_conversations(ws, &query).await.expect("page");
        pages.push(page.len());
        match page.last() {
            Some(last) if page.len() == 2 => query.after_seq = Some(last.activity_seq),
            _ => break,
        }
    }
    assert_eq!(pages, [2, 2, 1]);

    let olga_note = note(ids[1], olga, "new activity", at(2));
    append(store, ws, &olga_note).await;
    assert_eq!(list(q()).await, [1, 4, 3, 2, 0], "a message moves it up");
}

pub async fn merges_move_messages_and_splits_give_them_back<S: Backend>(store: &S) {
    let (ws, _, _) = new_workspace(store).await;
    let ws = ws.id;
    let (olga, ivan) = (operator(store, ws).await, operator(store, ws).await);
    let [p, q, r] = profiles(store, ws, 3).await[..] else {
        panic!("three profiles")
    };
    let open = |profile| store.conversation_for_profile(ws, profile, at(0));
    let (pc, qc, rc) = (
        open(p).await.expect("p").0,
        open(q).await.expect("q").0,
        open(r).await.expect("r").0,
    );
    let (pid, qid) = (pc.conversation.id, qc.conversation.id);
    append(store, ws, &inbound(pid, Channel::WhatsApp, "p1", at(1))).await;
    let replied = append(
        store,
        ws,
        &outbound(pid, olga, Channel::WhatsApp, "p2", at(2)),
    )
    .await;
    update(store, ws, &replied.conversation, |u| {
        u.conversation.status = Status::Resolved;
        u.conversation.assignee = Some(olga);
        u.conversation.labels = [label("vip")].into();
    })
    .await;
    let asked = append(store, ws, &inbound(qid, Channel::Telegram, "q1", at(3))).await;
    update(store, ws, &asked.conversation, |u| {
        u.conversation.assignee = Some(ivan);
        u.conversation.priority = Priority::High;
        u.conversation.labels = [label("refund")].into();
    })
    .await;
    let rating = CsatRecord {
        id: Uuid::now_v7(),
        workspace_id: ws,
        conversation_id: qid,
        rating: Rating {
            operator: Some(ivan),
            team: None,
            score: Score::new(4).expect("score"),
        },
        at: at(3),
    };
    store.record_rating(&rating).await.expect("rating");
    append(
        store,
        ws,
        &inbound(rc.conversation.id, Channel::Sms, "r1", at(4)),
    )
    .await;

    // r merged into q earlier; then q into p.
    let absorb = IdentityOp::Absorb {
        survivor: q,
        absorbed: r,
    };
    identity(store, ws, &[absorb]).await;
    let into_q = store
        .merge_conversations(ws, q, r, at(5))
        .await
        .expect("merge r")
        .expect("q's conversation");
    assert_eq!(into_q.conversation.id, qid);
    assert_eq!(bodies(store, ws, qid).await, ["q1", "r1"]);
    let merged = store
        .merge_conversations(ws, p, q, at(10))
        .await
        .expect("merge")
        .expect("p's conversation");
    assert_eq!(merged.conversation.id, pid);
    assert_eq!(store.conversation(ws, qid).await.expect("read"), None);
    let messages = store
        .list_messages(ws, pid, &all_messages())
        .await
        .expect("messages");
    let kept: Vec<(&str, ProfileId)> = messages
        .iter()
        .map(|m| (m.message.body.as_str(), m.profile_id))
        .collect();
    assert_eq!(
        kept,
        [("p1", p), ("p2", p), ("q1", q), ("r1", r)],
        "each message keeps whose it was"
    );
    assert!(messages.iter().all(|m| m.message.conversation == pid));
    let conv = &merged.conversation;
    assert_eq!(
        (conv.status, conv.assignee, conv.priority),
        (Status::Open, Some(ivan), Priority::High),
        "the open one's status and operator, the higher priority"
    );
    assert_eq!(conv.labels, [label("vip"), label("refund")].into());
    assert_eq!(
        (
            conv.last_inbound_channel,
            conv.last_inbound_at,
            conv.waiting_since
        ),
        (Some(Channel::Sms), Some(at(4)), Some(at(3)))
    );
    assert_eq!(
        (
            merged.last_message_channel,
            merged.last_message_at,
            merged.unread
        ),
        (Some(Channel::Sms), Some(at(4)), 2)
    );
    assert_eq!(merged.updated_at, at(10));
    let ratings = store.ratings(ws, at(0), at(100)).await.expect("ratings");
    assert_eq!(
        ratings,
        [CsatRecord {
            conversation_id: pid,
            ..rating
        }]
    );
    let history = store.assignment_history(ws, pid).await.expect("history");
    assert_eq!(
        history.iter().map(|h| h.to_operator).collect::<Vec<_>>(),
        [Some(olga), Some(ivan)],
        "both audits, in time order"
    );
    let again = store
        .merge_conversations(ws, p, q, at(11))
        .await
        .expect("merge again")
        .expect("p's conversation");
    assert_eq!(again, merged, "merging twice changes nothing");
    let (served, created) = store
        .conversation_for_profile(ws, p, at(12))
        .await
        .expect("p");
    assert_eq!((served.conversation.id, created), (pid, false));

    // The unmerge: q's messages, and those of r (merged into q), go back.
    let split = store
        .split_conversation(ws, p, q, at(20))
        .await
        .expect("split")
        .expect("q's conversation");
    assert_eq!(split.conversation.profile, q);
    assert_ne!(split.conversation.id, qid, "a new conversation");
    assert_eq!(bodies(store, ws, split.conversation.id).await, ["q1", "r1"]);
    assert_eq!(
        (
            split.last_message_at,
            split.conversation.last_inbound_channel,
            split.conversation.status
        ),
        (Some(at(4)), Some(Channel::Sms), Status::Open)
    );
    assert_eq!(bodies(store, ws, pid).await, ["p1", "p2"]);
    let left = must(store, ws, pid).await;
    assert_eq!(
        (
            left.last_message_at,
            left.last_message_channel,
            left.conversation.last_inbound_at
        ),
        (Some(at(2)), Some(Channel::WhatsApp), Some(at(1)))
    );
    assert!(left.activity_seq > merged.activity_seq);
    let (served, created) = store
        .conversation_for_profile(ws, q, at(21))
        .await
        .expect("q");
    assert_eq!(
        (served.conversation.id, created),
        (split.conversation.id, false)
    );
    let nothing_left = store
        .split_conversation(ws, p, q, at(22))
        .await
        .expect("split again")
        .expect("q's conversation");
    assert_eq!(nothing_left.conversation.id, split.conversation.id);
    assert_eq!(bodies(store, ws, pid).await, ["p1", "p2"]);

    // Without a conversation of the survivor, the absorbed one becomes it.
    let [s, t, u] = profiles(store, ws, 3).await[..] else {
        panic!("three profiles")
    };
    let tc = open(t).await.expect("t").0;
    append(
        store,
        ws,
        &inbound(tc.conversation.id, Channel::Vk, "t1", at(30)),
    )
    .await;
    let moved = store
        .merge_conversations(ws, s, t, at(31))
        .await
        .expect("merge")
        .expect("a conversation");
    assert_eq!(
        (moved.conversation.id, moved.conversation.profile),
        (tc.conversation.id, s)
    );
    assert_eq!(bodies(store, ws, moved.conversation.id).await, ["t1"]);
    assert_eq!(
        store
            .merge_conversations(ws, u, t, at(32))
            .await
            .expect("no-op"),
        None,
        "neither has a conversation"
    );
    assert_eq!(
        store
            .split_conversation(ws, u, t, at(33))
            .await
            .expect("no-op"),
        None
    );
}

pub async fn canned_responses_are_unique_by_shortcut<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let canned = |ws, shortcut: &str, body: &str| CannedResponseRecord {
        id: Uuid::now_v7(),
        workspace_id: ws,
        response: CannedResponse::new(shortcut, body).expect("valid canned response"),
        created_at: at(0),
        updated_at: at(0),
    };
    let mut hello = canned(a.id, "/Hello", "Здравствуйте, {{first_name|друг}}!");
    store.create_canned_response(&hello).await.expect("create");
    assert_eq!(
        store.canned_responses(a.id).await.expect("list"),
        vec![hello.clone()]
    );
    assert!(matches!(
        store
            .create_canned_response(&canned(a.id, "hello", "twin"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .create_canned_response(&canned(b.id, "hello", "theirs"))
        .await
        .expect("same shortcut elsewhere");
    let (bye, address) = (
        canned(a.id, "bye", "До свидания!"),
        canned(a.id, "address", "Москва, ул. Тверская, 1"),
    );
    for response in [&bye, &address] {
        store
            .create_canned_response(response)
            .await
            .expect("create");
    }

    hello.response = CannedResponse::new("hi", "Привет, {{name}}").expect("valid");
    hello.updated_at = at(5);
    store.update_canned_response(&hello).await.expect("update");
    assert_eq!(
        store.canned_responses(a.id).await.expect("list"),
        vec![address.clone(), bye.clone(), hello.clone()],
        "by shortcut"
    );
    let clash = CannedResponseRecord {
        response: bye.response.clone(),
        ..hello.clone()
    };
    assert!(matches!(
        store.update_canned_response(&clash).await,
        Err(StoreError::Conflict(_))
    ));
    let foreign = CannedResponseRecord {
        workspace_id: b.id,
        ..hello.clone()
    };
    assert!(matches!(
        store.update_canned_response(&foreign).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_canned_response(b.id, hello.id).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_canned_response(a.id, hello.id)
        .await
        .expect("delete");
    assert!(matches!(
        store.delete_canned_response(a.id, hello.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.canned_responses(a.id).await.expect("list"),
        vec![address, bye]
    );
}

pub async fn notes_find_the_people_they_mention<S: Backend>(store: &S) {
    let (ws, owner, _) = new_workspace(store).await;
    let ws = ws.id;
    let (anna, boris) = (operator(store, ws).await, operator(store, ws).await);
    let first = conversation(store, ws).await.conversation.id;
    let second = conversation(store, ws).await.conversation.id;
    let quiet = conversation(store, ws).await.conversation.id;
    let mention = |c, who: Vec<MemberId>, t| {
        let kind = MessageKind::Note {
            author: owner.id,
            mentions: who,
        };
        message(c, kind, Channel::Internal, "@someone look", at(t))
    };
    append(store, ws, &mention(first, vec![anna], 10)).await;
    append(store, ws, &mention(second, vec![anna, boris], 20)).await;
    append(store, ws, &mention(first, vec![boris], 30)).await;
    append(store, ws, &note(quiet, owner.id, "nobody named", at(40))).await;
    let found = |member, since, limit| store.mentioned_in(ws, member, since, limit);
    assert_eq!(
        found(anna, at(0), 10).await.expect("anna"),
        [second, first],
        "the latest mention first"
    );
    assert_eq!(
        found(boris, at(0), 10).await.expect("boris"),
        [first, second]
    );
    assert_eq!(found(anna, at(15), 10).await.expect("since"), [second]);
    assert_eq!(found(anna, at(0), 1).await.expect("limit"), [second]);
    assert!(found(owner.id, at(0), 10).await.expect("owner").is_empty());
    let (other, _, _) = new_workspace(store).await;
    let elsewhere = store
        .mentioned_in(other.id, anna, at(0), 10)
        .await
        .expect("other workspace");
    assert!(elsewhere.is_empty());
}

pub async fn ratings_are_listed_by_time<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let c = conversation(store, a.id).await;
    let olga = operator(store, a.id).await;
    let support = create_team(store, a.id, "Support").await;
    let rating = |n: i64, score: u8, operator: Option<MemberId>| CsatRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        conversation_id: c.conversation.id,
        rating: Rating {
            operator,
            team: Some(support.id),
            score: Score::new(score).expect("score"),
        },
        at: at(n),
    };
    let given = [
        rating(3, 2, None),
        rating(1, 5, Some(olga)),
        rating(7, 4, Some(olga)),
    ];
    for r in &given {
        store.record_rating(r).await.expect("record");
    }
    assert_eq!(
        store.ratings(a.id, at(1), at(7)).await.expect("ratings"),
        vec![given[1], given[0]],
        "from inclusive, to exclusive, oldest first"
    );
    assert!(matches!(
        store.record_rating(&given[0]).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store
        .ratings(b.id, at(0), at(100))
        .await
        .expect("ratings")
        .is_empty());
    let foreign = CsatRecord {
        id: Uuid::now_v7(),
        workspace_id: b.id,
        ..given[0]
    };
    assert!(matches!(
        store.record_rating(&foreign).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn erasure_scrubs_the_persons_conversation<S: Backend>(store: &S, scan: &dyn RawScan) {
    let (ws, owner, _) = new_workspace(store).await;
    let ws = ws.id;
    let tag = Uuid::now_v7().simple().to_string();
    let olga = operator(store, ws).await;
    // The person, with an older profile of theirs merged in, and a bystander.
    let [person, older, bystander] = profiles(store, ws, 3).await[..] else {
        panic!("three profiles")
    };
    let open = |profile| store.conversation_for_profile(ws, profile, at(0));
    let (mine, old, theirs) = (
        open(person).await.expect("person").0,
        open(older).await.expect("older").0,
        open(bystander).await.expect("bystander").0,
    );

    let mut with_file = inbound(
        old.conversation.id,
        Channel::WhatsApp,
        &format!("мой номер {tag}"),
        at(1),
    );
    with_file.sender = Some(format!("Ольга {tag}"));
    with_file.external_id = Some(format!("wamid.{tag}"));
    with_file.attachments = vec![Attachment {
        name: format!("паспорт-{tag}.jpg"),
        content_type: "image/jpeg".into(),
        size: 1000,
        key: "blobs/00/01".into(),
    }];
    append(store, ws, &with_file).await;
    let handoff = message(
        old.conversation.id,
        MessageKind::Event {
            actor: None,
            event: SystemEvent::HandedOff {
                collected: vec![Collected {
                    field: CollectField::Email,
                    value: format!("olga.{tag}@example.test"),
                }],
                team: None,
            },
        },
        Channel::Internal,
        "",
        at(2),
    );
    append(store, ws, &handoff).await;
    append(
        store,
        ws,
        &inbound(
            mine.conversation.id,
            Channel::Email,
            &format!("письмо {tag}"),
            at(3),
        ),
    )
    .await;
    let reply = outbound(
        mine.conversation.id,
        olga,
        Channel::Email,
        &format!("Ольга {tag}, заказ едет"),
        at(4),
    );
    append(store, ws, &reply).await;
    store
        .set_delivery(
            ws,
            reply.message.id,
            DeliveryStatus::Failed,
            Some(&format!("mailbox olga.{tag} is full")),
        )
        .await
        .expect("delivery");
    let absorb = IdentityOp::Absorb {
        survivor: person,
        absorbed: older,
    };
    identity(store, ws, &[absorb]).await;
    let merged = store
        .merge_conversations(ws, person, older, at(5))
        .await
        .expect("merge")
        .expect("the person's conversation");
    update(store, ws, &merged, |u| {
        u.bot = BotState::HandedOff {
            collected: vec![Collected {
                field: CollectField::Phone,
                value: format!("+7999{tag}"),
            }],
        };
        u.conversation.assignee = Some(olga);
        u.assignment = Some(AssignmentCause {
            reason: AssignReason::Transfer,
            actor: Some(owner.id),
            note: Some(format!("she is Ольга {tag}")),
        });
    })
    .await;
    append(
        store,
        ws,
        &inbound(
            theirs.conversation.id,
            Channel::Sms,
            "Пётр: где посылка?",
            at(6),
        ),
    )
    .await;
    let their_messages = store
        .list_messages(ws, theirs.conversation.id, &all_messages())
        .await
        .expect("theirs");
    let their_conversation = must(store, ws, theirs.conversation.id).await;
    assert!(
        scan.find_text(&tag).await.len() >= 8,
        "the scan finds the person before the erasure"
    );

    // What the blob store must delete: the merged-in profile's file too,
    // and nothing of the bystander's.
    let files = store
        .person_attachments(ws, person)
        .await
        .expect("the person's files");
    assert_eq!(files, with_file.attachments);
    let none = store
        .person_attachments(ws, bystander)
        .await
        .expect("the bystander's files");
    assert!(none.is_empty(), "{none:?}");
    store
        .erase_profile(ws, person, &[], at(50))
        .await
        .expect("erase");
    let files = store
        .person_attachments(ws, person)
        .await
        .expect("after the erase");
    assert!(files.is_empty(), "the rows no longer name the files");

    let found = scan.find_text(&tag).await;
    assert!(
        found.is_empty(),
        "the person survived the erasure in {found:?}"
    );
    let kept = store
        .list_messages(ws, mine.conversation.id, &all_messages())
        .await
        .expect("kept");
    assert_eq!(kept.len(), 4, "rows stay for counts");
    for m in &kept {
        assert_eq!(m.message.body, "[erased]");
        assert_eq!(
            (
                &m.sender,
                &m.attachments,
                &m.external_id,
                &m.delivery_reason
            ),
            (&None, &vec![], &None, &None)
        );
    }
    assert_eq!(
        kept[3].delivery,
        Some(DeliveryStatus::Failed),
        "statuses stay"
    );
    assert_eq!(
        kept[1].message.kind,
        MessageKind::Event {
            actor: None,
            event: SystemEvent::HandedOff {
                collected: vec![],
                team: None
            }
        }
    );
    let scrubbed = must(store, ws, mine.conversation.id).await;
    assert_eq!(scrubbed.bot, BotState::HandedOff { collected: vec![] });
    let history = store
        .assignment_history(ws, mine.conversation.id)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| (h.to_operator, h.note.clone()))
            .collect::<Vec<_>>(),
        [(Some(olga), None)]
    );
    assert_eq!(
        store
            .list_messages(ws, theirs.conversation.id, &all_messages())
            .await
            .expect("theirs"),
        their_messages,
        "the bystander is untouched"
    );
    assert_eq!(
        must(store, ws, theirs.conversation.id).await,
        their_conversation
    );
}

pub async fn the_inbox_of_one_workspace_is_invisible_to_another<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let olga = operator(store, a.id).await;
    let [p, q] = profiles(store, a.id, 2).await[..] else {
        panic!("two profiles")
    };
    let c = store
        .conversation_for_profile(a.id, p, at(0))
        .await
        .expect("p")
        .0;
    let qc = store
        .conversation_for_profile(a.id, q, at(0))
        .await
        .expect("q")
        .0;
    let id = c.conversation.id;
    let mut asked = inbound(id, Channel::WhatsApp, "secret", at(1));
    asked.external_id = Some("ext-1".into());
    append(store, a.id, &asked).await;
    let reply = outbound(id, olga, Channel::WhatsApp, "ok", at(2));
    append(store, a.id, &reply).await;
    let c = update(store, a.id, &must(store, a.id, id).await, |u| {
        u.conversation.assignee = Some(olga)
    })
    .await;
    create_team(store, a.id, "Support").await;
    let greeting = CannedResponseRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        response: CannedResponse::new("hi", "Hi!").expect("valid"),
        created_at: at(0),
        updated_at: at(0),
    };
    store
        .create_canned_response(&greeting)
        .await
        .expect("canned");
    let rating = CsatRecord {
        id: Uuid::now_v7(),
        workspace_id: a.id,
        conversation_id: id,
        rating: Rating {
            operator: Some(olga),
            team: None,
            score: Score::new(5).expect("score"),
        },
        at: at(3),
    };
    store.record_rating(&rating).await.expect("rating");

    let b = b.id;
    assert_eq!(store.conversation(b, id).await.expect("read"), None);
    assert!(store
        .list_conversations(b, &everything())
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .list_messages(b, id, &all_messages())
        .await
        .expect("messages")
        .is_empty());
    assert_eq!(
        store
            .message_by_external_id(b, Channel::WhatsApp, "ext-1")
            .await
            .expect("lookup"),
        None
    );
    assert!(store
        .assignment_history(b, id)
        .await
        .expect("history")
        .is_empty());
    assert_eq!(store.last_operator(b, id).await.expect("operator"), None);
    assert!(store
        .ratings(b, at(0), at(100))
        .await
        .expect("ratings")
        .is_empty());
    assert!(store.canned_responses(b).await.expect("canned").is_empty());
    assert!(store.list_teams(b).await.expect("teams").is_empty());
    assert!(store.member_teams(b, olga).await.expect("teams").is_empty());
    assert!(matches!(
        store.mark_read(b, id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.update_conversation(b, &c.update(at(4))).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .append_message(b, &inbound(id, Channel::Sms, "in", at(4)))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_delivery(b, reply.message.id, DeliveryStatus::Read, None)
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.conversation_for_profile(b, p, at(4)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .merge_conversations(b, p, q, at(4))
            .await
            .expect("merge"),
        None
    );
    assert_eq!(
        store
            .split_conversation(b, p, q, at(4))
            .await
            .expect("split"),
        None
    );

    // A's inbox is as it was.
    assert_eq!(must(store, a.id, id).await, c);
    assert_eq!(must(store, a.id, qc.conversation.id).await, qc);
    assert_eq!(bodies(store, a.id, id).await, ["secret", "ok"]);
    assert_eq!(
        store.canned_responses(a.id).await.expect("canned"),
        vec![greeting]
    );
    assert_eq!(
        store.ratings(a.id, at(0), at(100)).await.expect("ratings"),
        vec![rating]
    );
}

pub async fn one_survey_pends_per_conversation_and_is_taken_once<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let c = conversation(store, a.id).await;
    let olga = operator(store, a.id).await;
    let support = create_team(store, a.id, "Support").await;
    let survey = PendingSurvey {
        workspace_id: a.id,
        conversation_id: c.conversation.id,
        operator: Some(olga),
        team: Some(support.id),
        sent_at: at(5),
    };
    assert!(store.open_survey(&survey).await.expect("open"));
    let again = PendingSurvey {
        operator: None,
        sent_at: at(9),
        ..survey
    };
    assert!(
        !store.open_survey(&again).await.expect("open again"),
        "the first survey stays pending"
    );
    assert_eq!(
        store
            .take_survey(b.id, c.conversation.id)
            .await
            .expect("take"),
        None,
        "another workspace cannot take it"
    );
    let foreign = PendingSurvey {
        workspace_id: b.id,
        ..survey
    };
    assert!(matches!(
        store.open_survey(&foreign).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .take_survey(a.id, c.conversation.id)
            .await
            .expect("take"),
        Some(survey)
    );
    assert_eq!(
        store
            .take_survey(a.id, c.conversation.id)
            .await
            .expect("take again"),
        None,
        "taken once"
    );
    assert!(store.open_survey(&again).await.expect("a new survey"));
}

/// What an inbound message writes (its event, the profile the event
/// resolved to, the conversation and the message) is there after commit and
/// none of it after a rollback; the identity consumer gets no outbox entry
/// (the transaction resolved it), the bus gets the one it was queued.
pub async fn an_inbound_transaction_commits_whole_or_not_at_all<S: Backend>(store: &S) {
    let ws = new_workspace(store).await.0.id;
    let write = |message_id: &'static str, external: &'static str| async move {
        let mut tx = store.begin_inbound(ws).await.expect("begin inbound");
        let event = tracked(message_id, EventType::Track, None, Some("visitor-1"));
        let stored = tx
            .append_events(&[new_event(ws, event)])
            .await
            .expect("append event")
            .pop()
            .flatten()
            .expect("a new event");
        let profile = ProfileId(Uuid::now_v7());
        tx.apply(&[
            IdentityOp::CreateProfile {
                id: profile,
                at: at(0),
            },
            IdentityOp::Assign {
                event: stored.id,
                seq: stored.seq,
                profile,
            },
        ])
        .await
        .expect("apply");
        let (conversation, created) = tx
            .conversation_for_profile(profile, at(1))
            .await
            .expect("conversation");
        assert!(created);
        let mut new = inbound(
            conversation.conversation.id,
            Channel::WebChat,
            "hello",
            at(1),
        );
        new.external_id = Some(external.into());
        let appended = tx
            .append_message(&conversation, &new)
            .await
            .expect("append");
        assert!(appended.new);
        tx.queue_for_bus(&[stored.seq])
            .await
            .expect("queue for the bus");
        assert_eq!(appended.conversation.unread, 1);
        (tx, profile, stored)
    };

    let (tx, profile, _) = write("inbound-rolled-back", "ext-1").await;
    drop(tx);
    assert_eq!(store.count_events(ws).await.expect("count"), 0);
    assert!(store.profile(ws, profile).await.expect("profile").is_none());
    assert!(store
        .message_by_external_id(ws, Channel::WebChat, "ext-1")
        .await
        .expect("lookup")
        .is_none());

    let (tx, profile, stored) = write("inbound-committed", "ext-2").await;
    tx.commit().await.expect("commit");
    assert_eq!(store.count_events(ws).await.expect("count"), 1);
    assert!(store.profile(ws, profile).await.expect("profile").is_some());
    let (conversation, created) = store
        .conversation_for_profile(ws, profile, at(2))
        .await
        .expect("conversation");
    assert!(!created, "the transaction's conversation was kept");
    assert_eq!(
        bodies(store, ws, conversation.conversation.id).await,
        ["hello"]
    );

    let mut tx = store.begin_inbound(ws).await.expect("begin inbound");
    let found = tx
        .messages_by_external_id(&[
            (Channel::WebChat, "ext-2"),
            (Channel::WebChat, "ext-1"),
            (Channel::Sms, "ext-2"),
        ])
        .await
        .expect("lookup");
    assert_eq!(found.len(), 1, "only the committed message, on its channel");
    assert_eq!(found[0].profile_id, profile);
    assert_eq!(found[0].external_id.as_deref(), Some("ext-2"));
    let again = tracked(
        "inbound-committed",
        EventType::Track,
        None,
        Some("visitor-1"),
    );
    let other = tracked("inbound-other", EventType::Track, None, Some("visitor-2"));
    let appended = tx
        .append_events(&[new_event(ws, again), new_event(ws, other)])
        .await
        .expect("append");
    assert_eq!(appended.len(), 2, "one answer per event");
    assert!(appended[0].is_none(), "an event's messageId is stored once");
    let other = appended[1].as_ref().expect("a new event is appended");
    assert_eq!(other.anonymous_id.as_deref(), Some("visitor-2"));
    assert!(other.seq > stored.seq);
    let elsewhere = inbound(ConversationId(Uuid::now_v7()), Channel::WebChat, "x", at(3));
    assert!(
        matches!(
            tx.append_message(&conversation, &elsewhere).await,
            Err(StoreError::Conflict(_))
        ),
        "a message naming another conversation is refused"
    );
    drop(tx);

    let far = at(0) + chrono::Duration::days(365 * 100);
    let identity = store
        .claim_outbox(IDENTITY_CONSUMER, 10_000, far, far)
        .await
        .expect("claim identity");
    assert!(
        !identity
            .iter()
            .flat_map(|e| &e.events)
            .any(|e| e.id == stored.id),
        "identity was resolved in the transaction, not queued"
    );
    let bus = store
        .claim_outbox(BUS_CONSUMER, 10_000, far, far)
        .await
        .expect("claim bus");
    assert!(bus
        .iter()
        .flat_map(|e| &e.events)
        .any(|e| e.id == stored.id));
}

/// A batch's senders' conversations found and opened together (a profile
/// merged away gets its survivor's, opened once), and its messages
/// appended together: each answer with its conversation as the batch
/// leaves it, the reopen on the message that caused it, and a message a
/// provider delivered before answered with the stored one.
pub async fn an_inbound_batch_finds_conversations_and_appends_together<S: Backend>(store: &S) {
    let ws = new_workspace(store).await.0.id;
    let [known, fresh, survivor, absorbed] = profiles(store, ws, 4).await[..] else {
        panic!("four profiles")
    };
    identity(store, ws, &[IdentityOp::Absorb { survivor, absorbed }]).await;
    let (before, _) = store
        .conversation_for_profile(ws, known, at(0))
        .await
        .expect("conversation");
    let mut delivered = inbound(before.conversation.id, Channel::Telegram, "раньше", at(1));
    delivered.external_id = Some("tg-1".into());
    append(store, ws, &delivered).await;
    let current = must(store, ws, before.conversation.id).await;
    let resolved = update(store, ws, &current, |u| {
        u.conversation.status = Status::Resolved
    })
    .await;

    let mut tx = store.begin_inbound(ws).await.expect("begin inbound");
    let asked = [
        (known, at(2)),
        (absorbed, at(3)),
        (fresh, at(4)),
        (survivor, at(5)),
    ];
    let found = tx
        .conversations_for_profiles(&asked)
        .await
        .expect("conversations");
    let ids: Vec<ConversationId> = found.iter().map(|(c, _)| c.conversation.id).collect();
    let opened: Vec<bool> = found.iter().map(|(_, o)| *o).collect();
    assert_eq!(ids[0], resolved.conversation.id, "the known one is found");
    assert_eq!(
        ids[1], ids[3],
        "the merged-away profile gets its survivor's"
    );
    assert_eq!(found[1].0.conversation.profile, survivor);
    assert_eq!(opened, [false, true, true, false], "opened once each");
    assert!(
        tx.conversations_for_profiles(&[(ProfileId(Uuid::now_v7()), at(2))])
            .await
            .is_err(),
        "an unknown profile has none"
    );
    drop(tx);

    let mut tx = store.begin_inbound(ws).await.expect("begin inbound");
    let found = tx
        .conversations_for_profiles(&asked)
        .await
        .expect("conversations");
    let read: Vec<StoredConversation> = found.iter().map(|(c, _)| c.clone()).collect();
    let (mine, merged, new) = (ids[0], read[1].conversation.id, read[2].conversation.id);
    assert_eq!(mine, read[0].conversation.id);
    assert_eq!(merged, read[3].conversation.id);
    let mut retry = inbound(mine, Channel::Telegram, "раньше", at(6));
    retry.external_id = Some("tg-1".into());
    let batch = [
        inbound(mine, Channel::WhatsApp, "снова я", at(6)),
        inbound(merged, Channel::WebChat, "привет", at(7)),
        inbound(mine, Channel::Telegram, "и ещё", at(8)),
        inbound(new, Channel::Sms, "здравствуйте", at(9)),
    ];
    let appended = tx.append_messages(&read, &batch).await.expect("append");
    assert_eq!(appended.len(), 4);
    assert!(appended.iter().all(|a| a.new));
    assert_eq!(
        appended[0].reopened.map(|r| (r.from, r.to)),
        Some((Status::Resolved, Status::Open)),
        "the first message reopens"
    );
    assert_eq!(appended[2].reopened, None, "the next finds it open");
    assert_eq!(
        appended[0].conversation, appended[2].conversation,
        "as the batch leaves it"
    );
    let last = &appended[2].conversation;
    assert_eq!(last.unread, resolved.unread + 2);
    assert_eq!(last.conversation.status, Status::Open);
    assert_eq!(
        last.conversation.last_inbound_channel,
        Some(Channel::Telegram)
    );
    assert_eq!(last.last_message_at, Some(at(8)));
    assert_eq!(last.version, resolved.version + 1, "written once");
    assert!(appended[3].conversation.activity_seq > resolved.activity_seq);
    let seq = |n: usize| appended[n].conversation.activity_seq;
    assert!(
        seq(1) < seq(2) && seq(2) < seq(3),
        "the activity order of each conversation's last message: {:?}",
        [seq(1), seq(2), seq(3)]
    );
    let also = inbound(mine, Channel::Telegram, "и последнее", at(10));
    let again = tx
        .append_messages(std::slice::from_ref(last), &[retry, also])
        .await
        .expect("retry");
    assert!(!again[0].new, "a provider's retry finds the stored message");
    assert_eq!(again[0].message.message.body, "раньше");
    assert!(again[1].new, "the rest of the batch is appended");
    assert_eq!(again[1].conversation.unread, last.unread + 1);
    assert_eq!(again[0].conversation, again[1].conversation);
    tx.commit().await.expect("commit");

    assert_eq!(must(store, ws, mine).await, again[1].conversation);
    assert_eq!(
        bodies(store, ws, mine).await,
        ["раньше", "снова я", "и ещё", "и последнее"]
    );
    assert_eq!(bodies(store, ws, merged).await, ["привет"]);
    assert_eq!(bodies(store, ws, new).await, ["здравствуйте"]);
    let wrong = inbound(ConversationId(Uuid::now_v7()), Channel::Sms, "?", at(9));
    let mut tx = store.begin_inbound(ws).await.expect("begin inbound");
    assert!(matches!(
        tx.append_messages(&read, &[wrong.clone(), wrong]).await,
        Err(StoreError::Conflict(_))
    ));
}
