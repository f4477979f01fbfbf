//! Where a run's data lives (a temporary SQLite file, or a throwaway
//! PostgreSQL database and NATS stream), and servers started in this
//! process on ephemeral ports.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use seamline_bus::{Bus, InProcessBus, NatsBus, NatsOptions};
use seamline_server::{Application, ServerConfig};
use seamline_store::{Backend, Store};
use seamline_store_postgres::{PgOptions, PgStore};
use seamline_store_sqlite::{SqliteOptions, SqliteStore};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::bench::postgres::TempDatabase;
use crate::config::redact;

/// How long a server may take to finish after its clients have gone.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// One instance on SQLite and the in-process bus, or two on PostgreSQL and NATS.
#[derive(Debug, Clone)]
pub enum Shape {
    One,
    Two {
        postgres_url: String,
        nats_url: String,
    },
}

impl Shape {
    pub fn label(&self) -> String {
        match self {
            Self::One => "one instance, SQLite, in-process bus".into(),
            Self::Two {
                postgres_url,
                nats_url,
            } => format!(
                "two instances, PostgreSQL ({}) + NATS JetStream ({})",
                redact(postgres_url),
                redact(nats_url)
            ),
        }
    }
}

/// The run's storage and bus, removed by [`Place::cleanup`].
pub struct Place {
    dir: tempfile::TempDir,
    database: Option<TempDatabase>,
    nats: Option<NatsOptions>,
}

impl Place {
    pub async fn new(shape: &Shape) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a temporary directory")?;
        let Shape::Two {
            postgres_url,
            nats_url,
        } = shape
        else {
            return Ok(Self {
                dir,
                database: None,
                nats: None,
            });
        };
        let database = TempDatabase::create(postgres_url).await?;
        // A stream of its own: other users of this NATS server see nothing.
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let nats = NatsOptions {
            stream: format!("SEAMLINE_BENCH_{unique}"),
            subject_prefix: format!("bench{unique}"),
            max_age: Duration::from_secs(3600),
            ..NatsOptions::new(nats_url.clone())
        };
        Ok(Self {
            dir,
            database: Some(database),
            nats: Some(nats),
        })
    }

    /// The store of each instance: one SQLite file, or one PostgreSQL pool
    /// per instance on the same database.
    pub async fn stores(&self) -> anyhow::Result<(Arc<dyn Backend>, Arc<dyn Backend>)> {
        match &self.database {
            None => {
                let store = SqliteStore::open(
                    &self.dir.path().join("seamline.db"),
                    SqliteOptions::default(),
                )
                .await?;
                store.migrate().await?;
                let store: Arc<dyn Backend> = Arc::new(store);
                Ok((store.clone(), store))
            }
            Some(database) => {
                let a = PgStore::connect(&database.url, PgOptions::default()).await?;
                a.migrate().await?;
                let b = PgStore::connect(&database.url, PgOptions::default()).await?;
                Ok((Arc::new(a), Arc::new(b)))
            }
        }
    }

    /// The bus of each instance: one in-process bus, or a NATS connection each.
    pub async fn buses(&self) -> anyhow::Result<(Arc<dyn Bus>, Arc<dyn Bus>)> {
        match &self.nats {
            None => {
                let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(Default::default()));
                Ok((bus.clone(), bus))
            }
            Some(options) => {
                let connect = || async {
                    NatsBus::connect(options.clone())
                        .await
                        .with_context(|| format!("connecting to NATS at {}", redact(&options.url)))
                };
                let a: Arc<dyn Bus> = Arc::new(connect().await?);
                let b: Arc<dyn Bus> = Arc::new(connect().await?);
                Ok((a, b))
            }
        }
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The PostgreSQL database of the run, if it has one.
    pub fn database_url(&self) -> Option<&str> {
        self.database.as_ref().map(|d| d.url.as_str())
    }

    pub async fn cleanup(self) -> anyhow::Result<()> {
        if let Some(options) = &self.nats {
            let client = async_nats::connect(options.url.as_str())
                .await
                .context("connecting to NATS to delete the bench stream")?;
            async_nats::jetstream::new(client)
                .delete_stream(&options.stream)
                .await
                .with_context(|| format!("deleting NATS stream {}", options.stream))?;
        }
        if let Some(database) = self.database {
            database.drop().await?;
        }
        Ok(())
    }
}

/// A server running in this process until [`Running::stop`].
pub struct Running {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `serve`, which must return when the receiver it gets resolves.
    pub fn spawn<F>(addr: SocketAddr, serve: impl FnOnce(oneshot::Receiver<()>) -> F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (stop, stopped) = oneshot::channel();
        Self {
            addr,
            stop,
            task: tokio::spawn(serve(stopped)),
        }
    }

    /// Asks the server to stop and waits (bounded) for it; one still busy
    /// after that (a backlog it could not work off) is dropped.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let mut task = self.task;
        match tokio::time::timeout(STOP_LIMIT, &mut task).await {
            Ok(finished) => finished.context("a server task failed")?,
            Err(_) => {
                task.abort();
                eprintln!("bench: a server was still busy {STOP_LIMIT:?} after its clients left");
                Ok(())
            }
        }
    }
}

/// The product: `Application` on `store` and `bus`, as `seamline serve` starts it.
pub async fn product(store: Arc<dyn Backend>, bus: Arc<dyn Bus>) -> anyhow::Result<Running> {
    let writers = if store.backend() == "postgres" { 4 } else { 1 };
    let config = ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        ingest_writers: writers,
        ..ServerConfig::default()
    };
    let app = Application::build(config, store, bus).await?;
    let addr = app.local_addr();
    Ok(Running::spawn(addr, |stopped| {
        app.run_until(async {
            let _ = stopped.await;
        })
    }))
}
