//! The visitors: one WebSocket each, as the site widget opens it, sending
//! the messages the pacer hands it and counting what the server answers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Every benchmark message body starts with this, then its sequence number.
pub const BODY_PREFIX: &str = "bench message #";
/// Connections opened at once.
const CONNECTING: usize = 64;
/// Messages waiting for one socket; more means its writes are stuck.
const QUEUE: usize = 8;
const CLOSE_LIMIT: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the server answered, over all sockets.
#[derive(Debug, Default)]
pub struct Tally {
    acked: AtomicU64,
    refused: AtomicU64,
    closed: AtomicU64,
    /// When each message's ack was read: (sequence number, instant).
    acks: Mutex<Vec<(u64, Instant)>>,
    /// The first refusal, to show why.
    first_refusal: Mutex<Option<String>>,
}

impl Tally {
    fn count(&self, text: &str) {
        let now = Instant::now();
        let frame: Value = serde_json::from_str(text).unwrap_or_default();
        match frame["type"].as_str() {
            Some("ack") => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let seq = frame["id"].as_str().and_then(|id| id.strip_prefix('b'));
                if let Some(seq) = seq.and_then(|s| s.parse().ok()) {
                    self.acks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((seq, now));
                }
            }
            Some("error") => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_refusal
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| text.to_owned());
            }
            // History and the visitor's own messages pushed live.
            _ => {}
        }
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Messages the server has answered, either way.
    pub fn answered(&self) -> u64 {
        self.acked() + self.refused()
    }

    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Every ack so far, taken out.
    pub fn take_acks(&self) -> Vec<(u64, Instant)> {
        std::mem::take(&mut *self.acks.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn first_refusal(&self) -> Option<String> {
        self.first_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Open sockets, each served by a task of its own.
pub struct Visitors {
    orders: Vec<mpsc::Sender<u64>>,
    tasks: Vec<JoinHandle<()>>,
    pub tally: Arc<Tally>,
}

impl Visitors {
    /// Opens `count` sockets, the `n`th to `url_of(n)`.
    pub async fn open(count: usize, url_of: impl Fn(usize) -> String) -> anyhow::Result<Self> {
        let sockets: Vec<Socket> = futures::stream::iter((0..count).map(url_of))
            .map(|url| async move {
                let (socket, _) = tokio_tungstenite::connect_async(url).await?;
                if let MaybeTlsStream::Plain(tcp) = socket.get_ref() {
                    // Leaving resets the connection (see `converse`).
                    tcp.set_zero_linger()?;
                }
                anyhow::Ok(socket)
            })
            .buffered(CONNECTING)
            .try_collect()
            .await
            .context("opening a visitor's socket")?;
        let tally = Arc::new(Tally::default());
        let (orders, tasks) = sockets
            .into_iter()
            .map(|socket| {
                let (order, orders) = mpsc::channel(QUEUE);
                (order, tokio::spawn(converse(socket, orders, tally.clone())))
            })
            .unzip();
        Ok(Self {
            orders,
            tasks,
            tally,
        })
    }

    /// Hands message `seq` to socket `seq mod count`; false if its queue is full.
    pub fn send(&self, seq: u64) -> bool {
        let socket = (seq % self.orders.len() as u64) as usize;
        self.orders
            .get(socket)
            .is_some_and(|o| o.try_send(seq).is_ok())
    }

    /// Closes every socket and waits (bounded) for their tasks.
    pub async fn close(self) {
        drop(self.orders);
        let all = futures::future::join_all(self.tasks);
        let _ = tokio::time::timeout(CLOSE_LIMIT, all).await;
    }
}

pub fn body_of(seq: u64) -> String {
    format!("{BODY_PREFIX}{seq}")
}

/// One socket: writes the messages it is handed, reads the answers.
async fn converse(socket: Socket, mut orders: mpsc::Receiver<u64>, tally: Arc<Tally>) {
    let (mut sink, mut stream) = socket.split();
    loop {
        tokio::select! {
            order = orders.recv() => {
                // The run is over: leave with a reset, so the server drops
                // what it has not read yet instead of working off a backlog
                // (anything undelivered is already counted).
                let Some(seq) = order else { return };
                let frame = json!({"type": "message", "id": format!("b{seq}"), "body": body_of(seq)});
                if sink.send(Message::Text(frame.to_string().into())).await.is_err() {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => tally.count(text.as_str()),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    tally.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}
