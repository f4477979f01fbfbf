//! Several instances on PostgreSQL and NATS, as a large deployment runs:
//! each test gets a database and a stream of its own, so it never meets
//! another test's rows, or a migration another branch applied to a shared
//! database.

use std::sync::Arc;

use seamline_bus::{Bus, NatsBus, NatsOptions};
use seamline_store::{Backend, Store};
use seamline_store_postgres::{PgOptions, PgStore};
use sqlx::{Connection, PgConnection};

use super::{another_instance, spawn_with, TestApp};

/// A database created for one test and dropped with the last app using it.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
}

impl FreshDatabase {
    /// A migrated store on a new database; `None` (skipped loudly, failed
    /// under CI) without `SEAMLINE_TEST_POSTGRES_URL`.
    pub async fn create() -> Option<(Arc<Self>, Arc<dyn Backend>)> {
        let admin_url = seamline_testing::require_env("SEAMLINE_TEST_POSTGRES_URL", "PostgreSQL")?;
        let name = format!("seamline_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connect to SEAMLINE_TEST_POSTGRES_URL");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("SEAMLINE_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        let store = PgStore::connect(url.as_str(), PgOptions::default())
            .await
            .expect("connect to the test database");
        store.migrate().await.expect("migrate");
        Some((Arc::new(Self { admin_url, name }), Arc::new(store)))
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on;
        // a thread of its own drops the database (and its connections).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&url).await.ok()?;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                sqlx::query(&drop).execute(&mut admin).await.ok()
            })
        });
        if !matches!(dropped.join(), Ok(Some(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// NATS options for a stream and subjects of this test's own; `None`
/// (skipped loudly, failed under CI) without `SEAMLINE_TEST_NATS_URL`.
pub fn nats_options(label: &str) -> Option<NatsOptions> {
    let url = seamline_testing::require_env("SEAMLINE_TEST_NATS_URL", "NATS JetStream")?;
    let unique = uuid::Uuid::now_v7().simple().to_string();
    Some(NatsOptions {
        stream: format!("SEAMLINE_{}_{unique}", label.to_uppercase()),
        subject_prefix: format!("{label}{unique}"),
        ..NatsOptions::new(url)
    })
}

pub async fn nats_bus(options: &NatsOptions) -> Arc<dyn Bus> {
    Arc::new(
        NatsBus::connect(options.clone())
            .await
            .expect("connect to NATS"),
    )
}

/// Instance A (with a new workspace, `writers` ingest writers) and B on one
/// fresh database, each with its own NATS connection to one stream.
pub async fn two_instances(label: &str, writers: usize) -> Option<(TestApp, TestApp)> {
    let (database, store) = FreshDatabase::create().await?;
    let options = nats_options(label)?;
    let mut a = spawn_with(store, nats_bus(&options).await, writers).await;
    a._database = Some(database);
    let b = another_instance(&a, nats_bus(&options).await).await;
    Some((a, b))
}
