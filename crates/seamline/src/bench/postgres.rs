//! A throwaway database on the given PostgreSQL server, dropped at the end.

use anyhow::Context;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::redact;

pub struct TempDatabase {
    admin: PgPool,
    name: String,
    /// The new database's URL (holds the server URL's credentials).
    pub url: String,
}

impl TempDatabase {
    /// Creates `seamline_bench_<uuid>` on the server of `server_url`.
    pub async fn create(server_url: &str) -> anyhow::Result<Self> {
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(server_url)
            .await
            .with_context(|| format!("connecting to {}", redact(server_url)))?;
        let name = format!("seamline_bench_{}", Uuid::now_v7().simple());
        let mut url = url::Url::parse(server_url).context("parsing the PostgreSQL URL")?;
        url.set_path(&name);
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&admin)
            .await
            .with_context(|| format!("creating database {name}"))?;
        Ok(Self {
            admin,
            name,
            url: url.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, ending any connection still open to it.
    pub async fn drop(self) -> anyhow::Result<()> {
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            self.name
        ))
        .execute(&self.admin)
        .await
        .with_context(|| format!("dropping database {}", self.name))?;
        self.admin.close().await;
        Ok(())
    }
}
