//! `seamline bench …`: benchmarks that measure the raw limit in the same run.
//!
//! `bench ingest` measures, on the same events: the raw insert limit of each
//! store (plain batched inserts, no index, no dedupe, no outbox), HTTP
//! `/v1/batch` ingest end to end through the real server, and the idle
//! memory of `seamline serve`. A benchmark, never a timed test: it reports
//! PASS/MISS against the targets and fails only when data was lost.

mod http;
mod identity;
mod inbox;
mod postgres;
mod raw;
mod report;
mod rss;
mod workload;

use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use seamline_store::Store;
use seamline_store_postgres::{PgOptions, PgStore};
use seamline_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{redact, Settings};
use http::Load;
use report::{Backend, Machine, Report, WorkloadInfo};
use workload::{Row, Workload};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput: raw store inserts vs HTTP /v1/batch end to end.
    Ingest(IngestArgs),
    /// Identity resolution: throughput, latency, precision and recall on
    /// synthetic records whose truth is known.
    Identity(identity::IdentityArgs),
    /// Inbox: a widget visitor's message to the operator's screen under
    /// load (one instance, or two through PostgreSQL and NATS).
    Inbox(inbox::InboxArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Events to send in each measurement.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub events: u32,
    /// Events per /v1/batch request.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Concurrent HTTP clients (one keep-alive connection each).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Also measure PostgreSQL: a server URL on which a throwaway database is
    /// created and dropped.
    #[arg(long, env = "SEAMLINE_BENCH_POSTGRES_URL", hide_env_values = true)]
    pub postgres_url: Option<String>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => ingest(settings, args).await,
        BenchCommand::Identity(args) => identity::run(args),
        BenchCommand::Inbox(args) => inbox::run(settings, args).await,
    }
}

/// What every measurement shares.
struct Plan {
    rows: Arc<Vec<Row>>,
    bodies: Vec<Vec<u8>>,
    events: usize,
    clients: usize,
    /// Ingest writers as `serve` would start them, unless the config says otherwise.
    writers: Option<usize>,
}

async fn ingest(settings: Settings, args: IngestArgs) -> anyhow::Result<()> {
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let machine = Machine::probe();
    let events = args.events as usize;
    progress(format!("preparing {events} events"));
    let workload = Workload::new(events);
    let bodies = workload.bodies(args.batch_size as usize)?;
    let info = WorkloadInfo {
        events,
        mean_event_bytes: workload.mean_message_bytes,
        batch_size: args.batch_size as usize,
        mean_body_bytes: bodies.iter().map(Vec::len).sum::<usize>() / bodies.len().max(1),
        clients: args.clients as usize,
    };
    let plan = Plan {
        rows: Arc::new(workload.rows()?),
        bodies,
        events,
        clients: info.clients,
        writers: settings.ingest_writers,
    };
    drop(workload);
    let sqlite = sqlite(&plan).await?;
    let postgres = match args.postgres_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => Some(postgres(&plan, url).await?),
        None => None,
    };
    progress("measuring the idle memory of `seamline serve`".into());
    let idle_rss = rss::idle_rss().await?;
    let mut report = Report {
        date,
        machine,
        workload: info,
        sqlite,
        postgres,
        idle_rss_mb: idle_rss as f64 / 1_000_000.0,
        targets: Vec::new(),
    };
    report.judge();
    print(&report, args.json)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Progress goes to stderr so `--json` output stays clean.
fn progress(message: String) {
    eprintln!("bench: {message}");
}

async fn sqlite(plan: &Plan) -> anyhow::Result<Backend> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    progress(format!(
        "SQLite raw inserts ({} rows) in {}",
        plan.rows.len(),
        dir.path().display()
    ));
    let raw_store = open_sqlite(&dir.path().join("raw.db")).await?;
    let raw_time = raw::sqlite(raw_store.pool(), &plan.rows).await?;
    raw_store.pool().close().await;
    progress("SQLite HTTP /v1/batch ingest".into());
    let store = Arc::new(open_sqlite(&dir.path().join("seamline.db")).await?);
    let writers = plan.writers.unwrap_or(1);
    let run = http::ingest(store.clone(), writers, load(plan)).await?;
    store.pool().close().await;
    Ok(figures(plan, raw_time, 1, writers, &run))
}

async fn open_sqlite(path: &std::path::Path) -> anyhow::Result<SqliteStore> {
    let store = SqliteStore::open(path, SqliteOptions::default()).await?;
    store.migrate().await?;
    Ok(store)
}

async fn postgres(plan: &Plan, server_url: &str) -> anyhow::Result<Backend> {
    let database = postgres::TempDatabase::create(server_url).await?;
    progress(format!(
        "PostgreSQL in a new database {} on {}",
        database.name(),
        redact(server_url)
    ));
    let measured = postgres_in(plan, &database.url).await;
    let dropped = database.drop().await;
    let figures = measured?;
    dropped?;
    Ok(figures)
}

async fn postgres_in(plan: &Plan, url: &str) -> anyhow::Result<Backend> {
    let store = Arc::new(PgStore::connect(url, PgOptions::default()).await?);
    store.migrate().await?;
    let writers = plan.writers.unwrap_or(4);
    progress(format!("PostgreSQL raw inserts ({} rows)", plan.rows.len()));
    let raw_time = raw::postgres(store.pool(), plan.rows.clone(), writers).await?;
    progress("PostgreSQL HTTP /v1/batch ingest".into());
    let run = http::ingest(store.clone(), writers, load(plan)).await?;
    store.pool().close().await;
    Ok(figures(plan, raw_time, writers, writers, &run))
}

fn load(plan: &Plan) -> Load {
    Load {
        bodies: plan.bodies.clone(),
        events: plan.events,
        clients: plan.clients,
    }
}

fn figures(
    plan: &Plan,
    raw_time: std::time::Duration,
    raw_connections: usize,
    writers: usize,
    run: &http::HttpRun,
) -> Backend {
    let raw = plan.rows.len() as f64 / raw_time.as_secs_f64();
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    Backend {
        raw_rows_per_s: raw,
        raw_connections,
        http_events_per_s: run.events_per_second(),
        http_p50_ms: ms(run.percentile(0.50)),
        http_p99_ms: ms(run.percentile(0.99)),
        http_requests: run.latencies.len(),
        ingest_writers: writers,
        http_cpu_cores: run.cpu.as_secs_f64() / run.elapsed.as_secs_f64(),
        ratio: run.events_per_second() / raw,
    }
}
