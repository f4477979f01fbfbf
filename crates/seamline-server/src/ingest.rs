//! Group commit: concurrent ingest requests are gathered into one
//! transaction, so the store pays one commit for many requests. A request
//! is answered only after the transaction holding its events committed.
//! The committed events go to the bus relay from memory (see [`outbox`]).

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use seamline_store::{NewEvent, Store, StoreResult, BUS_CONSUMER};
use tokio::sync::{mpsc, oneshot, Mutex, Notify};

use crate::outbox;

/// Most events gathered into one transaction.
const MAX_EVENTS_PER_COMMIT: usize = 20_000;

struct Job {
    events: Vec<NewEvent>,
    done: oneshot::Sender<anyhow::Result<Vec<bool>>>,
}

/// A handle to the writers; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    committed: Arc<Notify>,
}

impl Ingest {
    /// Starts `writers` writer tasks (1 suits SQLite, which has one writer;
    /// PostgreSQL gains from several) that hand what they commit to `relay`.
    /// They stop when every handle is dropped.
    pub fn start(store: Arc<dyn Store>, writers: usize, relay: outbox::Handoff) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(4096);
        let queue = Arc::new(Mutex::new(queue));
        let committed = Arc::new(Notify::new());
        for _ in 0..writers.max(1) {
            let writer = Writer {
                store: store.clone(),
                relay: relay.clone(),
                committed: committed.clone(),
            };
            tokio::spawn(writer.run(queue.clone()));
        }
        Self { jobs, committed }
    }

    /// Appends events durably; per event, whether it was new.
    pub async fn append(&self, events: Vec<NewEvent>) -> anyhow::Result<Vec<bool>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Job { events, done })
            .await
            .map_err(|_| anyhow::anyhow!("the ingest writer has stopped"))?;
        result
            .await
            .context("the ingest writer dropped the request")?
    }

    /// Woken after every commit (the identity worker waits on it).
    pub fn committed(&self) -> Arc<Notify> {
        self.committed.clone()
    }
}

struct Writer {
    store: Arc<dyn Store>,
    relay: outbox::Handoff,
    committed: Arc<Notify>,
}

impl Writer {
    async fn run(self, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
        while let Some(jobs) = gather(&queue).await {
            let sizes: Vec<usize> = jobs.iter().map(|j| j.events.len()).collect();
            let (events, senders): (Vec<Vec<NewEvent>>, Vec<_>) =
                jobs.into_iter().map(|j| (j.events, j.done)).unzip();
            let all: Vec<NewEvent> = events.into_iter().flatten().collect();
            let result = self.append(all).await;
            if result.is_ok() {
                metrics::counter!("seamline_ingest_commits_total").increment(1);
            }
            answer(result, &sizes, senders);
        }
    }

    /// Commits `events`. The bus relay gets the new ones from memory when
    /// it has room for them, leased so that no other relay takes them
    /// meanwhile; otherwise it is told to fetch them from the store.
    async fn append(&self, events: Vec<NewEvent>) -> StoreResult<Vec<bool>> {
        let new = match self.relay.reserve() {
            Some(slot) => {
                let lease_until = Utc::now() + outbox::LEASE;
                let appended = self
                    .store
                    .append_and_claim(events, BUS_CONSUMER, lease_until)
                    .await?;
                if let Some(entry) = appended.entry {
                    slot.send(entry);
                }
                appended.new
            }
            None => {
                let new = self.store.append_events(&events).await?;
                self.relay.left_in_store();
                new
            }
        };
        self.committed.notify_waiters();
        Ok(new)
    }
}

/// Waits for one job, then takes whatever else is already queued.
async fn gather(queue: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut total = first.events.len();
    let mut jobs = vec![first];
    while total < MAX_EVENTS_PER_COMMIT {
        match queue.try_recv() {
            Ok(job) => {
                total += job.events.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    Some(jobs)
}

fn answer(
    result: StoreResult<Vec<bool>>,
    sizes: &[usize],
    senders: Vec<oneshot::Sender<anyhow::Result<Vec<bool>>>>,
) {
    match result {
        Ok(flags) => {
            let mut rest = flags.as_slice();
            for (size, sender) in sizes.iter().zip(senders) {
                let (mine, others) = rest.split_at((*size).min(rest.len()));
                rest = others;
                let _ = sender.send(Ok(mine.to_vec()));
            }
        }
        Err(error) => {
            let message = format!("{error:#}");
            for sender in senders {
                let _ = sender.send(Err(anyhow::anyhow!("appending events: {message}")));
            }
        }
    }
}
