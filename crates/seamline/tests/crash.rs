//! Durability of acknowledged events: `seamline serve` is killed with
//! SIGKILL while several clients post `/v1/batch`; after a restart on the
//! same data directory every event whose request was answered 200 is there
//! exactly once, and client retries (acknowledged or not) never double
//! anything (dedupe by `messageId`).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{all_events, http, init, unique_message_ids, Server};

const CLIENTS: usize = 8;
const EVENTS_PER_BATCH: usize = 25;
/// Acknowledged events to reach before the kill, so it lands mid-ingest.
const ACKED_BEFORE_KILL: usize = 2_000;
/// Ingest time before the kill, at least.
const INGEST_AT_LEAST: Duration = Duration::from_secs(1);
/// A server that cannot reach [`ACKED_BEFORE_KILL`] in this time is broken.
const INGEST_AT_MOST: Duration = Duration::from_secs(30);

/// One `/v1/batch` request body and the message ids in it.
#[derive(Clone)]
struct Batch {
    ids: Vec<String>,
    body: Value,
}

fn batch(client: usize, seq: usize) -> Batch {
    let ids: Vec<String> = (0..EVENTS_PER_BATCH)
        .map(|i| format!("crash-{client}-{seq}-{i}"))
        .collect();
    let items: Vec<Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| match i % 3 {
            0 => json!({"type": "track", "event": "Product Viewed", "messageId": id,
                        "userId": format!("user-{client}"),
                        "properties": {"client": client, "seq": seq, "i": i}}),
            1 => json!({"type": "page", "name": "Каталог", "messageId": id,
                        "anonymousId": format!("anon-{client}-{seq}")}),
            _ => json!({"type": "identify", "messageId": id, "userId": format!("user-{client}"),
                        "traits": {"name": "Ёжик 🦔", "seq": seq}}),
        })
        .collect();
    Batch {
        ids,
        body: json!({"batch": items, "context": {"library": {"name": "crash-test"}}}),
    }
}

/// What the clients saw.
#[derive(Default)]
struct Log {
    /// Answered 200.
    acked: Vec<Batch>,
    /// Failed after the server was killed (connection reset, refused, …).
    failed: Vec<Batch>,
    /// Failures of requests started before the kill (in flight when it landed).
    failed_in_flight: usize,
    /// Anything but 200 or a transport error after the kill: a bug.
    unexpected: Vec<String>,
}

async fn post(
    client: &reqwest::Client,
    server_url: &str,
    write_key: &str,
    body: &Value,
) -> Result<reqwest::StatusCode, reqwest::Error> {
    let response = client
        .post(format!("{server_url}/v1/batch"))
        .basic_auth(write_key, Some(""))
        .json(body)
        .send()
        .await?;
    let status = response.status();
    // The answer is only an acknowledgement once it has been read in full.
    response.bytes().await?;
    Ok(status)
}

/// Posts batches until a request fails after the kill.
async fn ingest_client(
    n: usize,
    server_url: String,
    write_key: String,
    killed: Arc<AtomicBool>,
    log: Arc<Mutex<Log>>,
) {
    let client = http();
    for seq in 0.. {
        let started_after_kill = killed.load(Ordering::SeqCst);
        let batch = batch(n, seq);
        let result = post(&client, &server_url, &write_key, &batch.body).await;
        let mut log = log.lock().expect("log lock");
        match result {
            Ok(status) if status == 200 => log.acked.push(batch),
            Ok(status) => {
                log.unexpected
                    .push(format!("client {n} batch {seq}: HTTP {status}"));
                return;
            }
            Err(_) if killed.load(Ordering::SeqCst) => {
                if !started_after_kill {
                    log.failed_in_flight += 1;
                }
                log.failed.push(batch);
                return;
            }
            Err(error) => {
                log.unexpected
                    .push(format!("client {n} batch {seq} before the kill: {error}"));
                return;
            }
        }
    }
}

fn ids_of(batches: &[Batch]) -> HashSet<String> {
    batches.iter().flat_map(|b| b.ids.iter().cloned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_ingest_loses_no_acknowledged_event() {
    let data = tempfile::tempdir().expect("temp dir");
    let workspace = init(data.path());
    let mut server = Server::start(data.path(), &[]);

    let killed = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Log::default()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|n| {
            tokio::spawn(ingest_client(
                n,
                server.url.clone(),
                workspace.write_key.clone(),
                killed.clone(),
                log.clone(),
            ))
        })
        .collect();

    let started = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (acked, unexpected) = {
            let log = log.lock().expect("log lock");
            (log.acked.len() * EVENTS_PER_BATCH, log.unexpected.clone())
        };
        assert!(
            unexpected.is_empty(),
            "ingest failed before the kill: {unexpected:?}\n{}",
            server.output()
        );
        if acked >= ACKED_BEFORE_KILL && started.elapsed() >= INGEST_AT_LEAST {
            break;
        }
        assert!(
            started.elapsed() < INGEST_AT_MOST,
            "only {acked} events acknowledged in {INGEST_AT_MOST:?}\n{}",
            server.output()
        );
    }
    // The clients are still posting: SIGKILL lands in the middle of ingest.
    killed.store(true, Ordering::SeqCst);
    server.kill();
    for client in clients {
        tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("every client notices the dead server")
            .expect("client task");
    }
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("the clients are done")
        .into_inner()
        .expect("log lock");
    assert!(log.unexpected.is_empty(), "{:?}", log.unexpected);
    assert_eq!(
        log.failed.len(),
        CLIENTS,
        "each client stops at its failure"
    );
    let acked = ids_of(&log.acked);
    let failed = ids_of(&log.failed);
    let sent: HashSet<String> = acked.union(&failed).cloned().collect();
    eprintln!(
        "acknowledged {} events in {} batches; {} batches failed ({} in flight at the kill)",
        acked.len(),
        log.acked.len(),
        log.failed.len(),
        log.failed_in_flight
    );
    assert!(
        log.failed_in_flight > 0,
        "the kill landed while no request was in flight"
    );

    let server = Server::start(data.path(), &[]);
    let client = http();
    let events = all_events(&client, &server.url, &workspace.api_key).await;
    let stored = unique_message_ids(&events);
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged events were lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
    let unknown: Vec<&String> = stored.difference(&sent).collect();
    assert!(unknown.is_empty(), "events nobody sent: {unknown:?}");
    for event in &events {
        assert_eq!(event["workspaceId"], workspace.workspace_id.as_str());
        assert!(event["payload"].is_object(), "payload kept: {event}");
    }
    eprintln!(
        "after the restart: {} events stored, {} of them from unanswered requests",
        events.len(),
        stored.intersection(&failed).count()
    );
    let before_retries = events.len();

    // A client that did not see the answer retries: acknowledged batches
    // sent again change nothing.
    for batch in log.acked.iter().step_by(7).take(30) {
        let status = post(&client, &server.url, &workspace.write_key, &batch.body)
            .await
            .expect("resending an acknowledged batch");
        assert_eq!(status, 200);
    }
    let events = all_events(&client, &server.url, &workspace.api_key).await;
    assert_eq!(
        events.len(),
        before_retries,
        "resent acknowledged batches were stored again"
    );
    assert_eq!(unique_message_ids(&events), stored);

    // Retrying the failed batches (some may have been committed before the
    // kill without an answer) leaves every event sent exactly once.
    for batch in &log.failed {
        let status = post(&client, &server.url, &workspace.write_key, &batch.body)
            .await
            .expect("retrying a failed batch");
        assert_eq!(status, 200);
    }
    let events = all_events(&client, &server.url, &workspace.api_key).await;
    assert_eq!(unique_message_ids(&events), sent);
    assert_eq!(events.len(), sent.len());
}
