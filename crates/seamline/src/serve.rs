//! `seamline serve`: open the store and bus, make sure there is a way in
//! (demo or first-start workspace), serve until SIGINT/SIGTERM, then drain.

use anyhow::Context;
use seamline_server::channels::{ChannelsConfig, SecretKey};
use seamline_server::{demo, provision, Application, ServerConfig};
use seamline_store::Store;

use crate::config::Settings;
use crate::runtime;

/// Demo visitors on top of the seed stories.
const DEMO_VISITORS: usize = 400;

pub async fn run(settings: Settings, with_demo: bool) -> anyhow::Result<()> {
    let store = runtime::open_store(&settings).await?;
    let bus = runtime::open_bus(&settings).await?;
    tracing::info!(database = %settings.database_label(), bus = %settings.bus_label(), "opened");
    let writers = settings
        .ingest_writers
        .unwrap_or(if store.backend() == "postgres" { 4 } else { 1 });
    let config = ServerConfig {
        listen: settings.listen,
        secure_cookies: settings.secure_cookies,
        ingest_writers: writers,
        blob_dir: settings.data_dir.join("blobs"),
        channels: channels_config(&settings)?,
        ..ServerConfig::default()
    };
    // Bind before creating the first-start workspace: its password is shown
    // only once, so a start that fails (port taken) must not use it up.
    let app = Application::build(config, store.clone(), bus).await?;
    let login = if with_demo {
        demo_login(store.as_ref()).await?
    } else {
        first_start_login(store.as_ref()).await?
    };
    println!("Seamline is running at http://{}", app.local_addr());
    if let Some(login) = login {
        println!("{login}");
    }
    app.run_until(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// The channel secrets' key: `SEAMLINE_SECRET_KEY`, else the data dir's
/// `secret.key` (made on first start; one instance only).
fn channels_config(settings: &Settings) -> anyhow::Result<ChannelsConfig> {
    let secret_key = match &settings.secret_key {
        Some(text) => SecretKey::parse(text).context("SEAMLINE_SECRET_KEY")?,
        None => {
            if settings.database_url.is_some() {
                tracing::warn!(
                    "no SEAMLINE_SECRET_KEY: channel secrets are sealed with this machine's key; \
                     give every instance the same key"
                );
            }
            std::fs::create_dir_all(&settings.data_dir).context("creating the data dir")?;
            SecretKey::load_or_create(&settings.data_dir.join("secret.key"))?
        }
    };
    Ok(ChannelsConfig {
        secret_key,
        public_url: settings.public_url.clone(),
        ..ChannelsConfig::default()
    })
}

async fn demo_login(store: &dyn seamline_store::Backend) -> anyhow::Result<Option<String>> {
    let made = demo::seed(store, DEMO_VISITORS)
        .await
        .context("seeding demo data")?;
    let keys = made
        .map(|m| format!("\n  write key: {}\n  API key:   {}", m.write_key, m.api_key))
        .unwrap_or_default();
    Ok(Some(format!(
        "Demo workspace: sign in as {} / {}{keys}",
        demo::DEMO_EMAIL,
        demo::DEMO_PASSWORD
    )))
}

/// On the very first start, create a workspace so there is someone to sign in as.
async fn first_start_login(store: &dyn Store) -> anyhow::Result<Option<String>> {
    if !store.list_workspaces().await?.is_empty() {
        return Ok(None);
    }
    let password = seamline_server::auth::new_token();
    let made = provision::create_workspace(
        store,
        "My workspace",
        "admin@localhost.localdomain",
        &password,
    )
    .await
    .map_err(runtime::api_error)?;
    Ok(Some(format!(
        "First start: created workspace \"{}\".\n  sign in as {} / {}\n  write key: {}\n  API key:   {} (shown only now)",
        made.workspace.name, made.owner.email, password, made.write_key, made.api_key
    )))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
