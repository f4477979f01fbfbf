//! The suite every [`Bus`] implementation must pass.
//!
//! A harness hands each test a `connect` closure that returns a new handle on
//! the same backing bus: a clone for the in-process bus, a new connection (a
//! second instance) for NATS. The bus must be built with [`options()`]: the
//! redelivery tests time themselves by [`ACK_WAIT`]. Every test makes its own
//! subjects and group names, so tests may share one bus and run in any order.
//! Waits are bounded, so a broken bus fails in seconds instead of hanging.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::{Stream, StreamExt};
use uuid::Uuid;

use crate::{Bus, BusError, BusOptions, Delivery, Message, Subscription, SubscriptionKind};

/// The ack wait the bus under test must use.
pub const ACK_WAIT: Duration = Duration::from_secs(1);
/// Longest wait for an expected delivery, redeliveries included.
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// Options for the bus under test.
pub fn options() -> BusOptions {
    BusOptions { ack_wait: ACK_WAIT }
}

/// Runs every test of the suite, one after the other.
pub async fn run_all<F, Fut>(connect: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Bus>>,
{
    ping_and_kind(&connect).await;
    rejects_invalid_input(&connect).await;
    broadcast_reaches_every_subscriber(&connect).await;
    broadcast_starts_at_subscribe(&connect).await;
    subject_filters_isolate(&connect).await;
    group_handles_each_message_once(&connect).await;
    groups_each_get_every_message(&connect).await;
    group_filter_is_fixed(&connect).await;
    unacked_delivery_is_redelivered(&connect).await;
    dropped_delivery_goes_to_another_member(&connect).await;
    duplicate_id_is_delivered_once(&connect).await;
    order_is_preserved(&connect).await;
    payloads_round_trip(&connect).await;
}

pub async fn ping_and_kind<Fut: Future<Output = Arc<dyn Bus>>>(connect: impl Fn() -> Fut) {
    let bus = connect().await;
    bus.ping().await.expect("ping a working bus");
    assert!(!bus.kind().is_empty(), "kind names the implementation");
}

/// Bad subjects, filters and ids fail the same way on every implementation.
pub async fn rejects_invalid_input<Fut: Future<Output = Arc<dyn Bus>>>(connect: impl Fn() -> Fut) {
    let bus = connect().await;
    let base = scope();
    for subject in [
        format!("{base}.*"),
        format!("{base}.>"),
        format!("{base}..a"),
        String::new(),
    ] {
        let result = bus.publish(message(&subject, "x")).await;
        assert!(is_rejected(&result), "publish to {subject:?}: {result:?}");
    }
    let mut no_id = message(&format!("{base}.a"), "x");
    no_id.id = String::new();
    let result = bus.publish(no_id).await;
    assert!(is_rejected(&result), "publish without an id: {result:?}");
    for filter in [format!("{base}.>.a"), format!("{base}.a*"), String::new()] {
        let result = bus.subscribe(&filter, SubscriptionKind::Broadcast).await;
        let result = result.map(|_| ());
        assert!(is_rejected(&result), "subscribe to {filter:?}: {result:?}");
    }
}

pub async fn broadcast_reaches_every_subscriber<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let (one, two) = (connect().await, connect().await);
    let subject = format!("{}.a", scope());
    let mut subscribers = [
        broadcast(&*one, &subject).await,
        broadcast(&*one, &subject).await,
        broadcast(&*two, &subject).await,
    ];
    let sent = [
        message(&subject, "from one"),
        message(&subject, "from two"),
        message(&subject, "from one again"),
    ];
    publish(&*one, &sent[0]).await;
    publish(&*two, &sent[1]).await;
    publish(&*one, &sent[2]).await;
    for (index, subscriber) in subscribers.iter_mut().enumerate() {
        let what = format!("broadcast subscriber {index}");
        assert_eq!(
            receive_n(subscriber, sent.len(), &what).await,
            sent,
            "{what}"
        );
        assert_quiet(subscriber, QUIET, &what).await;
    }
}

/// A broadcast subscriber gets what is published after it subscribed, not before.
pub async fn broadcast_starts_at_subscribe<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let bus = connect().await;
    let subject = format!("{}.a", scope());
    publish(&*bus, &message(&subject, "before")).await;
    let mut subscriber = broadcast(&*bus, &subject).await;
    let after = message(&subject, "after");
    publish(&*bus, &after).await;
    let got = receive(&mut subscriber, "late subscriber").await;
    assert_eq!(
        got.message, after,
        "a late subscriber starts at new messages"
    );
    assert_quiet(&mut subscriber, QUIET, "late subscriber").await;
}

pub async fn subject_filters_isolate<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let bus = connect().await;
    let base = scope();
    let sent: Vec<Message> = ["a", "b", "a.deep", "c.deep"]
        .iter()
        .map(|rest| message(&format!("{base}.{rest}"), *rest))
        .collect();
    // Filter, then the indices of `sent` it must get.
    let expectations: [(&str, &[usize]); 5] = [
        ("a", &[0]),
        ("b", &[1]),
        ("*", &[0, 1]),
        (">", &[0, 1, 2, 3]),
        ("*.deep", &[2, 3]),
    ];
    let mut subscribers = Vec::new();
    for (filter, _) in expectations {
        subscribers.push(broadcast(&*bus, &format!("{base}.{filter}")).await);
    }
    for message in &sent {
        publish(&*bus, message).await;
    }
    for ((filter, wanted), subscriber) in expectations.iter().zip(&mut subscribers) {
        let wanted: Vec<Message> = wanted.iter().map(|&i| sent[i].clone()).collect();
        let what = format!("filter {filter:?}");
        assert_eq!(
            receive_n(subscriber, wanted.len(), &what).await,
            wanted,
            "{what}"
        );
        assert_quiet(subscriber, QUIET, &what).await;
    }
}

/// Members on two handles share a group: each message is handled once, and
/// broadcast subscribers still see everything.
pub async fn group_handles_each_message_once<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let (one, two) = (connect().await, connect().await);
    let subject = format!("{}.jobs", scope());
    let group = group_kind();
    let first = subscribe(&*one, &subject, group.clone()).await;
    let second = subscribe(&*two, &subject, group).await;
    let mut watcher = broadcast(&*one, &subject).await;
    let sent: Vec<Message> = (0..20)
        .map(|n| message(&subject, format!("job {n}")))
        .collect();
    for (n, message) in sent.iter().enumerate() {
        let publisher = if n % 2 == 0 { &one } else { &two };
        publish(&**publisher, message).await;
    }
    let mut members = futures::stream::select(first, second);
    let handled = receive_n(&mut members, sent.len(), "group members").await;
    assert_each_once(&handled, &sent, "group");
    // Acked messages never come back.
    assert_quiet(&mut members, ACK_WAIT * 2 + QUIET, "group after acks").await;
    let watched = receive_n(&mut watcher, sent.len(), "broadcast beside a group").await;
    assert_eq!(
        watched, sent,
        "a group takes nothing from broadcast subscribers"
    );
}

pub async fn groups_each_get_every_message<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let bus = connect().await;
    let subject = format!("{}.jobs", scope());
    let mut first = subscribe(&*bus, &subject, group_kind()).await;
    let mut second = subscribe(&*bus, &subject, group_kind()).await;
    let sent: Vec<Message> = (0..5).map(|n| message(&subject, format!("{n}"))).collect();
    for message in &sent {
        publish(&*bus, message).await;
    }
    for (subscription, what) in [(&mut first, "first group"), (&mut second, "second group")] {
        let handled = receive_n(subscription, sent.len(), what).await;
        assert_each_once(&handled, &sent, what);
        assert_quiet(subscription, QUIET, what).await;
    }
}

/// A group keeps the filter of its first member: another filter is refused.
pub async fn group_filter_is_fixed<Fut: Future<Output = Arc<dyn Bus>>>(connect: impl Fn() -> Fut) {
    let (one, two) = (connect().await, connect().await);
    let base = scope();
    let group = group_kind();
    let _member = subscribe(&*one, &format!("{base}.a"), group.clone()).await;
    let same = two.subscribe(&format!("{base}.a"), group.clone()).await;
    assert!(same.is_ok(), "same filter joins: {:?}", same.err());
    let other = two.subscribe(&format!("{base}.b"), group).await.map(|_| ());
    assert!(is_rejected(&other), "another filter is refused: {other:?}");
}

/// A group delivery held without ack comes again after the ack wait, not before.
pub async fn unacked_delivery_is_redelivered<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let bus = connect().await;
    let subject = format!("{}.jobs", scope());
    let mut member = subscribe(&*bus, &subject, group_kind()).await;
    let sent = message(&subject, "slow job");
    publish(&*bus, &sent).await;
    let held = receive(&mut member, "first delivery").await;
    assert_eq!(held.message, sent);
    assert_quiet(&mut member, ACK_WAIT / 2, "before the ack wait").await;
    let again = receive(&mut member, "redelivery after the ack wait").await;
    assert_eq!(again.message, sent, "the unacked message is redelivered");
    again.ack().await.expect("ack the redelivery");
    drop(held);
    assert_quiet(&mut member, ACK_WAIT * 2 + QUIET, "after the ack").await;
}

/// A member that drops a delivery and leaves: another member gets the message.
pub async fn dropped_delivery_goes_to_another_member<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let (one, two) = (connect().await, connect().await);
    let subject = format!("{}.jobs", scope());
    let group = group_kind();
    let mut first = subscribe(&*one, &subject, group.clone()).await;
    let mut second = subscribe(&*two, &subject, group).await;
    let sent = message(&subject, "job");
    publish(&*one, &sent).await;
    let race = future::select(first.next(), second.next());
    let (first_won, delivery) = match tokio::time::timeout(RECEIVE_TIMEOUT, race).await {
        Ok(Either::Left((delivery, _))) => (true, delivery),
        Ok(Either::Right((delivery, _))) => (false, delivery),
        Err(_) => panic!("no member got the message within {RECEIVE_TIMEOUT:?}"),
    };
    let delivery = delivery.expect("a member subscription ended");
    assert_eq!(delivery.message, sent);
    // The member leaves without acking.
    let (mut stayer, leaver) = if first_won {
        (second, first)
    } else {
        (first, second)
    };
    drop(delivery);
    drop(leaver);
    let again = receive(&mut stayer, "the member that stayed").await;
    assert_eq!(
        again.message, sent,
        "the dropped message goes to the other member"
    );
    again.ack().await.expect("ack");
    assert_quiet(&mut stayer, ACK_WAIT * 2 + QUIET, "after the ack").await;
}

/// A second publish of an id is dropped (and still returns Ok), on any handle.
pub async fn duplicate_id_is_delivered_once<Fut: Future<Output = Arc<dyn Bus>>>(
    connect: impl Fn() -> Fut,
) {
    let (one, two) = (connect().await, connect().await);
    let subject = format!("{}.a", scope());
    let mut watcher = broadcast(&*one, &subject).await;
    let mut member = subscribe(&*two, &subject, group_kind()).await;
    let original = message(&subject, "original");
    let copy = Message {
        payload: Bytes::from_static(b"same id, other payload"),
        ..original.clone()
    };
    let after = message(&subject, "after");
    publish(&*one, &original).await;
    publish(&*one, &copy).await;
    publish(&*two, &copy).await;
    publish(&*one, &after).await;
    let expected = [original, after];
    let watched = receive_n(&mut watcher, 2, "broadcast").await;
    assert_eq!(watched, expected, "the duplicate is dropped for broadcast");
    let handled = receive_n(&mut member, 2, "group").await;
    assert_eq!(handled, expected, "the duplicate is dropped for a group");
    assert_quiet(&mut watcher, QUIET, "broadcast").await;
    assert_quiet(&mut member, QUIET, "group").await;
}

/// One publisher, one broadcast subscriber: messages arrive in publish order.
pub async fn order_is_preserved<Fut: Future<Output = Arc<dyn Bus>>>(connect: impl Fn() -> Fut) {
    let bus = connect().await;
    let subject = format!("{}.a", scope());
    let mut subscriber = broadcast(&*bus, &subject).await;
    let sent: Vec<Message> = (0..200)
        .map(|n| message(&subject, format!("{n}")))
        .collect();
    for message in &sent {
        publish(&*bus, message).await;
    }
    let got = receive_n(&mut subscriber, sent.len(), "ordered subscriber").await;
    assert_eq!(got, sent, "publish order is kept");
}

/// Unicode, empty, binary and large payloads come back byte for byte.
pub async fn payloads_round_trip<Fut: Future<Output = Arc<dyn Bus>>>(connect: impl Fn() -> Fut) {
    let bus = connect().await;
    let subject = format!("{}.a", scope());
    let mut subscriber = broadcast(&*bus, &subject).await;
    let payloads = [
        Bytes::from("héllo wörld — ünïcödé"),
        Bytes::from("日本語のテキスト، العربية, עברית"),
        Bytes::from("emoji 🎉 👩‍👩‍👧 🇫🇷"),
        Bytes::new(),
        Bytes::from_static(&[0, 159, 146, 150, 255, b'\r', b'\n']),
        Bytes::from("x".repeat(256 * 1024)),
    ];
    let sent: Vec<Message> = payloads
        .into_iter()
        .map(|payload| message(&subject, payload))
        .collect();
    for message in &sent {
        publish(&*bus, message).await;
    }
    let got = receive_n(&mut subscriber, sent.len(), "payloads").await;
    assert_eq!(got, sent, "payloads round-trip unchanged");
}

/// A fresh subject prefix, so tests never see each other's messages.
fn scope() -> String {
    format!("conformance.{}", Uuid::now_v7().simple())
}

fn group_kind() -> SubscriptionKind {
    SubscriptionKind::Group(format!("group-{}", Uuid::now_v7().simple()))
}

fn message(subject: &str, payload: impl Into<Bytes>) -> Message {
    Message {
        subject: subject.to_owned(),
        id: Uuid::now_v7().to_string(),
        payload: payload.into(),
    }
}

fn is_rejected(result: &Result<(), BusError>) -> bool {
    matches!(result, Err(BusError::Rejected(_)))
}

async fn publish(bus: &dyn Bus, message: &Message) {
    bus.publish(message.clone())
        .await
        .unwrap_or_else(|err| panic!("publish to {}: {err}", message.subject));
}

async fn subscribe(bus: &dyn Bus, filter: &str, kind: SubscriptionKind) -> Subscription {
    bus.subscribe(filter, kind.clone())
        .await
        .unwrap_or_else(|err| panic!("subscribe {kind:?} to {filter}: {err}"))
}

async fn broadcast(bus: &dyn Bus, filter: &str) -> Subscription {
    subscribe(bus, filter, SubscriptionKind::Broadcast).await
}

async fn receive(deliveries: &mut (impl Stream<Item = Delivery> + Unpin), what: &str) -> Delivery {
    match tokio::time::timeout(RECEIVE_TIMEOUT, deliveries.next()).await {
        Ok(Some(delivery)) => delivery,
        Ok(None) => panic!("{what}: the subscription ended"),
        Err(_) => panic!("{what}: nothing arrived within {RECEIVE_TIMEOUT:?}"),
    }
}

/// The next `count` messages, each acked.
async fn receive_n(
    deliveries: &mut (impl Stream<Item = Delivery> + Unpin),
    count: usize,
    what: &str,
) -> Vec<Message> {
    let mut messages = Vec::with_capacity(count);
    for n in 0..count {
        let delivery = receive(deliveries, &format!("{what}, message {n} of {count}")).await;
        messages.push(delivery.message.clone());
        delivery.ack().await.expect("ack");
    }
    messages
}

async fn assert_quiet(
    deliveries: &mut (impl Stream<Item = Delivery> + Unpin),
    period: Duration,
    what: &str,
) {
    if let Ok(Some(delivery)) = tokio::time::timeout(period, deliveries.next()).await {
        panic!("{what}: unexpected delivery {:?}", delivery.message);
    }
}

fn assert_each_once(handled: &[Message], sent: &[Message], what: &str) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for message in handled {
        *counts.entry(&message.id).or_default() += 1;
    }
    for message in sent {
        let times = counts.get(message.id.as_str()).copied().unwrap_or(0);
        assert_eq!(
            times, 1,
            "{what}: {:?} handled {times} times",
            message.payload
        );
    }
    assert_eq!(handled.len(), sent.len(), "{what}: nothing else handled");
}
