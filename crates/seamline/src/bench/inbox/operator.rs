//! The operator's screen: the inbox stream (server-sent events) read as the
//! inbox page reads it, noting when each benchmark message arrives.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::visitors::BODY_PREFIX;

/// Arrivals: (sequence number, when it was read).
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

pub struct Operator {
    arrivals: Arrivals,
    task: JoinHandle<()>,
}

impl Operator {
    /// Opens the stream at `url` (with a secret API key, if given).
    pub async fn open(url: &str, api_key: Option<&str>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let mut request = http.get(url);
        if let Some(key) = api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.context("opening the inbox stream")?;
        anyhow::ensure!(
            response.status() == reqwest::StatusCode::OK,
            "the inbox stream answered {}",
            response.status()
        );
        let arrivals = Arrivals::default();
        let task = tokio::spawn(read(response, arrivals.clone()));
        Ok(Self { arrivals, task })
    }

    /// Benchmark messages seen so far.
    pub fn delivered(&self) -> usize {
        self.lock().len()
    }

    /// Stops reading; returns every arrival.
    pub fn close(self) -> Vec<(u64, Instant)> {
        self.task.abort();
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Instant)>> {
        self.arrivals.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads events until the stream ends; a chunk's events all arrived when
/// the chunk was read.
async fn read(response: reqwest::Response, arrivals: Arrivals) {
    let mut chunks = response.bytes_stream();
    let mut pending = String::new();
    while let Some(Ok(chunk)) = chunks.next().await {
        let now = Instant::now();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if let Some(seq) = message_seq(&event) {
                arrivals
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((seq, now));
            }
        }
    }
}

/// The sequence number of a `message` event carrying a benchmark message.
fn message_seq(event: &str) -> Option<u64> {
    let mut kind = None;
    let mut data = String::new();
    for line in event.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            kind = Some(value.trim());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    if kind != Some("message") {
        return None;
    }
    let frame: Value = serde_json::from_str(&data).ok()?;
    frame["message"]["body"]
        .as_str()?
        .strip_prefix(BODY_PREFIX)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sequence_of_a_message_event_only() {
        let event = "event: message\ndata: {\"type\":\"message\",\"message\":{\"body\":\"bench message #42\"}}\n\n";
        assert_eq!(message_seq(event), Some(42));
        let other = event.replace("event: message", "event: conversation");
        assert_eq!(message_seq(&other), None);
        assert_eq!(message_seq(":\n\n"), None);
    }
}
