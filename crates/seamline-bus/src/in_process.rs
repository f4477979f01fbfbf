//! The single-binary bus: subscribers and group queues live in this process.
//!
//! Nothing is stored: a message reaches the subscribers and group queues that
//! exist when it is published. A group's queue is created by its first
//! member's subscribe and then kept (also while it has no member), so
//! messages published before a group's first subscribe are not kept for it.
//! A restart loses whatever was queued; the outbox relay republishes.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, warn};

use crate::subject::{check_filter, check_message};
use crate::{
    subject_matches, Acker, Bus, BusError, BusOptions, Delivery, Message, Subscription,
    SubscriptionKind,
};

/// Messages a broadcast subscriber may fall behind by before it loses some.
const BROADCAST_BUFFER: usize = 1024;
/// Same window as the JetStream stream's duplicate window.
const DEDUPE_WINDOW: Duration = Duration::from_secs(120);
/// Bounds the dedupe memory under a publish storm.
const DEDUPE_CAPACITY: usize = 100_000;

/// In-memory [`Bus`]. Clones share one bus.
#[derive(Clone)]
pub struct InProcessBus {
    shared: Arc<Shared>,
}

struct Shared {
    ack_wait: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    recent: RecentIds,
    broadcasts: Vec<BroadcastSubscriber>,
    groups: HashMap<String, Arc<Group>>,
}

struct BroadcastSubscriber {
    filter: String,
    sender: mpsc::Sender<Message>,
}

impl InProcessBus {
    pub fn new(options: BusOptions) -> Self {
        Self {
            shared: Arc::new(Shared {
                ack_wait: options.ack_wait,
                state: Mutex::default(),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements, so a panic elsewhere
        // while holding the lock does not make it unusable.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn subscribe_broadcast(&self, filter: &str) -> Subscription {
        let (sender, receiver) = mpsc::channel(BROADCAST_BUFFER);
        self.state().broadcasts.push(BroadcastSubscriber {
            filter: filter.to_owned(),
            sender,
        });
        Subscription::new(ReceiverStream::new(receiver).map(|message| Delivery::new(message, None)))
    }

    fn join_group(&self, filter: &str, name: &str) -> Result<Arc<Group>, BusError> {
        if name.is_empty() {
            return Err(BusError::Rejected("empty group name".into()));
        }
        match self.state().groups.entry(name.to_owned()) {
            Entry::Occupied(group) if group.get().filter != filter => {
                Err(BusError::Rejected(format!(
                    "group {name:?} already consumes {:?}, not {filter:?}",
                    group.get().filter
                )))
            }
            Entry::Occupied(group) => Ok(Arc::clone(group.get())),
            Entry::Vacant(slot) => {
                let group = Group::new(filter, self.shared.ack_wait);
                Ok(Arc::clone(slot.insert(Arc::new(group))))
            }
        }
    }
}

impl fmt::Debug for InProcessBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcessBus")
            .field("ack_wait", &self.shared.ack_wait)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Hands `message` to every matching subscriber and group, under the one
    /// lock so every subscriber sees publishes in the same order.
    fn route(&mut self, message: &Message) {
        self.broadcasts
            .retain(|subscriber| subscriber.offer(message));
        for group in self.groups.values() {
            if subject_matches(&group.filter, &message.subject) {
                group.push(message.clone());
            }
        }
    }
}

impl BroadcastSubscriber {
    /// Offers `message` without waiting; false once the subscriber is gone.
    fn offer(&self, message: &Message) -> bool {
        if !subject_matches(&self.filter, &message.subject) {
            return !self.sender.is_closed();
        }
        match self.sender.try_send(message.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                warn!(
                    filter = %self.filter,
                    subject = %message.subject,
                    "broadcast subscriber is lagging: message dropped for it"
                );
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        check_message(&message)?;
        let mut state = self.state();
        if !state.recent.insert(&message.id, Instant::now()) {
            debug!(id = %message.id, "duplicate message id: publish dropped");
            return Ok(());
        }
        state.route(&message);
        Ok(())
    }

    async fn subscribe(
        &self,
        filter: &str,
        kind: SubscriptionKind,
    ) -> Result<Subscription, BusError> {
        check_filter(filter)?;
        match kind {
            SubscriptionKind::Broadcast => Ok(self.subscribe_broadcast(filter)),
            SubscriptionKind::Group(name) => {
                let group = self.join_group(filter, &name)?;
                Ok(Subscription::new(group.member()))
            }
        }
    }

    async fn ping(&self) -> Result<(), BusError> {
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "in-process"
    }
}

/// One group's queue. Members pull from it when they ask for their next
/// message, so a busy member is never handed more work; idle members wait
/// on `ready` and are woken in turn, which spreads messages round robin.
struct Group {
    filter: String,
    ack_wait: Duration,
    ready: Notify,
    queue: Mutex<GroupQueue>,
}

#[derive(Default)]
struct GroupQueue {
    waiting: VecDeque<Message>,
    in_flight: HashMap<u64, InFlight>,
    next_delivery: u64,
}

/// A message handed to a member and not yet acked.
struct InFlight {
    message: Message,
    timer: AbortHandle,
}

impl Group {
    fn new(filter: &str, ack_wait: Duration) -> Self {
        Self {
            filter: filter.to_owned(),
            ack_wait,
            ready: Notify::new(),
            queue: Mutex::default(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, GroupQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, message: Message) {
        self.queue().waiting.push_back(message);
        self.ready.notify_one();
    }

    /// The deliveries of one member. Dropping the stream leaves the group.
    fn member(self: Arc<Self>) -> impl futures::Stream<Item = Delivery> + Send {
        futures::stream::unfold(self, |group| async move {
            let delivery = group.next_delivery().await;
            Some((delivery, group))
        })
    }

    async fn next_delivery(self: &Arc<Self>) -> Delivery {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before looking at the queue, so a push in between
            // still wakes this member.
            notified.as_mut().enable();
            if let Some(delivery) = self.take() {
                return delivery;
            }
            notified.await;
        }
    }

    /// Takes the next waiting message, if any, and starts its ack timer.
    /// Never awaits, so a cancelled `next_delivery` cannot lose a message.
    fn take(self: &Arc<Self>) -> Option<Delivery> {
        let mut queue = self.queue();
        let message = queue.waiting.pop_front()?;
        queue.next_delivery += 1;
        let id = queue.next_delivery;
        let timer = self.start_ack_timer(id);
        queue.in_flight.insert(
            id,
            InFlight {
                message: message.clone(),
                timer,
            },
        );
        let more = !queue.waiting.is_empty();
        drop(queue);
        if more {
            // Pass the turn on: another idle member may take the rest.
            self.ready.notify_one();
        }
        let acker = GroupAcker {
            group: Arc::clone(self),
            id,
            acked: false,
        };
        Some(Delivery::new(message, Some(Box::new(acker))))
    }

    fn start_ack_timer(self: &Arc<Self>, id: u64) -> AbortHandle {
        let group = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(group.ack_wait).await;
            if group.requeue(id) {
                debug!(filter = %group.filter, "ack wait elapsed: message redelivered");
            }
        })
        .abort_handle()
    }

    /// Puts an unacked delivery back at the front; false if it was settled.
    fn requeue(&self, id: u64) -> bool {
        let mut queue = self.queue();
        let Some(in_flight) = queue.in_flight.remove(&id) else {
            return false;
        };
        in_flight.timer.abort();
        queue.waiting.push_front(in_flight.message);
        drop(queue);
        self.ready.notify_one();
        true
    }

    fn ack(&self, id: u64) {
        if let Some(in_flight) = self.queue().in_flight.remove(&id) {
            in_flight.timer.abort();
        }
    }
}

/// Settles one group delivery: ack removes it, drop without ack requeues it.
struct GroupAcker {
    group: Arc<Group>,
    id: u64,
    acked: bool,
}

#[async_trait]
impl Acker for GroupAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        // An ack after the ack wait is a no-op: the message was already
        // requeued, and at-least-once allows the second delivery.
        self.group.ack(self.id);
        self.acked = true;
        Ok(())
    }
}

impl Drop for GroupAcker {
    fn drop(&mut self) {
        if !self.acked && self.group.requeue(self.id) {
            debug!(filter = %self.group.filter, "delivery dropped unacked: message redelivered");
        }
    }
}

/// Ids published recently, oldest first, bounded by age and count.
#[derive(Default)]
struct RecentIds {
    ids: HashSet<Arc<str>>,
    order: VecDeque<(Instant, Arc<str>)>,
}

impl RecentIds {
    /// Records `id`; false when it was already seen within the window.
    fn insert(&mut self, id: &str, now: Instant) -> bool {
        self.forget_old(now);
        if self.ids.contains(id) {
            return false;
        }
        let id: Arc<str> = Arc::from(id);
        self.ids.insert(Arc::clone(&id));
        self.order.push_back((now, id));
        true
    }

    fn forget_old(&mut self, now: Instant) {
        while let Some((seen, _)) = self.order.front() {
            let fresh = now.saturating_duration_since(*seen) < DEDUPE_WINDOW;
            if fresh && self.order.len() < DEDUPE_CAPACITY {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_ids_forget_after_the_window() {
        let mut recent = RecentIds::default();
        let start = Instant::now();
        assert!(recent.insert("a", start));
        assert!(!recent.insert("a", start + Duration::from_secs(60)));
        assert!(recent.insert("a", start + DEDUPE_WINDOW + Duration::from_secs(1)));
    }

    #[test]
    fn recent_ids_are_bounded() {
        let mut recent = RecentIds::default();
        let now = Instant::now();
        for n in 0..=DEDUPE_CAPACITY {
            assert!(recent.insert(&n.to_string(), now));
        }
        assert!(recent.order.len() <= DEDUPE_CAPACITY);
        assert!(recent.insert("0", now), "the oldest id is forgotten first");
        assert!(!recent.insert(&DEDUPE_CAPACITY.to_string(), now));
    }

    fn message(n: usize) -> Message {
        Message {
            subject: "jobs.a".into(),
            id: n.to_string(),
            payload: bytes::Bytes::new(),
        }
    }

    #[tokio::test]
    async fn idle_members_take_turns() {
        let bus = InProcessBus::new(BusOptions::default());
        let (handled, mut order) = mpsc::unbounded_channel();
        for member in 0..2 {
            let kind = SubscriptionKind::Group("turns".into());
            let mut subscription = bus.subscribe("jobs.>", kind).await.expect("join");
            let handled = handled.clone();
            tokio::spawn(async move {
                while let Some(delivery) = subscription.next().await {
                    delivery.ack().await.expect("ack");
                    let _ = handled.send(member);
                }
            });
        }
        let mut members = Vec::new();
        for n in 0..6 {
            // Let both members park again before the next message.
            tokio::time::sleep(Duration::from_millis(20)).await;
            bus.publish(message(n)).await.expect("publish");
            members.push(order.recv().await.expect("a member handled it"));
        }
        assert_eq!(members, [0, 1, 0, 1, 0, 1], "idle members take turns");
    }

    #[tokio::test]
    async fn publishers_never_wait_for_a_stuck_subscriber() {
        let bus = InProcessBus::new(BusOptions::default());
        let mut stuck = bus
            .subscribe("jobs.>", SubscriptionKind::Broadcast)
            .await
            .expect("subscribe");
        for n in 0..BROADCAST_BUFFER + 10 {
            bus.publish(message(n)).await.expect("publish");
        }
        let first = stuck.next().await.expect("a delivery");
        assert_eq!(
            first.message,
            message(0),
            "the overflow is dropped, not the head"
        );
    }
}
