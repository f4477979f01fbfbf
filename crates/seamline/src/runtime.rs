//! Opening the runtime shape the settings ask for: SQLite or PostgreSQL,
//! in-process bus or NATS JetStream. Migrations run on every open.

use std::sync::Arc;

use anyhow::Context;
use seamline_bus::{Bus, InProcessBus, NatsBus, NatsOptions};
use seamline_core::WorkspaceId;
use seamline_server::error::ApiError;
use seamline_store::Backend;
use seamline_store_postgres::{PgOptions, PgStore};
use seamline_store_sqlite::{SqliteOptions, SqliteStore};
use tracing_subscriber::EnvFilter;

use crate::config::Settings;

pub fn init_logging(settings: &Settings) {
    let filter = EnvFilter::try_from_env("SEAMLINE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if settings.json_logs {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

pub fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Backend>> {
    let store: Arc<dyn Backend> = match settings.database_url.as_deref() {
        Some(url) if is_postgres(url) => Arc::new(
            PgStore::connect(url, PgOptions::default())
                .await
                .with_context(|| format!("connecting to {}", settings.database_label()))?,
        ),
        Some(url) => Arc::new(
            SqliteStore::connect(url, SqliteOptions::default())
                .await
                .with_context(|| format!("opening {}", settings.database_label()))?,
        ),
        None => {
            std::fs::create_dir_all(&settings.data_dir).with_context(|| {
                format!(
                    "creating the data directory {}",
                    settings.data_dir.display()
                )
            })?;
            Arc::new(
                SqliteStore::open(
                    &settings.data_dir.join("seamline.db"),
                    SqliteOptions::default(),
                )
                .await
                .with_context(|| format!("opening {}", settings.database_label()))?,
            )
        }
    };
    store.migrate().await.context("applying migrations")?;
    Ok(store)
}

pub async fn open_bus(settings: &Settings) -> anyhow::Result<Arc<dyn Bus>> {
    Ok(match &settings.nats_url {
        Some(url) => Arc::new(
            NatsBus::connect(NatsOptions::new(url.clone()))
                .await
                .with_context(|| format!("connecting to NATS at {}", settings.bus_label()))?,
        ),
        None => Arc::new(InProcessBus::new(Default::default())),
    })
}

/// The workspace a command acts on: the given one, or the only one there is.
pub async fn pick_workspace(
    store: &dyn Backend,
    given: Option<WorkspaceId>,
) -> anyhow::Result<WorkspaceId> {
    if let Some(id) = given {
        store
            .workspace(id)
            .await?
            .with_context(|| format!("no workspace {id}"))?;
        return Ok(id);
    }
    let all = store.list_workspaces().await?;
    match all.as_slice() {
        [only] => Ok(only.id),
        [] => anyhow::bail!("there is no workspace yet: run `seamline init` first"),
        _ => anyhow::bail!(
            "there are {} workspaces: choose one with --workspace ID",
            all.len()
        ),
    }
}

pub fn api_error(error: ApiError) -> anyhow::Error {
    match error {
        ApiError::Invalid(errors) => {
            let text: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            anyhow::anyhow!("{}", text.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}
