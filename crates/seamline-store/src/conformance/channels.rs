//! The [`ChannelStore`] part of the suite: accounts round trip, are found
//! by their webhook token and stay in their workspace; an outbound message
//! is queued once (by the API or a sweep); due entries are leased to one
//! sender at a time; an outcome moves the entry and its message together;
//! a delivery report that came before its message is parked once.

use chrono::{DateTime, Duration, TimeZone, Utc};
use seamline_core::inbox::conversation::Channel;
use seamline_core::{ChannelAccountId, ConversationMessageId, WorkspaceId};
use serde_json::json;
use uuid::Uuid;

use super::inbox::{append, conversation, inbound, operator, outbound};
use super::new_workspace;
use crate::*;

/// Runs every channel check, in order, against `store`.
pub async fn run_channel_suite<S: Backend>(store: &S) {
    accounts_round_trip_and_stay_in_their_workspace(store).await;
    outbound_messages_are_queued_once(store).await;
    due_entries_are_leased_to_one_sender(store).await;
    outcomes_move_the_entry_and_its_message(store).await;
    erasure_removes_the_persons_outbox(store).await;
    early_reports_are_parked_once_per_status(store).await;
}

fn at(n: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_760_000_000_000 + n * 1000)
        .single()
        .expect("valid time")
}

fn account(ws: WorkspaceId) -> ChannelAccount {
    ChannelAccount {
        id: ChannelAccountId(Uuid::now_v7()),
        workspace_id: ws,
        kind: Channel::Telegram,
        name: "Бот «Утро»".into(),
        settings: json!({"bot_username": "utro_bot", "api_base": "http://127.0.0.1:1"}),
        secrets: SealedSecrets(format!("v1:{}", Uuid::now_v7().simple())),
        path_token: Uuid::now_v7().simple().to_string(),
        active: true,
        status: "unchecked".into(),
        status_detail: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

pub async fn accounts_round_trip_and_stay_in_their_workspace<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let mut bot = account(a.id);
    store.create_channel_account(&bot).await.expect("create");
    assert_eq!(
        store.channel_account(a.id, bot.id).await.expect("get"),
        Some(bot.clone())
    );
    assert_eq!(
        store.channel_account(b.id, bot.id).await.expect("get"),
        None
    );
    assert_eq!(
        store.list_channel_accounts(a.id).await.expect("list"),
        vec![bot.clone()]
    );
    assert!(store
        .list_channel_accounts(b.id)
        .await
        .expect("list")
        .is_empty());
    let found = store
        .channel_account_by_token(Channel::Telegram, &bot.path_token)
        .await
        .expect("by token");
    assert_eq!(found.map(|f| f.id), Some(bot.id));
    let other_kind = store
        .channel_account_by_token(Channel::Viber, &bot.path_token)
        .await
        .expect("by token");
    assert_eq!(other_kind, None, "a token opens only its own kind");

    bot.name = "Renamed".into();
    bot.status = "error".into();
    bot.status_detail = Some("Unauthorized".into());
    bot.secrets = SealedSecrets("v1:other".into());
    bot.updated_at = at(5);
    store.update_channel_account(&bot).await.expect("update");
    assert_eq!(
        store.channel_account(a.id, bot.id).await.expect("get"),
        Some(bot.clone())
    );
    let mut foreign = bot.clone();
    foreign.workspace_id = b.id;
    assert!(matches!(
        store.update_channel_account(&foreign).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_channel_account(b.id, bot.id).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .delete_channel_account(a.id, bot.id)
        .await
        .expect("delete");
    assert_eq!(
        store.channel_account(a.id, bot.id).await.expect("get"),
        None
    );
}

/// A pending reply on `channel` in a new conversation of `ws`.
async fn reply<S: Backend>(
    store: &S,
    ws: WorkspaceId,
    channel: Channel,
    body: &str,
) -> ConversationMessageId {
    let c = conversation(store, ws).await.conversation.id;
    append(store, ws, &inbound(c, channel, "Здравствуйте", at(1))).await;
    let op = operator(store, ws).await;
    let written = append(store, ws, &outbound(c, op, channel, body, at(2))).await;
    written.message.message.id
}

pub async fn outbound_messages_are_queued_once<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let first = reply(store, a.id, Channel::Telegram, "Добрый день").await;
    assert!(!store
        .enqueue_outbound(b.id, first, at(3))
        .await
        .expect("enqueue"));
    assert!(store
        .enqueue_outbound(a.id, first, at(3))
        .await
        .expect("enqueue"));
    assert!(!store
        .enqueue_outbound(a.id, first, at(4))
        .await
        .expect("enqueue again"));
    let entry = store
        .outbound(a.id, first)
        .await
        .expect("read")
        .expect("queued");
    assert_eq!(entry.body, "Добрый день");
    assert_eq!(entry.channel, Channel::Telegram);
    assert_eq!(entry.state, OutboundState::Pending);
    assert_eq!(entry.attempts, 0);
    assert_eq!(entry.next_attempt_at, Some(at(3)));
    assert_eq!(store.outbound(b.id, first).await.expect("read"), None);

    // A reply whose enqueue was lost is found by the sweep, once; other
    // channels' replies are left for their own senders.
    let lost = reply(store, a.id, Channel::Telegram, "Потерянный").await;
    let web = reply(store, b.id, Channel::WebChat, "В виджет").await;
    let swept = store
        .sweep_outbound(&[Channel::Telegram], at(5))
        .await
        .expect("sweep");
    assert!(swept >= 1, "the lost reply is swept");
    assert!(store.outbound(a.id, lost).await.expect("read").is_some());
    assert_eq!(store.outbound(b.id, web).await.expect("read"), None);
    assert_eq!(
        store
            .sweep_outbound(&[Channel::Telegram], at(6))
            .await
            .expect("sweep"),
        0
    );
}

pub async fn due_entries_are_leased_to_one_sender<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let id = reply(store, a.id, Channel::Telegram, "Аренда").await;
    // Far in the future so other checks' entries are due as well; look
    // only for ours.
    let now = Utc::now() + Duration::days(3650);
    store
        .enqueue_outbound(a.id, id, now)
        .await
        .expect("enqueue");
    let ours = |claimed: Vec<OutboundEntry>| claimed.iter().any(|e| e.message_id == id);
    let lease = now + Duration::seconds(30);
    assert!(ours(
        store.claim_outbound(100, now, lease).await.expect("claim")
    ));
    assert!(!ours(
        store.claim_outbound(100, now, lease).await.expect("claim")
    ));
    let later = lease + Duration::seconds(1);
    assert!(
        ours(
            store
                .claim_outbound(100, later, later + Duration::seconds(30))
                .await
                .expect("claim")
        ),
        "a dead sender's lease runs out"
    );
}

async fn delivery_of<S: Backend>(
    store: &S,
    ws: WorkspaceId,
    id: ConversationMessageId,
) -> (Option<DeliveryStatus>, Option<String>) {
    let entry = store.outbound(ws, id).await.expect("read").expect("queued");
    let (conversation, _) = store
        .conversation_for_profile(ws, entry.profile_id, at(9))
        .await
        .expect("conversation");
    let query = MessageQuery {
        limit: 100,
        ..MessageQuery::default()
    };
    let messages = store
        .list_messages(ws, conversation.conversation.id, &query)
        .await
        .expect("messages");
    let message = messages
        .iter()
        .find(|m| m.message.id == id)
        .expect("the message");
    (message.delivery, message.delivery_reason.clone())
}

pub async fn outcomes_move_the_entry_and_its_message<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let sent = reply(store, a.id, Channel::Telegram, "Уйдёт").await;
    let refused = reply(store, a.id, Channel::Telegram, "Не уйдёт").await;
    for id in [sent, refused] {
        store
            .enqueue_outbound(a.id, id, at(3))
            .await
            .expect("enqueue");
    }
    let retry = OutboundStep::Retry {
        at: at(60),
        reason: "HTTP 502".into(),
    };
    store
        .finish_outbound(a.id, sent, &retry, at(4))
        .await
        .expect("retry");
    let defer = OutboundStep::Defer { at: at(61) };
    store
        .finish_outbound(a.id, sent, &defer, at(5))
        .await
        .expect("defer");
    let entry = store
        .outbound(a.id, sent)
        .await
        .expect("read")
        .expect("queued");
    assert_eq!(entry.state, OutboundState::Pending);
    assert_eq!(entry.attempts, 1, "a deferral is not an attempt");
    assert_eq!(entry.next_attempt_at, Some(at(61)));
    assert_eq!(entry.last_error.as_deref(), Some("HTTP 502"));
    assert_eq!(
        delivery_of(store, a.id, sent).await,
        (Some(DeliveryStatus::Pending), None)
    );

    let done = OutboundStep::Sent {
        provider_id: Some("123:77".into()),
    };
    store
        .finish_outbound(a.id, sent, &done, at(62))
        .await
        .expect("sent");
    let entry = store
        .outbound(a.id, sent)
        .await
        .expect("read")
        .expect("queued");
    assert_eq!(entry.state, OutboundState::Sent);
    assert_eq!(entry.attempts, 2);
    assert_eq!(entry.provider_id.as_deref(), Some("123:77"));
    assert_eq!(entry.next_attempt_at, None);
    assert_eq!(
        delivery_of(store, a.id, sent).await.0,
        Some(DeliveryStatus::Sent)
    );
    let reported = store
        .message_by_external_id(a.id, Channel::Telegram, "123:77")
        .await
        .expect("by provider id");
    assert_eq!(
        reported.map(|m| m.message.id),
        Some(sent),
        "found for its reports"
    );

    let blocked = OutboundStep::Failed {
        reason: "Forbidden: bot was blocked by the user".into(),
    };
    store
        .finish_outbound(a.id, refused, &blocked, at(63))
        .await
        .expect("failed");
    assert_eq!(
        delivery_of(store, a.id, refused).await,
        (
            Some(DeliveryStatus::Failed),
            Some("Forbidden: bot was blocked by the user".into())
        )
    );
    // A send that timed out twice: given up on, neither sent nor failed,
    // and never claimed again.
    let unsure = reply(store, a.id, Channel::Telegram, "Дошло ли?").await;
    store
        .enqueue_outbound(a.id, unsure, at(3))
        .await
        .expect("enqueue");
    let timed_out = OutboundStep::Unknown {
        reason: "Telegram: timed out twice".into(),
    };
    store
        .finish_outbound(a.id, unsure, &timed_out, at(63))
        .await
        .expect("unknown");
    let entry = store
        .outbound(a.id, unsure)
        .await
        .expect("read")
        .expect("queued");
    assert_eq!(entry.state, OutboundState::Unknown);
    assert_eq!(
        delivery_of(store, a.id, unsure).await,
        (
            Some(DeliveryStatus::Unknown),
            Some("Telegram: timed out twice".into())
        )
    );
    let claimed = store
        .claim_outbound(100, at(70), at(100))
        .await
        .expect("claim");
    assert!(!claimed.iter().any(|e| e.message_id == unsure));
    let (b, _, _) = new_workspace(store).await;
    assert!(matches!(
        store.finish_outbound(b.id, sent, &done, at(64)).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn erasure_removes_the_persons_outbox<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let id = reply(store, a.id, Channel::Telegram, "Ваш адрес: ул. Ленина, 1").await;
    store
        .enqueue_outbound(a.id, id, at(3))
        .await
        .expect("enqueue");
    let entry = store
        .outbound(a.id, id)
        .await
        .expect("read")
        .expect("queued");
    store
        .erase_profile(a.id, entry.profile_id, &[], at(4))
        .await
        .expect("erase");
    assert_eq!(store.outbound(a.id, id).await.expect("read"), None);
}

pub async fn early_reports_are_parked_once_per_status<S: Backend>(store: &S) {
    let (a, _, _) = new_workspace(store).await;
    let (b, _, _) = new_workspace(store).await;
    let wamid = "wamid.HBgLNzkxNjEyMzQ1NjcVAgARGBI";
    let report = |status, reason: Option<&str>, n| ParkedDelivery {
        status,
        reason: reason.map(str::to_owned),
        received_at: at(n),
    };
    let read = report(DeliveryStatus::Read, None, 1);
    let delivered = report(DeliveryStatus::Delivered, None, 2);
    for parked in [&read, &delivered, &report(DeliveryStatus::Read, None, 3)] {
        store
            .park_delivery(a.id, Channel::WhatsApp, wamid, parked)
            .await
            .expect("parked");
    }
    assert_eq!(
        store
            .parked_deliveries(a.id, Channel::WhatsApp, wamid)
            .await
            .expect("read"),
        [read, delivered.clone()],
        "a re-sent report is kept once, in the order they came"
    );
    for (ws, channel) in [(b.id, Channel::WhatsApp), (a.id, Channel::Viber)] {
        let other = store
            .parked_deliveries(ws, channel, wamid)
            .await
            .expect("read");
        assert!(other.is_empty(), "scoped to workspace and channel");
    }
    store
        .drop_parked_delivery(a.id, Channel::WhatsApp, wamid, DeliveryStatus::Read)
        .await
        .expect("dropped");
    assert_eq!(
        store
            .parked_deliveries(a.id, Channel::WhatsApp, wamid)
            .await
            .expect("read"),
        [delivered],
        "only the applied report is forgotten"
    );
}
