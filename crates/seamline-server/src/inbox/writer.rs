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

use std::future::Future;
use std::sync::{Arc, OnceLock};

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
    /// One queue per writer; a workspace's messages always go to the same
    /// one (see [`shard`]). Messages delivered together travel together.
    queues: Arc<[mpsc::Sender<Vec<Job>>]>,
}

impl InboundWriter {
    /// Starts `writers` writer tasks (1 suits SQLite, which has one writer;
    /// PostgreSQL gains from several, for several workspaces). They stop
    /// when every handle is dropped.
    pub fn start(store: Arc<dyn Backend>, bus: Arc<dyn Bus>, writers: usize) -> Self {
        let queues = (0..writers.max(1))
            .map(|_| {
                let (jobs, queue) = mpsc::channel::<Vec<Job>>(4096);
                spawn_writer(run(store.clone(), queue));
                jobs
            })
            .collect();
        Self { store, bus, queues }
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
        let mut deliveries: Vec<(usize, Vec<Job>)> = Vec::new();
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
            let queue = shard(inbound.workspace, self.queues.len());
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
        for (queue, jobs) in deliveries {
            // A stopped writer drops the jobs: their senders hear it below.
            let _ = self.queues[queue].send(jobs).await;
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

/// Which of `writers` writes `workspace`'s messages: always the same one.
/// One workspace's batches take its lock one after another whoever writes
/// them, so a second writer would only split them into smaller batches
/// queueing for that lock; other workspaces' writers run beside it.
fn shard(workspace: WorkspaceId, writers: usize) -> usize {
    let (high, low) = workspace.as_uuid().as_u64_pair();
    // A v7 uuid's low half is random: an even spread.
    let n = (high ^ low) % writers.max(1) as u64;
    usize::try_from(n).unwrap_or(0)
}

fn stopped() -> InboxError {
    StoreError::Backend("the inbound writer has stopped".into()).into()
}

/// Runs a writer on the writers' thread, which has a runtime of its own. A
/// writer holds the workspace's write turn (SQLite's one writer,
/// PostgreSQL's identity lock) across a batch's statements; on the shared
/// runtime each statement's answer would wait for a worker behind every
/// socket's task, and every other sender would wait with it. Without such a
/// thread (none could be started) the writer shares the runtime.
fn spawn_writer(writer: impl Future<Output = ()> + Send + 'static) {
    match writers_runtime() {
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

async fn run(store: Arc<dyn Backend>, mut queue: mpsc::Receiver<Vec<Job>>) {
    while let Some(jobs) = gather(&mut queue).await {
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

/// Waits for one delivery, then takes whatever else is already queued.
async fn gather(queue: &mut mpsc::Receiver<Vec<Job>>) -> Option<Vec<Job>> {
    let mut jobs = queue.recv().await?;
    while jobs.len() < MAX_MESSAGES_PER_COMMIT {
        match queue.try_recv() {
            Ok(delivered) => jobs.extend(delivered),
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

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn a_workspace_always_has_the_same_writer_and_workspaces_spread_over_all() {
        let workspaces: Vec<WorkspaceId> = (0..200).map(|_| WorkspaceId(Uuid::now_v7())).collect();
        let mut used = [0usize; 4];
        for ws in &workspaces {
            let writer = shard(*ws, 4);
            assert_eq!(writer, shard(*ws, 4));
            used[writer] += 1;
        }
        assert!(used.iter().all(|n| *n > 20), "uneven spread: {used:?}");
        assert_eq!(shard(workspaces[0], 1), 0);
        assert_eq!(shard(workspaces[0], 0), 0);
    }
}
