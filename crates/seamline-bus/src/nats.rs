//! The many-instance bus: NATS JetStream.
//!
//! One stream stores every subject under the prefix and its duplicate window
//! does the dedupe (publish sets `Nats-Msg-Id`). A broadcast subscriber is an
//! ephemeral ordered consumer that starts at new messages; a group is one
//! durable pull consumer, named after the group, shared by every member in
//! every process. A durable group keeps its messages while it has no member.

use std::fmt;
use std::time::Duration;

use async_nats::connection::State;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::context::{
    CreateStreamErrorKind, GetStreamErrorKind, Publish, PublishError, PublishErrorKind,
};
use async_nats::jetstream::message::{AckKind, Acker as NatsMessageAcker};
use async_nats::jetstream::stream::{
    Config as StreamConfig, ConsumerErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, consumer::StreamErrorKind};
use async_nats::ServerAddr;
use async_trait::async_trait;
use futures::{future, StreamExt};
use tracing::{debug, info, warn};

use crate::subject::{check_filter, check_message, check_subject};
use crate::{Acker, Bus, BusError, BusOptions, Delivery, Message, Subscription, SubscriptionKind};

/// JetStream drops a publish whose `Nats-Msg-Id` it stored within this window.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Messages a group member pulls at once. Small, because pulled messages
/// wait in the member's buffer with their ack wait already running, and
/// other members cannot take them.
const GROUP_PULL_BATCH: usize = 8;

/// Where the JetStream bus lives and how it is laid out.
#[derive(Clone)]
pub struct NatsOptions {
    /// `nats://[user:password@]host:port`; several separated by commas.
    pub url: String,
    pub stream: String,
    /// Every bus subject is stored as `<subject_prefix>.<subject>`.
    pub subject_prefix: String,
    /// How long the stream keeps messages.
    pub max_age: Duration,
    pub bus: BusOptions,
}

impl NatsOptions {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for NatsOptions {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "SEAMLINE".into(),
            subject_prefix: "seamline".into(),
            max_age: Duration::from_secs(7 * 24 * 60 * 60),
            bus: BusOptions::default(),
        }
    }
}

/// By hand, so the URL's credentials never reach a log.
impl fmt::Debug for NatsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsOptions")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("subject_prefix", &self.subject_prefix)
            .field("max_age", &self.max_age)
            .field("bus", &self.bus)
            .finish()
    }
}

/// [`Bus`] over NATS JetStream. Clones share one connection.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
    ack_wait: Duration,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus")
            .field("stream", &self.stream)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NatsBus {
    /// Connects and creates the stream, or updates it to these options.
    pub async fn connect(options: NatsOptions) -> Result<Self, BusError> {
        check_layout(&options)?;
        let shown_url = redact_url(&options.url);
        let client = connect_client(&options.url, &shown_url).await?;
        let jetstream = jetstream::new(client.clone());
        let config = stream_config(&options);
        jetstream
            .create_or_update_stream(config)
            .await
            .map_err(|err| {
                let refused = matches!(err.kind(), CreateStreamErrorKind::JetStream(_));
                classify(
                    refused,
                    &format!("setting up stream {}", options.stream),
                    err,
                )
            })?;
        info!(url = %shown_url, stream = %options.stream, prefix = %options.subject_prefix, "connected to NATS JetStream");
        Ok(Self {
            client,
            jetstream,
            stream: options.stream,
            prefix: options.subject_prefix,
            ack_wait: options.bus.ack_wait,
        })
    }

    fn nats_subject(&self, subject: &str) -> String {
        format!("{}.{subject}", self.prefix)
    }

    async fn subscribe_broadcast(&self, filter: &str) -> Result<Subscription, BusError> {
        let config = pull::OrderedConfig {
            filter_subject: self.nats_subject(filter),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        };
        let consumer = self
            .jetstream
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|err| consumer_error("creating a broadcast consumer", err))?;
        // The stream's last message when the consumer started. If the client
        // recreates the consumer before its first message, it replays from the
        // stream's start; this floor keeps that history out.
        let floor = consumer.cached_info().delivered.stream_sequence;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| stream_error("starting a broadcast consumer", err))?;
        let prefix = self.prefix.clone();
        let deliveries = messages
            .filter_map(move |item| future::ready(broadcast_delivery(&prefix, floor, item)));
        Ok(Subscription::new(deliveries))
    }

    async fn join_group(&self, filter: &str, group: &str) -> Result<Subscription, BusError> {
        let consumer = self.group_consumer(filter, group).await?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(GROUP_PULL_BATCH)
            .messages()
            .await
            .map_err(|err| stream_error("starting a group consumer", err))?;
        let prefix = self.prefix.clone();
        let deliveries =
            messages.filter_map(move |item| future::ready(group_delivery(&prefix, item)));
        Ok(Subscription::new(deliveries))
    }

    /// The group's durable consumer, created by its first member. Its filter
    /// is fixed, as in-process: a new filter needs a new group name.
    async fn group_consumer(&self, filter: &str, group: &str) -> Result<PullConsumer, BusError> {
        let name = consumer_name(group)?;
        let filter_subject = self.nats_subject(filter);
        let existing: Result<PullConsumer, _> = self
            .jetstream
            .get_consumer_from_stream(&name, &self.stream)
            .await;
        // Any lookup failure other than "not found" resurfaces on create.
        if let Ok(consumer) = existing {
            let current = &consumer.cached_info().config.filter_subject;
            if *current != filter_subject {
                return Err(BusError::Rejected(format!(
                    "group {group:?} already consumes {current:?}, not {filter_subject:?}"
                )));
            }
        }
        let config = pull::Config {
            durable_name: Some(name),
            filter_subject,
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            ..Default::default()
        };
        self.jetstream
            .create_consumer_on_stream(config, &self.stream)
            .await
            .map_err(|err| consumer_error(&format!("joining group {group:?}"), err))
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        check_message(&message)?;
        let publish = Publish::build()
            .payload(message.payload)
            .message_id(&message.id);
        let subject = self.nats_subject(&message.subject);
        let pending = self
            .jetstream
            .send_publish(subject, publish)
            .await
            .map_err(publish_error)?;
        let ack = pending.await.map_err(publish_error)?;
        if ack.duplicate {
            debug!(id = %message.id, "duplicate message id: JetStream dropped the publish");
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        filter: &str,
        kind: SubscriptionKind,
    ) -> Result<Subscription, BusError> {
        check_filter(filter)?;
        match kind {
            SubscriptionKind::Broadcast => self.subscribe_broadcast(filter).await,
            SubscriptionKind::Group(group) => self.join_group(filter, &group).await,
        }
    }

    async fn ping(&self) -> Result<(), BusError> {
        if self.client.connection_state() != State::Connected {
            return Err(BusError::Unavailable("not connected to NATS".into()));
        }
        let stream = self
            .jetstream
            .get_stream(&self.stream)
            .await
            .map_err(|err| {
                let refused = matches!(err.kind(), GetStreamErrorKind::JetStream(_));
                classify(refused, &format!("reading stream {}", self.stream), err)
            })?;
        let expected = self.nats_subject(">");
        if !stream.cached_info().config.subjects.contains(&expected) {
            return Err(BusError::Rejected(format!(
                "stream {} does not store {expected}",
                self.stream
            )));
        }
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "nats"
    }
}

async fn connect_client(url: &str, shown_url: &str) -> Result<async_nats::Client, BusError> {
    let servers = url
        .split(',')
        .map(|server| server.trim().parse::<ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        // The parse error may quote the URL, so only the redacted one is shown.
        .map_err(|_| BusError::Rejected(format!("invalid NATS URL {shown_url}")))?;
    async_nats::ConnectOptions::new()
        .name("seamline")
        .connect(servers)
        .await
        .map_err(|err| BusError::Unavailable(format!("connecting to {shown_url}: {err}")))
}

fn check_layout(options: &NatsOptions) -> Result<(), BusError> {
    check_subject(&options.subject_prefix)?;
    if consumer_name(&options.stream)? != options.stream {
        return Err(BusError::Rejected(format!(
            "invalid stream name {:?}",
            options.stream
        )));
    }
    Ok(())
}

fn stream_config(options: &NatsOptions) -> StreamConfig {
    StreamConfig {
        name: options.stream.clone(),
        subjects: vec![format!("{}.>", options.subject_prefix)],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        max_age: options.max_age,
        duplicate_window: DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// Turns a stored NATS message back into a bus [`Message`].
fn to_message(prefix: &str, message: async_nats::Message, sequence: u64) -> Option<Message> {
    let Some(subject) = message
        .subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
    else {
        warn!(subject = %message.subject, "message outside the bus prefix ignored");
        return None;
    };
    let id = match message
        .headers
        .as_ref()
        .and_then(|h| h.get(NATS_MESSAGE_ID))
    {
        Some(id) => id.as_str().to_owned(),
        // Published by something other than this bus; the sequence is unique.
        None => format!("nats-seq-{sequence}"),
    };
    Some(Message {
        subject: subject.to_owned(),
        id,
        payload: message.payload,
    })
}

fn broadcast_delivery(
    prefix: &str,
    floor: u64,
    item: Result<jetstream::Message, pull::OrderedError>,
) -> Option<Delivery> {
    let message = match item {
        Ok(message) => message,
        Err(err) => {
            warn!(error = %err, "broadcast consumer error");
            return None;
        }
    };
    let sequence = message.info().ok()?.stream_sequence;
    if sequence <= floor {
        return None;
    }
    let message = to_message(prefix, message.message, sequence)?;
    Some(Delivery::new(message, None))
}

fn group_delivery(
    prefix: &str,
    item: Result<jetstream::Message, pull::MessagesError>,
) -> Option<Delivery> {
    let message = match item {
        Ok(message) => message,
        Err(err) => {
            warn!(error = %err, "group consumer error");
            return None;
        }
    };
    let sequence = message.info().map_or(0, |info| info.stream_sequence);
    let (message, acker) = message.split();
    let message = to_message(prefix, message, sequence)?;
    let acker = GroupAcker { acker: Some(acker) };
    Some(Delivery::new(message, Some(Box::new(acker))))
}

/// Acks a group delivery; dropped unacked, it naks so another member gets
/// the message now rather than after the ack wait.
struct GroupAcker {
    acker: Option<NatsMessageAcker>,
}

#[async_trait]
impl Acker for GroupAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        let Some(acker) = self.acker.take() else {
            return Ok(());
        };
        acker
            .ack()
            .await
            .map_err(|err| BusError::Unavailable(format!("acking a delivery: {err}")))
    }
}

impl Drop for GroupAcker {
    fn drop(&mut self) {
        let Some(acker) = self.acker.take() else {
            return;
        };
        // Without a runtime the ack wait still brings the message back.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(err) = acker.ack_with(AckKind::Nak(None)).await {
                    debug!(error = %err, "nak of a dropped delivery failed");
                }
            });
        }
    }
}

/// A durable consumer name for `group`. NATS forbids `.`, `*`, `>`, path
/// separators and whitespace; those become `_`, plus a hash of the original
/// so `a.b` and `a_b` stay two groups.
fn consumer_name(group: &str) -> Result<String, BusError> {
    if group.is_empty() {
        return Err(BusError::Rejected("empty group name".into()));
    }
    let forbidden =
        |c: char| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control();
    if !group.contains(forbidden) {
        return Ok(group.to_owned());
    }
    let clean: String = group
        .chars()
        .map(|c| if forbidden(c) { '_' } else { c })
        .collect();
    Ok(format!("{clean}_{:016x}", fnv1a(group)))
}

/// Stable across processes and releases, unlike `DefaultHasher`.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The URL with any `user:password@` replaced, for logs and errors.
fn redact_url(url: &str) -> String {
    url.split(',')
        .map(|server| {
            let (scheme, rest) = match server.split_once("://") {
                Some((scheme, rest)) => (format!("{scheme}://"), rest),
                None => (String::new(), server),
            };
            let host_end = rest.find('/').unwrap_or(rest.len());
            match rest[..host_end].rfind('@') {
                Some(at) => format!("{scheme}***@{}", &rest[at + 1..]),
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn classify(refused: bool, what: &str, err: impl fmt::Display) -> BusError {
    if refused {
        BusError::Rejected(format!("{what}: {err}"))
    } else {
        BusError::Unavailable(format!("{what}: {err}"))
    }
}

fn consumer_error(what: &str, err: async_nats::jetstream::stream::ConsumerError) -> BusError {
    let refused = matches!(
        err.kind(),
        ConsumerErrorKind::JetStream(_) | ConsumerErrorKind::InvalidName
    );
    classify(refused, what, err)
}

fn stream_error(what: &str, err: async_nats::jetstream::consumer::StreamError) -> BusError {
    let refused = !matches!(err.kind(), StreamErrorKind::TimedOut);
    classify(refused, what, err)
}

fn publish_error(err: PublishError) -> BusError {
    let unreachable = matches!(
        err.kind(),
        PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
    );
    classify(!unreachable, "publishing", err)
}

#[cfg(test)]
mod tests {
    use super::{consumer_name, redact_url};

    #[test]
    fn credentials_never_show() {
        assert_eq!(
            redact_url("nats://user:secret@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact_url("nats://a:b@one:4222,tls://token@two"),
            "nats://***@one:4222,tls://***@two"
        );
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
        assert_eq!(redact_url("p@ss@host"), "***@host");
    }

    #[test]
    fn group_names_become_valid_consumer_names() {
        assert_eq!(consumer_name("outbox").expect("valid"), "outbox");
        let dotted = consumer_name("events.relay").expect("valid");
        assert!(dotted.starts_with("events_relay_"), "{dotted}");
        assert_ne!(dotted, consumer_name("events_relay").expect("valid"));
        assert_ne!(dotted, consumer_name("events relay").expect("valid"));
        assert!(consumer_name("a.*>\t/")
            .expect("valid")
            .starts_with("a_____"));
        assert!(consumer_name("").is_err());
    }
}
