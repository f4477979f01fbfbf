//! Group commit of customers' inbound messages. Sockets and webhooks hand
//! their messages to a writer task that takes everything already queued and
//! writes it in one [`InboundTx`](seamline_store::InboundTx) per workspace:
//! one turn of SQLite's writer, one WAL flush and one identity lock on
//! PostgreSQL, for many messages. Each sender is answered only after the
//! commit holding its message; routing and publishing then run outside the
//! writer, in a task of their own so that a sender who hangs up (a provider
//! timing out, a closed socket) cannot cut them short.
//!
//! A batch that fails (a message naming nobody, a store error) is rolled
//! back whole and its messages are written again one by one, so one bad
//! message never costs the others theirs.

use std::sync::Arc;

use seamline_bus::Bus;
use seamline_core::WorkspaceId;
use seamline_store::{Backend, NewEvent, StoreError};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use super::receive::{after_commit, prepare, write_all, write_one, Received};
use super::{Inbound, InboxError};

/// Most messages written in one transaction.
const MAX_MESSAGES_PER_COMMIT: usize = 256;

struct Job {
    inbound: Inbound,
    event: NewEvent,
    done: oneshot::Sender<Result<Received, InboxError>>,
}

/// A handle to the writers; cheap to clone.
#[derive(Clone)]
pub struct InboundWriter {
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    jobs: mpsc::Sender<Job>,
}

impl InboundWriter {
    /// Starts `writers` writer tasks (1 suits SQLite, which has one writer;
    /// PostgreSQL gains from several, for several workspaces). They stop
    /// when every handle is dropped.
    pub fn start(store: Arc<dyn Backend>, bus: Arc<dyn Bus>, writers: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>(4096);
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..writers.max(1) {
            tokio::spawn(run(store.clone(), queue.clone()));
        }
        Self { store, bus, jobs }
    }

    /// [`receive`](super::receive) through group commit.
    pub async fn receive(&self, inbound: Inbound) -> Result<Received, InboxError> {
        self.commit(inbound).await?.await.map_err(|_| stopped())?
    }

    /// Returns as soon as the message is durable, for providers that want
    /// their webhook answered within seconds: automation, routing and the
    /// live screens follow in the background (and the waiting queue routes
    /// whatever a crash left unrouted).
    pub async fn accept(&self, inbound: Inbound) -> Result<(), InboxError> {
        self.commit(inbound).await.map(drop)
    }

    /// Writes `inbound` through the group commit; the work after the commit
    /// runs in a task of its own, so a sender who hangs up cannot cut it short.
    async fn commit(
        &self,
        inbound: Inbound,
    ) -> Result<JoinHandle<Result<Received, InboxError>>, InboxError> {
        let event = prepare(&inbound)?;
        let (done, result) = oneshot::channel();
        let job = Job {
            inbound: inbound.clone(),
            event,
            done,
        };
        if self.jobs.send(job).await.is_err() {
            return Err(stopped());
        }
        let received = result.await.map_err(|_| stopped())??;
        let (store, bus) = (self.store.clone(), self.bus.clone());
        let after = async move {
            let done = after_commit(store.as_ref(), bus.as_ref(), &inbound, received).await;
            if let Err(error) = &done {
                tracing::warn!(%error, "a stored message was not routed or pushed live");
            }
            done
        };
        Ok(tokio::spawn(after))
    }
}

fn stopped() -> InboxError {
    StoreError::Backend("the inbound writer has stopped".into()).into()
}

async fn run(store: Arc<dyn Backend>, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    while let Some(jobs) = gather(&queue).await {
        for (workspace, batch) in by_workspace(jobs) {
            // A task of its own: a panic fails this batch's senders (their
            // answer channel drops), not the writer.
            let store = store.clone();
            let batch = tokio::spawn(async move { commit(store.as_ref(), workspace, batch).await });
            if let Err(error) = batch.await {
                tracing::error!(%error, "an inbound batch failed");
            }
        }
    }
}

/// Waits for one job, then takes whatever else is already queued.
async fn gather(queue: &Mutex<mpsc::Receiver<Job>>) -> Option<Vec<Job>> {
    let mut queue = queue.lock().await;
    let first = queue.recv().await?;
    let mut jobs = vec![first];
    while jobs.len() < MAX_MESSAGES_PER_COMMIT {
        match queue.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

/// The jobs grouped by workspace, each group in arrival order.
fn by_workspace(jobs: Vec<Job>) -> Vec<(WorkspaceId, Vec<Job>)> {
    let mut groups: Vec<(WorkspaceId, Vec<Job>)> = Vec::new();
    for job in jobs {
        let ws = job.inbound.workspace;
        match groups.iter_mut().find(|(w, _)| *w == ws) {
            Some((_, group)) => group.push(job),
            None => groups.push((ws, vec![job])),
        }
    }
    groups
}

async fn commit(store: &dyn Backend, workspace: WorkspaceId, batch: Vec<Job>) {
    if batch.len() > 1 {
        let messages: Vec<_> = batch
            .iter()
            .map(|job| (&job.inbound, job.event.clone(), Vec::new()))
            .collect();
        match write_all(store, workspace, messages).await {
            Ok(received) => {
                metrics::counter!("seamline_inbound_batches_total").increment(1);
                for (job, received) in batch.into_iter().zip(received) {
                    let _ = job.done.send(Ok(received));
                }
                return;
            }
            Err(error) => tracing::debug!(%error, "inbound batch rolled back; writing one by one"),
        }
    }
    for job in batch {
        let result = write_one(store, &job.inbound, job.event, Vec::new()).await;
        let _ = job.done.send(result);
    }
}
