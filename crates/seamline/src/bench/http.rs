//! `/v1/batch` end to end: the real server in this process on a given store,
//! driven over loopback by concurrent clients, every event checked afterwards.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use seamline_bus::InProcessBus;
use seamline_core::WorkspaceId;
use seamline_server::{provision, Application, ServerConfig};
use seamline_store::{Backend, Store};

use crate::runtime;

/// What one HTTP ingest run measured.
pub struct HttpRun {
    pub events: usize,
    pub elapsed: Duration,
    /// CPU time this process (server and clients) used meanwhile.
    pub cpu: Duration,
    /// Per request, sorted ascending.
    pub latencies: Vec<Duration>,
}

impl HttpRun {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which `q` (0..=1) of the requests finished.
    pub fn percentile(&self, q: f64) -> Duration {
        super::report::percentile(&self.latencies, q)
    }
}

/// How the load is shaped.
pub struct Load {
    pub bodies: Vec<Vec<u8>>,
    pub events: usize,
    pub clients: usize,
}

/// Serves `store` with `writers` ingest writers, sends every body, checks
/// that every event was stored.
pub async fn ingest(
    store: Arc<dyn Backend>,
    writers: usize,
    load: Load,
) -> anyhow::Result<HttpRun> {
    let made = provision::create_workspace(
        store.as_ref(),
        "Bench",
        "bench@localhost.localdomain",
        &seamline_server::auth::new_token(),
    )
    .await
    .map_err(runtime::api_error)?;
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ingest_writers: writers,
        ..ServerConfig::default()
    };
    let bus = Arc::new(InProcessBus::new(Default::default()));
    let app = Application::build(config, store.clone(), bus).await?;
    let url = format!("http://{}/v1/batch", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let events = load.events;
    let sent = send_all(&url, &made.write_key, load).await;
    let _ = stop.send(());
    server.await.context("the server task failed")??;
    let run = sent?;
    verify(store.as_ref(), made.workspace.id, events).await?;
    Ok(run)
}

/// The load generator: `clients` connections take bodies from one queue.
async fn send_all(url: &str, write_key: &str, load: Load) -> anyhow::Result<HttpRun> {
    let queue = Arc::new(Mutex::new(load.bodies.into_iter()));
    let cpu_before = process_cpu();
    let started = Instant::now();
    let clients: Vec<_> = (0..load.clients.max(1))
        .map(|_| {
            let client = Client::new(url, write_key)?;
            Ok(tokio::spawn(client.drain(queue.clone())))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut latencies = Vec::new();
    for client in clients {
        latencies.extend(client.await.context("a client task failed")??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    Ok(HttpRun {
        events: load.events,
        elapsed,
        cpu: process_cpu().saturating_sub(cpu_before),
        latencies,
    })
}

/// One keep-alive connection sending tracking batches.
struct Client {
    http: reqwest::Client,
    url: String,
    write_key: String,
}

type Queue = Arc<Mutex<std::vec::IntoIter<Vec<u8>>>>;

impl Client {
    fn new(url: &str, write_key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            url: url.to_owned(),
            write_key: write_key.to_owned(),
        })
    }

    /// Sends bodies until the queue is empty; returns each request's latency.
    async fn drain(self, queue: Queue) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some(body) = next else {
                return Ok(latencies);
            };
            let started = Instant::now();
            self.send(body).await?;
            latencies.push(started.elapsed());
        }
    }

    async fn send(&self, body: Vec<u8>) -> anyhow::Result<()> {
        let response = self
            .http
            .post(&self.url)
            .basic_auth(&self.write_key, None::<&str>)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .context("sending a batch")?;
        let status = response.status();
        let text = response.text().await.context("reading the answer")?;
        anyhow::ensure!(
            status == reqwest::StatusCode::OK && text.contains("\"success\":true"),
            "the server answered a batch with {status}: {text}"
        );
        Ok(())
    }
}

/// Every event sent must be in the store: a benchmark that lost data measured nothing.
async fn verify(store: &dyn Store, workspace: WorkspaceId, expected: usize) -> anyhow::Result<()> {
    let stored = store.count_events(workspace).await?;
    anyhow::ensure!(
        stored == expected as u64,
        "DATA LOSS: {expected} events were acknowledged but {stored} are stored"
    );
    Ok(())
}

/// User plus system CPU time of this process so far, from /proc (Linux;
/// zero elsewhere). Counted in USER_HZ ticks, 100 per second on Linux.
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}
