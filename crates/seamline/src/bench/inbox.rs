//! `seamline bench inbox`: a visitor's message from the site widget's
//! socket to the operator's inbox stream, under load, with the raw limit
//! measured in the same run.
//!
//! The servers run in this process on ephemeral ports; the visitors (one
//! WebSocket each, the widget's protocol) and the operator (the inbox's
//! server-sent events with a secret API key) are clients over loopback.
//! The pacer hands message `n` to socket `n mod sockets` when it is due;
//! its latency runs from when it was due to when the operator's stream
//! delivered it. With `--two-instances` the visitors are on instance A and
//! the operator on instance B, both on one PostgreSQL database and NATS.
//!
//! In the same run, the same clients drive a raw relay on the same stack
//! and bus without the store (see [`raw`]), and single message rows are
//! inserted into a plain table of the same database. Memory per socket is
//! the process's growth when the widget sockets open, minus the clients'
//! own share, measured first against a bare holder (see [`holder`]).

mod figures;
mod holder;
mod operator;
mod raw;
mod shape;
mod visitors;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use seamline_bus::Bus;
use seamline_core::inbox::Channel;
use seamline_core::WorkspaceId;
use seamline_server::inbox::{Customer, Inbound, InboundWriter};
use seamline_server::provision;
use seamline_store::Backend;
use sqlx::Connection;
use tokio::time::Instant;

use super::http::process_cpu;
use super::report::Machine;
use crate::config::Settings;
use crate::runtime;
use figures::{Latency, Memory, Observed, Plan, Report, Run};
use holder::Holder;
use operator::Operator;
use shape::{Place, Running, Shape};
use visitors::Visitors;

/// How long the last messages may take to reach the screen.
const GRACE: Duration = Duration::from_secs(5);
/// The widget lets a visitor send 10 messages per 10 s.
const VISITOR_RATE_LIMIT: f64 = 1.0;

#[derive(Debug, Args)]
pub struct InboxArgs {
    /// Widget sockets held open (one visitor each).
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub sockets: u32,
    /// Messages per second, spread over the sockets (at most 1 per socket).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: u32,
    /// Seconds of load in each measurement.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub duration: u32,
    /// Visitors on instance A, the operator on instance B: PostgreSQL + NATS
    /// (NATS from --nats-url, else SEAMLINE_TEST_NATS_URL, else localhost).
    #[arg(long)]
    pub two_instances: bool,
    /// PostgreSQL server for --two-instances: a throwaway database is
    /// created on it and dropped.
    #[arg(
        long,
        env = "SEAMLINE_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    pub postgres_url: String,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(settings: Settings, args: InboxArgs) -> anyhow::Result<()> {
    let sockets = args.sockets as usize;
    anyhow::ensure!(
        f64::from(args.rate) <= sockets as f64 * VISITOR_RATE_LIMIT,
        "--rate {} over {sockets} sockets is more than the widget's limit of one message \
         per second per visitor: open more sockets",
        args.rate
    );
    let plan = Plan {
        sockets,
        rate: args.rate,
        messages: u64::from(args.rate) * u64::from(args.duration),
        history: sockets,
        grace: GRACE,
        two_instances: args.two_instances,
    };
    let shape = if args.two_instances {
        let nats_url = settings
            .nats_url
            .clone()
            .or_else(|| std::env::var("SEAMLINE_TEST_NATS_URL").ok())
            .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
        Shape::Two {
            postgres_url: args.postgres_url.clone(),
            nats_url,
        }
    } else {
        Shape::One
    };
    let date = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let machine = Machine::probe();
    progress(format!("{} on {}", shape.label(), date));
    let place = Place::new(&shape).await?;
    let measured = measure(&plan, &place).await;
    let cleaned = place.cleanup().await;
    let (product, raw_relay, raw_insert, memory) = measured?;
    cleaned?;
    let mut report = Report {
        date,
        machine,
        shape: shape.label(),
        ratio_p99: product.all.p99_ms / raw_relay.all.p99_ms.max(1e-6),
        plan,
        product,
        raw_relay,
        raw_insert,
        memory,
        targets: Vec::new(),
    };
    report.judge();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// Progress goes to stderr so `--json` output stays clean.
fn progress(message: String) {
    eprintln!("bench: {message}");
}

async fn measure(plan: &Plan, place: &Place) -> anyhow::Result<(Run, Run, Latency, Memory)> {
    progress(format!(
        "client side alone: {} sockets against a bare holder",
        plan.sockets
    ));
    let holder = Holder::start().await?;
    let before = rss()?;
    let held = Visitors::open(plan.sockets, |_| format!("ws://{}/", holder.addr)).await?;
    let client = rss()?.saturating_sub(before);
    // Every socket stays open until the last memory reading, so none of the
    // memory measured is memory freed by an earlier step.
    let (relay, relay_session) = raw_relay(plan, place).await?;
    let (product, product_session) = product(plan, place).await?;
    product_session.close().await?;
    relay_session.close().await?;
    held.close().await;
    holder.stop();
    progress(format!("raw insert: {} single message rows", raw::INSERTS));
    let raw_insert = Latency::of(raw_inserts(place).await?);
    // Signed: a figure below zero says the server's share is within the noise.
    let per_socket = |bytes: u64| (bytes as f64 - client as f64) / plan.sockets as f64 / 1024.0;
    let memory = Memory {
        client_kib_per_socket: client as f64 / plan.sockets as f64 / 1024.0,
        server_kib_per_socket: per_socket(product.opened),
        server_kib_per_socket_after_chat: per_socket(product.chatted),
        raw_relay_kib_per_socket: per_socket(relay.opened),
    };
    Ok((product.run, relay.run, raw_insert, memory))
}

/// One path under load, and the process's growth (bytes) when its sockets
/// opened and after the run.
struct Measured {
    run: Run,
    opened: u64,
    chatted: u64,
}

/// Servers and the visitors on them, open until [`Session::close`].
struct Session {
    visitors: Visitors,
    servers: [Option<Running>; 2],
}

impl Session {
    async fn close(self) -> anyhow::Result<()> {
        self.visitors.close().await;
        for server in self.servers.into_iter().flatten() {
            server.stop().await?;
        }
        Ok(())
    }
}

/// Where the visitors and the operator connect.
struct Paths<'a> {
    name: &'a str,
    /// Instance B's operator stream (A's when there is one instance).
    stream: String,
    api_key: Option<&'a str>,
    /// The `n`th visitor's socket on instance A.
    socket: Box<dyn Fn(usize) -> String + 'a>,
}

/// Opens the operator, then the visitors (measuring the growth), runs the load.
async fn load(
    plan: &Plan,
    paths: Paths<'_>,
    servers: [Option<Running>; 2],
) -> anyhow::Result<(Measured, Session)> {
    let operator = Operator::open(&paths.stream, paths.api_key).await?;
    progress(format!("{}: opening {} sockets", paths.name, plan.sockets));
    let before = rss()?;
    let visitors = Visitors::open(plan.sockets, paths.socket).await?;
    let opened = rss()?.saturating_sub(before);
    progress(format!(
        "{}: {} messages at {}/s",
        paths.name, plan.messages, plan.rate
    ));
    let run = drive(plan, &visitors, operator).await;
    let chatted = rss()?.saturating_sub(before);
    let measured = Measured {
        run,
        opened,
        chatted,
    };
    Ok((measured, Session { visitors, servers }))
}

/// The product: widget sockets on instance A, the inbox stream on B.
async fn product(plan: &Plan, place: &Place) -> anyhow::Result<(Measured, Session)> {
    let (store_a, store_b) = place.stores().await?;
    let (bus_a, bus_b) = place.buses().await?;
    let made = provision::create_workspace(
        store_a.as_ref(),
        "Bench",
        "bench@localhost.localdomain",
        &seamline_server::auth::new_token(),
    )
    .await
    .map_err(runtime::api_error)?;
    progress(format!(
        "product: {} earlier customers' chats",
        plan.history
    ));
    history(
        plan,
        store_a.clone(),
        bus_a.clone(),
        made.workspace.id,
        place,
    )
    .await?;
    let a = shape::product(store_a, bus_a).await?;
    let b = match plan.two_instances {
        true => Some(shape::product(store_b, bus_b).await?),
        false => None,
    };
    let (visitors_at, screen) = (a.addr, b.as_ref().unwrap_or(&a).addr);
    let key: String = url::form_urlencoded::byte_serialize(made.write_key.as_bytes()).collect();
    let paths = Paths {
        name: "product",
        stream: format!("http://{screen}/api/v1/inbox/stream"),
        api_key: Some(&made.api_key),
        socket: Box::new(move |n| {
            format!("ws://{visitors_at}/widget/v1/socket?key={key}&anonymousId=bench-visitor-{n}")
        }),
    };
    load(plan, paths, [Some(a), b]).await
}

/// Writes the workspace's history, earlier customers' chats, through the
/// product's own inbound path: the run starts on tables the size of a
/// working shop's, not empty ones. On PostgreSQL the tables' statistics are
/// then gathered, as autovacuum does on a live database within a minute of
/// such writes, so that the load's query plans are made for tables of that
/// size (a plan cached while a table was empty scans it).
async fn history(
    plan: &Plan,
    store: Arc<dyn Backend>,
    bus: Arc<dyn Bus>,
    workspace: WorkspaceId,
    place: &Place,
) -> anyhow::Result<()> {
    let writer = InboundWriter::start(store, bus);
    let at = chrono::Utc::now();
    let chats = (0..plan.history).map(|n| {
        writer.receive(Inbound {
            workspace,
            channel: Channel::WebChat,
            customer: Customer {
                anonymous_id: Some(format!("bench-history-{n}")),
                ..Customer::default()
            },
            body: format!("earlier message #{n}"),
            external_id: None,
            at,
        })
    });
    for written in futures::future::join_all(chats).await {
        written.context("writing the workspace's history")?;
    }
    if let Some(url) = place.database_url() {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::query("ANALYZE").execute(&mut conn).await?;
    }
    Ok(())
}

/// The same load through the raw relay (see [`raw`]).
async fn raw_relay(plan: &Plan, place: &Place) -> anyhow::Result<(Measured, Session)> {
    let (bus_a, bus_b) = place.buses().await?;
    let a = raw::relay(bus_a).await?;
    let b = match plan.two_instances {
        true => Some(raw::relay(bus_b).await?),
        false => None,
    };
    let (visitors_at, screen) = (a.addr, b.as_ref().unwrap_or(&a).addr);
    let paths = Paths {
        name: "raw relay",
        stream: format!("http://{screen}/stream"),
        api_key: None,
        socket: Box::new(move |_| format!("ws://{visitors_at}/socket")),
    };
    load(plan, paths, [Some(a), b]).await
}

/// Sends every message when it is due, then waits (bounded) for the
/// screen and the visitors' answers.
async fn drive(plan: &Plan, visitors: &Visitors, operator: Operator) -> Run {
    let cpu_before = process_cpu();
    let origin = Instant::now();
    let mut unsent = 0;
    for seq in 0..plan.messages {
        tokio::time::sleep_until(plan.due(origin, seq)).await;
        if !visitors.send(seq) {
            unsent += 1;
        }
    }
    let sending = origin.elapsed();
    let deadline = Instant::now() + plan.grace;
    let sent = plan.messages - unsent;
    // The ack can follow the screen (it waits for routing and the rest).
    let waiting = || operator.delivered() < sent as usize || visitors.tally.answered() < sent;
    while waiting() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = process_cpu().saturating_sub(cpu_before);
    Run::of(Observed {
        plan,
        origin,
        unsent,
        sending,
        cpu,
        arrivals: operator.close(),
        tally: &visitors.tally,
    })
}

async fn raw_inserts(place: &Place) -> anyhow::Result<Vec<Duration>> {
    match place.database_url() {
        Some(url) => {
            let store = seamline_store_postgres::PgStore::connect(url, Default::default()).await?;
            let latencies = raw::postgres_inserts(store.pool()).await;
            store.pool().close().await;
            latencies
        }
        None => {
            let store = seamline_store_sqlite::SqliteStore::open(
                &place.dir().join("raw.db"),
                Default::default(),
            )
            .await?;
            let latencies = raw::sqlite_inserts(store.pool()).await;
            store.pool().close().await;
            latencies
        }
    }
}

/// This process's resident set, in bytes.
fn rss() -> anyhow::Result<u64> {
    super::rss::vm_rss(std::process::id())
}
