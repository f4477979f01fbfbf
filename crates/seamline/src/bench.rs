//! `seamline bench …`: benchmarks that measure the raw limit in the same run.

use clap::{Args, Subcommand};

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Ingest throughput: raw store inserts vs HTTP /v1/batch end to end.
    Ingest(IngestArgs),
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Events to send in each measurement.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
}

pub async fn run(_settings: Settings, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Ingest(args) => anyhow::bail!(
            "ingest benchmark for {} events is being written",
            args.events
        ),
    }
}
