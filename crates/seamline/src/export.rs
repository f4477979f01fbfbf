//! `seamline export`: a workspace's events as JSONL, oldest first, in the
//! REST API's event shape (with the original payload).

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use seamline_core::WorkspaceId;
use seamline_server::views::EventView;
use seamline_store::{EventQuery, Order, Store};

use crate::config::Settings;
use crate::runtime;

const PAGE: u32 = 1000;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Workspace id (optional when there is only one).
    #[arg(long)]
    pub workspace: Option<WorkspaceId>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

pub async fn run(settings: Settings, args: ExportArgs) -> anyhow::Result<()> {
    let store = runtime::open_store(&settings).await?;
    let workspace = runtime::pick_workspace(store.as_ref(), args.workspace).await?;
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let total = store.count_events(workspace).await?;
    let progress = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} exporting {pos}/{len} events {wide_bar} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    if args.out.is_none() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let written = export(store.as_ref(), workspace, BufWriter::new(sink), &progress).await?;
    progress.finish_and_clear();
    eprintln!("exported {written} events");
    Ok(())
}

/// Writes every event of `workspace` as one JSON line each; returns the count.
pub async fn export(
    store: &dyn Store,
    workspace: WorkspaceId,
    mut sink: impl Write,
    progress: &ProgressBar,
) -> anyhow::Result<u64> {
    let mut query = EventQuery {
        limit: PAGE,
        order: Order::OldestFirst,
        ..EventQuery::default()
    };
    let mut written = 0;
    loop {
        let page = store.list_events(workspace, &query).await?;
        for event in &page {
            serde_json::to_writer(&mut sink, &EventView::from(event))?;
            sink.write_all(b"\n")?;
        }
        written += page.len() as u64;
        progress.inc(page.len() as u64);
        match page.last() {
            Some(last) if page.len() == PAGE as usize => query.after_seq = Some(last.seq),
            _ => break,
        }
    }
    sink.flush()?;
    Ok(written)
}
