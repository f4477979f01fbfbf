//! Idle memory: the real binary, started on a fresh data directory, left
//! alone for a moment after it reports its URL, then its resident set read.

use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// How long the server idles before its memory is read.
const SETTLE: Duration = Duration::from_secs(2);
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
const READY_LINE: &str = "Seamline is running at ";

/// The idle resident set of `seamline serve` on SQLite, in bytes.
pub async fn idle_rss() -> anyhow::Result<u64> {
    let data = tempfile::tempdir()?;
    let exe = std::env::current_exe().context("finding this binary")?;
    let mut child = Command::new(exe)
        .arg("--data-dir")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        // The embedded shape: nothing from this shell may point it elsewhere.
        .env_remove("SEAMLINE_DATABASE_URL")
        .env_remove("SEAMLINE_NATS_URL")
        .env_remove("SEAMLINE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting seamline serve")?;
    let measured = measure(&mut child).await;
    child.kill().await.context("stopping seamline serve")?;
    measured
}

async fn measure(child: &mut Child) -> anyhow::Result<u64> {
    let stdout = child
        .stdout
        .take()
        .context("no stdout from seamline serve")?;
    let mut lines = tokio::time::timeout(STARTUP_LIMIT, wait_ready(stdout))
        .await
        .context("seamline serve did not start in time")??;
    // Keep reading: a closed pipe would fail the server's next println.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    tokio::time::sleep(SETTLE).await;
    let pid = child.id().context("seamline serve exited")?;
    vm_rss(pid)
}

type Lines = tokio::io::Lines<BufReader<ChildStdout>>;

/// Reads stdout up to the URL line; returns the rest.
async fn wait_ready(stdout: ChildStdout) -> anyhow::Result<Lines> {
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if line.starts_with(READY_LINE) {
            return Ok(lines);
        }
    }
    anyhow::bail!("seamline serve exited before printing its URL")
}

/// `VmRSS` of a process, from /proc (Linux).
pub fn vm_rss(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .context("reading /proc/<pid>/status (Linux only)")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line in /proc/<pid>/status")?;
    Ok(kib * 1024)
}
