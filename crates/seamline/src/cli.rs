//! Command-line interface. Every setting is a flag, a `SEAMLINE_*`
//! environment variable, or a key in the TOML file given by `--config`,
//! in that order of precedence (see `config.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::config::Settings;
use crate::{bench, dev, export, import, runtime, serve};

#[derive(Debug, Parser)]
#[command(
    name = "seamline",
    version,
    about = "Omnichannel customer platform: one profile, one conversation."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings shared by every command.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// TOML configuration file.
    #[arg(long, env = "SEAMLINE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the embedded database and files live [default: ./seamline-data].
    #[arg(long, env = "SEAMLINE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://…) for the scaled shape; SQLite in the data dir when absent.
    #[arg(
        long,
        env = "SEAMLINE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// NATS URL (nats://…, JetStream) for the scaled shape; in-process bus when absent.
    #[arg(long, env = "SEAMLINE_NATS_URL", global = true, hide_env_values = true)]
    pub nats_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "SEAMLINE_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (HTTP API, web UI, workers).
    Serve(ServeArgs),
    /// Create a workspace and its owner; prints ids and keys as JSON.
    Init(InitArgs),
    /// Import events from a Segment-style JSONL or CSV file (resumable).
    Import(import::ImportArgs),
    /// Export a workspace's events as JSONL.
    Export(export::ExportArgs),
    /// Apply database migrations.
    Migrate,
    /// Benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Development helpers.
    #[command(subcommand)]
    Dev(dev::DevCommand),
}

#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "SEAMLINE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Fill a demo workspace with realistic customers (login printed on start).
    #[arg(long)]
    pub demo: bool,
    /// Mark cookies Secure (when served over HTTPS).
    #[arg(long, env = "SEAMLINE_SECURE_COOKIES")]
    pub secure_cookies: Option<bool>,
    /// Key sealing channel secrets (32 bytes, base64 or hex) [default: data dir's secret.key].
    #[arg(long, env = "SEAMLINE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Public base URL for channel webhooks [default: the URL the browser used].
    #[arg(long, env = "SEAMLINE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[arg(long)]
    pub workspace: String,
    #[arg(long)]
    pub email: String,
    #[arg(long, env = "SEAMLINE_INIT_PASSWORD", hide_env_values = true)]
    pub password: String,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::resolve(&cli.global, serve_args(&cli.command))?;
    runtime::init_logging(&settings);
    match cli.command {
        Command::Serve(args) => serve::run(settings, args.demo).await,
        Command::Init(args) => init(settings, args).await,
        Command::Import(args) => import::run(settings, args).await,
        Command::Export(args) => export::run(settings, args).await,
        Command::Migrate => migrate(settings).await,
        Command::Bench(command) => bench::run(settings, command).await,
        Command::Dev(command) => dev::run(command).await,
    }
}

fn serve_args(command: &Command) -> ServeArgs {
    match command {
        Command::Serve(args) => args.clone(),
        _ => ServeArgs::default(),
    }
}

async fn init(settings: Settings, args: InitArgs) -> anyhow::Result<()> {
    let store = runtime::open_store(&settings).await?;
    let made = seamline_server::provision::create_workspace(
        store.as_ref(),
        &args.workspace,
        &args.email,
        &args.password,
    )
    .await
    .map_err(runtime::api_error)?;
    let out = json!({
        "workspace_id": made.workspace.id,
        "workspace": made.workspace.name,
        "email": made.owner.email,
        "write_key": made.write_key,
        "api_key": made.api_key,
    });
    println!("{out}");
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = runtime::open_store(&settings).await?;
    println!("{}", json!({"migrated": true, "backend": store.backend()}));
    Ok(())
}
