//! Sends the outbox. Each instance runs one sender; they share the outbox
//! through the store's lease, so a message is attempted by one of them at a
//! time and one left by a sender that died goes out once its lease ends.
//! A message is sent at most once per accepted attempt: only an answer
//! from the provider marks it sent, and a sent entry is never claimed again.
//!
//! Per attempt: a transient error (network, 5xx, 429) retries with
//! exponential backoff and jitter, not before the provider's `retry_after`
//! (a 429 that throttles the whole account holds its other chats too); a
//! permanent one fails the message with the provider's reason. A timeout
//! (the provider may have sent it, and most have no idempotency key) is
//! tried once more at once and then given up on as `unknown` rather than
//! risk a second copy (channels.md §1). Pacing keeps to the provider's
//! per-account and per-chat rates (in this instance).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use seamline_bus::Bus;
use seamline_core::inbox::conversation::{Channel, MessageKind};
use seamline_core::{ConversationMessageId, ProfileId, WorkspaceId};
use seamline_store::{
    AppendedMessage, Backend, DeliveryStatus, MessageQuery, Order, OutboundEntry, OutboundStep,
    StoreResult, StoredMessage,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::webhook::apply_parked;
use super::{accounts, ChannelsConfig, Connector, Connectors, SendError};
use crate::inbox::live::{publish, LiveEvent};
use crate::AppState;

/// Entries leased per turn.
const BATCH: u32 = 16;
/// How long a batch is leased; a dead sender's entries wait this long. An
/// entry is only attempted while its whole attempt fits in what is left
/// ([`fits_in_lease`]), so no other sender claims it mid-send.
const LEASE: TimeDelta = TimeDelta::seconds(60);
/// How often the sender looks for replies whose enqueue was lost.
const SWEEP_EVERY: u32 = 20;

/// What the API and the sender share: the connectors and a bell that wakes
/// the sender when a reply is queued.
#[derive(Clone)]
pub struct Outbox {
    pub connectors: Connectors,
    pub wake: Arc<Notify>,
}

/// When each account and chat may send next (this instance only).
#[derive(Default)]
struct Pacer(HashMap<String, DateTime<Utc>>);

impl Pacer {
    fn free_at(&self, keys: &[&str]) -> Option<DateTime<Utc>> {
        keys.iter().filter_map(|k| self.0.get(*k)).max().copied()
    }

    fn hold(&mut self, key: &str, until: DateTime<Utc>) {
        let slot = self.0.entry(key.to_owned()).or_insert(until);
        *slot = (*slot).max(until);
    }
}

pub async fn run(
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    outbox: Outbox,
    config: ChannelsConfig,
    stop: CancellationToken,
) {
    let mut pacer = Pacer::default();
    let mut turn = 0u32;
    while !stop.is_cancelled() {
        if turn.is_multiple_of(SWEEP_EVERY) {
            let channels = outbox.connectors.channels();
            match store.sweep_outbound(&channels, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(queued = n, "outbound messages found unqueued and queued"),
                Err(error) => tracing::warn!(%error, "outbox sweep failed"),
            }
        }
        turn = turn.wrapping_add(1);
        let now = Utc::now();
        let leased_until = now + lease_for(config.send_timeout);
        let claimed = match store.claim_outbound(BATCH, now, leased_until).await {
            Ok(claimed) => claimed,
            Err(error) => {
                tracing::warn!(%error, "outbound messages could not be leased");
                Vec::new()
            }
        };
        let full = claimed.len() == BATCH as usize;
        for entry in claimed {
            if !fits_in_lease(Utc::now(), leased_until, config.send_timeout) {
                // Left leased: tried again once the lease runs out.
                break;
            }
            let step = attempt(store.as_ref(), &outbox, &config, &mut pacer, &entry).await;
            finish(store.as_ref(), bus.as_ref(), &entry, step).await;
        }
        if !full {
            tokio::select! {
                () = stop.cancelled() => return,
                () = outbox.wake.notified() => {}
                () = tokio::time::sleep(config.poll) => {}
            }
        }
    }
}

/// The batch's lease: [`LEASE`], or longer when one attempt (two sends)
/// would not fit in it.
fn lease_for(send_timeout: Duration) -> TimeDelta {
    LEASE.max(delta(send_timeout) * 3)
}

/// Whether an attempt started `now` ends before `leased_until`: it may
/// take two sends of up to `send_timeout` each (a timeout is tried once
/// more).
fn fits_in_lease(now: DateTime<Utc>, leased_until: DateTime<Utc>, send_timeout: Duration) -> bool {
    now + delta(send_timeout) * 2 < leased_until
}

/// Queues a just-written reply if its channel has a connector, and wakes
/// the sender. A failure here is only logged: the sweep queues it later.
pub async fn enqueue(state: &AppState, appended: &AppendedMessage) {
    let message = &appended.message;
    let waiting = appended.new && message.delivery == Some(DeliveryStatus::Pending);
    if !waiting
        || state
            .channels
            .connectors
            .get(message.message.channel)
            .is_none()
    {
        return;
    }
    let ws = message.workspace_id;
    match state
        .store
        .enqueue_outbound(ws, message.message.id, Utc::now())
        .await
    {
        Ok(_) => state.channels.wake.notify_one(),
        Err(error) => tracing::warn!(%error, "a reply was not queued now; the sweep will"),
    }
}

fn failed(reason: impl Into<String>) -> OutboundStep {
    OutboundStep::Failed {
        reason: reason.into(),
    }
}

/// One try at `entry`: what it led to.
async fn attempt(
    store: &dyn Backend,
    outbox: &Outbox,
    config: &ChannelsConfig,
    pacer: &mut Pacer,
    entry: &OutboundEntry,
) -> OutboundStep {
    let Some(connector) = outbox.connectors.get(entry.channel) else {
        return failed(format!("no connector for {}", entry.channel));
    };
    let ws = entry.workspace_id;
    let (stored, to) = match route(store, connector.as_ref(), entry).await {
        Ok(Ok(found)) => found,
        Ok(Err(reason)) => return failed(reason),
        Err(error) => return retry_later(config, entry, None, &error.to_string()),
    };
    if let Some(window) = connector.reply_window(&entry.body) {
        match window_open(store, entry, window).await {
            Ok(true) => {}
            Ok(false) => return failed(window_closed(entry, window)),
            Err(error) => return retry_later(config, entry, None, &error.to_string()),
        }
    }
    let account = match accounts::open(&config.secret_key, &stored) {
        Ok(account) => account,
        Err(error) => return failed(format!("the account's secrets do not open: {error}")),
    };
    let account_key = stored.id.to_string();
    let chat_key = format!("{account_key}:{to}");
    let now = Utc::now();
    if let Some(free) = pacer
        .free_at(&[&account_key, &chat_key])
        .filter(|f| *f > now)
    {
        return OutboundStep::Defer { at: free };
    }
    let pacing = connector.pacing();
    pacer.hold(&account_key, now + delta(pacing.per_account));
    pacer.hold(&chat_key, now + delta(pacing.per_chat));
    tracing::debug!(workspace = %ws, message = %entry.message_id, "sending");
    let mut sent = connector.send_entry(store, &account, &to, entry).await;
    if let Err(SendError::TimedOut { reason }) = &sent {
        tracing::warn!(workspace = %ws, message = %entry.message_id, %reason, "a send timed out; trying once more");
        sent = match connector.send_entry(store, &account, &to, entry).await {
            // Whatever else the second try says, the first may have gone
            // out: a third could be a duplicate.
            Err(SendError::TimedOut { reason } | SendError::Transient { reason, .. }) => {
                return OutboundStep::Unknown {
                    reason: format!(
                        "{reason} after a first try timed out: it may have been sent, so it is not tried again"
                    ),
                }
            }
            other => other,
        };
    }
    match sent {
        Ok(provider_id) => OutboundStep::Sent {
            provider_id: Some(provider_id),
        },
        Err(SendError::Permanent { reason }) => failed(reason),
        // Only a first timeout gets here, and it was tried again above.
        Err(SendError::TimedOut { reason }) => OutboundStep::Unknown { reason },
        Err(SendError::Transient {
            retry_after,
            whole_account,
            reason,
        }) => {
            let step = retry_later(config, entry, retry_after, &reason);
            if let (true, OutboundStep::Retry { at, .. }) = (whole_account, &step) {
                pacer.hold(&account_key, *at);
            }
            step
        }
    }
}

/// The account to send through and the customer's chat on it; `Err`
/// inside: why it cannot be sent at all.
async fn route(
    store: &dyn Backend,
    connector: &dyn Connector,
    entry: &OutboundEntry,
) -> StoreResult<Result<(seamline_store::ChannelAccount, String), String>> {
    let ws = entry.workspace_id;
    let Some(account) = accounts::sending_account(store, ws, entry.channel).await? else {
        return Ok(Err(format!("no {} account is connected", entry.channel)));
    };
    let kind = connector.recipient_kind();
    let chat = store
        .profile_identifiers(ws, entry.profile_id)
        .await?
        .into_iter()
        .rev()
        .find(|i| i.identifier.kind == kind)
        .map(|i| i.identifier.value);
    Ok(match chat {
        Some(chat) => Ok((account, chat)),
        None => Err(format!(
            "the customer has no {} chat to answer",
            entry.channel
        )),
    })
}

/// Whether the customer wrote on the entry's channel within `window`
/// (among the conversation's latest messages: an older one is outside it
/// anyway).
pub async fn window_open(
    store: &dyn Backend,
    entry: &OutboundEntry,
    window: Duration,
) -> StoreResult<bool> {
    let last = last_inbound(store, entry.workspace_id, entry.profile_id, entry.channel).await?;
    Ok(last.is_some_and(|at| at + delta(window) > Utc::now()))
}

/// When the customer last wrote on `channel`, if among the latest messages.
pub async fn last_inbound(
    store: &dyn Backend,
    ws: WorkspaceId,
    profile: ProfileId,
    channel: Channel,
) -> StoreResult<Option<DateTime<Utc>>> {
    let (conversation, _) = store
        .conversation_for_profile(ws, profile, Utc::now())
        .await?;
    let query = MessageQuery {
        limit: 200,
        order: Order::NewestFirst,
        ..MessageQuery::default()
    };
    let recent = store
        .list_messages(ws, conversation.conversation.id, &query)
        .await?;
    Ok(last_inbound_in(&recent, channel))
}

/// The latest time the customer wrote on `channel` among `messages`.
pub fn last_inbound_in(messages: &[StoredMessage], channel: Channel) -> Option<DateTime<Utc>> {
    messages
        .iter()
        .filter(|m| m.message.kind == MessageKind::Inbound && m.message.channel == channel)
        .map(|m| m.message.at)
        .max()
}

fn window_closed(entry: &OutboundEntry, window: Duration) -> String {
    let hours = window.as_secs() / 3600;
    format!(
        "outside the {hours}-hour customer-service window of {}: the customer has not written for {hours} h, only an approved template can be sent",
        entry.channel
    )
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// Exponential backoff with full jitter, never before the provider's
/// `retry_after`; gives up after `max_attempts`.
fn retry_later(
    config: &ChannelsConfig,
    entry: &OutboundEntry,
    retry_after: Option<Duration>,
    reason: &str,
) -> OutboundStep {
    let tried = entry.attempts + 1;
    if tried >= config.max_attempts {
        return failed(format!("gave up after {tried} attempts: {reason}"));
    }
    let ceiling = config
        .base_backoff
        .saturating_mul(2u32.saturating_pow(entry.attempts.min(20)))
        .min(config.max_backoff);
    let jittered = ceiling.mul_f64(rand::thread_rng().gen_range(0.5..=1.0));
    let wait = jittered.max(retry_after.unwrap_or_default());
    OutboundStep::Retry {
        at: Utc::now() + delta(wait),
        reason: reason.to_owned(),
    }
}

/// Writes the outcome and, when the message's status changed, pushes it to
/// the screens showing the conversation.
async fn finish(store: &dyn Backend, bus: &dyn Bus, entry: &OutboundEntry, step: OutboundStep) {
    let ws = entry.workspace_id;
    if let OutboundStep::Failed { reason } | OutboundStep::Unknown { reason } = &step {
        tracing::warn!(workspace = %ws, message = %entry.message_id, %reason, "outbound message failed or unknown");
    }
    if let Err(error) = store
        .finish_outbound(ws, entry.message_id, &step, Utc::now())
        .await
    {
        // The lease runs out and the entry is tried again.
        tracing::warn!(%error, message = %entry.message_id, "outbound outcome not saved");
        return;
    }
    if let OutboundStep::Sent {
        provider_id: Some(provider_id),
    } = &step
    {
        // Reports that came before the provider's answer wait for its id.
        if let Err(error) = apply_parked(store, ws, entry.channel, provider_id).await {
            tracing::warn!(%error, message = %entry.message_id, "early delivery reports not applied");
        }
    }
    if matches!(
        step,
        OutboundStep::Sent { .. } | OutboundStep::Failed { .. } | OutboundStep::Unknown { .. }
    ) {
        if let Err(error) = push(store, bus, ws, entry.profile_id, entry.message_id).await {
            tracing::warn!(%error, "a delivery status was saved but not pushed live");
        }
    }
}

/// Shows message `id` of `profile`'s conversation afresh on the screens
/// showing it (its delivery status changed).
pub async fn push(
    store: &dyn Backend,
    bus: &dyn Bus,
    ws: WorkspaceId,
    profile: ProfileId,
    id: ConversationMessageId,
) -> StoreResult<()> {
    let (conversation, _) = store
        .conversation_for_profile(ws, profile, Utc::now())
        .await?;
    // A reply is among the conversation's latest messages.
    let query = MessageQuery {
        limit: 200,
        order: Order::NewestFirst,
        ..MessageQuery::default()
    };
    let recent = store
        .list_messages(ws, conversation.conversation.id, &query)
        .await?;
    if let Some(message) = recent.iter().find(|m| m.message.id == id) {
        publish(bus, LiveEvent::Message(message)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_starts_only_while_two_sends_fit_in_the_lease() {
        let now = Utc::now();
        let timeout = Duration::from_secs(20);
        assert!(fits_in_lease(now, now + LEASE, timeout));
        assert!(!fits_in_lease(
            now + TimeDelta::seconds(20),
            now + LEASE,
            timeout
        ));
        // The lease is long enough for at least one attempt, however slow.
        let slow = Duration::from_secs(45);
        assert!(fits_in_lease(now, now + lease_for(slow), slow));
    }
}
