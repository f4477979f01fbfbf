//! Group commit of customers' inbound messages. Sockets and webhooks hand
//! their messages to their workspace's writer task, which takes everything
//! already queued and writes it in one
//! [`InboundTx`](seamline_store::InboundTx): one turn of SQLite's writer,
//! one WAL flush and one identity lock on PostgreSQL, for many messages.
//! Each workspace with messages to write has one writer (a second would
//! only split its batches into smaller ones queueing for the same lock);
//! workspaces' writers run beside each other, so one stalled workspace (a
//! long unmerge holding its lock) holds up nobody else's. A writer idle for
//! a while stops; the next message starts another. Each sender is answered only after the
//! commit holding its message; routing and publishing then run outside the
//! writer, in a task of their own so that a sender who hangs up (a provider
//! timing out, a closed socket) cannot cut them short.
//!
//! A batch that fails (a message naming nobody, a store error) is rolled
//! back whole and its messages are written again one by one, so one bad
//! message never costs the others theirs.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use seamline_bus::Bus;
use seamline_core::WorkspaceId;
use seamline_store::{Backend, NewEvent, StoreError};
use tokio::runtime::{self, Handle};
use tokio::sync::{mpsc, oneshot};
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
    writers: Arc<Writers>,
}

/// The running writers' queues, by workspace. Messages delivered together
/// travel together.
struct Writers {
    store: Arc<dyn Backend>,
    /// SQLite's writers run on the writers' thread (see [`spawn_writer`]).
    own_thread: bool,
    queues: std::sync::Mutex<HashMap<WorkspaceId, mpsc::Sender<Vec<Job>>>>,
}

impl InboundWriter {
    /// Writers start with their workspace's first message and stop when
    /// every handle is dropped.
    pub fn start(store: Arc<dyn Backend>, bus: Arc<dyn Bus>) -> Self {
        let writers = Arc::new(Writers {
            store: store.clone(),
            own_thread: store.backend() == "sqlite",
            queues: Default::default(),
        });
        Self {
            store,
            bus,
            writers,
        }
    }

    /// [`receive`](super::receive) through group commit.
    pub async fn receive(&self, inbound: Inbound) -> Result<Received, InboxError> {
        self.receive_all(vec![inbound])
            .await
            .pop()
            .unwrap_or_else(|| Err(stopped()))
    }

    /// Messages delivered together (a provider's webhook may carry several):
    /// a writer takes them into one batch, in this order. One answer each.
    pub async fn receive_all(&self, inbound: Vec<Inbound>) -> Vec<Result<Received, InboxError>> {
        let mut answers = Vec::with_capacity(inbound.len());
        for committed in self.commit_all(inbound).await {
            answers.push(match committed {
                Ok(after) => after.await.unwrap_or_else(|_| Err(stopped())),
                Err(error) => Err(error),
            });
        }
        answers
    }

    /// Returns as soon as the message is durable, for providers that want
    /// their webhook answered within seconds: automation, routing and the
    /// live screens follow in the background (and the waiting queue routes
    /// whatever a crash left unrouted).
    pub async fn accept(&self, inbound: Inbound) -> Result<(), InboxError> {
        let committed = self.commit_all(vec![inbound]).await.pop();
        committed.unwrap_or_else(|| Err(stopped())).map(drop)
    }

    /// Writes `inbound` through the group commit, each workspace's messages
    /// handed to its writer in one go; the work after each commit runs in a
    /// task of its own, so a sender who hangs up cannot cut it short.
    async fn commit_all(&self, inbound: Vec<Inbound>) -> Vec<Result<AfterCommit, InboxError>> {
        let mut deliveries: Vec<(WorkspaceId, Vec<Job>)> = Vec::new();
        let mut waiting = Vec::with_capacity(inbound.len());
        for inbound in inbound {
            let event = match prepare(&inbound) {
                Ok(event) => event,
                Err(error) => {
                    waiting.push(Err(error));
                    continue;
                }
            };
            let (done, result) = oneshot::channel();
            let queue = inbound.workspace;
            let job = Job {
                inbound: inbound.clone(),
                event,
                done,
            };
            match deliveries.iter_mut().find(|(q, _)| *q == queue) {
                Some((_, jobs)) => jobs.push(job),
                None => deliveries.push((queue, vec![job])),
            }
            waiting.push(Ok((inbound, result)));
        }
        for (workspace, jobs) in deliveries {
            Writers::send(&self.writers, workspace, jobs).await;
        }
        let mut committed = Vec::with_capacity(waiting.len());
        for waiting in waiting {
            committed.push(match waiting {
                Ok((inbound, result)) => match result.await {
                    Ok(Ok(received)) => Ok(self.after_commit(inbound, received)),
                    Ok(Err(error)) => Err(error),
                    Err(_) => Err(stopped()),
                },
                Err(error) => Err(error),
            });
        }
        committed
    }

    fn after_commit(&self, inbound: Inbound, received: Received) -> AfterCommit {
        let (store, bus) = (self.store.clone(), self.bus.clone());
        tokio::spawn(async move {
            let done = after_commit(store.as_ref(), bus.as_ref(), &inbound, received).await;
            if let Err(error) = &done {
                tracing::warn!(%error, "a stored message was not routed or pushed live");
            }
            done
        })
    }
}

/// The work after a message's commit (automation, routing, the live
/// screens), running on its own.
type AfterCommit = JoinHandle<Result<Received, InboxError>>;

impl Writers {
    /// Hands `jobs` to `workspace`'s writer, starting one if none runs. If
    /// none can take them, the jobs are dropped and their senders told.
    async fn send(this: &Arc<Self>, workspace: WorkspaceId, mut jobs: Vec<Job>) {
        // A writer that stopped as this was sent refuses it: start another.
        for _ in 0..2 {
            let queue = this.queue_of(workspace);
            match queue.send(jobs).await {
                Ok(()) => return,
                Err(mpsc::error::SendError(refused)) => jobs = refused,
            }
        }
    }

    fn queue_of(self: &Arc<Self>, workspace: WorkspaceId) -> mpsc::Sender<Vec<Job>> {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(queue) = queues.get(&workspace).filter(|q| !q.is_closed()) {
            return queue.clone();
        }
        let (queue, jobs) = mpsc::channel::<Vec<Job>>(4096);
        let writer = run(Arc::downgrade(self), workspace, jobs);
        spawn_writer(self.own_thread, writer);
        queues.insert(workspace, queue.clone());
        queue
    }

    /// Closes `workspace`'s queue and forgets it, unless something is
    /// queued. A sender already holding the queue is refused and starts
    /// another writer (which may briefly overlap this one's last batch).
    fn retire(&self, workspace: WorkspaceId, jobs: &mut mpsc::Receiver<Vec<Job>>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        if jobs.is_empty() {
            jobs.close();
            queues.remove(&workspace);
        }
    }
}

fn stopped() -> InboxError {
    StoreError::Backend("the inbound writer has stopped".into()).into()
}

/// Runs a writer: SQLite's on the writers' thread, which has a runtime of
/// its own. A writer holds SQLite's one write turn across a batch's
/// statements, each a hand-off to the connection's thread; on the shared
/// runtime each answer would wait for a worker behind every socket's task,
/// and every other writer with it. (PostgreSQL's stay on the shared
/// runtime: a connection a writer opened would otherwise depend on the
/// writers' thread for every later user of the pool.) Without such a
/// thread (none could be started) the writer shares the runtime.
fn spawn_writer(own_thread: bool, writer: impl Future<Output = ()> + Send + 'static) {
    match writers_runtime().filter(|_| own_thread) {
        Some(runtime) => drop(runtime.spawn(writer)),
        None => drop(tokio::spawn(writer)),
    }
}

/// The process's one runtime for writers. It lives as long as the process:
/// connections a writer opens belong to its runtime's I/O driver, and may
/// be used by anyone after that writer has stopped.
fn writers_runtime() -> Option<&'static Handle> {
    static RUNTIME: OnceLock<Option<Handle>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let runtime = runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .inspect_err(|error| tracing::warn!(%error, "no runtime for inbound writers"))
                .ok()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("inbound-writers".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .inspect_err(|error| tracing::warn!(%error, "no thread for inbound writers"))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// How long a writer waits for its workspace's next message before stopping.
const IDLE: Duration = Duration::from_secs(30);

/// `workspace`'s writer: a batch of whatever is queued, one after another,
/// until idle or until the writers are gone.
async fn run(writers: Weak<Writers>, workspace: WorkspaceId, mut queue: mpsc::Receiver<Vec<Job>>) {
    loop {
        let first = match tokio::time::timeout(IDLE, queue.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            // Idle: stop taking messages; what came meanwhile is still
            // written (`recv` yields it, then ends the loop).
            Err(_) => match writers.upgrade() {
                Some(writers) => {
                    writers.retire(workspace, &mut queue);
                    continue;
                }
                None => return,
            },
        };
        let Some(store) = writers.upgrade().map(|w| w.store.clone()) else {
            return;
        };
        let jobs = gather(&mut queue, first);
        // A task of its own: a panic fails this batch's senders (their
        // answer channel drops), not the writer.
        let batch = tokio::spawn(async move { commit(store.as_ref(), workspace, jobs).await });
        if let Err(error) = batch.await {
            tracing::error!(%error, "an inbound batch failed");
        }
    }
}

/// `first`, and whatever else is already queued.
fn gather(queue: &mut mpsc::Receiver<Vec<Job>>, mut jobs: Vec<Job>) -> Vec<Job> {
    while jobs.len() < MAX_MESSAGES_PER_COMMIT {
        match queue.try_recv() {
            Ok(delivered) => jobs.extend(delivered),
            Err(_) => break,
        }
    }
    jobs
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
